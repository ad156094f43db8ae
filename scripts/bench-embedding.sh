#!/usr/bin/env bash
# tpa-embedding against the original pipeline in scikit-learn
# (scripts/bench_embedding_sklearn.py), on MiniLM's token embeddings, with the
# original's defaults (max_k 100: coarse pass then fine pass, n_init 10,
# seed 42), in one run. Needs numpy and scikit-learn.
#
#   scripts/bench-embedding.sh [max_k]
set -euo pipefail
cd "$(dirname "$0")/.."
max_k=${1:-100}
cargo build --release -q -p tpa-cli
model=$(scripts/fetch-minilm.sh)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

start=$(date +%s.%N)
./target/release/tpa-embedding --model-path "$model" --output-dir "$out" --max-k "$max_k" --quiet
tpa_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
tpa_k=$(python3 -c "import json,sys; r=json.load(open('$out/clustering_results.json')); print(r['optimal_k'], len(r['curve']))")

start=$(date +%s.%N)
sk_line=$(python3 scripts/bench_embedding_sklearn.py "$model" "$max_k" 2>/dev/null)
sk_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
sk_k=$(echo "$sk_line" | sed -n 's/chosen k = \([0-9]*\),.*/\1/p')

echo "| pipeline (max_k $max_k, n_init 10) | wall s | chosen k | k values fitted |"
echo "|---|---|---|---|"
echo "| scikit-learn (original pipeline) | $sk_s | $sk_k | $(echo "$sk_line" | sed -n 's/.*k values tried: \([0-9]*\),.*/\1/p') |"
echo "| tpa-embedding | $tpa_s | ${tpa_k% *} | ${tpa_k#* } |"
echo "speed-up: $(awk -v a="$sk_s" -v b="$tpa_s" 'BEGIN{printf "%.2fx", a/b}')"
