#!/usr/bin/env python3
"""A fine-tuned twin of a bf16 model, for scripts/bench-diff.sh.

    python3 scripts/make_diff_twin.py BASE_DIR OUT_DIR [--seed 1]

Copies BASE_DIR to OUT_DIR (configs and shards, so the tensor layout is the
same) and rewrites every 2-D bf16 weight in place as bf16(W + D), with D a
rank-8 component of 1% of ||W||_F plus dense Gaussian noise of 2% of W's
standard deviation per element: a fine-tune whose delta is full rank with a
low-rank head. 1-D tensors get 1% noise. Rounding to bf16 is round to nearest
even, as torch does.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from numpy_stats import shard_files  # noqa: E402


def to_bf16(x):
    bits = x.astype(np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    shutil.copytree(args.base, args.out)
    rng = np.random.default_rng(args.seed)
    for path in shard_files(args.out):
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        data = np.memmap(path, dtype=np.uint8, mode="r+", offset=8 + n)
        for name, info in header.items():
            if name == "__metadata__" or info["dtype"] != "BF16":
                continue
            start, end = info["data_offsets"]
            raw = data[start:end].view("<u2")
            w = (raw.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
            shape = info["shape"]
            if len(shape) == 2:
                w = w.reshape(shape)
                u, v = rng.normal(size=(shape[0], 8)), rng.normal(size=(8, shape[1]))
                low = u @ v
                low *= 0.01 * np.linalg.norm(w) / np.linalg.norm(low)
                w = w + low + rng.normal(0, 0.02 * w.std(), shape)
            else:
                w = w + rng.normal(0, 0.01 * (w.std() or 1.0), w.shape)
            raw[:] = to_bf16(w).reshape(-1)
        data.flush()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
