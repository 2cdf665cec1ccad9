#!/usr/bin/python3
"""Render every conversation in this folder with the real chat templates into <case>.<format>.txt.

Run with Debian's jinja2 (apt-get install python3-jinja2):
    /usr/bin/python3 tests/data/chat/make_fixtures.py [/work/shared/templates]

The Jinja environment mirrors how Hugging Face transformers renders chat templates (the reference
the models were trained against): trim_blocks + lstrip_blocks, loop controls, `tojson` as
json.dumps(ensure_ascii=False) keeping key order, and `raise_exception`.

Case files hold {"messages": [...], "tools": [...] | "tools.json", "add_generation_prompt": bool,
"enable_thinking": bool, "formats": [...], "append_only_differs": [...]}. "formats" limits which
templates the case is rendered with; "append_only_differs" is read by the C++ test only.
"""
import json
import pathlib
import sys

from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = pathlib.Path(__file__).resolve().parent
TEMPLATES = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/templates")
FORMATS = {
    "qwen3": "Qwen-Qwen3-0.6B.jinja",
    "qwen3coder": "Qwen3-Coder.jinja",
    "step35": "StepFun3.5-Flash.jinja",
}
# Must equal kStepBos in tests/chat_test.cpp (the DeepSeek-V3 vocabulary's BOS text).
STEP_BOS = "<｜begin▁of▁sentence｜>"


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise TemplateError(message)


def trim_all_content(messages):
    """llama.cpp trims content and reasoning_content before rendering the StepFun template."""
    ws = " \t\n\r\f\v"
    for m in messages:
        if isinstance(m.get("content"), str):
            m["content"] = m["content"].strip(ws)
        if isinstance(m.get("reasoning_content"), str):
            m["reasoning_content"] = m["reasoning_content"].strip(ws)
            if not m["reasoning_content"]:
                del m["reasoning_content"]  # flashfix treats empty reasoning as absent


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    for case_path in sorted(HERE.glob("*.json")):
        case = json.loads(case_path.read_text(encoding="utf-8"))
        if "messages" not in case:
            continue  # shared tool lists
        tools = case.get("tools")
        if isinstance(tools, str):
            tools = json.loads((HERE / tools).read_text(encoding="utf-8"))
        for fmt, template_name in FORMATS.items():
            if fmt not in case.get("formats", FORMATS):
                continue
            messages = json.loads(json.dumps(case["messages"]))
            if fmt == "step35":
                trim_all_content(messages)
            kwargs = {"messages": messages,
                      "add_generation_prompt": case.get("add_generation_prompt", True),
                      "enable_thinking": case.get("enable_thinking", True),
                      "bos_token": STEP_BOS if fmt == "step35" else ""}
            if tools is not None:
                kwargs["tools"] = tools
            template = env.from_string((TEMPLATES / template_name).read_text(encoding="utf-8"))
            out = HERE / f"{case_path.stem}.{fmt}.txt"
            out.write_bytes(template.render(**kwargs).encode("utf-8"))
            print(out.name)


if __name__ == "__main__":
    main()
