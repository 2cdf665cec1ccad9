#!/usr/bin/env bash
# Seed corpora for tool_calls_fuzz and call_constraint_fuzz: well-formed calls of every format, with
# reasoning, several calls, OpenAI messages, and some broken ones. The first byte of each input is the
# harness's mode byte (format, reasoning start, schemas / limits).
# usage: fuzz/make_calls_corpus.sh OUT_DIR   (writes OUT_DIR/parser and OUT_DIR/constraint)
set -euo pipefail
out=${1:?usage: make_calls_corpus.sh OUT_DIR}
mkdir -p "$out/parser" "$out/constraint"
n=0
seed() {  # seed DIR MODE_BYTE TEXT
  n=$((n + 1))
  { printf "\\x$(printf %02x "$2")"; printf '%s' "$3"; } > "$out/$1/seed-$n"
}
json_call='<tool_call>
{"name": "read_file", "arguments": {"path": "a.txt", "start": 3}}
</tool_call>'
xml_call='<tool_call>
<function=run>
<parameter=command>
make test
</parameter>
<parameter=timeout>
2.5
</parameter>
<parameter=env>
{"CC": "gcc", "x": [1, true, null]}
</parameter>
</function>
</tool_call>'
for mode in 0 8 12; do
  seed parser $mode "<think>
plan
</think>

Reading. $json_call"
  seed parser $((mode + 1)) "Running.
$xml_call
$xml_call tail"
  seed parser $((mode + 2)) "reasoning</think>$xml_call<function=read_file>
<parameter=path>
x</parameter></function></tool_call>"
  seed parser $mode '<tool_call>{"name": "run", "arguments": {bad}}</tool_call><tool_call>{"name":"run"'
done
seed parser 0 '{"role": "assistant", "content": "ok", "tool_calls": [{"id": "c", "function": {"name": "run", "arguments": "{\"command\": \"ls\"}"}}]}'
for mode in 0 3; do
  seed constraint $mode '
{"name": "run", "arguments": {"command": "ls \u00e9", "timeout": -1.5e3, "env": {"a": [1, {"b": null}]}, "mode": "ab", "level": 10}}
</tool_call>'
  seed constraint $((mode + 1)) '
<function=run>
<parameter=command>
ls </para
</parameter>
<parameter=level>
1
</parameter>
<parameter=shell>
true
</parameter>
</function>
</tool_call>'
  seed constraint $((mode + 2)) '
<function=read_file>
<parameter=path>
x
</parameter>
<parameter=start>
-12
</parameter>
</function>
</tool_call>'
done
echo "wrote $n seeds to $out"
