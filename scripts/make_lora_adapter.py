#!/usr/bin/env python3
"""A PEFT LoRA adapter for a Llama-shaped base, for scripts/bench-diff.sh.

    python3 scripts/make_lora_adapter.py BASE_DIR OUT_DIR [--rank 16] [--layers N]

Writes OUT_DIR/adapter_model.safetensors (float32 lora_A [r, in] and lora_B
[out, r] for q/k/v/o/gate/up/down_proj of every layer, or of the first N)
and adapter_config.json (r, lora_alpha = 2r, those target_modules), as PEFT
saves them. Factors are Gaussian (B is zero in a fresh PEFT adapter; a trained
one is not).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from numpy_stats import shard_files  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("out")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--layers", type=int)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    tensors = {}
    for path in shard_files(args.base):
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        for name, info in header.items():
            parts = name.split(".")
            if not (name.endswith(".weight") and len(parts) > 4 and parts[-2] in TARGETS):
                continue
            if args.layers is not None and int(parts[2]) >= args.layers:
                continue
            out, inp = info["shape"]
            module = name[: -len(".weight")]
            r = args.rank
            tensors[f"base_model.model.{module}.lora_A.weight"] = rng.normal(0, 1 / np.sqrt(inp), (r, inp)).astype(np.float32)
            tensors[f"base_model.model.{module}.lora_B.weight"] = rng.normal(0, 1e-3, (out, r)).astype(np.float32)
    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": args.rank, "lora_alpha": 2 * args.rank, "target_modules": TARGETS,
              "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
              "base_model_name_or_path": os.path.abspath(args.base), "task_type": "CAUSAL_LM"}
    with open(os.path.join(args.out, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=1)
    print(f"wrote {len(tensors) // 2} modules to {args.out}")


if __name__ == "__main__":
    main()
