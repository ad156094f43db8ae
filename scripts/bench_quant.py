#!/usr/bin/env python3
"""The statistics pass per quantized format, against the same weight in bf16.

Writes one model per format under DIR (default data/models/bench-quant), each a
single 4096 x 8192 weight (33.5 M parameters) quantized with the format's own
library where it runs here (torch FP8 casts, mlx, bitsandbytes,
compressed-tensors; GPTQ with the numpy packer of tests/golden/make_quantized.py),
then times `tpa-analyze --no-rank` on each, and numpy's float64 mean/var/min/max
on the dequantized weight as the reference, in the same run.

    pip install numpy torch mlx[cpu] bitsandbytes compressed-tensors safetensors
    cargo build --release
    python3 scripts/bench_quant.py [DIR]
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "data", "models", "bench-quant")
OUT, IN = 4096, 8192
P = "model.layers.0.mlp.down_proj"
rng = np.random.default_rng(7)
w = (rng.standard_normal((OUT, IN)) * 0.02).astype(np.float32)
wt = torch.from_numpy(w)


def model(name, tensors, config):
    d = os.path.join(DIR, name)
    os.makedirs(d, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(d, "model.safetensors"))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f)
    return d


def build():
    yield "bf16", model("bf16", {P + ".weight": wt.to(torch.bfloat16)}, {}), wt.to(torch.bfloat16).double().numpy()
    inv = (wt.abs().reshape(32, 128, 64, 128).amax((1, 3)) / 448)
    full = inv.repeat_interleave(128, 0).repeat_interleave(128, 1)
    q = (wt / full).to(torch.float8_e4m3fn)
    yield "fp8-block-128x128", model("fp8", {P + ".weight": q, P + ".weight_scale_inv": inv},
                                     {"quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}), \
        q.double().numpy() * full.double().numpy()
    import mlx.core as mx
    wq, s, b = mx.quantize(mx.array(w).astype(mx.float16), group_size=64, bits=4)
    deq = np.array(mx.dequantize(wq, s.astype(mx.float32), b.astype(mx.float32), group_size=64, bits=4))
    yield "mlx-affine-int4-g64", model("mlx", {
        P + ".weight": torch.from_numpy(np.array(wq).view(np.uint32).copy()),
        P + ".scales": torch.from_numpy(np.array(s.astype(mx.float32))).half(),
        P + ".biases": torch.from_numpy(np.array(b.astype(mx.float32))).half()},
        {"quantization": {"group_size": 64, "bits": 4}}), deq.astype(np.float64)
    import bitsandbytes.functional as F
    packed, st = F.quantize_4bit(wt, blocksize=64, quant_type="nf4", compress_statistics=True)
    tensors = {P + ".weight": packed}
    tensors.update({f"{P}.weight.{k}": v for k, v in st.as_dict(packed=True).items()})
    yield "bnb-nf4-b64", model("bnb", tensors, {"quantization_config": {"quant_method": "bitsandbytes"}}), \
        F.dequantize_4bit(packed, st).double().numpy()
    from compressed_tensors.compressors import PackedQuantizationCompressor
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    args = QuantizationArgs(num_bits=4, type="int", symmetric=True, strategy="group", group_size=128)
    sch = QuantizationScheme(targets=["Linear"], weights=args)
    scale = (wt.reshape(OUT, -1, 128).abs().amax(-1) / 7.5)
    comp = PackedQuantizationCompressor.compress({"weight": wt, "weight_scale": scale}, sch)
    deq = PackedQuantizationCompressor.decompress(dict(comp), sch)["weight"].double().numpy()
    yield "ct-int4-g128", model("ct", {f"{P}.{k}": v for k, v in comp.items()}, {"quantization_config": {
        "quant_method": "compressed-tensors", "format": "pack-quantized",
        "config_groups": {"g": {"targets": ["Linear"], "weights": args.model_dump()}}}}), deq
    # GPTQ v2 int4 g128 (numpy packer), stored transposed
    g = 128
    t = w.T.reshape(IN // g, g, OUT).astype(np.float64)
    s = (np.abs(t).max(1) * 2 / 15).astype(np.float16).astype(np.float64)
    qv = np.clip(np.round(t / s[:, None] + 8), 0, 15).reshape(IN, OUT).astype(np.uint32)
    qweight = np.zeros((IN // 8, OUT), np.uint32)
    for j in range(8):
        qweight |= qv[j::8] << (4 * j)
    qzeros = np.full((IN // g, OUT // 8), 0x88888888, np.uint32)
    deq = (s[np.arange(IN) // g] * (qv.astype(np.float64) - 8)).T
    yield "gptq-int4-g128", model("gptq", {P + ".qweight": torch.from_numpy(qweight.view(np.int32)),
                                           P + ".qzeros": torch.from_numpy(qzeros.view(np.int32)),
                                           P + ".scales": torch.from_numpy(s.astype(np.float16))},
                                  {"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": g,
                                                           "checkpoint_format": "gptq_v2"}}), deq


def best(f, n=3):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


tpa = os.path.join(ROOT, "target", "release", "tpa-analyze")
print(f"| format | stored MiB | tpa-analyze --no-rank s | logical M elements/s | numpy f64 stats s |")
print("|---|---|---|---|---|")
for scheme, d, deq in build():
    out = os.path.join(d, "out.csv")
    cmd = [tpa, "--model-path", d, "--out", out, "--no-rank", "-q"]
    subprocess.run(cmd, check=True)  # warm the page cache
    t = best(lambda: subprocess.run(cmd, check=True))
    x = deq.astype(np.float64)
    tn = best(lambda: (x.mean(), x.var(), x.min(), x.max()))
    size = os.path.getsize(os.path.join(d, "model.safetensors")) / 2**20
    print(f"| {scheme} | {size:.1f} | {t:.3f} | {OUT * IN / t / 1e6:.0f} | {tn:.3f} |")
