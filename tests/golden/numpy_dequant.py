"""Dequantized weights of a checkpoint in float64, with numpy only.

The scipy reference of BENCHMARKS.md's quantized tpa-transformer rows: an
independent transcription of the formats' dequantize (DeepSeek
`inference/kernel.py` `weight_dequant` for fine-grained FP8; AutoGPTQ
`qlinear_cuda.py` / GPTQModel `dequantize_weight` for GPTQ v1/v2), applied
to the files as stored, sharing nothing with tpa. Other tensors pass through
as numpy_stats.tensors yields them; sidecars (scales, zeros, g_idx) are
folded into their weight.

    from numpy_dequant import dequantized
    for name, shape, x in dequantized(model_dir): ...
"""
import json
import os

import numpy as np

from numpy_stats import decode, entries, shard_files


def _config(model):
    path = os.path.join(model, "config.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f).get("quantization_config", {})


def _unpack_lanes(words, bits, axis):
    """int32 words -> their 32/bits fields, lane k at bits k*b, along `axis`."""
    w = words.astype(np.int64) & 0xFFFFFFFF
    lanes = 32 // bits
    fields = np.stack([(w >> (bits * k)) & ((1 << bits) - 1) for k in range(lanes)], axis=axis + 1)
    shape = list(words.shape)
    shape[axis] *= lanes
    return fields.reshape(shape)


def _fp8_block(weight, scale_inv, block):
    bo, bi = block
    rows, cols = weight.shape
    s = np.repeat(np.repeat(scale_inv, bo, 0), bi, 1)[:rows, :cols]
    return weight * s


def _gptq(qweight, qzeros, scales, g_idx, bits, v1):
    q = _unpack_lanes(qweight, bits, 0)  # [in, out]
    z = _unpack_lanes(qzeros, bits, 1)  # [groups, out]
    if v1:
        z = z + 1
    ins = q.shape[0]
    g = g_idx if g_idx is not None else np.arange(ins) // (ins // scales.shape[0])
    wt = (q - z[g]) * scales[g]
    return wt.T


def dequantized(model):
    """Yields (name, logical shape, float64 array) for every logical tensor,
    decoding each stored tensor only when it is needed."""
    config = _config(model)
    method = config.get("quant_method")
    index = {}
    for path in shard_files(model):
        for name, dtype, shape, raw in entries(path):
            index[name] = (dtype, shape, raw)

    def load(name):
        dtype, shape, raw = index[name]
        return decode(raw, dtype).reshape(shape)

    sidecars = set()
    for name in index:
        if method == "fp8" and name + "_scale_inv" in index:
            sidecars.add(name + "_scale_inv")
        elif method == "gptq" and name.endswith(".qweight"):
            sidecars.update(name[: -len(".qweight")] + s for s in (".qzeros", ".scales", ".g_idx"))
    for name in index:
        if name in sidecars:
            continue
        if method == "fp8" and name + "_scale_inv" in index:
            block = config.get("weight_block_size", [128, 128])
            w = _fp8_block(load(name), load(name + "_scale_inv"), block)
        elif method == "gptq" and name.endswith(".qweight"):
            p = name[: -len(".qweight")]
            v1 = config.get("checkpoint_format", "gptq") == "gptq"
            g_idx = load(p + ".g_idx").astype(np.int64) if p + ".g_idx" in index else None
            w = _gptq(load(name).astype(np.int64), load(p + ".qzeros").astype(np.int64), load(p + ".scales"),
                      g_idx, config["bits"], v1)
            name = p + ".weight"
        else:
            w = load(name)
        yield name, list(w.shape), w.reshape(-1)
