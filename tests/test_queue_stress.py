"""Queues under real thread contention, and memory: everything delivered exactly once, a bounded
queue never over its bound, join() after the last task_done(), and no growth after being filled
with a million items and drained, again and again."""
import sys
import tracemalloc

import pytest

import pyconc.queue as pq
from pyconc import threading as pth

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("kind,maxsize", [("Queue", 0), ("Queue", 100), ("LifoQueue", 50),
                                          ("PriorityQueue", 100), ("SimpleQueue", None)])
def test_4_producers_4_consumers_50000_items(kind, maxsize):
    q = getattr(pq, kind)() if maxsize is None else getattr(pq, kind)(maxsize)
    per_producer = 50000
    received = [[] for _ in range(4)]
    over = []
    stop = object()

    def produce(p):
        for i in range(per_producer):
            q.put((p, i) if kind != "PriorityQueue" else (i, p))
            if maxsize and q.qsize() > maxsize:
                over.append(q.qsize())

    def consume(c):
        out = received[c]
        while True:
            item = q.get()
            if item is stop or item == (sys.maxsize, stop):
                if kind != "SimpleQueue":
                    q.task_done()
                return
            out.append(item)
            if kind != "SimpleQueue":
                q.task_done()
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        producers = [pth.Thread(target=produce, args=(p,)) for p in range(4)]
        consumers = [pth.Thread(target=consume, args=(c,)) for c in range(4)]
        for t in producers + consumers:
            t.start()
        for t in producers:
            t.join()
        if kind != "SimpleQueue":
            q.join()  # returns once every item put so far is task_done
            assert q.unfinished_tasks == 0
        for _ in consumers:
            q.put(stop if kind != "PriorityQueue" else (sys.maxsize, stop))
        for t in consumers:
            t.join()
    finally:
        sys.setswitchinterval(old)
    allitems = [x for r in received for x in r]
    assert len(allitems) == 4 * per_producer
    expected = {(p, i) if kind != "PriorityQueue" else (i, p)
                for p in range(4) for i in range(per_producer)}
    assert set(allitems) == expected  # each exactly once (the lengths match)
    assert over == []
    if kind == "Queue":  # FIFO: each consumer sees each producer's items in order
        for r in received:
            for p in range(4):
                seq = [i for (pp, i) in r if pp == p]
                assert seq == sorted(seq)


@pytest.mark.parametrize("kind", ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue"])
def test_million_items_fill_drain_memory_flat(kind):
    q = getattr(pq, kind)()
    sentinel = object()
    n = 1_000_000 if kind != "PriorityQueue" else 200_000
    put, get = q.put, q.get
    item = sentinel if kind != "PriorityQueue" else (0, 0)
    base_refs = sys.getrefcount(item)

    def cycle():
        for _ in range(n):
            put(item)
        assert sys.getrefcount(item) == base_refs + n
        for _ in range(n):
            get()
    cycle()  # warm up
    tracemalloc.start()
    try:
        cycle()
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(2):
            cycle()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sys.getrefcount(item) == base_refs
    assert q.qsize() == 0
    assert after - first < 64 * 1024, f"grew by {after - first} bytes"
