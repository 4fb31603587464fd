"""Shared benchmark machinery: best-of-N timing of a workload on several implementations in one
run (the implementations measured alternately, repeat by repeat), a correctness check that the
work ran, machine/version facts, and JSON output."""
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import types

MODES = ("idle", "pinned", "loaded")


class Mode:
    """The machine condition a benchmark runs under (issue 10): idle (all CPUs), pinned (this
    process -- so every thread and child it starts -- restricted to one CPU, as a one-CPU
    container gives), loaded (one busy-looping process per CPU at normal priority)."""

    def __init__(self, name):
        if name not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.name = name
        self.hogs = []
        self.saved = None

    def __enter__(self):
        if self.name == "pinned":
            self.saved = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {min(self.saved)})
        elif self.name == "loaded":
            for _ in range(len(os.sched_getaffinity(0))):
                self.hogs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
            time.sleep(0.2)   # let the hogs get going
        return self

    def __exit__(self, *exc):
        for p in self.hogs:
            p.kill()
            p.wait()
        self.hogs = []
        if self.saved is not None:
            os.sched_setaffinity(0, self.saved)
        return False


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


# The option of cases whose time is mostly the scheduler's: starting threads or processes. On a
# busy machine such a run is now and then held up for milliseconds (a new thread or child queued
# behind the busy loops), at random and for either implementation, so the best of a few long runs
# measures which side was luckier. These cases take many short samples instead (`samples` per
# repeat, the implementations alternating sample by sample) and report the median.
SCHEDULER_BOUND = {"samples": 10}


# The option of a case that is one thread's CPU work (no hand-off between threads or processes):
# bench_main times one full run of each side (a warm-up too), then runs the case as `split` times
# as many samples, each a split-th of the work, split chosen so that the slower side's sample
# takes ~0.5 ms, and reports the best sample of each side. On a busy machine this process shares
# a CPU with a busy loop for stretches of seconds (three running tasks on two CPUs: the balancer
# leaves the pairing as it is), and then a 50 ms sample is cut by the scheduler every few ms:
# which side happened to be paired decided the best of 5 (greenlet switch, loaded: 2.43x, then
# 1.16x in the next run). A sample shorter than a scheduler slice (1.5 ms on this kernel) is
# often not cut, so the best of many is the cost of the code on a loaded CPU, for both sides
# alike; idle, it is what the best of 5 long runs was. The ops column is the sample's.
CPU_BOUND = {"split": True}
SAMPLE_S = 0.0005


def _private_code(code):
    consts = tuple(_private_code(c) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    return code.replace(co_consts=consts)   # a new code object: fresh inline caches


def private_workload(fn, _seen=None):
    """Gives the workload fn, the functions nested in it and the functions it reaches through
    its closure code objects of their own, and returns fn. Every implementation's workload is
    made by the same factory, so without this they share bytecode, and CPython's adaptive
    interpreter (3.11+) specialises each call site for the implementation that ran there first:
    the stdlib's SimpleQueue.get (a METH_METHOD) turned the shared `get()` site into the generic
    call, and pyconc's get then ran through it (4 ns of 105 a put+get on 3.14). A program uses
    one implementation at a call site, so each gets its own. (Module-level helpers that a
    workload calls stay shared.)"""
    seen = set() if _seen is None else _seen
    if not isinstance(fn, types.FunctionType) or id(fn) in seen:
        return fn
    if _seen is not None and "<locals>" not in fn.__qualname__:
        return fn   # a module-level function: one object for every implementation
    seen.add(id(fn))
    fn.__code__ = _private_code(fn.__code__)
    for cell in fn.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:   # not yet bound
            continue
        private_workload(value, seen)
    return fn


def run_suite(name, cases, impls, repeat, check=None):
    """cases: list of (case_name, ops, {impl: factory}[, options]) where factory() returns a
    zero-argument workload function; options {"samples": m} (SCHEDULER_BOUND) takes m samples a
    repeat and reports their median instead of the best ({"stat": "best"}: the best of them, as
    CPU_BOUND cases do). Returns the result dict (also printed as
    a table)."""
    results = []
    print(f"{name}: best of {repeat}; speedup = {impls[0]} time / {impls[1]} time")
    print(f"{'case':40} " + " ".join(f"{i + ' ns/op':>16}" for i in impls) + "  speedup")
    for case, ops, factories, *options in cases:
        samples = options[0].get("samples", 1) if options else 1
        best = samples == 1 or options[0].get("stat") == "best"
        row = {"case": case, "ops": ops, "ns_per_op": {}}
        if not best:
            row["statistic"] = f"median of {repeat * samples}"
        elif samples > 1:
            row["samples"] = repeat * samples
        outputs = {}
        works = {impl: private_workload(factories[impl]()) for impl in impls}
        times = {impl: [] for impl in impls}
        # Interleaved (A B A B ...): on a noisy machine a slow spell then hits both sides, not
        # whichever happened to be measured during it.
        for _ in range(repeat * samples):
            for impl in impls:
                t, outputs[impl] = best_of(works[impl], 1)
                times[impl].append(t)
        for impl in impls:
            value = min(times[impl]) if best else statistics.median(times[impl])
            row["ns_per_op"][impl] = value / ops * 1e9
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


def handoff_exceptions(*cases, between="two threads"):
    """The exceptions argument of bench_main for cases that are physically a hand-off between
    two threads (or processes): one side wakes the other and waits for the answer. On one CPU
    (pinned), or with every CPU busy (loaded), each round trip is two context switches and their
    scheduler latency, the same for the stdlib as for pyconc, so pyconc cannot be much faster
    there; in those modes the target is "not slower than the stdlib" (1.0x), and the README names
    each such case with its measured ratio."""
    reason = (f"a hand-off between {between}: on one CPU each round trip is two context "
              f"switches, for the stdlib as for pyconc")
    return {mode: {case: reason for case in cases} for mode in ("pinned", "loaded")}


def bench_main(suite, specs, impls, targets, default_json, argv=None, extra=None,
               exceptions=None):
    """The command line shared by the bench_*.py scripts. extra(args), if given, returns more
    result rows (same format, with a "unit") measured some other way. specs(k) returns the cases as
    (name, ops, make) with make(impl_object) -> workload, k being the size divisor (10 for
    --quick). impls maps implementation names to the objects passed to make. Each workload's
    result is compared across implementations; --check exits 1 when a target is missed.
    --mode runs everything idle, pinned to one CPU or under load (Mode); the JSON goes to
    results/<suite>.<mode>.json unless --json says otherwise. exceptions maps a mode to
    {case: reason} for cases that are physically a hand-off between CPUs, which that mode
    cannot make faster: there the target is only "not slower than the baseline" (1.0x)."""
    import argparse
    ap = argparse.ArgumentParser(description=f"{suite}: pyconc against the stdlib, one run")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller workloads (smoke run)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--mode", choices=MODES, default="idle")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if a speedup target of the issue is missed")
    args = ap.parse_args(argv)
    if args.json is None:
        root, ext = os.path.splitext(default_json)
        args.json = f"{root}.{args.mode}{ext}"
    k = 10 if args.quick else 1
    names = list(impls)

    def make_cases():
        cases = []
        for name, ops, make, *options in specs(k):
            if options and args.mode not in options[0].get("modes", MODES):
                continue   # a case measured in some modes only (its spec says why)
            if options and options[0].get("split"):
                ops, make, options = split_case(name, ops, make)
            cases.append((name, ops, {impl: (lambda f=make, m=obj: f(m))
                                      for impl, obj in impls.items()}, *options))
        return cases

    def split_case(name, ops, make):
        # CPU_BOUND: the slower side's full run, then the case a split-th as long
        slowest = max(best_of(make(obj), 1)[0] for obj in impls.values())
        split = max(1, min(int(slowest / SAMPLE_S), ops // 100))
        if split == 1:
            return ops, make, [{"samples": 1}]
        ops, make = next((o, m) for n, o, m, *_ in specs(k * split) if n == name)
        return ops, make, [{"samples": split, "stat": "best"}]

    def check(case, outputs):
        first = outputs[names[0]]
        assert all(outputs[n] == first for n in names), (case, outputs)

    exc = (exceptions or {}).get(args.mode, {})
    with Mode(args.mode):
        print(f"mode: {args.mode}")
        data = run_suite(suite, make_cases(), names, args.repeat, check)
        if extra is not None:  # cases that are not timings, e.g. memory: rows in the same format
            data["results"] += extra(args)
    data["mode"] = args.mode
    data["targets"] = targets
    data["exceptions"] = exceptions or {}
    save(data, args.json)
    missed = [(r["case"], round(r["speedup"], 2), targets.get(r["case"], 1.0))
              for r in data["results"]
              if r["speedup"] < (1.0 if r["case"] in exc else targets.get(r["case"], 1.0))]
    if missed:
        print("targets missed:", missed)
    if args.check and missed:
        sys.exit(1)


@contextlib.contextmanager
def partner_thread(thr, target, busy=False):
    """Runs target in a thread of the threading module thr for the duration of the block, and,
    if busy, a third thread that spins in a Python loop meanwhile (it wants the GIL all the time);
    joins both when the block ends."""
    stop = []

    def spin():
        while not stop:
            pass
    ts = [thr.Thread(target=target)] + ([thr.Thread(target=spin)] if busy else [])
    for t in ts:
        t.start()
    try:
        yield
    finally:
        stop.append(1)
        for t in ts:
            t.join()
