"""pyconc.queue against the stdlib's queue, in one run.

    python bench/bench_queue.py [--repeat N] [--quick] [--json bench/results/queue.json]

speedup = stdlib time / pyconc time. Each workload returns a checksum compared across the two
implementations, so the work really ran."""
import os
import queue as std
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CPU_BOUND, bench_main, handoff_exceptions, partner_thread  # noqa: E402

import pyconc.queue as pc  # noqa: E402
from pyconc import threading as pc_threading  # noqa: E402

MODS = {"stdlib": (std, threading), "pyconc": (pc, pc_threading)}

TARGETS = {
    "Queue put+get (1 thread)": 10.0,
    "LifoQueue put+get (1 thread)": 10.0,
    "PriorityQueue put+get (1 thread)": 8.0,
    "SimpleQueue put+get (1 thread)": 1.0,
    "Queue ping-pong (2 threads)": 2.0,
    "Queue 1 producer / 2 consumers": 3.0,
}

# Queue ping-pong (2 threads) is no longer one: since put() lets go of the GIL around the wake
# of a sleeping getter on one CPU (wait.h, rule 7), it meets its 2x in every mode.
EXCEPTIONS = handoff_exceptions("Queue ping-pong next to a busy thread", between="two threads")



def put_get(kind, n, batch=100):
    def make(mods):
        qmod, _ = mods
        q = getattr(qmod, kind)()
        put, get = q.put, q.get
        items = [(i % 7, i) for i in range(batch)] if kind == "PriorityQueue" else range(batch)

        def work():
            total = 0
            for _ in range(n // batch):
                for x in items:
                    put(x)
                for _ in items:
                    v = get()
                    total += v[1] if kind == "PriorityQueue" else v
            return total
        return work
    return make


def ping_pong(n, busy=False):
    """busy: a third thread spins in a Python loop meanwhile (it wants the GIL all the time)."""
    def make(mods):
        qmod, thr = mods

        def work():
            a, b = qmod.Queue(), qmod.Queue()

            def echo():
                for _ in range(n):
                    b.put(a.get())
            total = 0
            with partner_thread(thr, echo, busy):
                for i in range(n):
                    a.put(i)
                    total += b.get()
            return total
        return work
    return make


def producer_consumers(n, consumers=2, maxsize=1000):
    def make(mods):
        qmod, thr = mods

        def work():
            q = qmod.Queue(maxsize)
            sums = [0] * consumers

            def consume(c):
                s = 0
                get = q.get
                while True:
                    x = get()
                    if x is None:
                        sums[c] = s
                        return
                    s += x
            ts = [thr.Thread(target=consume, args=(c,)) for c in range(consumers)]
            for t in ts:
                t.start()
            put = q.put
            for i in range(n):
                put(i)
            for _ in ts:
                put(None)
            for t in ts:
                t.join()
            return sum(sums)
        return work
    return make


def specs(k):
    N = 200_000 // k
    return [
        ("Queue put+get (1 thread)", N, put_get("Queue", N), CPU_BOUND),
        ("LifoQueue put+get (1 thread)", N, put_get("LifoQueue", N), CPU_BOUND),
        ("PriorityQueue put+get (1 thread)", N, put_get("PriorityQueue", N), CPU_BOUND),
        ("SimpleQueue put+get (1 thread)", N, put_get("SimpleQueue", N), CPU_BOUND),
        ("Queue ping-pong (2 threads)", 20_000 // k, ping_pong(20_000 // k)),
        # one CPU only: with two or more, every round trip waits out the busy thread's GIL switch
        # interval (5 ms) for the stdlib as for pyconc, and the ratio is that interval's noise
        ("Queue ping-pong next to a busy thread", 2_000 // k, ping_pong(2_000 // k, busy=True),
         {"modes": ("pinned",)}),
        ("Queue 1 producer / 2 consumers", 200_000 // k, producer_consumers(200_000 // k)),
    ]


def main():
    bench_main("queue", specs, MODS, TARGETS,
               os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "queue.json"),
               exceptions=EXCEPTIONS)


if __name__ == "__main__":
    main()
