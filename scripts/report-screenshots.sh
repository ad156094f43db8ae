#!/usr/bin/env bash
# Remakes the screenshots in docs/: MiniLM's report (the top of the page and
# its spectrum cards) and a comparison of MiniLM with a perturbed copy of
# itself. Needs Chromium (scripts/install-chromium.sh) and python3 with numpy
# and safetensors (pip install numpy safetensors) for the perturbed copy.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p tpa-cli
scripts/fetch-minilm.sh >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=./target/release

# The reports' alerts are findings, not failures: no --fail-on here.
"$bin"/tpa-transformer --model-path data/models/all-MiniLM-L6-v2 \
    --model-id sentence-transformers/all-MiniLM-L6-v2 \
    --out "$work/minilm.json" --report "$work/minilm" --no-gpu --quiet

# A "fine-tuned" copy: noise on every matrix, layer 3's query doubled.
python3 - "$work/tuned" <<'PY'
import os, shutil, sys
import numpy as np
from safetensors.numpy import load_file, save_file
src, out = "data/models/all-MiniLM-L6-v2", sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
tensors = {}
for name, v in load_file(f"{src}/model.safetensors").items():
    if v.dtype == np.float32 and v.ndim == 2:
        v = v + 0.1 * v.std() * rng.standard_normal(v.shape).astype(np.float32)
    if name == "encoder.layer.3.attention.self.query.weight":
        v = 2 * v
    tensors[name] = np.ascontiguousarray(v)
save_file(tensors, f"{out}/model.safetensors")
shutil.copy(f"{src}/config.json", out)
PY
"$bin"/tpa-transformer --model-path "$work/tuned" --model-id "all-MiniLM-L6-v2, perturbed" \
    --out "$work/tuned.json" --no-gpu --quiet
"$bin"/tpa-report "$work/minilm.json" "$work/tuned.json" --out "$work/compare" --quiet

# A page in an iframe, scrolled to the element `id` (just below the sticky
# navigation), captured at 1280 × height.
shoot() { # report.html id height out.png
    local frame="$(dirname "$1")/shot.html"
    cat >"$frame" <<EOF
<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="report.html" style="border:0;width:1280px;height:${3}px"></iframe>
<script>document.getElementById("f").onload = function () {
  var d = this.contentDocument, e = d.getElementById("$2");
  if (e) { e.scrollIntoView(); d.defaultView.scrollBy(0, -38); }
};</script></body></html>
EOF
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$work/profile" --allow-file-access-from-files --hide-scrollbars \
        --virtual-time-budget=3000 --window-size="1280,$3" --screenshot="$4" \
        "file://$(realpath "$frame")" 2>/dev/null
}
mkdir -p docs
shoot "$work/minilm/report.html" top 1500 docs/report-minilm.png
shoot "$work/minilm/report.html" cards 1000 docs/report-cards.png
shoot "$work/compare/report.html" scatter 1000 docs/report-compare.png
ls -la docs/
