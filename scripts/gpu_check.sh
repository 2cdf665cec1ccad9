#!/usr/bin/env bash
# The CUDA backend's checks on a GPU machine, in one call of the device tool (docs/CUDA.md):
#   1. the op tests (every CUDA op against the CPU engine's) and the whole-model tests (golden
#      models against their reference logits and the CPU engine; F32 models of the golden shapes,
#      synthesized here, against the CPU engine);
#   2. the GPU's copy bandwidth, then a synthesized Qwen3-30B-A3B-shaped model (Q4_K) benchmarked:
#      decode at 1K and 16K context, prefill, and decode's traffic as a share of that bandwidth.
# Expects the bundle scripts/gpu_bundle.sh made in .gpu/ (carried) and writes logs and JSON lines
# under $OUT (the device tool brings back at most 8 files). Each step has its own time limit, so
# one hang costs that step, not the whole call. GPU_CHECK_SKIP_BENCH=1 runs the tests only;
# GPU_CHECK_BF16=1 also benchmarks the BF16 model (61 GB: needs the disk and ~5 more minutes).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
G=$root/.gpu
OUT=${OUT:-/tmp/gpu_check_out}
W=${GPU_CHECK_WORK:-/tmp/flashfix-gpu}
mkdir -p "$OUT" "$W"
exec > >(tee "$OUT/log.txt") 2>&1
[[ -x $G/bin/flashfix ]] || { echo "gpu_check: no bundle in $G (run scripts/gpu_bundle.sh and carry .gpu)"; exit 1; }
loader=$(ls "$G"/lib/ld-linux-x86-64.so.* | head -1)
libpath="$G/lib:${LD_LIBRARY_PATH:-}:/usr/local/nvidia/lib64:/usr/local/nvidia/lib:/usr/lib/x86_64-linux-gnu:/usr/lib64"
# The bundled loader with the bundled libraries first; the driver's libcuda comes from the system.
run() { "$loader" --library-path "$libpath" "$G/bin/$1" "${@:2}"; }
step() { echo; echo "=== $* ($(date -u +%T))"; }
results=$OUT/results.jsonl
: > "$results"

step "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv || true
nproc; df -h "$W" | tail -1

step "op tests"
timeout 180 "$loader" --library-path "$libpath" "$G/bin/cuda_ops_test" 2>&1 | tee "$OUT/ops_test.txt" | tail -40
echo "ops_test exit ${PIPESTATUS[0]}"

step "synthesize F32 models of the golden shapes"
models=()
for arch in qwen3moe step35; do
  timeout 120 run flashfix synth --arch "$arch" --out "$W/tiny-$arch-f32.gguf" && models+=("$W/tiny-$arch-f32.gguf")
done
timeout 120 run flashfix synth --arch step35 --type q4_K --out "$W/tiny-step35-q4k.gguf" && models+=("$W/tiny-step35-q4k.gguf")

step "whole-model tests"
FLASHFIX_GOLDEN_DIR=$G/golden FLASHFIX_CUDA_MODELS=$(IFS=:; echo "${models[*]}") \
  timeout 300 "$loader" --library-path "$libpath" "$G/bin/cuda_forward_test" 2>&1 | tee "$OUT/forward_test.txt" | grep -E "^\[cuda\]|FAILED|PASSED|SKIPPED|OK \]|Failure|Expected|Which is|rel" | tail -80
echo "forward_test exit ${PIPESTATUS[0]}"

[[ ${GPU_CHECK_SKIP_BENCH:-0} == 1 ]] && exit 0

step "copy bandwidth"
timeout 60 run flashfix bench --membw --backend cuda --json | tee -a "$results"

bench_model() {  # type
  local m=$W/qwen3-30b-a3b-$1.gguf
  step "synthesize qwen3-30b-a3b $1"
  time timeout 420 run flashfix synth --preset qwen3-30b-a3b --type "$1" --out "$m" || { echo "synth failed or timed out"; rm -f "$m"; return; }
  ls -la "$m"
  step "bench $1 decode at 1K context"
  timeout 180 run flashfix bench --model "$m" --backend cuda --prompt-tokens 1024 --gen-tokens 128 --json | tee -a "$results"
  step "bench $1 decode at 16K context (and prefill of 16K)"
  timeout 300 run flashfix bench --model "$m" --backend cuda --prompt-tokens 16384 --gen-tokens 64 --json | tee -a "$results"
  rm -f "$m"
}
bench_model q4_K
[[ ${GPU_CHECK_BF16:-0} == 1 ]] && bench_model bf16
step "done"
