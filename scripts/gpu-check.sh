#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU (an H200 when one is lent).
#
#  1. builds the release binaries with the CUDA backend (where cargo exists;
#     the device machines have no Rust, so run `scripts/gpu-check.sh --prepare`
#     here first: it builds them into .gpu-check/, which the device run carries);
#  2. probes the GPU (finds PyTorch's CUDA 13 libraries by itself);
#  3. compares GPU and CPU spectra on fresh random matrices (4096², 11008×4096,
#     4096×11008, 32000×4096, and one planted with singular values at the rank
#     tolerance): ranks exact, every σ ≥ 1e-3·σmax within 1e-9 relative, and
#     the out-of-memory fallback (crates/tpa-core/examples/gpu_check.rs);
#  4. times tpa-transformer on a ~1.1B Llama-shaped bf16 model with the GPU and
#     with --no-gpu, and compares their ranks;
#  5. k-means on the GPU against the CPU (30522 × 384, k = 10, 40, 92; inertia
#     within 0.5%, every label the nearest centre) and one GPU fit at
#     151936 × 2560, k = 100 (crates/tpa-core/examples/kmeans_gpu_check.rs);
#  6. prints the tables last. Well under 10 minutes on an H200.
#
# Device run: command `bash scripts/gpu-check.sh`, carry [".gpu-check"].
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.gpu-check

build() {
    cargo build --release -q -p tpa-cli -p tpa-testkit
    cargo build --release -q -p tpa-core --example gpu_check --example kmeans_gpu_check
    mkdir -p "$bin"
    cp target/release/tpa-transformer target/release/tpa-fixture target/release/examples/gpu_check \
        target/release/examples/kmeans_gpu_check "$bin/"
}

if [ "${1:-}" = "--prepare" ]; then
    build
    ls -la "$bin"
    exit 0
fi
if command -v cargo >/dev/null 2>&1; then
    build
fi
if [ ! -x "$bin/gpu_check" ]; then
    echo "no binaries in $bin: run scripts/gpu-check.sh --prepare on a machine with Rust" >&2
    exit 2
fi

if [ -z "${TPA_CUDA_LIB_DIR:-}" ]; then
    TPA_CUDA_LIB_DIR=$(python3 - <<'PY' 2>/dev/null || true
import os
try:
    import nvidia
    for root in nvidia.__path__:
        lib = os.path.join(root, "cu13", "lib")
        if os.path.isdir(lib):
            print(lib)
            break
except ImportError:
    pass
PY
)
    [ -n "$TPA_CUDA_LIB_DIR" ] && export TPA_CUDA_LIB_DIR
fi
echo "TPA_CUDA_LIB_DIR=${TPA_CUDA_LIB_DIR:-}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
report=${OUT:-/tmp}/gpu-check.txt

echo "== matrices: GPU against CPU"
timeout 420 "$bin/gpu_check" | tee "$report"

echo "== whole model: ~1.1B Llama-shaped bf16"
model=/tmp/tpa-gpu-check-llama-1b
[ -d "$model" ] || "$bin/tpa-fixture" --arch llama --dtype bf16 --vocab 32000 --hidden 2048 \
    --intermediate 5632 --layers 22 --kv-dim 512 --out "$model" >/dev/null
cat "$model"/*.safetensors >/dev/null
seconds() { local start end; start=$(date +%s.%N); "$@"; end=$(date +%s.%N); awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}'; }
gpu_s=$(seconds "$bin/tpa-transformer" --model-path "$model" --out /tmp/tpa-gpu.csv --gpu --quiet)
cpu_s=$(seconds "$bin/tpa-transformer" --model-path "$model" --out /tmp/tpa-cpu.csv --no-gpu --quiet)
python3 - /tmp/tpa-gpu.csv /tmp/tpa-cpu.csv "$gpu_s" "$cpu_s" "$(nproc)" <<'PY' | tee -a "$report"
import csv, sys
gpu_csv, cpu_csv, gpu_s, cpu_s, cores = sys.argv[1:]
g = {r["param_name"]: r for r in csv.DictReader(open(gpu_csv))}
c = {r["param_name"]: r for r in csv.DictReader(open(cpu_csv))}
cols = ["actual_rank", "svd_50_percent_rank", "svd_90_percent_rank", "svd_99_percent_rank"]
diff = [(k, x) for k in c for x in cols if g[k][x] != c[k][x]]
on_gpu = sum(1 for r in g.values() if r["backend"] == "cuda")
print()
print("| model | matrices | with GPU s | CPU only s (%s cores) | speed-up | matrices on the GPU | ranks |" % cores)
print("|---|---|---|---|---|---|---|")
print(f"| llama-1.1b-bf16 | {len(g)} | {gpu_s} | {cpu_s} | {float(cpu_s)/float(gpu_s):.1f}x | {on_gpu} | "
      f"{'identical' if not diff else f'{len(diff)} differ: {diff[:3]}'} |")
PY

echo "== k-means: GPU against CPU"
timeout 300 "$bin/kmeans_gpu_check" | tee -a "$report"
echo "report: $report"
