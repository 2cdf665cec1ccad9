#!/usr/bin/env bash
# Builds a seed corpus for gguf_fuzz: tiny synthesized models of both architectures in several types,
# plus truncated and byte-mutated copies so the fuzzer starts with inputs that fail at many checks.
# usage: fuzz/make_corpus.sh FLASHFIX_BINARY OUT_DIR
set -euo pipefail
bin=${1:?usage: make_corpus.sh FLASHFIX_BINARY OUT_DIR}
out=${2:?usage: make_corpus.sh FLASHFIX_BINARY OUT_DIR}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Small widths keep each file a few tens of KB (the 263-token built-in vocab dominates), so every
# execution is fast and mutations land in the header often.
tiny=(--embd 32 --heads 2 --heads-kv 1 --head-dim 16 --experts 4 --experts-used 2 --ff-exp 32 --ff 32)
"$bin" synth --arch qwen3moe --layers 2 "${tiny[@]}" --out "$tmp/qwen3moe-f32.gguf"
"$bin" synth --arch qwen3moe --layers 1 "${tiny[@]}" --type q8_0 --out "$tmp/qwen3moe-q8_0.gguf"
"$bin" synth --arch qwen3moe --layers 1 "${tiny[@]}" --type f16 --out "$tmp/qwen3moe-f16.gguf"
"$bin" synth --arch step35 --layers 3 --dense-layers 1 --mtp 1 --heads-swa 4 --ff-shexp 32 --swa-window 8 \
  "${tiny[@]}" --out "$tmp/step35-f32.gguf"
"$bin" synth --arch step35 --layers 2 --dense-layers 1 --mtp 0 --heads-swa 2 --ff-shexp 0 --swa-window 0 \
  "${tiny[@]}" --type bf16 --out "$tmp/step35-bf16.gguf"
cp "$tmp"/*.gguf "$out/"

python3 - "$tmp" "$out" <<'PY'
import os, random, struct, sys
src, out = sys.argv[1], sys.argv[2]
rng = random.Random(11)
for name in sorted(os.listdir(src)):
    data = open(os.path.join(src, name), 'rb').read()
    stem = name[:-5]
    # Truncations: inside the fixed header, the metadata, the tensor table, and the data.
    for cut in (0, 4, 8, 16, 23, 40, 100, 1000, len(data) // 3, len(data) // 2, len(data) - 1):
        open(os.path.join(out, f'{stem}-cut{cut}'), 'wb').write(data[:cut])
    # Point mutations in the header region, where counts, lengths, types and shapes live.
    head = min(len(data), 8192)
    for k in range(24):
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(head)
            b[pos] = rng.choice((0, 1, 0xff, 0x7f, 0x80, b[pos] ^ (1 << rng.randrange(8))))
        open(os.path.join(out, f'{stem}-mut{k}'), 'wb').write(bytes(b))
    # Version and count edge cases.
    for k, (off, fmt, val) in enumerate([(4, '<I', 1), (4, '<I', 4), (4, '<I', 0x03000000),
                                         (8, '<Q', 1 << 62), (16, '<Q', 1 << 62), (16, '<Q', 0)]):
        b = bytearray(data)
        struct.pack_into(fmt, b, off, val)
        open(os.path.join(out, f'{stem}-hdr{k}'), 'wb').write(bytes(b))
PY
echo "corpus: $(ls "$out" | wc -l) files in $out"
