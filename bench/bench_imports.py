"""Import cost: `from pyconc import X` against `import X` of the stdlib, each in a fresh
interpreter, timing the import statement alone (interpreter start-up excluded), best of N.

    python bench/bench_imports.py [--repeat N] [--mode idle|pinned|loaded] [--json ...]

Each side runs 8 * N fresh interpreters (N is run_all's --repeat, 5 by default), the two sides
alternating one by one so that a slow spell of a busy machine hits both: an import takes 1-10 ms,
several scheduler slices, and under load the best of a few was luck (multiprocessing +1.62 ms,
then +2.49 ms in the next loaded run).

Both sides import from compiled bytecode (pyconc's is compiled first, as an installed package
would be). Target (issue 10): pyconc costs at most 2 ms more than the module it replaces."""
import argparse
import compileall
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import MODES, Mode, machine, save  # noqa: E402

CASES = [("threading", "import threading", "from pyconc import threading"),
         ("queue", "import queue", "from pyconc import queue"),
         ("multiprocessing", "import multiprocessing", "from pyconc import multiprocessing")]
LIMIT_MS = 2.0


def time_import(stmt, repeat):
    code = f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
    best = float("inf")
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout
        best = min(best, float(out))
    return best * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--mode", choices=MODES, default="idle")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    samples = 2 if args.quick else 8 * args.repeat
    if args.json is None:
        args.json = os.path.join(HERE, "results", f"imports.{args.mode}.json")
    import pyconc
    compileall.compile_dir(os.path.dirname(pyconc.__file__), quiet=1)
    results = []
    with Mode(args.mode):
        print(f"imports ({args.mode}): best of {samples}, ms for the import statement")
        for name, std_stmt, pc_stmt in CASES:
            std_ms = pc_ms = float("inf")
            for _ in range(samples):   # interleaved: a slow spell hits both sides
                std_ms = min(std_ms, time_import(std_stmt, 1))
                pc_ms = min(pc_ms, time_import(pc_stmt, 1))
            extra = pc_ms - std_ms
            results.append({"case": name, "stdlib_ms": std_ms, "pyconc_ms": pc_ms,
                            "extra_ms": extra})
            print(f"{name:16} stdlib {std_ms:6.2f} ms  pyconc {pc_ms:6.2f} ms  "
                  f"extra {extra:+5.2f} ms {'✓' if extra <= LIMIT_MS else '✗'}", flush=True)
    data = {"suite": "imports", "kind": "imports", "mode": args.mode, "repeat": samples,
            "limit_ms": LIMIT_MS, "machine": machine(), "results": results}
    save(data, args.json)
    missed = [r["case"] for r in results if r["extra_ms"] > LIMIT_MS]
    if missed:
        print("targets missed:", missed)


if __name__ == "__main__":
    main()
