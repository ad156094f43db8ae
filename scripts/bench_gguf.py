#!/usr/bin/env python3
"""The statistics pass per GGUF type family, against gguf-py + numpy.

Writes one GGUF per type under DIR (default data/models/bench-gguf), each a
single 4096 x 8192 weight (33.5 M parameters): Q4_0, Q8_0 and MXFP4 quantized
with gguf-py from a Gaussian weight, K-quants and IQ types as random blocks
with small f16 scales (tests/golden/make_gguf.py's fixtures at full size).
Then times `tpa-analyze --no-rank` on each, and, in the same run, the numpy
path: `gguf.quants.dequantize` of the tensor read with GGUFReader, then
float64 mean/var/min/max. Checks that the two agree.

    pip install gguf==0.19.0 numpy scipy safetensors
    cargo build --release
    python3 scripts/bench_gguf.py [DIR]
"""
import csv
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFWriter, quants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
from make_gguf import finish, random_blocks, stored  # noqa: E402

DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "data", "models", "bench-gguf")
OUT, IN = 4096, 8192
NAME = "blk.0.ffn_down.weight"
FAMILIES = [
    ("simple", [T.Q4_0, T.Q8_0, T.MXFP4]),
    ("K", [T.Q2_K, T.Q4_K, T.Q6_K]),
    ("IQ", [T.IQ2_XXS, T.IQ3_S, T.IQ4_XS, T.IQ1_M]),
]
TPA = os.path.join(ROOT, "target", "release", "tpa-analyze")


def write(qtype):
    path = os.path.join(DIR, f"{qtype.name.lower()}.gguf")
    if os.path.exists(path):
        return path
    os.makedirs(DIR, exist_ok=True)
    w = (np.random.default_rng(7).standard_normal((OUT, IN)) * 0.02).astype(np.float32)
    writer = GGUFWriter(path, "llama")
    writer.add_tensor(NAME, stored(qtype, w), raw_dtype=qtype)
    finish(writer)
    return path


def tpa(path):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "a.csv")
        start = time.perf_counter()
        subprocess.run([TPA, "--model-path", path, "--out", out, "--no-rank", "-q"], check=True)
        seconds = time.perf_counter() - start
        row = next(csv.DictReader(open(out)))
    return seconds, float(row["mean"]), float(row["var"])


def numpy_path(path):
    start = time.perf_counter()
    t = GGUFReader(path).tensors[0]
    x = quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float64)
    dequant = time.perf_counter() - start
    mean, var, lo, hi = x.mean(), x.var(), x.min(), x.max()
    total = time.perf_counter() - start
    return dequant, total, float(mean), float(var)


print("| family | type | stored MiB | tpa-analyze --no-rank s | M elements/s | gguf-py dequantize s | + numpy f64 stats, total s | speed-up |")
print("|---|---|---|---|---|---|---|---|")
for family, types in FAMILIES:
    for qtype in types:
        path = write(qtype)
        mib = os.path.getsize(path) / 2**20
        tpa_s, tpa_mean, tpa_var = tpa(path)
        dq_s, np_s, np_mean, np_var = numpy_path(path)
        assert abs(tpa_mean - np_mean) <= 1e-9 * max(abs(np_mean), np.sqrt(np_var)), (qtype, tpa_mean, np_mean)
        assert abs(tpa_var - np_var) <= 1e-9 * np_var, (qtype, tpa_var, np_var)
        print(f"| {family} | {qtype.name.lower()} | {mib:.1f} | {tpa_s:.2f} | {OUT * IN / tpa_s / 1e6:.0f} | "
              f"{dq_s:.2f} | {np_s:.2f} | {np_s / tpa_s:.1f}× |", flush=True)
