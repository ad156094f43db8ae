#!/usr/bin/env python3
"""tpa-transformer on a generated ~1B Q4_K GGUF against scipy on its
dequantized weights, same run.

The model has the ~1.1B Llama shape of the other transformer benchmarks
(hidden 2048, intermediate 5632, 22 layers, GQA with 4 kv heads of 64): its
154 linear projections as random Q4_K blocks with small f16 scales (gguf-py
has no K-quant quantizer; every block is valid), plus f32 norms, written with
gguf-py to DIR (default data/models/bench-gguf-1b). tpa-transformer's time is
its whole run; the reference dequantizes each projection with
`gguf.quants.dequantize` (not timed) and times `scipy.linalg.svdvals` on it in
float64. Ranks (actual at rtol 1e-6, 90% energy) are compared.

    pip install gguf==0.19.0 numpy scipy safetensors
    cargo build --release
    python3 scripts/bench_gguf_transformer.py [DIR]
"""
import csv
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.linalg
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFWriter, quants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
from make_gguf import finish, random_blocks  # noqa: E402

DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "data", "models", "bench-gguf-1b")
HIDDEN, FFN, LAYERS, KV = 2048, 5632, 22, 256
PATH = os.path.join(DIR, "llama-1.1b-Q4_K.gguf")


def write():
    if os.path.exists(PATH):
        return
    os.makedirs(DIR, exist_ok=True)
    writer = GGUFWriter(PATH, "llama")
    writer.add_block_count(LAYERS)
    writer.add_embedding_length(HIDDEN)
    writer.add_head_count(32)
    writer.add_head_count_kv(4)
    writer.add_feed_forward_length(FFN)
    writer.add_file_type(15)
    for i in range(LAYERS):
        p = f"blk.{i}."
        writer.add_tensor(p + "attn_norm.weight", np.ones(HIDDEN, np.float32))
        writer.add_tensor(p + "ffn_norm.weight", np.ones(HIDDEN, np.float32))
        for name, rows, cols in [("attn_q", HIDDEN, HIDDEN), ("attn_k", KV, HIDDEN), ("attn_v", KV, HIDDEN),
                                 ("attn_output", HIDDEN, HIDDEN), ("ffn_gate", FFN, HIDDEN),
                                 ("ffn_up", FFN, HIDDEN), ("ffn_down", HIDDEN, FFN)]:
            writer.add_tensor(p + name + ".weight", random_blocks(T.Q4_K, rows, cols), raw_dtype=T.Q4_K)
    finish(writer)


def ranks(s):
    cum = np.cumsum(s * s)
    return int(np.sum(s > 1e-6 * s[0])), int(np.searchsorted(cum, 0.9 * cum[-1], side="left")) + 1


write()
print(f"{PATH}: {os.path.getsize(PATH) / 2**20:.0f} MiB", flush=True)
with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "t.csv")
    tpa = os.path.join(ROOT, "target", "release", "tpa-transformer")
    start = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", tpa, "--model-path", PATH, "--out", out, "--no-gpu", "-q"],
                       check=True, stderr=subprocess.PIPE, text=True)
    tpa_s = time.perf_counter() - start
    rss = int(r.stderr.strip().splitlines()[-1]) / 1024
    rows = {row["param_name"]: row for row in csv.DictReader(open(out))}
print(f"tpa-transformer: {tpa_s:.1f} s, peak RSS {rss:.0f} MiB, {len(rows)} rows", flush=True)
svd_s, matrices, differ = 0.0, 0, []
for t in GGUFReader(PATH).tensors:
    if t.tensor_type != T.Q4_K:
        continue
    x = quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float64)
    start = time.perf_counter()
    s = scipy.linalg.svdvals(x)
    svd_s += time.perf_counter() - start
    matrices += 1
    row = rows[t.name]
    if ranks(s) != (int(row["actual_rank"]), int(row["svd_90_percent_rank"])):
        differ.append((t.name, ranks(s), row["actual_rank"], row["svd_90_percent_rank"]))
print(f"scipy svdvals on {matrices} dequantized projections: {svd_s:.1f} s")
print(f"speed-up {svd_s / tpa_s:.1f}x; ranks differ on {len(differ)}: {differ[:5]}")
