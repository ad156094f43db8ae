#!/usr/bin/env bash
# The planned wall time of tpa-transformer on DeepSeek-V3 from its shard headers
# alone: tpa-fixture rebuilds the checkpoint's layout (61 layers, the first 3
# dense; MLA attention; 256 routed experts + 1 shared of 2048x7168; embedding and
# LM head 129280x7168 in BF16; block-FP8 weights with their weight_scale_inv; the
# 14B multi-token-prediction layer left out) as 163 header-only shard files
# (sparse: ~20 MB on disk for 673 GB of layout), tpa-mock-hub --headers-only
# serves them, and tpa-download --list-tensors reads each header with a Range
# request, measures this machine's analysis rate and prints the plan for
# 1/8/64/256 machines and the shard count for a 1-hour target.
#
#   scripts/plan-deepseek.sh [TABLE.csv]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p tpa-cli -p tpa-testkit
work=$(mktemp -d)
trap 'kill "$hub_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
table=${1:-$work/deepseek-v3-tensors.csv}

./target/release/tpa-fixture --arch deepseek-v3 --dtype bf16 --vocab 129280 --hidden 7168 \
    --intermediate 18432 --layers 61 --dense-layers 3 --experts 256 --moe-intermediate 2048 \
    --mla 1536 512 128 --quant fp8-block-128x128 --shards 163 --headers-only --out "$work/m" >/dev/null
echo "layout: $(ls "$work/m" | grep -c '\.safetensors$') shard files, $(du -sb --apparent-size "$work/m" | cut -f1) bytes of layout, $(du -sh "$work/m" | cut -f1) on disk"

./target/release/tpa-mock-hub --headers-only --repo deepseek-ai/DeepSeek-V3 "$work/m" > "$work/endpoint" &
hub_pid=$!
for _ in $(seq 100); do [ -s "$work/endpoint" ] && break; sleep 0.2; done
export HF_ENDPOINT=$(head -1 "$work/endpoint") HF_HOME="$work/hf-home"
unset HF_TOKEN
start=$(date +%s.%N)
./target/release/tpa-download --model-id deepseek-ai/DeepSeek-V3 --list-tensors --out "$table" --target-hours 1
echo "tpa-download --list-tensors: $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s wall, $(($(wc -l < "$table") - 1)) rows in $table"
