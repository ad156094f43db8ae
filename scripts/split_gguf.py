#!/usr/bin/env python3
"""Re-splits a GGUF file into a split set PREFIX-0000k-of-0000N.gguf with
gguf-py's writer (as llama.cpp's gguf-split lays one out: all metadata in the
first file, split.* keys in each): every key-value pair and every tensor's
stored bytes are copied unchanged, so the values are the input's bit for bit.
For streaming benchmarks on a real model (scripts/bench-stream.sh --gguf).

    pip install gguf==0.19.0 numpy
    python3 scripts/split_gguf.py model.gguf out/model 4    # → out/model-00001-of-00004.gguf ...
"""
import os
import sys

from gguf import GGUFReader, GGUFValueType, GGUFWriter

source, prefix, files = sys.argv[1], sys.argv[2], int(sys.argv[3])
reader = GGUFReader(source)
arch = reader.fields["general.architecture"].contents()
per_file = -(-len(reader.tensors) // files)
os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
writer = GGUFWriter(prefix + ".gguf", arch, split_max_tensors=per_file)
for key, field in reader.fields.items():
    # The writer sets the format's own keys (version, counts, architecture).
    if key.startswith("GGUF.") or key in ("general.architecture", "general.alignment"):
        continue
    kind = field.types[0]
    sub = field.types[-1] if kind == GGUFValueType.ARRAY else None
    writer.add_key_value(key, field.contents(), kind, sub_type=sub)
for t in reader.tensors:
    # The stored bytes with the stored type (a block type's data is its bytes per row).
    writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
