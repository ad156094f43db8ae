#!/usr/bin/env bash
# Times tpa-transformer against scipy (tests/golden/make_spectra_golden.py:
# scipy.linalg.svdvals in float64 on every tensor, as a careful Python user or
# WeightWatcher's CPU path would) on the same models in one run, and checks
# that every rank agrees. Needs numpy, scipy and weightwatcher.
#
#   scripts/bench-transformer.sh          # MiniLM and a ~1.1B Llama-shaped bf16 model
#   scripts/bench-transformer.sh --7b     # also a Llama-2-7B-shaped bf16 model (tpa only)
#   scripts/bench-transformer.sh --quant  # the ~1.1B model stored as block FP8 and as GPTQ
#                                         # int4 instead (scipy on numpy-dequantized weights)
#
# Models go to data/models/bench-* (git-ignored; delete them afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p tpa-cli -p tpa-testkit
scripts/fetch-minilm.sh >/dev/null
make_model() { # name hidden intermediate layers kv_dim [tpa-fixture options]
    local dir="data/models/$1"
    [ -d "$dir" ] || ./target/release/tpa-fixture --arch llama --dtype bf16 --vocab 32000 \
        --hidden "$2" --intermediate "$3" --layers "$4" --kv-dim "$5" "${@:6}" --out "$dir" >/dev/null
    echo "$dir"
}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

compare() { # model name [make_spectra_golden.py options]
    local model=$1 name=$2
    cat "$model"/*.safetensors >/dev/null
    /usr/bin/time -o "$out/time" -f "%e %M" ./target/release/tpa-transformer \
        --model-path "$model" --out "$out/$name.tpa.csv" --no-gpu --quiet
    read -r tpa_wall tpa_kb <"$out/time"
    /usr/bin/time -o "$out/time" -f "%e %M" python3 tests/golden/make_spectra_golden.py "$model" \
        --out "$out/$name.scipy.csv" --time "${@:3}" 2>"$out/scipy.log"
    read -r py_wall py_kb <"$out/time"
    svd=$(grep -o 'svdvals: [0-9.]*' "$out/scipy.log" | awk '{print $2}')
    python3 - "$out/$name.tpa.csv" "$out/$name.scipy.csv" "$name" "$tpa_wall" "$tpa_kb" "$svd" "$py_wall" <<'PY'
import csv, sys
tpa_csv, scipy_csv, name, tpa_wall, tpa_kb, svd, py_wall = sys.argv[1:]
tpa = {r["param_name"]: r for r in csv.DictReader(open(tpa_csv))}
ref = {r["param_name"]: r for r in csv.DictReader(open(scipy_csv))}
cols = ["actual_rank", "svd_50_percent_rank", "svd_90_percent_rank", "svd_99_percent_rank"]
diff = [(k, c) for k in ref for c in cols if tpa[k][c] != ref[k][c]]
methods = sum(1 for r in tpa.values() if r["method"] == "svd-f64")
print(f"| {name} | {len(ref)} | {float(svd):.1f} (whole script {float(py_wall):.1f}) | {float(tpa_wall):.1f} "
      f"| {float(svd) / float(tpa_wall):.1f}x | {int(tpa_kb) // 1024} | "
      f"{'identical' if not diff else f'{len(diff)} differ: {diff[:3]}'} | {methods} |")
PY
}

echo "| model | tensors | scipy svdvals s | tpa-transformer s (whole run) | speed-up | tpa peak RSS MiB | ranks (actual, 50/90/99%) | svd-f64 fallbacks |"
echo "|---|---|---|---|---|---|---|---|"
if [ "${1:-}" = "--quant" ]; then
    for scheme in fp8-block-128x128 gptq-int4-g128; do
        compare "$(make_model "bench-llama-1b-$scheme" 2048 5632 22 512 --quant "$scheme")" \
            "llama-1.1b-$scheme" --dequantize
    done
    exit
fi
compare data/models/all-MiniLM-L6-v2 all-MiniLM-L6-v2
compare "$(make_model bench-llama-1b 2048 5632 22 512)" llama-1.1b-bf16

if [ "${1:-}" = "--7b" ]; then
    model=$(make_model bench-llama-7b 4096 11008 32 4096)
    cat "$model"/*.safetensors >/dev/null
    /usr/bin/time -o "$out/time" -f "%e %M" ./target/release/tpa-transformer \
        --model-path "$model" --out "$out/7b.csv" --no-gpu --quiet
    read -r wall kb <"$out/time"
    echo
    echo "Llama-2-7B-shaped bf16 ($(du -sh "$model" | cut -f1)): tpa-transformer $(awk -v s="$wall" 'BEGIN{printf "%.1f min", s/60}'), peak RSS $((kb / 1024)) MiB, $(($(wc -l <"$out/7b.csv") - 1)) matrices"
fi
