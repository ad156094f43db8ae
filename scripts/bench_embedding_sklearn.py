#!/usr/bin/env python3
"""The original embedding_analysis.py pipeline with scikit-learn, as the
reference for tpa-embedding's benchmark (BENCHMARKS.md):

standardize (StandardScaler) -> KMeans(n_clusters=k, n_init=10, random_state=42)
for every k of the coarse pass 2, 2+s, ... (s = max(10, max_k // 20)) -> F-ratio
(Calinski-Harabasz over non-singleton clusters) per k -> fine pass: every k
within s of the best coarse k -> the k with the highest F -> silhouette of the
final clustering on a seeded 10 000-row sample (non-singleton clusters).
This is the pipeline tpa-embedding runs with its defaults (max_k 100).

    python3 scripts/bench_embedding_sklearn.py data/models/all-MiniLM-L6-v2 [max_k]
"""
import os
import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, silhouette_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from numpy_stats import shard_files, tensors  # noqa: E402

model = sys.argv[1]
max_k = int(sys.argv[2]) if len(sys.argv) > 2 else 100
for path in shard_files(model):
    for name, _dtype, shape, x in tensors(path):
        if name in ("embeddings.word_embeddings.weight", "model.embed_tokens.weight"):
            raw = x.reshape(shape).astype(np.float32)

start = time.perf_counter()
X = StandardScaler().fit_transform(raw)
fits = {}


def score(k):
    km = KMeans(n_clusters=k, n_init=10, random_state=42).fit(X)
    labels = km.labels_
    sizes = np.bincount(labels, minlength=k)
    keep = sizes[labels] > 1
    f = calinski_harabasz_score(X[keep], labels[keep]) if (sizes > 1).sum() >= 2 else float("nan")
    fits[k] = (f, labels)
    print(f"k={k} F={f:.3f} inertia={km.inertia_:.1f} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)


step = max(10, max_k // 20)
coarse = list(range(2, max_k + 1, step)) if max_k > 50 else list(range(2, max_k + 1))
for k in coarse:
    score(k)
if max_k > 50:
    best = max(fits, key=lambda k: fits[k][0])
    for k in range(max(2, best - step + 1), min(max_k, best + step - 1) + 1):
        if k not in fits:
            score(k)
chosen = max(fits, key=lambda k: fits[k][0])
labels = fits[chosen][1]
sizes = np.bincount(labels)
keep = np.flatnonzero(sizes[labels] > 1)
sil = silhouette_score(X[keep], labels[keep], sample_size=min(10_000, len(keep)), random_state=42)
elapsed = time.perf_counter() - start
print(f"chosen k = {chosen}, F = {fits[chosen][0]:.3f}, silhouette = {sil:.4f}, k values tried: {len(fits)}, {elapsed:.1f} s")
