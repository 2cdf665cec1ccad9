#!/usr/bin/env bash
# Packs what scripts/gpu_check.sh needs on a GPU machine into .gpu/ (git-ignored), for a session with
# the `device` tool to carry (runtime.tar.xz and golden/): the flashfix binary and the CUDA test binaries from a build here, every
# shared library they load (the C library and its loader included: the GPU machine's image lacks
# libgit2, cpp-httplib and friends, and may have an older glibc), and the golden models that fit.
# The device tool carries at most 64 MiB in all, the working tree included; this script fails if
# the bundle would not leave room for it.
#
# usage: scripts/gpu_bundle.sh [BUILD_DIR (build)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
out=$root/.gpu
golden=${FLASHFIX_GOLDEN_DIR:-$root/../shared/golden}

for b in flashfix tests/cuda/cuda_ops_test tests/cuda/cuda_forward_test; do
  [[ -x $build/$b ]] || { echo "gpu_bundle: $build/$b is missing: build with nvcc present first" >&2; exit 1; }
done
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/golden"
command -v xz >/dev/null || { echo "gpu_bundle: needs xz (xz-utils)" >&2; exit 1; }
for b in flashfix tests/cuda/cuda_ops_test tests/cuda/cuda_forward_test; do
  strip -o "$out/bin/$(basename "$b")" "$build/$b"
done
# Every library ldd resolves, and the loader itself (ld-linux is run explicitly by gpu_check.sh).
for b in "$out"/bin/*; do
  ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}'
done | sort -u | while read -r lib; do cp -L "$lib" "$out/lib/"; done

# The binaries and libraries travel xz-compressed (34 MB -> 8 MB), leaving room for golden models;
# gpu_check.sh unpacks them.
tar -C "$out" -cf - bin lib | xz -T2 -6 > "$out/runtime.tar.xz"
rm -rf "$out/bin" "$out/lib"

# Golden models in the order GPU_BUNDLE_GOLDEN names them (default: the quantized ones, smallest
# first) while the bundle stays under the budget. The F32 qwen3moe (30 MB) fits with two quantized
# ones; the F32 step35 (63 MB) never does: gpu_check.sh synthesizes F32 models of both golden shapes
# on the device and compares CUDA with the CPU engine there.
tree_bytes=$(cd "$root" && git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
budget=$((62 * 1024 * 1024 - tree_bytes))  # 2 MiB of margin under the tool's 64
for name in ${GPU_BUNDLE_GOLDEN:-tiny-qwen3moe-s11-Q4_K_M tiny-qwen3moe-s11-Q8_0 tiny-step35-s11-Q6_K}; do
  files=("$golden/$name.gguf" "$golden/$name.prompt1.json" "$golden/$name.prompt1.logits.f32")
  size=$(du -cb "${files[@]}" | tail -1 | cut -f1)
  used=$(du -sb "$out" | cut -f1)
  if (( used + size <= budget )); then cp "${files[@]}" "$out/golden/"; else echo "gpu_bundle: no room for $name" >&2; fi
done
cp "$golden/prompt1.txt" "$out/golden/"
total=$(( $(du -sb "$out" | cut -f1) + tree_bytes ))
echo "gpu_bundle: $(du -sh "$out" | cut -f1) in .gpu/, $((total >> 20)) MiB with the working tree (limit 64 MiB)"
(( total < 64 * 1024 * 1024 )) || { echo "gpu_bundle: over the device tool's 64 MiB" >&2; exit 1; }
