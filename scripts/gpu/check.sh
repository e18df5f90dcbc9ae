#!/usr/bin/env bash
# The GPU check: one command on the machine with the GPU (it has Python + PyTorch and the CUDA
# toolkit, no Node, no network). Prepare here first:
#
#   npm run build && node scripts/gpu/bundle.mjs compiler/tools/gpu-check.ts && rm -f scripts/gpu/.bundle/node
#
# then run it there with the bundle carried (device tool: carry ['scripts/gpu/.bundle']):
#
#   bash scripts/gpu/check.sh "$OUT"
#
# Stages (each with its own time limit; a failing stage does not stop the next):
#   1. nvidia-smi: the card, its compute capability (sm_90 -> --target h100, sm_80 -> a100);
#   2. scripts/gpu/baselines.py: the card's bf16/fp8 GEMM rate, copy bandwidth, torch SDPA at our
#      benchmark shapes (the floors and the baselines of the same run);
#   3. compiler/tools/gpu-check.ts (bundled): builds the coder and 7B/8B-shaped artifacts with nvcc,
#      checks every step against the reference backend, greedy-decodes coder on both backends,
#      times every step against its floor;
#   4. compute-sanitizer memcheck on the coder case;
# JSON under OUT (baselines.json, gpu-check.json, logs); the short table printed last.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-${OUT:-gpu-out}}"
mkdir -p "$OUT"
B=scripts/gpu/.bundle
if [ ! -f "$B/gpu-check.mjs" ]; then echo "check.sh: $B/gpu-check.mjs missing: prepare the bundle first (see the header)"; exit 2; fi
t0=$(date +%s)
stage() { echo "== [$(( $(date +%s) - t0 ))s] $*"; }

stage "gpu"
nvidia-smi --query-gpu=name,compute_cap,memory.total,clocks.max.sm,driver_version --format=csv | tee "$OUT/gpu.csv"
CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' ')
case "$CAP" in 8.*) TARGET=a100 ;; *) TARGET=h100 ;; esac
nvcc --version | tail -2 > "$OUT/nvcc.txt" 2>&1 || echo "nvcc missing" | tee "$OUT/nvcc.txt"

stage "baselines (torch)"
timeout 240 python3 scripts/gpu/baselines.py "$OUT" > "$OUT/baselines.log" 2>&1
echo "baselines.py exit $?"; tail -n 30 "$OUT/baselines.log"

stage "lfc check (target $TARGET)"
sh "$B/run.sh" --node --version
timeout 420 sh "$B/run.sh" --out "$OUT" --target "$TARGET" --baselines "$OUT/baselines.json" --root . > "$OUT/check.log" 2>&1
CHECK=$?
echo "gpu-check exit $CHECK"

if command -v compute-sanitizer > /dev/null 2>&1; then
  stage "compute-sanitizer memcheck (coder)"
  timeout 240 compute-sanitizer --tool memcheck --target-processes all --error-exitcode 9 \
    "$B/node" "$B/gpu-check.mjs" --out "$OUT/sanitizer" --target "$TARGET" --only coder --quick --root . > "$OUT/sanitizer.log" 2>&1
  echo "memcheck exit $? (9: memcheck found errors)"; grep -E "ERROR SUMMARY|Invalid" "$OUT/sanitizer.log" | head -5
fi
stage "done"
tail -n 12 "$OUT/check.log"
exit $CHECK
