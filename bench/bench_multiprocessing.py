"""pyconc.multiprocessing against the stdlib's multiprocessing, in one run.

    python bench/bench_multiprocessing.py [--repeat N] [--quick] [--json ...]

speedup = stdlib time / pyconc time. Every workload starts with the "fork" method on both sides
and returns a checksum compared across the two implementations. Pools are created outside the
timed region except in "Pool(2) start + close + join"."""
import multiprocessing as std
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import bench_main, handoff_exceptions  # noqa: E402

import pyconc.multiprocessing as pc  # noqa: E402

MODS = {"stdlib": std.get_context("fork"), "pyconc": pc.get_context("fork")}

TARGETS = {
    "Queue 1 producer -> 1 consumer": 5.0,
    "Pipe round trip": 1.5,
    "Pool(2).map, 100,000 trivial tasks": 2.0,
    "10,000 apply_async with callback": 5.0,
    "Pool(2) start + close + join": 1.0,
}

EXCEPTIONS = handoff_exceptions("Pipe round trip",
                                between="two processes")


_pools = []


def _produce(q, n, tag):
    for i in range(n):
        q.put((tag, i, 1.5))
    q.put(None)


def _consume(q, out, producers):
    total = count = 0
    done = 0
    while done < producers:
        item = q.get()
        if item is None:
            done += 1
            continue
        total += item[1]
        count += 1
    out.put((count, total))


def queue_matrix(n_prod, n_cons, n):
    def make(ctx):
        def work():
            q, out = ctx.Queue(), ctx.Queue()
            per = n // n_prod
            prods = [ctx.Process(target=_produce, args=(q, per, k)) for k in range(n_prod)]
            # each consumer stops after its share of the None markers
            cons = [ctx.Process(target=_consume, args=(q, out, 0)) for _ in range(n_cons)]
            shares = [n_prod // n_cons + (1 if k < n_prod % n_cons else 0) for k in range(n_cons)]
            cons = [ctx.Process(target=_consume, args=(q, out, s)) for s in shares]
            for p in cons + prods:
                p.start()
            results = [out.get() for _ in cons]
            for p in prods + cons:
                p.join()
            return (sum(c for c, _ in results), sum(t for _, t in results))
        return work
    return make


def _echo(conn, n):
    for _ in range(n):
        conn.send(conn.recv())


def pipe_round_trip(n):
    def make(ctx):
        def work():
            a, b = ctx.Pipe()
            p = ctx.Process(target=_echo, args=(b, n))
            p.start()
            total = 0
            for i in range(n):
                a.send((i, "x"))
                total += a.recv()[0]
            p.join()
            return total
        return work
    return make


def _noop(x):
    return x


def pool_map(n):
    def make(ctx):
        pool = ctx.Pool(2)
        _pools.append(pool)

        def work():
            return sum(pool.map(_noop, range(n)))
        return work
    return make


def apply_async_callback(n):
    def make(ctx):
        pool = ctx.Pool(2)
        _pools.append(pool)

        def work():
            got = []
            rs = [pool.apply_async(_noop, (i,), callback=got.append) for i in range(n)]
            for r in rs:
                r.wait()
            return sum(got)
        return work
    return make


def pool_start_close_join():
    def make(ctx):
        def work():
            pool = ctx.Pool(2)
            pool.close()
            pool.join()
            return 1
        return work
    return make


def specs(k):
    return [
        ("Queue 1 producer -> 1 consumer", 200_000 // k, queue_matrix(1, 1, 200_000 // k)),
        ("Queue 4 producers -> 1 consumer", 200_000 // k, queue_matrix(4, 1, 200_000 // k)),
        ("Queue 4 producers -> 4 consumers", 200_000 // k, queue_matrix(4, 4, 200_000 // k)),
        ("Pipe round trip", 20_000 // k, pipe_round_trip(20_000 // k)),
        ("Pool(2).map, 100,000 trivial tasks", 100_000 // k, pool_map(100_000 // k)),
        ("10,000 apply_async with callback", 10_000 // k, apply_async_callback(10_000 // k)),
        # scheduler-bound (common.SCHEDULER_BOUND), with fewer samples: a pool start is ~50 ms
        ("Pool(2) start + close + join", 1, pool_start_close_join(), {"samples": 4}),
    ]


if __name__ == "__main__":
    try:
        bench_main("multiprocessing", specs, MODS, TARGETS,
                   os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                "multiprocessing.json"),
                   exceptions=EXCEPTIONS)
    finally:
        for p in _pools:
            p.terminate()
