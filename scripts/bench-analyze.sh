#!/usr/bin/env bash
# Times tpa-analyze against the numpy equivalent (tests/golden/numpy_stats.py:
# load each tensor, convert to float64, mean/std/var/min/max/sparsity) on the
# same synthetic bf16 Llama-shaped models, in one run, from the page cache, and
# records peak RSS with /usr/bin/time. Needs numpy. Usage:
#
#   scripts/bench-analyze.sh     # MiniLM (91 MB f32), then 1.9 GB and 5.2 GB bf16 models
#
# The models go to data/models/bench-* (git-ignored; delete them afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p tpa-cli -p tpa-testkit
models=()
make_model() { # name layers shards
    local dir="data/models/$1"
    if [ ! -d "$dir" ]; then
        ./target/release/tpa-fixture --arch llama --dtype bf16 --hidden 2048 --intermediate 5632 \
            --vocab 32000 --layers "$2" --shards "$3" --out "$dir" >/dev/null
    fi
    models+=("$dir")
}
scripts/fetch-minilm.sh >/dev/null && models+=(data/models/all-MiniLM-L6-v2)
make_model bench-llama-bf16-16l 16 1
make_model bench-llama-bf16-48l 48 3

printf '\n| model | size | tool | wall s (best of 3) | peak RSS MiB |\n|---|---|---|---|---|\n'
for m in "${models[@]}"; do
    size=$(du -sb "$m" | awk '{printf "%.2f GB", $1/1e9}')
    cat "$m"/*.safetensors >/dev/null  # into the page cache
    for tool in tpa numpy; do
        best=""; rss=0
        for _ in 1 2 3; do
            if [ $tool = tpa ]; then
                cmd=(./target/release/tpa-analyze --model-path "$m" --out /tmp/tpa-bench.csv --quiet)
            else
                cmd=(python3 tests/golden/numpy_stats.py "$m")
            fi
            /usr/bin/time -o /tmp/tpa-bench.time -f "%e %M" "${cmd[@]}" >/dev/null
            read -r wall kb </tmp/tpa-bench.time
            best=$(python3 -c "print(min(x for x in [$wall, ${best:-1e9}]))")
            rss=$(( kb > rss ? kb : rss ))
        done
        printf '| %s | %s | %s | %s | %d |\n' "$(basename "$m")" "$size" "$tool" "$best" $((rss / 1024))
    done
done
