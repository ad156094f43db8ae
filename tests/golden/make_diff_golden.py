"""Writes a small base/fine-tuned pair and numpy's answers for tpa-diff.

    python3 tests/golden/make_diff_golden.py

tests/fixtures/diff/{base,tuned}.safetensors: three float32 matrices and a
vector; the tuned model adds a rank-4 delta to one matrix, a full-rank
(Gaussian) delta to another, leaves the third unchanged and changes the
vector. tests/golden/diff.json: per tensor, numpy float64 on the stored
values: rel_fro, rel_spec, mean_abs_delta, changed_frac, the delta's numerical
rank (sigma > 1e-6 sigma_max, as LAPACK's SVD gives it), its 50/90/99% energy
ranks, stable rank, and lora_fit_err for ranks 1, 2, 4, 8 (Eckart-Young from
numpy.linalg.svd); and from the singular vectors of numpy.linalg.svd
(full_matrices=False) on the base and the tuned matrix: subspace_overlap_left_10
and _right_10 (||U_b^T U_t||_F^2 / 10 over the top 10 vectors), and intruders_10
(the tuned top-10 left vectors whose largest |cos| with every base left vector
is below 0.5, as in Shuttleworth et al.'s code), with those largest |cos| to
show their distance from the threshold. A fourth matrix gets a rank-1 update
along random directions, three times its largest singular value: one intruder.
Run it again only to change the fixture.
"""
import json
import pathlib

import numpy as np
from safetensors.numpy import save_file

root = pathlib.Path(__file__).resolve().parents[2]
rng = np.random.default_rng(20261202)
shapes = {"layers.0.q_proj.weight": (64, 48), "layers.0.mlp.up_proj.weight": (80, 48),
          "layers.1.o_proj.weight": (48, 48)}
base = {name: rng.normal(0, 0.02, shape).astype(np.float32) for name, shape in shapes.items()}
base["layers.0.norm.weight"] = (1 + rng.normal(0, 0.1, 48)).astype(np.float32)
tuned = {k: v.copy() for k, v in base.items()}
u, v = rng.normal(0, 0.01, (64, 4)), rng.normal(0, 0.01, (4, 48))
tuned["layers.0.q_proj.weight"] = (base["layers.0.q_proj.weight"] + u @ v).astype(np.float32)
tuned["layers.0.mlp.up_proj.weight"] += rng.normal(0, 1e-3, (80, 48)).astype(np.float32)
tuned["layers.0.norm.weight"][5] += np.float32(0.25)
# A rank-1 update three times the base's largest singular value, along random
# directions: the model's top singular vector is an intruder dimension.
v_proj = rng.normal(0, 0.02, (48, 48)).astype(np.float32)
x, y = rng.normal(size=48), rng.normal(size=48)
x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
top = np.linalg.svd(v_proj.astype(np.float64), compute_uv=False)[0]
base["layers.1.v_proj.weight"] = v_proj
tuned["layers.1.v_proj.weight"] = (v_proj + 3 * top * np.outer(x, y)).astype(np.float32)

out = root / "tests" / "fixtures" / "diff"
out.mkdir(parents=True, exist_ok=True)
save_file(base, str(out / "base.safetensors"))
save_file(tuned, str(out / "tuned.safetensors"))


def energy_rank(s2, share):
    if s2.sum() == 0:
        return 0
    return int(np.searchsorted(np.cumsum(s2) / s2.sum(), share - 1e-15) + 1)


golden = {}
for name in base:
    w = base[name].astype(np.float64).reshape(base[name].shape[0] if base[name].ndim == 2 else 1, -1)
    t = tuned[name].astype(np.float64).reshape(w.shape)
    d = t - w
    s = np.linalg.svd(d, compute_uv=False)
    sw = np.linalg.svd(w, compute_uv=False)
    s2 = s * s
    total = s2.sum()
    golden[name] = {
        "rel_fro": float(np.linalg.norm(d) / np.linalg.norm(w)),
        "rel_spec": float(s[0] / sw[0]),
        "mean_abs_delta": float(np.abs(d).mean()),
        "changed_frac": float((d != 0).mean()),
        "delta_rank": int((s > 1e-6 * s[0]).sum()) if s[0] > 0 else 0,
        "delta_svd_50_percent_rank": energy_rank(s2, 0.5),
        "delta_svd_90_percent_rank": energy_rank(s2, 0.9),
        "delta_svd_99_percent_rank": energy_rank(s2, 0.99),
        "delta_stable_rank": float(total / s2[0]) if total > 0 else None,
        "lora_fit_err": {str(r): (float(np.sqrt(s2[r:].sum() / total)) if total > 0 else None)
                         for r in (1, 2, 4, 8)},
    }
    if base[name].ndim == 2:
        ub, _, vbt = np.linalg.svd(w, full_matrices=False)
        ut, _, vtt = np.linalg.svd(t, full_matrices=False)
        k = min(10, min(w.shape))
        max_cos = np.abs(ut[:, :k].T @ ub).max(axis=1)
        assert np.all(np.abs(max_cos - 0.5) > 0.05), max_cos
        golden[name].update({
            "subspace_overlap_left_10": float(np.sum((ub[:, :k].T @ ut[:, :k]) ** 2) / k),
            "subspace_overlap_right_10": float(np.sum((vbt[:k] @ vtt[:k].T) ** 2) / k),
            "intruders_10": int((max_cos < 0.5).sum()),
            "max_cos_10": [float(c) for c in max_cos],
        })
path = root / "tests" / "golden" / "diff.json"
path.write_text(json.dumps({"numpy": np.__version__, "tensors": golden}, indent=1) + "\n")
print(f"wrote {out}/base.safetensors, tuned.safetensors and {path}")
