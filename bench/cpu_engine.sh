#!/bin/sh
# Reproduces docs/BENCHMARKS.md's "CPU engine" numbers: makes the synthetic models (once) under DIR,
# then runs `flashfix bench` on each at 1 and 2 threads and `bench --membw`, one JSON line per run,
# each preceded by `uptime` (the machine is shared: its load average says what the wall clock means).
# usage: bench/cpu_engine.sh build/flashfix DIR        (DIR needs ~4.5 GB; keep it out of the repo)
set -eu
bin=$1
dir=$2
mkdir -p "$dir"
# Fits in a 32 MB L3 at Q8_0 (15 MB) and Q4_K (8 MB): made as F32 and converted with `quantize`.
small="--arch qwen3moe --layers 2 --embd 512 --heads 8 --heads-kv 2 --head-dim 64 --experts 8 --experts-used 2 --ff-exp 512"
[ -f "$dir/small-f32.gguf" ] || "$bin" synth $small --out "$dir/small-f32.gguf"
[ -f "$dir/small-q8_0.gguf" ] || "$bin" quantize "$dir/small-f32.gguf" "$dir/small-q8_0.gguf" q8_0 >/dev/null
[ -f "$dir/small-q4_k.gguf" ] || "$bin" quantize "$dir/small-f32.gguf" "$dir/small-q4_k.gguf" q4_K >/dev/null
# Qwen3-30B-A3B's shape at scale 0.5 (24 layers, embd 1024, 64 experts top-8, expert ff 512):
# 2.7 GB at Q8_0, 1.5 GB at Q4_K, 50-85x the L3. Written in the target type directly: the F32
# intermediate `quantize` would need is 10 GB.
for t in q8_0 q4_K; do
  f="$dir/big-$(echo $t | tr K k).gguf"
  [ -f "$f" ] || "$bin" synth --preset qwen3-30b-a3b --scale 0.5 --type $t --out "$f"
done
uptime
"$bin" bench --kernels --json
uptime
"$bin" bench --membw --threads 2 --json
for m in small-q8_0 small-q4_k big-q8_0 big-q4_k; do
  for th in 1 2; do
    uptime
    "$bin" bench --model "$dir/$m.gguf" --prompt-tokens 512 --gen-tokens 128 --threads $th --json
  done
done
