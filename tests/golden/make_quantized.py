#!/usr/bin/env python3
"""Quantized fixtures and the golden statistics of their dequantized weights.

For every format tpa dequantizes, this writes a small checkpoint under
tests/fixtures/quant/<case>/ (model.safetensors + config.json, each < 1 MB)
and, in tests/golden/quantized.json, the statistics and ranks of each logical
weight, computed with numpy/scipy in float64.

Who makes the codes, and whose dequantization the golden comes from:

  case           codes written by                   reference dequantization
  mlx_*          mlx.core.quantize (mlx[cpu])        mlx.core.dequantize
  bnb_*          bitsandbytes.functional (CPU)       bitsandbytes dequantize_4bit / int8_vectorwise_dequant
  ct_*           compressed-tensors compressors      compressed-tensors decompress
  awq_*          numpy transcription of AutoAWQ's    AutoAWQ awq/utils/packing_utils.dequantize_gemm
                 WQLinear_GEMM.from_linear packing   (loaded from its file: the package's
                                                     __init__ needs CUDA-only extras)
  gptq_*         numpy transcription of GPTQModel's  numpy transcription of GPTQModel's
                 pack()                              dequantize_weight (GPTQModel does not import
                                                     here: it needs packages not on PyPI for CPU)
  fp8_*          torch float8_e4m3fn casts           numpy transcription of DeepSeek's
                                                     weight_dequant_kernel (Triton/CUDA only)
  gpt_oss_*      numpy packing                       transformers integrations.mxfp4.convert_moe_packed_tensors

Every golden is computed on an exact float64 transcription of the format's
formula, after checking that it equals the reference library's own output
to that output's precision (float32: rtol 1e-6).

    pip install numpy scipy safetensors torch mlx[cpu] bitsandbytes compressed-tensors \
        transformers autoawq
    python3 tests/golden/make_quantized.py
"""
import importlib.util
import json
import os
import shutil

import numpy as np
import scipy.linalg
import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "quant")
GOLDEN = os.path.join(ROOT, "tests", "golden", "quantized.json")
ZERO_EPS = 1e-8
RANK_RTOL = 1e-6

rng = np.random.default_rng(20261201)
cases = {}


def weight(*shape, std=0.02):
    return (rng.standard_normal(shape) * std).astype(np.float32)


def golden(x):
    x = np.asarray(x, dtype=np.float64)
    mats = [x] if x.ndim == 2 else list(x.reshape(-1, *x.shape[-2:]))
    spectra = []
    for m in mats:
        s = scipy.linalg.svdvals(m)
        cum = np.cumsum(s * s)
        spectra.append(
            dict(
                actual_rank=int(np.sum(s > RANK_RTOL * s[0])),
                energy_rank_90=int(np.searchsorted(cum, 0.9 * cum[-1], side="left")) + 1,
                spectral_norm=float(s[0]),
            )
        )
    per = [
        dict(
            mean=float(m.mean()),
            var=float(m.var()),
            std=float(m.std()),
            min=float(m.min()),
            max=float(m.max()),
            sparsity=float(np.mean(np.abs(m) <= ZERO_EPS)),
            numel=int(m.size),
            **sp,
        )
        for m, sp in zip(mats, spectra)
    ]
    return dict(shape=list(x.shape), matrices=per)


def check(ours, library, what, rtol=1e-6):
    library = np.asarray(library, dtype=np.float64)
    scale = np.abs(library).max()
    err = np.abs(np.asarray(ours) - library).max()
    assert err <= rtol * scale, f"{what}: transcription differs from the library by {err} (scale {scale})"


def write(case, tensors, config, logical, scheme):
    """tensors: name -> torch tensor; logical: name -> float64 array."""
    d = os.path.join(FIXTURES, case)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(d, "model.safetensors"))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    size = os.path.getsize(os.path.join(d, "model.safetensors"))
    assert size < 1 << 20, f"{case}: {size} bytes"
    cases[case] = dict(
        scheme=scheme,
        weights={name: golden(x) for name, x in logical.items()},
        plain=sorted(k for k in tensors if k.endswith(("norm.weight", "_bias"))),
    )


def norm(n):
    return torch.from_numpy(1.0 + weight(n, std=0.1)).to(torch.bfloat16)


# ---------------------------------------------------------------- MLX
import mlx.core as mx  # noqa: E402


def mlx_case(case, bits, group, shape, mode="affine", dtype=mx.float16):
    w = mx.array(weight(*shape)).astype(dtype)
    out = mx.quantize(w, group_size=group, bits=bits, mode=mode)
    wq, scales = out[0], out[1]
    biases = out[2] if mode == "affine" else None
    codes = np.array(wq).view(np.uint32)
    # the library's dequantization, from f32 scales so that it is f32-exact
    if mode == "affine":
        lib = mx.dequantize(wq, scales.astype(mx.float32), biases.astype(mx.float32),
                            group_size=group, bits=bits, mode=mode)
    else:
        lib = mx.dequantize(wq, scales, group_size=group, bits=bits, mode=mode)
    lib = np.array(lib.astype(mx.float32))
    # independent transcription: little-endian bitstream per row
    rows_bytes = codes.reshape(-1, codes.shape[-1]).view(np.uint8)
    bitsarr = np.unpackbits(rows_bytes, axis=1, bitorder="little")
    cols = codes.shape[-1] * 32 // bits
    fields = bitsarr[:, : cols * bits].reshape(-1, cols, bits)
    q = (fields * (1 << np.arange(bits))).sum(-1).astype(np.float64).reshape(*shape[:-1], cols)
    s = np.array(scales.astype(mx.float32)).astype(np.float64)
    if mode == "affine":
        b = np.array(biases.astype(mx.float32)).astype(np.float64)
        ref = q * np.repeat(s, group, -1) + np.repeat(b, group, -1)
    else:
        e2m1 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6])
        ref = e2m1[q.astype(int)] * np.repeat(2.0 ** (np.array(scales).astype(np.float64) - 127), group, -1)
    check(ref, lib, case)
    name = "model.layers.0.mlp.experts.down_proj" if len(shape) == 3 else "model.layers.0.mlp.down_proj"
    tensors = {
        name + ".weight": torch.from_numpy(codes.copy()).view(torch.int32).view(torch.uint32)
        if hasattr(torch, "uint32") else torch.from_numpy(codes.astype(np.int64)),
        name + ".scales": torch.from_numpy(np.array(scales.astype(mx.float32))).to(torch.float16)
        if mode == "affine" else torch.from_numpy(np.array(scales)),
        "model.layers.0.input_layernorm.weight": norm(shape[-1]),
    }
    if mode == "affine":
        tensors[name + ".biases"] = torch.from_numpy(np.array(biases.astype(mx.float32))).to(torch.float16)
    quant = {"group_size": group, "bits": bits}
    if mode != "affine":
        quant["mode"] = mode
    write(case, tensors, {"model_type": "llama", "quantization": quant}, {name + ".weight": ref},
          f"mlx-{'affine-int%d' % bits if mode == 'affine' else mode}-g{group}")


for bits in (2, 3, 4, 5, 6, 8):
    mlx_case(f"mlx_affine_{bits}bit", bits, {2: 32, 3: 64, 4: 64, 5: 128, 6: 64, 8: 128}[bits], (96, 256))
mlx_case("mlx_affine_experts", 4, 32, (4, 48, 128))
mlx_case("mlx_mxfp4", 4, 32, (64, 256), mode="mxfp4")

# ---------------------------------------------------------------- bitsandbytes
import bitsandbytes.functional as bnbf  # noqa: E402


def bnb_4bit(case, quant_type, block, nested, shape):
    w = torch.from_numpy(weight(*shape))
    packed, state = bnbf.quantize_4bit(w, blocksize=block, quant_type=quant_type, compress_statistics=nested)
    lib = bnbf.dequantize_4bit(packed, state).numpy()
    sd = state.as_dict(packed=True)
    p = "model.layers.0.self_attn.o_proj.weight"
    tensors = {p: packed}
    tensors.update({f"{p}.{k}": v for k, v in sd.items()})
    # transcription: high nibble first, quant_map[code] * absmax[k // block]
    b = packed.numpy().reshape(-1)
    codes = np.stack([b >> 4, b & 15], 1).reshape(-1)[: w.numel()]
    qmap = sd["quant_map"].numpy().astype(np.float64)
    if nested:
        nq = sd["nested_quant_map"].numpy()
        na = sd["nested_absmax"].numpy()
        a = sd["absmax"].numpy()
        absmax = (nq[a] * na[np.arange(a.size) // 256]).astype(np.float32) + np.float32(state.offset)
        absmax = absmax.astype(np.float64)
    else:
        absmax = sd["absmax"].numpy().astype(np.float64)
    ref = (qmap[codes] * absmax[np.arange(codes.size) // block]).reshape(shape)
    check(ref, lib, case)
    tensors["model.layers.0.input_layernorm.weight"] = norm(shape[-1])
    config = {"model_type": "llama", "quantization_config": {
        "quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": quant_type,
        "bnb_4bit_use_double_quant": nested}}
    write(case, tensors, config, {p: ref}, f"bnb-{quant_type}-b{block}")


bnb_4bit("bnb_nf4_nested", "nf4", 64, True, (100, 330))
# Block 64 only: bitsandbytes 0.50.2's native CPU dequantize_4bit disagrees
# with its own quantize_4bit at blocksize 128 (max error 4x the format's
# step, while this transcription reconstructs the input to half a step).
bnb_4bit("bnb_fp4", "fp4", 64, False, (64, 192))

w = torch.from_numpy(weight(80, 200))
cb, scb, _ = bnbf.int8_vectorwise_quant(w)
lib = bnbf.int8_vectorwise_dequant(cb, scb).numpy()
ref = cb.numpy().astype(np.float64) * scb.numpy().astype(np.float64)[:, None] / 127
check(ref, lib, "bnb_int8")
p = "model.layers.0.mlp.up_proj"
write("bnb_int8", {p + ".weight": cb, p + ".SCB": scb, p + ".weight_format": torch.tensor(0, dtype=torch.uint8),
                   "model.layers.0.input_layernorm.weight": norm(200)},
      {"quantization_config": {"quant_method": "bitsandbytes", "load_in_8bit": True}}, {p + ".weight": ref},
      "bnb-int8-row")

# ---------------------------------------------------------------- compressed-tensors
from compressed_tensors.compressors import (  # noqa: E402
    FloatQuantizationCompressor, IntQuantizationCompressor, NVFP4PackedCompressor,
    PackedQuantizationCompressor)
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme  # noqa: E402
from compressed_tensors.quantization.utils import calculate_qparams  # noqa: E402


def qparams(w, args, rows_per, cols_per):
    r, c = w.shape
    g = w.reshape(r // rows_per, rows_per, c // cols_per, cols_per).permute(0, 2, 1, 3)
    lo = torch.minimum(g.amin((-1, -2)), torch.zeros(1))
    hi = torch.maximum(g.amax((-1, -2)), torch.zeros(1))
    return calculate_qparams(lo, hi, args)


def ct_case(case, compressor, args, shape, g_idx=False, fmt="pack-quantized"):
    w = torch.from_numpy(weight(*shape))
    r, c = shape
    strat = args.strategy
    rows_per, cols_per = {"tensor": (r, c), "channel": (1, c), "group": (1, args.group_size or c),
                          "block": tuple(args.block_structure or (r, c))}[strat]
    s, z = qparams(w, args, rows_per, cols_per)
    if strat == "tensor":
        s, z = s.reshape(1), z.reshape(1)
    sd = {"weight": w, "weight_scale": s}
    if not args.symmetric:
        sd["weight_zero_point"] = z
    perm = None
    if g_idx:
        perm = torch.from_numpy(rng.permutation(c) // args.group_size).to(torch.int32)
        sd["weight_g_idx"] = perm
    sch = QuantizationScheme(targets=["Linear"], weights=args)
    comp = compressor.compress(dict(sd), sch)
    lib = compressor.decompress(dict(comp), sch)["weight"].double().numpy()
    # transcription of _dequantize: (q - zp) * scale, per strategy
    if "weight_packed" in comp:
        bits = args.num_bits
        words = comp["weight_packed"].numpy().view(np.uint32)
        allbits = np.unpackbits(words.view(np.uint8).reshape(r, -1), axis=1, bitorder="little")
        q = (allbits[:, : c * bits].reshape(r, c, bits) * (1 << np.arange(bits))).sum(-1) - (1 << (bits - 1))
    else:
        q = comp["weight"].double().numpy()
    scale = s.double().numpy().reshape(s.shape[0], -1)
    zero = z.double().numpy().reshape(z.shape[0], -1) if not args.symmetric else np.zeros_like(scale)
    if strat == "group":
        cols = perm.numpy() if perm is not None else np.arange(c) // cols_per
        ref = (q - zero[:, cols]) * scale[:, cols]
    else:
        ri = np.arange(r) // rows_per if strat != "tensor" else np.zeros(r, int)
        ci = np.arange(c) // cols_per if strat in ("block",) else np.zeros(c, int)
        ref = (q - zero[ri][:, ci]) * scale[ri][:, ci]
    check(ref, lib, case)
    p = "model.layers.0.self_attn.q_proj"
    tensors = {f"{p}.{k}": v for k, v in comp.items()}
    tensors["model.layers.0.input_layernorm.weight"] = norm(c)
    config = {"quantization_config": {"quant_method": "compressed-tensors", "format": fmt,
                                      "config_groups": {"group_0": {"targets": ["Linear"],
                                                                    "weights": args.model_dump()}}}}
    strat_name = {"tensor": "tensor", "channel": "channel", "group": f"g{cols_per}",
                  "block": f"block-{rows_per}x{cols_per}"}[strat]
    kind = "fp8" if args.type == "float" else f"int{args.num_bits}"
    write(case, tensors, config, {p + ".weight": ref}, f"ct-{kind}-{strat_name}")


# No g_idx case: compressed-tensors 0.20.1's compress/decompress ignore
# weight_g_idx, so the library gives no reference for it (GPTQ's desc_act
# case covers group indices).
ct_case("ct_int4_asym_g32", PackedQuantizationCompressor,
        QuantizationArgs(num_bits=4, type="int", symmetric=False, strategy="group", group_size=32), (64, 256))
ct_case("ct_int4_sym_channel", PackedQuantizationCompressor,
        QuantizationArgs(num_bits=4, type="int", symmetric=True, strategy="channel"), (72, 200))
ct_case("ct_int3_asym_group", PackedQuantizationCompressor,
        QuantizationArgs(num_bits=3, type="int", symmetric=False, strategy="group", group_size=64), (40, 256))
ct_case("ct_int8_naive", IntQuantizationCompressor,
        QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="channel"), (64, 160),
        fmt="int-quantized")
ct_case("ct_fp8_block", FloatQuantizationCompressor,
        QuantizationArgs(num_bits=8, type="float", symmetric=True, strategy="block", block_structure=[32, 64]),
        (96, 192), fmt="float-quantized")
ct_case("ct_fp8_tensor", FloatQuantizationCompressor,
        QuantizationArgs(num_bits=8, type="float", symmetric=True, strategy="tensor"), (64, 128),
        fmt="float-quantized")

# ---------------------------------------------------------------- AWQ GEMM
spec = importlib.util.find_spec("awq")
path = os.path.join(os.path.dirname(spec.origin), "utils", "packing_utils.py")
spec = importlib.util.spec_from_file_location("awq_packing_utils", path)
awq_packing = importlib.util.module_from_spec(spec)
spec.loader.exec_module(awq_packing)
ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def int_quant(wt, group, bits, sym):
    """Wt [in, out] -> (q [in, out], zeros [G, out], scales [G, out]) per group of inputs."""
    i, o = wt.shape
    g = wt.reshape(i // group, group, o).astype(np.float64)
    maxq = (1 << bits) - 1
    if sym:
        s = np.maximum(np.abs(g).max(1), 1e-8) * 2 / maxq
        z = np.full_like(s, (maxq + 1) / 2)
    else:
        lo, hi = np.minimum(g.min(1), 0), np.maximum(g.max(1), 0)
        s = np.maximum(hi - lo, 1e-8) / maxq
        z = np.round(-lo / s)
    s = s.astype(np.float16).astype(np.float64)
    q = np.clip(np.round(g / s[:, None] + z[:, None]), 0, maxq).reshape(i, o)
    return q.astype(np.int64), z.astype(np.int64), s


def awq_case(case, shape, group):
    out, ins = shape
    wt = weight(ins, out)
    q, z, s = int_quant(wt, group, 4, False)
    qweight = np.zeros((ins, out // 8), np.uint32)
    qzeros = np.zeros((ins // group, out // 8), np.uint32)
    for k in range(8):
        qweight |= (q[:, np.arange(out // 8) * 8 + ORDER[k]].astype(np.uint32) << (4 * k))
        qzeros |= (z[:, np.arange(out // 8) * 8 + ORDER[k]].astype(np.uint32) << (4 * k))
    qw, qz = torch.from_numpy(qweight.view(np.int32)), torch.from_numpy(qzeros.view(np.int32))
    sc = torch.from_numpy(s.astype(np.float16))
    lib = awq_packing.dequantize_gemm(qw, qz, sc.float(), 4, group).double().numpy()  # [in, out]
    ref = ((q - np.repeat(z, group, 0)) * np.repeat(s, group, 0)).T
    check(ref, lib.T, case)
    p = "model.layers.0.mlp.gate_proj"
    write(case, {p + ".qweight": qw, p + ".qzeros": qz, p + ".scales": sc,
                 "model.layers.0.input_layernorm.weight": norm(ins)},
          {"quantization_config": {"quant_method": "awq", "bits": 4, "group_size": group, "version": "gemm",
                                   "zero_point": True}}, {p + ".weight": ref}, f"awq-int4-g{group}")


awq_case("awq_int4_g64", (128, 256), 64)

# ---------------------------------------------------------------- GPTQ (v1, v2)


def gptq_case(case, shape, bits, group, v2, desc_act, sym):
    out, ins = shape
    g = group if group > 0 else ins
    wt = weight(ins, out)
    if desc_act:
        g_idx = rng.permutation(ins) // g
    else:
        g_idx = np.arange(ins) // g
    # quantize by each input's own group (GPTQ's act-order keeps original order)
    order = np.argsort(g_idx, kind="stable")
    q_sorted, z, s = int_quant(wt[order], g, bits, sym)
    q = np.empty_like(q_sorted)
    q[order] = q_sorted
    lanes = 32 // bits
    qweight = np.zeros((ins // lanes, out), np.uint32)
    for j in range(lanes):
        qweight |= q[j::lanes].astype(np.uint32) << (bits * j)
    stored_z = z if v2 else z - 1
    qzeros = np.zeros((z.shape[0], out // lanes), np.uint32)
    for j in range(lanes):
        qzeros |= (stored_z[:, j::lanes].astype(np.int64) & ((1 << bits) - 1)).astype(np.uint32) << (bits * j)
    # GPTQModel dequantize_weight transcription: unpack, (+1 for v1), scales[g_idx] * (q - z)
    wf = np.arange(lanes) * bits
    uq = ((qweight[:, None, :] >> wf[None, :, None]) & ((1 << bits) - 1)).reshape(ins, out)
    uz = ((qzeros[:, :, None] >> wf[None, None, :]) & ((1 << bits) - 1)).reshape(z.shape[0], out)
    if not v2:
        uz = uz + 1
    ref = (s[g_idx] * (uq.astype(np.float64) - uz[g_idx])).T
    p = "model.layers.0.self_attn.k_proj"
    tensors = {p + ".qweight": torch.from_numpy(qweight.view(np.int32)),
               p + ".qzeros": torch.from_numpy(qzeros.view(np.int32)),
               p + ".scales": torch.from_numpy(s.astype(np.float16)),
               p + ".g_idx": torch.from_numpy(g_idx.astype(np.int32)),
               "model.layers.0.input_layernorm.weight": norm(ins)}
    config = {"quantization_config": {"quant_method": "gptq", "bits": bits, "group_size": group,
                                      "desc_act": desc_act, "sym": sym,
                                      "checkpoint_format": "gptq_v2" if v2 else "gptq"}}
    gname = f"g{group}" if group > 0 else "channel"
    write(case, tensors, config, {p + ".weight": ref}, f"gptq-int{bits}-{gname}")


gptq_case("gptq_v1_int4_desc_act", (96, 256), 4, 32, v2=False, desc_act=True, sym=True)
gptq_case("gptq_v2_int8_channel", (64, 128), 8, -1, v2=True, desc_act=False, sym=False)
gptq_case("gptq_v1_int2_g64", (64, 256), 2, 64, v2=False, desc_act=False, sym=False)

# ---------------------------------------------------------------- DeepSeek / fine-grained FP8


def fp8_case(case, shape, scale_dtype):
    out, ins = shape
    w = torch.from_numpy(weight(out, ins))
    so, si = -(-out // 128), -(-ins // 128)
    amax = torch.zeros(so, si)
    for a in range(so):
        for b in range(si):
            amax[a, b] = w[a * 128:(a + 1) * 128, b * 128:(b + 1) * 128].abs().max()
    inv = (amax / 448).to(scale_dtype)
    full = inv.float().repeat_interleave(128, 0).repeat_interleave(128, 1)[:out, :ins]
    q = (w / full).to(torch.float8_e4m3fn)
    # weight_dequant_kernel: y = x * s for the block's scale (multiply)
    ref = q.double().numpy() * inv.double().numpy().repeat(128, 0).repeat(128, 1)[:out, :ins]
    check(ref, q.float().numpy() * full.numpy(), case)
    p = "model.layers.0.mlp.down_proj"
    write(case, {p + ".weight": q, p + ".weight_scale_inv": inv,
                 "model.layers.0.input_layernorm.weight": norm(ins)},
          {"quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                   "weight_block_size": [128, 128]}}, {p + ".weight": ref},
          "fp8-block-128x128")


fp8_case("fp8_block_ragged_f32", (200, 300), torch.float32)
fp8_case("fp8_block_bf16_scales", (256, 128), torch.bfloat16)

# ---------------------------------------------------------------- gpt-oss MXFP4
from transformers.integrations.mxfp4 import convert_moe_packed_tensors  # noqa: E402

E, O, I = 3, 64, 128
blocks = rng.integers(0, 256, size=(E, O, I // 32, 16), dtype=np.uint8)
scales = rng.integers(120, 124, size=(E, O, I // 32), dtype=np.uint8)
lib = convert_moe_packed_tensors(torch.from_numpy(blocks), torch.from_numpy(scales), dtype=torch.float32)
lib = lib.transpose(1, 2).double().numpy()  # back to [E, out, in]
e2m1 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6])
codes = np.stack([blocks & 15, blocks >> 4], -1).reshape(E, O, I)
ref = e2m1[codes] * np.repeat(2.0 ** (scales.astype(np.float64) - 127), 32, -1)
check(ref, lib, "gpt_oss")
p = "model.layers.0.mlp.experts.down_proj"
write("gpt_oss_mxfp4", {p + "_blocks": torch.from_numpy(blocks), p + "_scales": torch.from_numpy(scales),
                        p + "_bias": torch.zeros(E, O), "model.layers.0.input_layernorm.weight": norm(I)},
      {"model_type": "gpt_oss", "quantization_config": {"quant_method": "mxfp4"}}, {p: ref}, "mxfp4-b32")

with open(GOLDEN, "w") as f:
    json.dump(dict(zero_eps=ZERO_EPS, rank_rtol=RANK_RTOL, cases=cases), f, indent=1, sort_keys=True)
print(f"{len(cases)} cases -> {GOLDEN}")
