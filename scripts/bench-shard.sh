#!/usr/bin/env bash
# --shard on one 2-core machine: one process with one thread, against two shard
# processes of one thread each running at once (then tpa-merge), and one process
# with both threads for reference; on a Llama-1.1B-shaped bf16 model cut to 6
# layers (57 matrices). Also checks that the merged rows equal the single run's.
#
#   scripts/bench-shard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p tpa-cli -p tpa-testkit
bin=./target/release
model=data/models/bench-llama-1b-6layers
[ -d "$model" ] || $bin/tpa-fixture --arch llama --dtype bf16 --vocab 32000 --hidden 2048 \
    --intermediate 5632 --layers 6 --kv-dim 512 --out "$model" >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cat "$model"/*.safetensors >/dev/null
now() { date +%s.%N; }
run() { $bin/tpa-transformer --model-path "$model" --no-gpu --quiet "$@"; }

t0=$(now); run --out "$out/one.csv" -j 1; t1=$(now)
run --out "$out/sharded.csv" -j 1 --shard 0/2 & run --out "$out/sharded.csv" -j 1 --shard 1/2 & wait
t2=$(now); $bin/tpa-merge "$out/sharded.csv" -q; t3=$(now)
run --out "$out/two-threads.csv" -j 2; t4=$(now)
python3 - "$out" "$t0" "$t1" "$t2" "$t3" "$t4" <<'PY'
import csv, sys
out, t0, t1, t2, t3, t4 = sys.argv[1], *map(float, sys.argv[2:])
rows = lambda n: [{k: v for k, v in r.items() if k not in ("seconds", "backend", "created_at")}
                  for r in csv.DictReader(open(f"{out}/{n}.csv"))]
same = rows("one") == rows("sharded")
one, two, merge, threads = t1 - t0, t2 - t1, t3 - t2, t4 - t3
print("| run | wall s | speed-up over one process, one thread |")
print("|---|---|---|")
print(f"| 1 process, 1 thread | {one:.1f} | 1.00× |")
print(f"| 2 shard processes (--shard 0/2, 1/2), 1 thread each, + tpa-merge ({merge:.2f} s) | {two + merge:.1f} | {one / (two + merge):.2f}× |")
print(f"| 1 process, 2 threads (-j 2, the default here) | {threads:.1f} | {one / threads:.2f}× |")
print(f"\nmerged rows {'identical to' if same else 'DIFFERENT from'} the single run's ({len(rows('one'))} rows)")
PY
