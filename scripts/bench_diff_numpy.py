#!/usr/bin/env python3
"""The numpy/scipy reference of tpa-diff, for scripts/bench-diff.sh.

    python3 scripts/bench_diff_numpy.py BASE (--model DIR | --adapter DIR) --out CSV
        [--top-k 10] [--delta-only] [--layers N]

For every 2-D tensor both sides hold with the same shape (or every adapter
module): load both in float64 (bf16 decoded exactly), subtract, and compute
what tpa-diff reports with scipy's LAPACK (gesdd): svdvals of the delta; with
--top-k K also scipy.linalg.svd(full_matrices=False) of base and model for the
top-K subspace overlaps and intruder counts (Shuttleworth et al.'s
definition); otherwise svdvals of base and model; with --delta-only neither.
For an adapter the model is W + scale*B@A, formed densely. --layers N keeps
layers below N (and the tensors outside layers). Prints the seconds spent in
the SVDs ("linalg") and in the whole script.
"""
import argparse
import csv
import json
import os
import sys
import time

import numpy as np
import scipy.linalg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from numpy_stats import decode, entries, shard_files  # noqa: E402

RTOL = 1e-6


def energy_rank(s2, share):
    total = s2.sum()
    if total == 0:
        return 0
    return int(np.searchsorted(np.cumsum(s2), share * total, side="left")) + 1


def layer_of(name):
    parts = name.split(".")
    for i, p in enumerate(parts[:-1]):
        if p == "layers" and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return None


def weights(model):
    found = {}
    for path in shard_files(model):
        for name, dtype, shape, raw in entries(path):
            found[name] = (dtype, shape, raw)
    return found


def adapter_updates(adapter, base):
    with open(os.path.join(adapter, "adapter_config.json")) as f:
        config = json.load(f)
    r, alpha = config["r"], config["lora_alpha"]
    scale = alpha / np.sqrt(r) if config.get("use_rslora") else alpha / r
    factors = {n: (d, s, raw) for n, d, s, raw in entries(os.path.join(adapter, "adapter_model.safetensors"))}
    updates = {}
    for name in factors:
        if name.endswith(".lora_A.weight"):
            module = name[len("base_model.model."): -len(".lora_A.weight")]
            a = factors[name]
            b = factors[name.replace("lora_A", "lora_B")]
            updates[module + ".weight"] = (decode(a[2], a[0]).reshape(a[1]), decode(b[2], b[0]).reshape(b[1]), scale)
    return updates


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("--model")
    parser.add_argument("--adapter")
    parser.add_argument("--out", required=True)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--delta-only", action="store_true")
    parser.add_argument("--layers", type=int)
    parser.add_argument("--lora-ranks", default="8,16,64,128")
    args = parser.parse_args()
    ranks = [int(r) for r in args.lora_ranks.split(",")]
    start = time.perf_counter()
    linalg = 0.0
    base = weights(args.base)
    if args.adapter:
        updates = adapter_updates(args.adapter, base)
        names = [n for n in base if n in updates]
    else:
        model = weights(args.model)
        names = [n for n in base if n in model and len(base[n][1]) == 2 and base[n][1] == model[n][1]]
    if args.layers is not None:
        names = [n for n in names if (layer_of(n) is None or layer_of(n) < args.layers)]
    rows = []
    for name in names:
        dtype, shape, raw = base[name]
        w = decode(raw, dtype).reshape(shape)
        if args.adapter:
            a, b, scale = updates[name]
            d = scale * (b @ a)
            t = w + d
        else:
            mdtype, _, mraw = model[name]
            t = decode(mraw, mdtype).reshape(shape)
            d = t - w
        tick = time.perf_counter()
        s = scipy.linalg.svdvals(d)
        row = {"param_name": name}
        if not args.delta_only:
            if args.top_k > 0:
                ub, sb, vbt = scipy.linalg.svd(w, full_matrices=False)
                ut, st, vtt = scipy.linalg.svd(t, full_matrices=False)
                k = min(args.top_k, min(shape))
                max_cos = np.abs(ut[:, :k].T @ ub).max(axis=1)
                row["subspace_overlap_left"] = float(np.sum((ub[:, :k].T @ ut[:, :k]) ** 2) / k)
                row["subspace_overlap_right"] = float(np.sum((vbt[:k] @ vtt[:k].T) ** 2) / k)
                row["intruders"] = int((max_cos < 0.5).sum())
            else:
                sb, st = scipy.linalg.svdvals(w), scipy.linalg.svdvals(t)
            row["spectral_norm_base"] = float(sb[0])
            row["spectral_norm_model"] = float(st[0])
        linalg += time.perf_counter() - tick
        s2 = s * s
        total = s2.sum()
        row["rel_fro"] = float(np.linalg.norm(d) / np.linalg.norm(w))
        row["delta_rank"] = int((s > RTOL * s[0]).sum()) if s[0] > 0 else 0
        for share in (50, 90, 99):
            row[f"delta_svd_{share}_percent_rank"] = energy_rank(s2, share / 100)
        for r in ranks:
            row[f"lora_fit_err_{r}"] = float(np.sqrt(s2[r:].sum() / total)) if total > 0 else ""
        rows.append(row)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    print(f"matrices: {len(rows)} linalg: {linalg:.2f} total: {time.perf_counter() - start:.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
