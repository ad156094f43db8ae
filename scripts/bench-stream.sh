#!/usr/bin/env bash
# Streaming from the Hub under a disk budget against download-then-analyse, on
# the tests' mock Hub (tpa-mock-hub) serving at a limited rate over loopback: a
# ~330 MB eight-shard bf16 Llama-shaped model, analysed by tpa-transformer
#   1. after huggingface_hub's snapshot_download (the reference downloader),
#   2. after tpa-download,
#   3. streamed: tpa-transformer --model-id --max-disk (2.5 shards), which
#      downloads the next shard while it analyses one and deletes each after.
# Prints wall times, the download folder's peak size (sampled every 50 ms), and
# whether the rows are the same. Needs `pip install huggingface_hub`.
#
# With a GGUF file as the second argument, the model is that file re-split
# into a set of FILES (default 8; scripts/split_gguf.py, bytes unchanged; needs
# `pip install gguf numpy`), streamed file by file under a budget of
# BUDGET_PERCENT (default 250) of its largest file.
#
#   scripts/bench-stream.sh [RATE_MB_PER_S [GGUF_FILE [FILES [BUDGET_PERCENT]]]]   # default 40 MB/s
set -euo pipefail
cd "$(dirname "$0")/.."
rate_mb=${1:-40}
gguf=${2:-}
files=${3:-8}
percent=${4:-250}
cargo build --release -q -p tpa-cli -p tpa-testkit
work=$(mktemp -d)
trap 'kill "$hub_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

if [ -n "$gguf" ]; then
    name=$(basename "$gguf" .gguf)
    model=data/models/bench-stream-gguf-$name-$files
    last=$(printf '%s-%05d-of-%05d.gguf' "$name" "$files" "$files")
    [ -f "$model/$last" ] || python3 scripts/split_gguf.py "$gguf" "$model/$name" "$files"
    weights='*.gguf'
    shards=$files
else
    model=data/models/bench-stream-llama
    [ -d "$model" ] || ./target/release/tpa-fixture --arch llama --dtype bf16 --vocab 32000 --hidden 1024 \
        --intermediate 2816 --layers 8 --shards 8 --out "$model" >/dev/null
    echo '{"model_type": "llama"}' > "$model/config.json"
    weights='*.safetensors'
    shards=8
fi
size=$(du -sb "$model" | cut -f1)
largest=$(find "$model" -name "$weights" -printf '%s\n' | sort -n | tail -1)
if [ -n "$gguf" ]; then budget=$((largest * percent / 100 + 65536)); else budget=$((largest * 5 / 2 + 65536)); fi

./target/release/tpa-mock-hub --rate $((rate_mb * 1000000)) --repo bench/stream "$model" > "$work/endpoint" &
hub_pid=$!
for _ in $(seq 100); do [ -s "$work/endpoint" ] && break; sleep 0.2; done
export HF_ENDPOINT=$(head -1 "$work/endpoint") HF_HOME="$work/hf-home" HF_HUB_DISABLE_TELEMETRY=1
unset HF_TOKEN

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
# Runs "$@" while sampling the size of folder $1 every 50 ms; prints "seconds peak_bytes".
watched() {
    local dir=$1; shift
    local start peak=0 pid
    start=$(now)
    "$@" >/dev/null 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        local s; s=$(du -sb "$dir" 2>/dev/null | cut -f1 || echo 0)
        [ "${s:-0}" -gt "$peak" ] && peak=$s
        sleep 0.05
    done
    wait "$pid"
    echo "$(since "$start") $peak"
}
analyse() { ./target/release/tpa-transformer --model-path "$1" --out "$2" --no-gpu --quiet; }

mkdir -p "$work/hf" "$work/tpa" "$work/stream"
start=$(now)
read -r hf_dl hf_peak < <(watched "$work/hf" python3 -c "from huggingface_hub import snapshot_download; snapshot_download('bench/stream', local_dir='$work/hf')")
analyse "$work/hf" "$work/hf.csv"
hf_total=$(since "$start")

start=$(now)
read -r tpa_dl tpa_peak < <(watched "$work/tpa" ./target/release/tpa-download --model-id bench/stream --out "$work/tpa" --quiet)
analyse "$work/tpa/bench/stream" "$work/tpa.csv"
tpa_total=$(since "$start")

read -r stream_total stream_peak < <(watched "$work/stream" ./target/release/tpa-transformer --model-id bench/stream \
    --download-dir "$work/stream" --max-disk "$budget" --out "$work/stream.csv" --no-gpu --quiet)

same=$(python3 - "$work/tpa.csv" "$work/stream.csv" <<'PY'
import csv, sys
# Labels differ (the local run has no --model-id); timings differ.
drop = {"seconds", "backend", "created_at", "model_path", "model_id", "revision"}
rows = [[{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(open(p))] for p in sys.argv[1:]]
diff = sorted({k for a, b in zip(*rows) for k in a if a[k] != b.get(k)})
print("identical" if rows[0] == rows[1] else f"DIFFERENT ({len(rows[0])} vs {len(rows[1])} rows; {diff})")
PY
)
mb() { awk -v s="$1" 'BEGIN{printf "%.0f", s/1e6}'; }
echo "Model: $(mb "$size") MB in $shards files (largest $(mb "$largest") MB); mock Hub at ${rate_mb} MB/s; streaming budget $(mb "$budget") MB"
echo
echo "| way | download s | total wall s | peak disk MB | rows |"
echo "|---|---|---|---|---|"
echo "| huggingface_hub $(python3 -c 'import huggingface_hub as h; print(h.__version__)') snapshot_download, then tpa-transformer | $hf_dl | $hf_total | $(mb "$hf_peak") | |"
echo "| tpa-download, then tpa-transformer | $tpa_dl | $tpa_total | $(mb "$tpa_peak") | |"
echo "| tpa-transformer --model-id --max-disk (streamed) | (overlapped) | $stream_total | $(mb "$stream_peak") | $same |"
if [ -n "$gguf" ]; then
    # How many Range requests the GGUF headers took (4 MiB first, doubling).
    ./target/release/tpa-download --model-id bench/stream --list-tensors --units-per-second 1e9 \
        --out "$work/list.csv" 2>&1 | grep -o '[0-9]* GGUF files.*header requests'
fi
