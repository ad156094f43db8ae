#!/usr/bin/env python3
"""Writes fp8_tables.json: the value of every byte in each 8-bit float format,
as decoded by ml_dtypes (the reference implementation JAX and PyTorch follow).

    pip install ml_dtypes numpy
    python3 tests/golden/make_fp8_tables.py > tests/golden/fp8_tables.json
"""
import json

import ml_dtypes
import numpy as np

FORMATS = {
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e5m2": ml_dtypes.float8_e5m2,
    "float8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
    "float8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
    "float8_e8m0fnu": ml_dtypes.float8_e8m0fnu,
}

tables = {}
for name, dtype in FORMATS.items():
    values = np.arange(256, dtype=np.uint8).view(dtype).astype(np.float64)
    tables[name] = [repr(float(v)) for v in values]
lines = [f'  "{name}": {json.dumps(values)}' for name, values in tables.items()]
print('{"ml_dtypes": "%s", "tables": {\n%s\n}}' % (ml_dtypes.__version__, ",\n".join(lines)))
