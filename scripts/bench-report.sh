#!/usr/bin/env bash
# Times tpa-report and measures its page on models of several sizes, and
# times tpa-transformer with --report against the same run without it.
#
#   scripts/bench-report.sh          # MiniLM, the ~1.1B model, a generated MoE of ~11k matrices
#   scripts/bench-report.sh --7b     # also the Llama-2-7B-shaped model (one run with --report, ~12 min)
#
# Models go to data/models/bench-* (git-ignored; delete them afterwards);
# results to data/outputs/bench-report/.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p tpa-cli -p tpa-testkit
scripts/fetch-minilm.sh >/dev/null
out=data/outputs/bench-report
mkdir -p "$out"
bin=./target/release

llama() { # name hidden intermediate layers kv_dim
    local dir="data/models/$1"
    [ -d "$dir" ] || "$bin"/tpa-fixture --arch llama --dtype bf16 --vocab 32000 \
        --hidden "$2" --intermediate "$3" --layers "$4" --kv-dim "$5" --out "$dir" >/dev/null
    echo "$dir"
}
moe() { # 28 layers of 128 experts: 10 894 matrices
    local dir=data/models/bench-moe-11k
    [ -d "$dir" ] || "$bin"/tpa-fixture --arch moe --dtype bf16 --vocab 8192 --hidden 256 \
        --kv-dim 128 --layers 28 --experts 128 --moe-intermediate 64 --out "$dir" >/dev/null
    echo "$dir"
}
seconds() { # command... → wall seconds on stdout
    /usr/bin/time -o "$out/time" -f "%e" "$@" >/dev/null
    cat "$out/time"
}

# The whole run with --report, then the same run without it (unless the
# third argument is "once"), then tpa-report alone on the run's own result
# and spectra (best of 3).
measure() { # name model [once]
    local name=$1 model=$2
    cat "$model"/*.safetensors >/dev/null
    local with without report size matrices
    with=$(seconds "$bin"/tpa-transformer --model-path "$model" --out "$out/$name.csv" \
        --report "$out/$name" --no-gpu --quiet)
    without="(not run)"
    if [ "${3:-}" != once ]; then
        without=$(seconds "$bin"/tpa-transformer --model-path "$model" --out "$out/$name.plain.csv" \
            --no-gpu --quiet)
    fi
    report=999
    for _ in 1 2 3; do
        t=$(seconds "$bin"/tpa-report "$out/$name.csv" --spectra "$out/$name/spectra.safetensors" \
            --out "$out/$name.again" --quiet)
        report=$(awk -v a="$t" -v b="$report" 'BEGIN{print (a < b) ? a : b}')
    done
    size=$(stat -c %s "$out/$name/report.html")
    matrices=$(($(wc -l <"$out/$name.csv") - 1))
    echo "| $name | $matrices | $(awk -v s="$size" 'BEGIN{printf "%.2f MB", s/1e6}') | $(ls "$out/$name/charts" | wc -l) | $report | $without | $with |"
}

echo "| model | matrices | report.html | charts | tpa-report s (best of 3) | tpa-transformer s | tpa-transformer --report s |"
echo "|---|---|---|---|---|---|---|"
measure minilm data/models/all-MiniLM-L6-v2
measure llama-1.1b "$(llama bench-llama-1b 2048 5632 22 512)"
measure moe-11k "$(moe)"
if [ "${1:-}" = "--7b" ]; then
    # One run (12 min); its time without --report is bench-transformer.sh --7b's.
    measure llama-7b "$(llama bench-llama-7b 4096 11008 32 4096)" once
fi
