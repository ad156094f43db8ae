#!/usr/bin/env python3
"""Per-tensor statistics of a safetensors model with numpy in float64.

This is the independent reference for tpa-analyze: the golden CSV
(`minilm_stats.csv`) the tests compare against was made with

    python3 tests/golden/numpy_stats.py data/models/all-MiniLM-L6-v2 \
        --out tests/golden/minilm_stats.csv

and BENCHMARKS.md times the same code (`--time`) as "the numpy equivalent":
load each tensor, convert it to float64, compute mean/std/var/min/max/sparsity.

Only numpy is needed (ml_dtypes as well for float8 tensors). Shards are parsed
here directly (8-byte header length, JSON header, raw little-endian data), so
nothing is shared with tpa's reader.
"""
import argparse
import csv
import glob
import json
import os
import struct
import sys
import time

import numpy as np

ZERO_EPS = 1e-8

NUMPY_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}
TORCH_NAMES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}


def shard_files(model):
    if os.path.isfile(model):
        return [model]
    index = os.path.join(model, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            names = sorted(set(json.load(f)["weight_map"].values()))
        return [os.path.join(model, n) for n in names]
    return sorted(glob.glob(os.path.join(model, "*.safetensors")))


def entries(path):
    """Yields (name, dtype, shape, raw bytes as a memmap slice) for each tensor of a shard."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        yield name, info["dtype"], info["shape"], data[start:end]


def decode(raw, dtype):
    """Raw little-endian bytes of `dtype` -> float64."""
    if dtype == "BF16":
        x = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    elif dtype.startswith("F8_"):
        import ml_dtypes
        kind = {"F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2}[dtype]
        x = raw.view(kind)
    else:
        x = raw.view(NUMPY_DTYPES[dtype])
    return x.astype(np.float64)


def tensors(path):
    """Yields (name, dtype, shape, float64 array) for each tensor of a shard."""
    for name, dtype, shape, raw in entries(path):
        yield name, dtype, shape, decode(raw, dtype)


def stats(x):
    finite = np.isfinite(x)
    nan = int(np.isnan(x).sum())
    inf = int(x.size - finite.sum() - nan)
    if nan or inf:
        x = x[finite]
    if x.size == 0:
        return dict(mean="", std="", var="", min="", max="", sparsity="", nan_count=nan, inf_count=inf)
    return dict(
        mean=repr(float(x.mean())),
        std=repr(float(x.std())),
        var=repr(float(x.var())),
        min=repr(float(x.min())),
        max=repr(float(x.max())),
        sparsity=repr(float(np.mean(np.abs(x) <= ZERO_EPS))),
        nan_count=nan,
        inf_count=inf,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model directory or .safetensors file")
    parser.add_argument("--out", help="CSV to write")
    parser.add_argument("--time", action="store_true", help="print the wall time on stderr")
    args = parser.parse_args()

    start = time.perf_counter()
    rows = []
    for path in shard_files(args.model):
        for name, dtype, shape, x in tensors(path):
            row = dict(param_name=name, dtype=TORCH_NAMES[dtype], shape=json.dumps(shape), numel=x.size)
            row.update(stats(x))
            rows.append(row)
    elapsed = time.perf_counter() - start
    if args.time:
        print(f"numpy: {len(rows)} tensors in {elapsed:.3f} s", file=sys.stderr)
    if args.out:
        rows.sort(key=lambda r: r["param_name"])
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
