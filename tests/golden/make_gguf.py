#!/usr/bin/env python3
"""GGUF fixtures, written with the `gguf` package (gguf-py), and the golden
values, statistics and ranks of their tensors, from gguf-py's dequantization
(which matches ggml's reference C bit for bit) and numpy/scipy in float64.

  tests/fixtures/gguf/types.gguf          one 13 x 256 tensor per ggml type tpa reads
  tests/golden/gguf_dequantized.safetensors   gguf.quants.dequantize of each of them
  tests/fixtures/gguf/moe/tiny-moe-0000N-of-00003.gguf
                                          a qwen3moe-shaped model split in 3 files:
                                          stacked Q4_K experts, tied embedding (no
                                          output.weight), tokenizer.ggml.tokens
  tests/fixtures/gguf/llama/{hf/, model.Q8_0.gguf}
                                          a tiny Llama in safetensors (f32) and its GGUF
                                          twin as llama.cpp's converter writes it: Q/K rows
                                          permuted (LlamaModel.permute), Q8_0
  tests/fixtures/gguf/gemma3/{hf/, model.Q8_0.gguf}
                                          a tiny Gemma 3 and its GGUF twin: norms stored
                                          as 1 + w (Gemma3Model.modify_tensors), Q8_0
  tests/golden/gguf.json                  statistics and ranks of every tensor, and the
                                          twins' quantization error per matrix

Types gguf-py can quantize are quantized from float weights; K-quants, IQ
types and NVFP4 are random blocks whose f16 scale fields are small finite
values (every code pattern is a valid block).

    pip install gguf==0.19.0 numpy scipy safetensors
    python3 tests/golden/make_gguf.py
"""
import json
import os
import shutil
from importlib.metadata import version

import numpy as np
import scipy.linalg
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFWriter, quants
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "gguf")
GOLDEN = os.path.join(ROOT, "tests", "golden")
ZERO_EPS = 1e-8
RANK_RTOL = 1e-6
ROWS, COLS = 13, 256

rng = np.random.default_rng(20261202)

QUANTIZABLE = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.TQ1_0, T.TQ2_0, T.MXFP4, T.BF16]
# Byte offsets of each random-block type's f16 scale fields.
SCALES = {
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.IQ2_XXS: [0], T.IQ2_XS: [0], T.IQ2_S: [0], T.IQ3_XXS: [0], T.IQ3_S: [0],
    T.IQ1_S: [0], T.IQ4_NL: [0], T.IQ4_XS: [0], T.IQ1_M: [], T.NVFP4: [],
}


def small_f16(n):
    return (rng.uniform(1e-3, 5e-2, n) * rng.choice([-1, 1], n)).astype(np.float16)


def random_blocks(qtype, rows, cols):
    block, size = quants.GGML_QUANT_SIZES[qtype]
    n = rows * cols // block
    raw = rng.integers(0, 256, (n, size), dtype=np.uint8)
    for at in SCALES[qtype]:
        raw[:, at:at + 2] = small_f16(n).view(np.uint8).reshape(n, 2)
    if qtype == T.IQ1_M:
        # The super-block f16 is the top nibbles of the four u16 scales.
        sc = raw[:, 48:56].copy().view(np.uint16)
        d = np.abs(small_f16(n)).view(np.uint16).astype(np.uint16)
        for k in range(4):
            nib = (d >> (4 * k)) & 0xF
            sc[:, k] = (sc[:, k] & 0x0FFF) | (nib << 12)
        raw[:, 48:56] = sc.view(np.uint8)
    return raw.reshape(rows, cols // block * size)


def stored(qtype, w):
    """The bytes (or array) GGUF stores for the float weight w."""
    if qtype in QUANTIZABLE:
        return quants.quantize(w, qtype)
    return random_blocks(qtype, *w.shape)


def finish(writer):
    """Writes everything added to a GGUFWriter and closes it."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def golden(x):
    x = np.asarray(x, dtype=np.float64)
    mats = [x.reshape(1, -1)] if x.ndim == 1 else [x] if x.ndim == 2 else list(x.reshape(-1, *x.shape[-2:]))
    out = []
    for m in mats:
        s = scipy.linalg.svdvals(m)
        cum = np.cumsum(s * s)
        out.append(dict(
            mean=float(m.mean()), var=float(m.var()), std=float(m.std()),
            min=float(m.min()), max=float(m.max()),
            sparsity=float(np.mean(np.abs(m) <= ZERO_EPS)), numel=int(m.size),
            actual_rank=int(np.sum(s > RANK_RTOL * s[0])),
            energy_rank_90=int(np.searchsorted(cum, 0.9 * cum[-1], side="left")) + 1,
            spectral_norm=float(s[0]),
        ))
    return dict(shape=list(x.shape), matrices=out)


def dequantized(path):
    """name -> (ggml type name, float64 values in the PyTorch shape), read back
    from the written file with gguf-py's own reader and dequantizer."""
    out = {}
    for t in GGUFReader(path).tensors:
        shape = [int(n) for n in reversed(t.shape)]
        if t.tensor_type in (T.F64, T.I8, T.I16, T.I32, T.I64):
            values = np.asarray(t.data, dtype=np.float64)
        else:
            values = quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float64)
        out[t.name] = (t.tensor_type.name.lower(), values.reshape(shape))
    return out


def write_types():
    path = os.path.join(FIXTURES, "types.gguf")
    writer = GGUFWriter(path, "llama")
    plain = {
        "f32": rng.standard_normal((ROWS, COLS)).astype(np.float32) * 0.02,
        "f16": (rng.standard_normal((ROWS, COLS)) * 0.02).astype(np.float16),
        "f64": rng.standard_normal((ROWS, COLS)) * 0.02,
        "i8": rng.integers(-128, 128, (ROWS, COLS), dtype=np.int8),
        "i16": rng.integers(-3000, 3000, (ROWS, COLS), dtype=np.int16),
        "i32": rng.integers(-10**6, 10**6, (ROWS, COLS), dtype=np.int32),
        "i64": rng.integers(-10**9, 10**9, (ROWS, COLS), dtype=np.int64),
    }
    for name, x in plain.items():
        writer.add_tensor(f"types.{name}", x)
    for qtype in QUANTIZABLE + list(SCALES):
        w = (rng.standard_normal((ROWS, COLS)) * 0.02).astype(np.float32)
        writer.add_tensor(f"types.{qtype.name.lower()}", stored(qtype, w), raw_dtype=qtype)
    finish(writer)
    return path


def write_moe():
    d = os.path.join(FIXTURES, "moe")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    hidden, ffn, experts, vocab, layers = 256, 32, 4, 64, 2
    writer = GGUFWriter(os.path.join(d, "tiny-moe.gguf"), "qwen3moe", split_max_tensors=6)
    writer.add_block_count(layers)
    writer.add_embedding_length(hidden)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_expert_count(experts)
    writer.add_expert_used_count(2)
    writer.add_file_type(15)
    writer.add_token_list([f"tok{i}" for i in range(vocab - 2)] + ["<s>", "héllo"])
    writer.add_tensor("token_embd.weight", stored(T.Q8_0, rng.standard_normal((vocab, hidden)).astype(np.float32) * 0.02), raw_dtype=T.Q8_0)
    writer.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    for layer in range(layers):
        p = f"blk.{layer}."
        writer.add_tensor(p + "attn_norm.weight", (1 + rng.standard_normal(hidden) * 0.1).astype(np.float32))
        writer.add_tensor(p + "attn_q.weight", random_blocks(T.Q4_K, 4 * 64, hidden), raw_dtype=T.Q4_K)
        writer.add_tensor(p + "attn_k.weight", random_blocks(T.Q6_K, 2 * 64, hidden), raw_dtype=T.Q6_K)
        writer.add_tensor(p + "ffn_gate_inp.weight", rng.standard_normal((experts, hidden)).astype(np.float32))
        # Stacked experts: numpy [E, out, in] is ne = [in, out, E]. Expert 2
        # of the gate repeats 3 distinct rows, a planted rank of 3.
        gate = random_blocks(T.Q4_K, experts * ffn, hidden).reshape(experts, ffn, -1)
        gate[2] = gate[2][np.arange(ffn) % 3]
        writer.add_tensor(p + "ffn_gate_exps.weight", gate, raw_dtype=T.Q4_K)
        down = random_blocks(T.IQ4_NL, experts * hidden, ffn).reshape(experts, hidden, -1)
        writer.add_tensor(p + "ffn_down_exps.weight", down, raw_dtype=T.IQ4_NL)
    finish(writer)
    return sorted(os.path.join(d, f) for f in os.listdir(d))


def permute(w, n_head):
    """llama.cpp's LlamaModel.permute (conversion/llama.py): interleave the
    two rotary halves of every head's rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def start_twin(d, hf, arch, config):
    """Writes the HF side of a twin (d/hf: model.safetensors, config.json);
    returns the GGUF side's path and a writer holding its metadata."""
    save_file(hf, os.path.join(d, "hf", "model.safetensors"))
    with open(os.path.join(d, "hf", "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    path = os.path.join(d, "model.Q8_0.gguf")
    writer = GGUFWriter(path, arch)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_file_type(7)
    return path, writer


def write_llama_pair():
    d = os.path.join(FIXTURES, "llama")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "hf"))
    hidden, heads, kv_heads, ffn, vocab, layers = 64, 4, 2, 128, 96, 2
    head_dim = hidden // heads
    w = lambda *shape: (rng.standard_normal(shape) * 0.02).astype(np.float32)
    hf = {"model.embed_tokens.weight": w(vocab, hidden), "model.norm.weight": np.ones(hidden, np.float32)}
    gguf_names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    for i in range(layers):
        p, g = f"model.layers.{i}.", f"blk.{i}."
        for hf_name, g_name, shape in [
            ("self_attn.q_proj", "attn_q", (heads * head_dim, hidden)),
            ("self_attn.k_proj", "attn_k", (kv_heads * head_dim, hidden)),
            ("self_attn.v_proj", "attn_v", (kv_heads * head_dim, hidden)),
            ("self_attn.o_proj", "attn_output", (hidden, heads * head_dim)),
            ("mlp.gate_proj", "ffn_gate", (ffn, hidden)),
            ("mlp.up_proj", "ffn_up", (ffn, hidden)),
            ("mlp.down_proj", "ffn_down", (hidden, ffn)),
        ]:
            hf[p + hf_name + ".weight"] = w(*shape)
            gguf_names[p + hf_name + ".weight"] = g + g_name + ".weight"
        for hf_name, g_name in [("input_layernorm", "attn_norm"), ("post_attention_layernorm", "ffn_norm")]:
            hf[p + hf_name + ".weight"] = (1 + rng.standard_normal(hidden) * 0.1).astype(np.float32)
            gguf_names[p + hf_name + ".weight"] = g + g_name + ".weight"
    path, writer = start_twin(d, hf, "llama", dict(
        architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        intermediate_size=ffn, vocab_size=vocab, tie_word_embeddings=True))
    for name, x in hf.items():
        if name.endswith("q_proj.weight"):
            x = permute(x, heads)
        elif name.endswith("k_proj.weight"):
            x = permute(x, kv_heads)
        if x.ndim == 2:
            writer.add_tensor(gguf_names[name], quants.quantize(x, T.Q8_0), raw_dtype=T.Q8_0)
        else:
            writer.add_tensor(gguf_names[name], x)
    finish(writer)
    def undo(name, x):
        if name.endswith("q_proj.weight"):
            return unpermute(x, heads)
        if name.endswith("k_proj.weight"):
            return unpermute(x, kv_heads)
        return x
    # What a diff that ignored the permutation would report: rel_fro_as_stored.
    return [os.path.join(d, "hf", "model.safetensors"), path], pair_errors(path, hf, gguf_names, undo)


def pair_errors(path, hf, gguf_names, undo):
    """The quantization error per matrix: the GGUF tensor dequantized by
    gguf-py, read back as Hugging Face stores it (`undo`: the converter's
    permutation or shift undone), minus the HF weight."""
    back = dequantized(path)
    inverse = {v: k for k, v in gguf_names.items()}
    errors = {}
    for g_name, (_, stored) in back.items():
        name = inverse[g_name]
        x = undo(name, stored)
        base = hf[name].astype(np.float64)
        delta = x - base
        errors[name] = dict(
            gguf_name=g_name,
            rel_fro=float(np.linalg.norm(delta) / np.linalg.norm(base)),
            sqnr_db=float(10 * np.log10(np.sum(base * base) / np.sum(delta * delta)))
            if np.any(delta) else None,
            changed_frac=float(np.mean(delta != 0)),
            rel_fro_as_stored=float(np.linalg.norm(stored - base) / np.linalg.norm(base)),
        )
    return errors


def write_gemma_pair():
    """A tiny Gemma 3 in safetensors (f32) and its GGUF twin as llama.cpp's
    converter writes it (Gemma3Model.modify_tensors): every `...norm.weight`
    stored as 1 + w (Gemma's RMSNorm multiplies by 1 + w; ggml by the stored
    value), no Q/K permutation, matrices Q8_0, no output.weight (tied)."""
    d = os.path.join(FIXTURES, "gemma3")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "hf"))
    hidden, heads, kv_heads, head_dim, ffn, vocab, layers = 64, 4, 1, 16, 128, 96, 2
    w = lambda *shape: (rng.standard_normal(shape) * 0.02).astype(np.float32)
    # Gemma's norm weights sit around 0 (the model applies 1 + w).
    norm = lambda n: (rng.standard_normal(n) * 0.3).astype(np.float32)
    hf = {"model.embed_tokens.weight": w(vocab, hidden), "model.norm.weight": norm(hidden)}
    gguf_names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    for i in range(layers):
        p, g = f"model.layers.{i}.", f"blk.{i}."
        for hf_name, g_name, x in [
            ("self_attn.q_proj", "attn_q", w(heads * head_dim, hidden)),
            ("self_attn.k_proj", "attn_k", w(kv_heads * head_dim, hidden)),
            ("self_attn.v_proj", "attn_v", w(kv_heads * head_dim, hidden)),
            ("self_attn.o_proj", "attn_output", w(hidden, heads * head_dim)),
            ("self_attn.q_norm", "attn_q_norm", norm(head_dim)),
            ("self_attn.k_norm", "attn_k_norm", norm(head_dim)),
            ("mlp.gate_proj", "ffn_gate", w(ffn, hidden)),
            ("mlp.up_proj", "ffn_up", w(ffn, hidden)),
            ("mlp.down_proj", "ffn_down", w(hidden, ffn)),
            ("input_layernorm", "attn_norm", norm(hidden)),
            ("post_attention_layernorm", "post_attention_norm", norm(hidden)),
            ("pre_feedforward_layernorm", "ffn_norm", norm(hidden)),
            ("post_feedforward_layernorm", "post_ffw_norm", norm(hidden)),
        ]:
            hf[p + hf_name + ".weight"] = x
            gguf_names[p + hf_name + ".weight"] = g + g_name + ".weight"
    path, writer = start_twin(d, hf, "gemma3", dict(
        architectures=["Gemma3ForCausalLM"], model_type="gemma3_text", hidden_size=hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        head_dim=head_dim, intermediate_size=ffn, vocab_size=vocab))
    for name, x in hf.items():
        if name.endswith("norm.weight"):
            writer.add_tensor(gguf_names[name], x + np.float32(1))
        else:
            writer.add_tensor(gguf_names[name], quants.quantize(x, T.Q8_0), raw_dtype=T.Q8_0)
    finish(writer)
    undo = lambda name, x: x - 1 if name.endswith("norm.weight") else x
    return [os.path.join(d, "hf", "model.safetensors"), path], pair_errors(path, hf, gguf_names, undo)


def unpermute(w, n_head):
    """The inverse of permute: the rows back in Hugging Face's order."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    types = dequantized(write_types())
    moe_files = write_moe()
    llama_files, llama_errors = write_llama_pair()
    gemma_files, gemma_errors = write_gemma_pair()
    moe = {}
    for f in moe_files:
        moe.update(dequantized(f))
    save_file(
        {name: v.astype(np.float64 if t in ("f64", "i64", "i32") else np.float32)
         for name, (t, v) in types.items()},
        os.path.join(GOLDEN, "gguf_dequantized.safetensors"),
    )
    doc = {
        "gguf": version("gguf"),
        "types": {name: dict(type=t, **golden(v)) for name, (t, v) in types.items()},
        "moe": {name: dict(type=t, **golden(v)) for name, (t, v) in moe.items()},
        "moe_files": [os.path.basename(f) for f in moe_files],
        "llama_q8_0_error": llama_errors,
        "gemma3_q8_0_error": gemma_errors,
    }
    with open(os.path.join(GOLDEN, "gguf.json"), "w") as f:
        json.dump(doc, f, indent=1)
    for f in [os.path.join(FIXTURES, "types.gguf"), *moe_files, *llama_files, *gemma_files,
              os.path.join(GOLDEN, "gguf_dequantized.safetensors")]:
        size = os.path.getsize(f)
        assert size < 1 << 20, f"{f}: {size} bytes"
        print(f"{os.path.relpath(f, ROOT)}: {size} bytes")


if __name__ == "__main__":
    main()
