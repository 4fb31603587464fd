"""Shared benchmark machinery: best-of-N timing of a workload on several implementations in one
run, a correctness check that the work ran, machine/version facts, and JSON output."""
import gc
import json
import os
import platform
import sys
import time


def best_of(fn, repeat):
    """Best wall time of fn() over `repeat` runs, with the GC off during each run. fn returns a
    value that the caller checks, so the work cannot be skipped."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - t0
        finally:
            gc.enable()
        best = min(best, elapsed)
    return best, result


def machine():
    info = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def run_suite(name, cases, impls, repeat, check=None):
    """cases: list of (case_name, ops, {impl: factory}) where factory() returns a zero-argument
    workload function. Returns the result dict (also printed as a table)."""
    results = []
    print(f"{name}: best of {repeat}; speedup = {impls[0]} time / {impls[1]} time")
    print(f"{'case':40} " + " ".join(f"{i + ' ns/op':>16}" for i in impls) + "  speedup")
    for case, ops, factories in cases:
        row = {"case": case, "ops": ops, "ns_per_op": {}}
        outputs = {}
        for impl in impls:
            work = factories[impl]()
            t, out = best_of(work, repeat)
            row["ns_per_op"][impl] = t / ops * 1e9
            outputs[impl] = out
        if check is not None:
            check(case, outputs)
        base, ours = impls
        row["speedup"] = row["ns_per_op"][base] / row["ns_per_op"][ours]
        results.append(row)
        print(f"{case:40} " + " ".join(f"{row['ns_per_op'][i]:16.1f}" for i in impls) +
              f"  {row['speedup']:6.2f}x", flush=True)
    return {"suite": name, "baseline": impls[0], "impl": impls[1], "repeat": repeat,
            "machine": machine(), "results": results}


def save(data, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    print(f"wrote {path}")
