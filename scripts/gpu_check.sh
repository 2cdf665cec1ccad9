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
# GPU_CHECK_AB=1 repeats the op tests and the 1K benchmark without programmatic dependent launch
# (FLASHFIX_CUDA_PDL=0); GPU_CHECK_PROFILE=1 adds a run printing each op's device time (FLASHFIX_CUDA_PROFILE);
# GPU_CHECK_SHORT_CONTEXT_ONLY=1 skips the 16K benchmark; GPU_CHECK_BF16=1 also benchmarks the BF16 model (61 GB: needs the disk and ~5 more minutes).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
G=$root/.gpu
OUT=${OUT:-/tmp/gpu_check_out}
W=${GPU_CHECK_WORK:-/tmp/flashfix-gpu}
mkdir -p "$OUT" "$W"
exec > >(tee "$OUT/log.txt") 2>&1
[[ -f $G/runtime.tar.xz ]] || { echo "gpu_check: no bundle in $G (run scripts/gpu_bundle.sh and carry .gpu)"; exit 1; }
R=$W/runtime
rm -rf "$R" && mkdir -p "$R"
if command -v xz >/dev/null; then
  xz -dc "$G/runtime.tar.xz" | tar -C "$R" -xf -
else
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$G/runtime.tar.xz" "$R"
fi
loader=$(ls "$R"/lib/ld-linux-x86-64.so.* | head -1)
libpath="$R/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}:/usr/local/nvidia/lib64:/usr/local/nvidia/lib:/usr/lib/x86_64-linux-gnu:/usr/lib64"
# The bundled loader with the bundled libraries first; the driver's libcuda comes from the system.
ffx=("$loader" --library-path "$libpath" "$R/bin/flashfix")
step() { echo; echo "=== $* ($(date -u +%T))"; }
# Each test in its own process: a kernel fault poisons its CUDA context, and would otherwise take
# every later test of the binary with it. A failing op test is rerun under compute-sanitizer (it
# works on the Firecracker machines, not on gVisor: device README's KINDS.md).
run_each() {  # binary per-test-timeout log
  local bin=$R/bin/$1 limit=$2 log=$3 suite="" t
  : > "$log"
  while IFS= read -r line; do
    if [[ $line != " "* ]]; then suite=${line%% *}; continue; fi
    t=$suite${line#  }; t=${t%% *}
    timeout "$limit" "$loader" --library-path "$libpath" "$bin" --gtest_filter="$t" > "$W/one.txt" 2>&1 < /dev/null
    local rc=$?
    cat "$W/one.txt" >> "$log"
    if (( rc == 0 )); then
      if grep -q "SKIPPED \] 1 test" "$W/one.txt"; then echo "SKIP $t: $(grep -A1 Skipped "$W/one.txt" | tail -1)"; else echo "PASS $t"; fi
    else
      echo "FAIL $t (exit $rc)"
      grep -E "Failure|Expected|Which is|Value of|error" "$W/one.txt" | head -8
      if [[ $1 == cuda_ops_test ]] && command -v compute-sanitizer >/dev/null; then
        timeout 120 compute-sanitizer --tool memcheck "$loader" --library-path "$libpath" "$bin" --gtest_filter="$t" 2>&1 < /dev/null | tail -30
      fi
    fi
  done < <("$loader" --library-path "$libpath" "$bin" --gtest_list_tests | grep -v '^Running main')
}
results=$OUT/results.jsonl
: > "$results"

step "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv || true
nproc; df -h "$W" | tail -1

step "op tests"
run_each cuda_ops_test 40 "$OUT/ops_test.txt"
if [[ ${GPU_CHECK_AB:-0} == 1 ]]; then
  step "op tests with FLASHFIX_CUDA_PDL=0"
  FLASHFIX_CUDA_PDL=0 run_each cuda_ops_test 40 "$OUT/ops_test_no_pdl.txt"
fi

step "synthesize F32 models of the golden shapes"
models=()
for arch in qwen3moe step35; do
  timeout 120 "${ffx[@]}" synth --arch "$arch" --out "$W/tiny-$arch-f32.gguf" && models+=("$W/tiny-$arch-f32.gguf")
done
timeout 120 "${ffx[@]}" synth --arch step35 --type q4_K --out "$W/tiny-step35-q4k.gguf" && models+=("$W/tiny-step35-q4k.gguf")

step "whole-model tests"
export FLASHFIX_GOLDEN_DIR=$G/golden FLASHFIX_CUDA_MODELS
FLASHFIX_CUDA_MODELS=$(IFS=:; echo "${models[*]}")
run_each cuda_forward_test 60 "$OUT/forward_test.txt"
grep -E "^\[cuda\]|exact through" "$OUT/forward_test.txt"

[[ ${GPU_CHECK_SKIP_BENCH:-0} == 1 ]] && exit 0

step "copy bandwidth"
timeout 60 "${ffx[@]}" bench --membw --backend cuda --json | tee -a "$results"
(( PIPESTATUS[0] == 0 )) || { echo "gpu_check: no usable GPU, no benchmarks"; exit 1; }

# The 48-layer model is synthesized with random quant blocks (synth --random-blocks: seconds, where
# quantizing Gaussians took ~5 minutes on 16 cores) in whichever of $W and /dev/shm has more room. If
# neither holds all 48 layers (BF16: 61 GB), the most layers that fit are benchmarked and labelled so
# (decode time per token scales with the layers).
bench_model() {  # type bytes-per-layer
  local dir=$W
  (( $(df --output=avail -B1 /dev/shm 2>/dev/null | tail -1 || echo 0) > $(df --output=avail -B1 "$W" | tail -1) )) && dir=/dev/shm
  local m=$dir/qwen3-30b-a3b-$1.gguf avail layers
  avail=$(df --output=avail -B1 "$dir" | tail -1)
  layers=$(( (avail - (2 << 30)) / $2 )); (( layers > 48 )) && layers=48
  (( layers >= 1 )) || { echo "no room for one layer of $1 in $dir"; return; }
  step "synthesize qwen3-30b-a3b $1, $layers layers, in $dir"
  time timeout 240 "${ffx[@]}" synth --preset qwen3-30b-a3b --layers $layers --type "$1" --random-blocks --out "$m" || { echo "synth failed"; rm -f "$m"; return; }
  ls -la "$m"
  step "bench $1 ($layers layers) decode at 1K context"
  timeout 150 "${ffx[@]}" bench --model "$m" --backend cuda --prompt-tokens 1024 --gen-tokens 128 --json | tee -a "$results"
  if [[ ${GPU_CHECK_AB:-0} == 1 ]]; then  # the same binary without programmatic dependent launch
    step "bench $1 ($layers layers) at 1K context with FLASHFIX_CUDA_PDL=0"
    FLASHFIX_CUDA_PDL=0 timeout 100 "${ffx[@]}" bench --model "$m" --backend cuda --prompt-tokens 1024 --gen-tokens 128 --json
  fi
  if [[ ${GPU_CHECK_PROFILE:-0} == 1 ]]; then  # the device time of each op (events between ops perturb the total)
    step "profile $1 ($layers layers) at 1K context"
    FLASHFIX_CUDA_PROFILE=1 timeout 100 "${ffx[@]}" bench --model "$m" --backend cuda --prompt-tokens 1024 --gen-tokens 64 --json > /dev/null
  fi
  [[ ${GPU_CHECK_SHORT_CONTEXT_ONLY:-0} == 1 ]] && { rm -f "$m"; return; }
  step "bench $1 ($layers layers) decode at 16K context (and prefill of 16K)"
  timeout 240 "${ffx[@]}" bench --model "$m" --backend cuda --prompt-tokens 16384 --gen-tokens 32 --json | tee -a "$results"
  rm -f "$m"
}
bench_model q4_K $((360 << 20))
[[ ${GPU_CHECK_BF16:-0} == 1 ]] && bench_model bf16 $((1300 << 20))
step "done"
