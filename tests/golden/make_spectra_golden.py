#!/usr/bin/env python3
"""Reference spectra of every tensor of a model, for tpa-transformer's golden test.

For each tensor: the 2-D view tpa uses (scalar -> (1, 1), vector -> (1, n),
N-D -> (shape[0], rest)), converted to float64, singular values from
scipy.linalg.svdvals (LAPACK gesdd, float64), and from them the numerical rank
(sigma > 1e-6 * sigma_max), the 50/90/99% energy ranks (numpy.cumsum of
sigma^2, first index reaching the share), norms, stable and effective rank,
and WeightWatcher's own power-law fit (weightwatcher.WW_powerlaw.pl_fit, its
default method, on lambda = sigma^2 > 1e-5, as WeightWatcher.fit_powerlaw does).

    pip install numpy scipy weightwatcher
    python3 tests/golden/make_spectra_golden.py data/models/all-MiniLM-L6-v2 \
        --out tests/golden/minilm_spectra.csv

Also the scipy reference of BENCHMARKS.md: with --time it prints the time of
svdvals over all tensors (nothing else is timed). With --dequantize, fine-grained
FP8 and GPTQ weights are first dequantized in float64 by numpy_dequant.py (an
independent transcription of the formats' own dequantize), one row per logical
weight as tpa-transformer gives.
"""
import argparse
import contextlib
import csv
import io
import os
import sys
import time

import numpy as np
import scipy
import scipy.linalg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_dequant import dequantized  # noqa: E402
from numpy_stats import shard_files, tensors  # noqa: E402

RANK_RTOL = 1e-6
EVALS_THRESH = 1e-5


def matrix(shape, x):
    if len(shape) == 0:
        return x.reshape(1, 1)
    if len(shape) == 1:
        return x.reshape(1, shape[0])
    return x.reshape(shape[0], -1)


def energy_rank(cum, share):
    if cum[-1] <= 0:
        return 0
    return int(np.searchsorted(cum, share * cum[-1], side="left")) + 1


def metrics(s):
    row = {}
    smax = s[0] if s.size else 0.0
    row["actual_rank"] = int(np.sum(s > RANK_RTOL * smax))
    cum = np.cumsum(s * s)
    for share, name in [(0.5, "svd_50_percent_rank"), (0.9, "svd_90_percent_rank"), (0.99, "svd_99_percent_rank")]:
        row[name] = energy_rank(cum, share) if s.size else 0
    energy = float(cum[-1]) if s.size else 0.0
    row["spectral_norm"] = repr(float(smax))
    row["frobenius_norm"] = repr(float(np.sqrt(energy)))
    row["stable_rank"] = repr(float(energy / smax**2)) if smax > 0 else ""
    total = float(np.sum(s))
    if total > 0:
        p = s[s > 0] / total
        row["effective_rank"] = repr(float(np.exp(-np.sum(p * np.log(p)))))
    else:
        row["effective_rank"] = ""
    row["log_norm"] = repr(float(np.log10(energy))) if energy > 0 else ""
    lmax = float(smax) ** 2
    row["log_spectral_norm"] = repr(float(np.log10(lmax))) if lmax > 0 else ""
    row["alpha"] = row["alpha_weighted"] = row["ks_distance"] = ""
    evals = s * s
    evals = evals[evals > EVALS_THRESH]
    if evals.size >= 2:
        from weightwatcher.WW_powerlaw import pl_fit
        with contextlib.redirect_stdout(io.StringIO()):  # "SMALL N PL FIT"
            fit = pl_fit(data=evals)
        if np.isfinite(fit.alpha):
            row["alpha"] = repr(float(fit.alpha))
            row["ks_distance"] = repr(float(fit.D))
            row["alpha_weighted"] = repr(float(fit.alpha * np.log10(lmax)))
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--out")
    parser.add_argument("--time", action="store_true")
    parser.add_argument("--dequantize", action="store_true")
    args = parser.parse_args()

    def every_tensor():
        if args.dequantize:
            yield from dequantized(args.model)
            return
        for path in shard_files(args.model):
            for name, _dtype, shape, x in tensors(path):
                yield name, shape, x

    rows = []
    svd_seconds = 0.0
    for name, shape, x in every_tensor():
        w = matrix(shape, x)
        start = time.perf_counter()
        s = scipy.linalg.svdvals(w) if w.size else np.zeros(0)
        svd_seconds += time.perf_counter() - start
        if args.out:
            row = {"param_name": name, "rows": w.shape[0], "cols": w.shape[1]}
            row.update(metrics(s))
            rows.append(row)
    if args.time:
        print(f"scipy svdvals: {svd_seconds:.2f} s for all tensors", file=sys.stderr)
    if args.out:
        rows.sort(key=lambda r: r["param_name"])
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
