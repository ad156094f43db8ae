#!/usr/bin/env bash
# Times tpa-diff against numpy/scipy (scripts/bench_diff_numpy.py: load both
# sides in float64, subtract, scipy's LAPACK SVDs) on the same inputs in one
# run, and checks that the delta ranks and intruder counts agree. Needs numpy,
# scipy and safetensors.
#
#   scripts/bench-diff.sh            # a ~1.1B-shaped bf16 pair (4 of its 22 layers)
#   scripts/bench-diff.sh --adapter  # a Llama-2-7B-shaped bf16 base with an r = 16
#                                    # adapter on every projection (13.5 GB of base),
#                                    # --delta-only (numpy on 2 of the 32 layers)
#
# Models go to data/models/bench-diff-* (git-ignored; delete them afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p tpa-cli -p tpa-testkit
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

timed() { # label command...: runs it, appends "label wall_s peak_MiB" to $out/times
    local label=$1
    shift
    /usr/bin/time -o "$out/time" -f "%e %M" "$@" 2>"$out/$label.err" >/dev/null ||
        { cat "$out/$label.err"; exit 1; }
    read -r wall kb <"$out/time"
    echo "$label $wall $((kb / 1024))" >>"$out/times"
}

compare() { # tpa.csv numpy.csv: agreement of the shared columns
    python3 - "$@" <<'PY'
import csv, sys
tpa = {r["param_name"]: r for r in csv.DictReader(open(sys.argv[1]))}
ref = list(csv.DictReader(open(sys.argv[2])))
exact = ["delta_rank", "delta_svd_50_percent_rank", "delta_svd_90_percent_rank", "delta_svd_99_percent_rank"]
worst, differ = 0.0, []
for r in ref:
    t = tpa[r["param_name"]]
    for c in r:
        if c == "param_name":
            continue
        ours = t.get(c) or t.get(c + "_10")
        if c in exact or c == "intruders":
            if ours != r[c]:
                differ.append((r["param_name"], c, ours, r[c]))
        elif r[c] != "":
            # Shares in [0, 1] such as a fit error that is exactly 0 here
            # and LAPACK's rounding (~1e-15) there agree below 1e-12.
            x, y = float(ours), float(r[c])
            if abs(x - y) > 1e-12:
                worst = max(worst, abs(x - y) / max(abs(y), 1e-300))
print(f"{len(ref)} matrices; ranks and intruders {'identical' if not differ else f'{len(differ)} differ: {differ[:3]}'}; "
      f"other columns within {worst:.1e} relative (or 1e-12 absolute)")
PY
}

if [ "${1:-}" = "--adapter" ]; then
    base=data/models/bench-diff-llama-7b
    [ -d "$base" ] || ./target/release/tpa-fixture --arch llama --dtype bf16 --vocab 32000 \
        --hidden 4096 --intermediate 11008 --layers 32 --shards 3 --out "$base" >/dev/null
    adapter=data/models/bench-diff-lora-r16
    [ -d "$adapter" ] || python3 scripts/make_lora_adapter.py "$base" "$adapter" --rank 16 >/dev/null
    cat "$base"/*.safetensors >/dev/null
    timed tpa-delta-only ./target/release/tpa-diff --base "$base" --adapter "$adapter" \
        --out "$out/tpa-delta.csv" --delta-only --no-gpu -q
    # numpy on the first two layers only (14 of 224 modules): dense B@A and its svdvals.
    timed numpy-delta-2-layers python3 scripts/bench_diff_numpy.py "$base" --adapter "$adapter" \
        --out "$out/numpy-delta.csv" --delta-only --layers 2
    cat "$out/times"
    grep -H "linalg" "$out"/numpy-*.err
    echo "delta-only, layers 0-1: $(compare "$out/tpa-delta.csv" "$out/numpy-delta.csv")"
    exit
fi

base=data/models/bench-diff-llama-1b-4l
tuned=data/models/bench-diff-llama-1b-4l-tuned
[ -d "$base" ] || ./target/release/tpa-fixture --arch llama --dtype bf16 --vocab 32000 \
    --hidden 2048 --intermediate 5632 --layers 4 --kv-dim 256 --out "$base" >/dev/null
[ -d "$tuned" ] || python3 scripts/make_diff_twin.py "$base" "$tuned" >/dev/null
cat "$base"/*.safetensors "$tuned"/*.safetensors >/dev/null
for k in 10 0; do
    timed "tpa-top-k-$k" ./target/release/tpa-diff --base "$base" --model "$tuned" \
        --out "$out/tpa-$k.csv" --top-k "$k" --no-gpu -q
    timed "numpy-top-k-$k" python3 scripts/bench_diff_numpy.py "$base" --model "$tuned" \
        --out "$out/numpy-$k.csv" --top-k "$k"
    echo "top-k $k: $(compare "$out/tpa-$k.csv" "$out/numpy-$k.csv")"
done
timed tpa-delta-only ./target/release/tpa-diff --base "$base" --model "$tuned" \
    --out "$out/tpa-d.csv" --delta-only --no-gpu -q
timed numpy-delta-only python3 scripts/bench_diff_numpy.py "$base" --model "$tuned" \
    --out "$out/numpy-d.csv" --delta-only
echo "delta-only: $(compare "$out/tpa-d.csv" "$out/numpy-d.csv")"
cat "$out/times"
grep -H "linalg" "$out"/numpy-*.err
