#!/usr/bin/env python3
"""scikit-learn's k-means and Calinski-Harabasz on MiniLM's token embeddings,
for tpa-embedding's golden test.

The embedding (embeddings.word_embeddings.weight, float32) is standardized in
float64 as StandardScaler does (population std, 1 for constant columns), cast
to float32 for KMeans(n_clusters=k, n_init=10, random_state=42), and scored
with sklearn.metrics.calinski_harabasz_score on the float64 standardized rows
of the non-singleton clusters (tpa's F-ratio). The labels are stored too, so
the test can compute tpa's F on exactly these labels.

    pip install numpy scikit-learn
    python3 tests/golden/make_kmeans_golden.py data/models/all-MiniLM-L6-v2 \
        > tests/golden/minilm_kmeans.json
"""
import json
import os
import sys

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_stats import shard_files, tensors  # noqa: E402

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"

model = sys.argv[1]
for path in shard_files(model):
    for name, _dtype, shape, x in tensors(path):
        if name == "embeddings.word_embeddings.weight":
            raw = x.reshape(shape)
mean = raw.mean(axis=0)
std = raw.std(axis=0)
std[std == 0] = 1.0
z64 = (raw - mean) / std
z32 = z64.astype(np.float32)

out = {"sklearn": sklearn.__version__, "tensor": "embeddings.word_embeddings.weight", "k": {}}
for k in [2, 5, 10, 20]:
    km = KMeans(n_clusters=k, n_init=10, random_state=42).fit(z32)
    labels = km.labels_
    sizes = np.bincount(labels, minlength=k)
    keep = sizes[labels] > 1
    f = calinski_harabasz_score(z64[keep], labels[keep])
    out["k"][str(k)] = {
        "inertia": float(km.inertia_),
        "f_ratio": float(f),
        "singletons": int((sizes == 1).sum()),
        "labels": "".join(DIGITS[l] for l in labels),
    }
json.dump(out, sys.stdout)
print()
