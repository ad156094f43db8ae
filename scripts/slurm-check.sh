#!/usr/bin/env bash
# The README's Slurm array script on a real one-node Slurm cluster started on
# this machine: installs slurm-wlm and munge from Debian's packages if needed,
# starts munged, slurmctld and slurmd with their state in a temporary folder,
# submits examples/slurm/tpa-transformer.sbatch as a 4-task array on a generated
# model, merges with tpa-merge, compares the rows with a single run, and stops
# the cluster. Needs root (daemons, apt-get).
#
#   scripts/slurm-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
fi
# The test profile's binaries (CI has just built them for the tests).
cargo build -q -p tpa-cli -p tpa-testkit
export PATH="${CARGO_TARGET_DIR:-$PWD/target}/debug:$PATH"

state=$(mktemp -d /tmp/tpa-slurm.XXXXXX)
cleanup() {
    for pid in "$state"/*.pid; do
        [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
    done
    sleep 1
    rm -rf "$state"
}
trap cleanup EXIT

# munge, on its own socket and key.
mkdir -p "$state/munge"
mungekey --create --keyfile "$state/munge/munge.key" 2>/dev/null ||
    dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
chmod 600 "$state/munge/munge.key"
munged --force --socket "$state/munge/socket" --key-file "$state/munge/munge.key" \
    --pid-file "$state/munged.pid" --log-file "$state/munge/log" --seed-file "$state/munge/seed"

node=$(slurmd -C | head -1)
host=$(hostname -s)
cat >"$state/slurm.conf" <<EOF
ClusterName=tpa-check
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$state/munge/socket
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
$node State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
mkdir -p "$state/ctld" "$state/spool"
export SLURM_CONF="$state/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^idle' && break
    sleep 1
done
echo "cluster: $(sinfo -h -o '%P %D node(s) %T %c CPUs')"

work="$state/work"
mkdir -p "$work"
tpa-fixture --arch llama --dtype bf16 --vocab 2048 --hidden 384 --intermediate 1024 \
    --layers 4 --out "$work/model" >/dev/null
started=$(date +%s.%N)
jobid=$(sbatch --parsable --array=0-3 --cpus-per-task=1 --output="$work/task-%a.out" \
    examples/slurm/tpa-transformer.sbatch "$work/model" "$work/out.csv")
merge=$(sbatch --parsable --dependency="afterok:$jobid" --output="$work/merge.out" \
    --wrap "tpa-merge $work/out.csv")
echo "submitted array $jobid (4 tasks) and merge job $merge (afterok)"
for _ in $(seq 600); do
    [ -z "$(squeue -h -j "$jobid,$merge" 2>/dev/null)" ] && break
    sleep 1
done
elapsed=$(echo "$(date +%s.%N) - $started" | bc)
sacct_state=$(scontrol show job "$merge" 2>/dev/null | grep -o 'JobState=[A-Z]*' || true)
echo "array and merge finished in ${elapsed} s; merge job ${sacct_state:-gone}"
cat "$work/merge.out"
ls "$work/out.csv.parts"

tpa-transformer --model-path "$work/model" --out "$work/single.csv" --no-gpu --quiet
python3 - "$work/out.csv" "$work/single.csv" <<'PY'
import csv, sys
merged, single = (list(csv.DictReader(open(p))) for p in sys.argv[1:])
skip = {"seconds", "backend", "created_at"}
same = [{k: v for k, v in r.items() if k not in skip} for r in merged] == \
       [{k: v for k, v in r.items() if k not in skip} for r in single]
print(f"merged rows {len(merged)}, single-run rows {len(single)}: "
      f"{'identical (apart from seconds, backend, created_at)' if same else 'DIFFERENT'}")
sys.exit(0 if same else 1)
PY
