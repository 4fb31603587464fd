"""pyconc.greenlet against the greenlet package, in one run.

    python bench/bench_greenlet.py [--repeat N] [--quick] [--json bench/results/greenlet.json]

speedup = greenlet time / pyconc time. The memory case runs each implementation in its own
subprocess and reports resident bytes per parked greenlet (lower is better; the speedup column
is greenlet bytes / pyconc bytes)."""
import os
import subprocess
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CPU_BOUND, bench_main  # noqa: E402

import greenlet as gl  # noqa: E402

import pyconc.greenlet as pg  # noqa: E402

MODS = {"greenlet": gl, "pyconc": pg}

TARGETS = {
    "switch ping-pong (2 greenlets)": 1.5,
    "create + start + finish": 2.0,
    "RSS per parked greenlet (inverse)": 1.0,
}


def ping_pong(n):
    def make(m):
        def work():
            main = m.getcurrent()

            def other():
                x = 0
                while True:
                    x = main.switch(x + 1)
            g = m.greenlet(other)
            x = g.switch()
            sw = g.switch
            for _ in range(n):
                x = sw(x)
            g.throw()
            return x
        return work
    return make


def create_finish(n):
    def make(m):
        def work():
            greenlet = m.greenlet
            total = 0

            def f(i):
                return i
            for i in range(n):
                total += greenlet(f).switch(i)
            return total
        return work
    return make


RSS_SCRIPT = textwrap.dedent("""
    import gc, sys
    mod = sys.argv[1]; n = int(sys.argv[2])
    if mod == "pyconc":
        import pyconc.greenlet as m
    else:
        import greenlet as m
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    main = m.getcurrent()
    def park(i):
        main.switch(i)
        return i
    warm = [m.greenlet(park) for _ in range(100)]
    for g in warm: g.switch(0)
    for g in warm: g.switch()
    gc.collect()
    before = rss()
    gs = [m.greenlet(park) for _ in range(n)]
    for i, g in enumerate(gs):
        g.switch(i)
    gc.collect()
    after = rss()
    total = sum(g.switch() for g in gs)
    assert total == n * (n - 1) // 2 and all(g.dead for g in gs)
    print((after - before) / n)
""")


def rss_rows(args):
    """Resident bytes per parked greenlet, each implementation in a fresh interpreter (best of
    --repeat runs). Lower is better: speedup = greenlet bytes / pyconc bytes."""
    n = 20_000 if args.quick else 100_000
    per = {}
    for name in MODS:
        runs = []
        for _ in range(max(1, min(args.repeat, 3))):
            out = subprocess.run([sys.executable, "-c", RSS_SCRIPT, name, str(n)],
                                 capture_output=True, text=True, check=True)
            runs.append(float(out.stdout))
        per[name] = min(runs)
    row = {"case": "RSS per parked greenlet (inverse)", "ops": n, "ns_per_op": per,
           "speedup": per["greenlet"] / per["pyconc"], "unit": "bytes"}
    print(f"{row['case']:40} {per['greenlet']:16.1f} {per['pyconc']:16.1f}  "
          f"{row['speedup']:6.2f}x   (bytes per greenlet, {n} parked)", flush=True)
    return [row]


def specs(k):
    return [
        ("switch ping-pong (2 greenlets)", 200_000 // k, ping_pong(200_000 // k), CPU_BOUND),
        ("create + start + finish", 100_000 // k, create_finish(100_000 // k), CPU_BOUND),
    ]


def main():
    bench_main("greenlet", specs, MODS, TARGETS,
               os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "greenlet.json"),
               extra=rss_rows)


if __name__ == "__main__":
    main()
