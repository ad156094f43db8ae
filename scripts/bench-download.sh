#!/usr/bin/env bash
# tpa-download against huggingface_hub's snapshot_download, both fetching the
# same ~1.1 GB two-shard bf16 model from the tests' mock Hub (tpa-mock-hub) on
# 127.0.0.1, in one run: what each client costs when the network is not the
# limit (hashing, writing, verifying). Checks that both wrote identical files.
# Needs `pip install huggingface_hub`.
#
#   scripts/bench-download.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p tpa-cli -p tpa-testkit
work=$(mktemp -d)
trap 'kill "$hub_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

model=data/models/bench-download-llama
[ -d "$model" ] || ./target/release/tpa-fixture --arch llama --dtype bf16 --vocab 32000 --hidden 2048 \
    --intermediate 5632 --layers 8 --shards 2 --out "$model" >/dev/null
echo '{"model_type": "llama"}' > "$model/config.json"
size=$(du -sb "$model" | cut -f1)

./target/release/tpa-mock-hub --repo bench/llama "$model" > "$work/endpoint" &
hub_pid=$!
for _ in $(seq 100); do [ -s "$work/endpoint" ] && break; sleep 0.2; done
export HF_ENDPOINT=$(head -1 "$work/endpoint") HF_HOME="$work/hf-home" HF_HUB_DISABLE_TELEMETRY=1
unset HF_TOKEN

seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N); awk -v a="$start" -v b="$end" 'BEGIN{printf "%.2f", b-a}'; }
tpa_s=$(seconds ./target/release/tpa-download --model-id bench/llama --out "$work/tpa" --quiet)
tpa_again_s=$(seconds ./target/release/tpa-download --model-id bench/llama --out "$work/tpa" --quiet)
hf() { python3 -c "from huggingface_hub import snapshot_download; snapshot_download('bench/llama', local_dir='$work/hf')"; }
hf_s=$(seconds hf)
hf_again_s=$(seconds hf)

(cd "$work/tpa/bench/llama" && sha256sum *.safetensors *.json | sort) > "$work/tpa.sums"
(cd "$work/hf" && sha256sum *.safetensors *.json | sort) > "$work/hf.sums"
same=$(cmp -s "$work/tpa.sums" "$work/hf.sums" && echo identical || echo DIFFERENT)

mb=$(awk -v s="$size" 'BEGIN{printf "%.0f", s/1e6}')
echo "| client (${mb} MB, 2 shards, loopback) | first download s | MB/s | re-run s | files |"
echo "|---|---|---|---|---|"
echo "| huggingface_hub $(python3 -c 'import huggingface_hub as h; print(h.__version__)') snapshot_download | $hf_s | $(awk -v s="$size" -v t="$hf_s" 'BEGIN{printf "%.0f", s/1e6/t}') | $hf_again_s | |"
echo "| tpa-download | $tpa_s | $(awk -v s="$size" -v t="$tpa_s" 'BEGIN{printf "%.0f", s/1e6/t}') | $tpa_again_s | $same |"
