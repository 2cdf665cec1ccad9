#!/usr/bin/env python3
"""Median overhead of the sandbox: `true` and a small unittest suite, directly and through
`flashfix sandbox-run`. Usage: bench/sandbox_overhead.py [FLASHFIX_BIN] [RUNS]"""
import os, statistics, subprocess, sys, tempfile, textwrap, time

flashfix = sys.argv[1] if len(sys.argv) > 1 else "build/flashfix"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 200

def median_ms(cmd, cwd, n):
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)

with tempfile.TemporaryDirectory() as ws:
    # 20 test cases in 4 files: a small suite that starts an interpreter and imports a module.
    for f in range(4):
        cases = "".join(f"    def test_{i}(self):\n        self.assertEqual(sum(range({i * 100})), {sum(range(i * 100))})\n" for i in range(5))
        with open(os.path.join(ws, f"test_{f}.py"), "w") as out:
            out.write("import unittest\n\nclass T(unittest.TestCase):\n" + cases)
    suite = ["/usr/bin/python3", "-m", "unittest", "-q"]
    sandbox = [os.path.abspath(flashfix), "sandbox-run", "--workspace", ws, "--"]
    rows = [("true", ["true"], runs), ("unittest, 20 cases", suite, max(runs // 4, 20))]
    for name, cmd, n in rows:
        median_ms(cmd, ws, 5)  # warm caches
        direct = median_ms(cmd, ws, n)
        boxed = median_ms(sandbox + cmd, ws, n)
        print(f"{name:20s} direct {direct:7.2f} ms   sandboxed {boxed:7.2f} ms   overhead {boxed - direct:6.2f} ms   (median of {n})")
