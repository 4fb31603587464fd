"""Random call sequences from several threads at once, with invariants instead of an oracle:
nothing lost or duplicated, counts consistent, mutual exclusion holds, every waiter eventually
returns (a thread still running after HANG_S fails the test as a hang), and no exception the
stdlib would not give. Thread switches are forced often (sys.setswitchinterval, drawn per
example) and the hooks and comparisons involved release the GIL, so the interleavings vary.

A failing example prints its programs (one list of operations per thread); thread scheduling
varies, so a rerun may need a few tries (hypothesis then reports the test as flaky, with the
example that failed first)."""
import collections
import dataclasses
import heapq
import queue as std_queue
import sys
import threading as std_threading
import time

import hypothesis.strategies as st
import pytest
from hypothesis import given

import pyconc.queue as pc_queue
from pyconc import threading as pc_threading

from .common import PyItem, run_threads, tally
from .profiles import HANG_S, fuzz_settings, steps

pytestmark = pytest.mark.timeout(300)

switch_intervals = st.sampled_from([1e-6, 1e-5, 1e-3])


class switching:
    """Forces frequent thread switches for the length of a with-block."""

    def __init__(self, interval):
        self.interval = interval

    def __enter__(self):
        self.old = sys.getswitchinterval()
        sys.setswitchinterval(self.interval)

    def __exit__(self, *exc):
        sys.setswitchinterval(self.old)


# -- queues -------------------------------------------------------------------------------------

@dataclasses.dataclass(order=True, frozen=True)
class Job:
    """A PriorityQueue job compared by dataclass-generated (Python) methods."""
    priority: int
    tag: tuple


def make_queue(kind, variant, maxsize):
    if variant == "plain":
        return getattr(pc_queue, kind)(maxsize)
    base = getattr(pc_queue, kind)
    # the documented subclassing pattern, with hooks that release the GIL in the middle

    class Hooked(base):
        def _init(self, maxsize):
            self.store = collections.deque() if kind == "Queue" else []
            self.high = 0  # the most items ever stored at once

        def _qsize(self):
            return len(self.store)

        def _put(self, item):
            time.sleep(0)
            if kind == "PriorityQueue":
                heapq.heappush(self.store, item)
            else:
                self.store.append(item)
            self.high = max(self.high, len(self.store))

        def _get(self):
            time.sleep(0)
            if kind == "PriorityQueue":
                return heapq.heappop(self.store)
            return self.store.popleft() if kind == "Queue" else self.store.pop()
    return Hooked(maxsize)


def wrap_item(kind, form, tag):
    """A unique item for tag, in the drawn form: ("plain": tuples compared in C, "python": a
    dataclass, "pyitem": a tuple holding an object ordered by Python code)."""
    prio = hash(tag) % 3
    if form == "python":
        return Job(prio, tag)
    if form == "pyitem":
        return (prio, PyItem(tag[1]), tag)
    return (prio, tag)


def tag_of(item):
    return item.tag if isinstance(item, Job) else item[-1]


short_timeouts = st.sampled_from([0, 0.0002, 0.002])
queue_ops = st.one_of(
    st.tuples(st.just("put"), st.booleans(), short_timeouts),
    st.just(("put_nowait",)),
    st.tuples(st.just("get"), st.booleans(), short_timeouts),
    st.just(("get_nowait",)),
    st.sampled_from([("qsize",), ("empty",), ("full",), ("task_done",)]),
    st.tuples(st.just("shutdown"), st.booleans()),
)


@fuzz_settings(100)
@given(kind=st.sampled_from(["Queue", "LifoQueue", "PriorityQueue"]),
       variant=st.sampled_from(["plain", "hooked"]),
       form=st.sampled_from(["plain", "python", "pyitem"]),
       maxsize=st.integers(0, 4), interval=switch_intervals,
       shutdowns=st.booleans(), repeat=st.integers(1, steps(30)),
       programs=st.lists(st.lists(queue_ops, min_size=1, max_size=steps(30)), min_size=2,
                         max_size=4))
def test_queue_from_threads(kind, variant, form, maxsize, interval, shutdowns, repeat,
                            programs):
    # Each thread runs its program `repeat` times; shutdown only in the last round.
    q = make_queue(kind, variant, maxsize)
    programs = [[op for op in p if op[0] != "shutdown"] * (repeat - 1) +
                [op for op in p if shutdowns or op[0] != "shutdown"] for p in programs]
    tally(1, sum(map(len, programs)))
    put, got, task_dones = [], [], []
    bad = []
    immediate = []
    allowed = (std_queue.Empty, std_queue.Full, pc_queue.ShutDown)

    def program(t, ops):
        owed = 0  # items this thread got and has not marked done
        for i, op in enumerate(ops):
            name = op[0]
            try:
                if name in ("put", "put_nowait"):
                    item = wrap_item(kind, form, (t, i))
                    q.put(item, op[1], op[2]) if name == "put" else q.put_nowait(item)
                    put.append(tag_of(item))
                elif name in ("get", "get_nowait"):
                    item = q.get(op[1], op[2]) if name == "get" else q.get_nowait()
                    got.append(tag_of(item))
                    owed += 1
                elif name == "task_done":
                    if owed:
                        q.task_done()
                        task_dones.append(1)
                        owed -= 1
                elif name == "shutdown":
                    if op[1]:
                        immediate.append(1)
                    q.shutdown(immediate=op[1])
                else:
                    r = getattr(q, name)()
                    if name == "qsize" and maxsize and not 0 <= r <= maxsize:
                        bad.append(f"qsize() = {r} with maxsize {maxsize}")
            except allowed:
                pass
            except Exception as exc:
                bad.append(f"thread {t} op {i} {op}: {exc!r}")
    with switching(interval):
        errors = run_threads([lambda t=t, ops=ops: program(t, ops)
                              for t, ops in enumerate(programs)])
    assert errors == [] and bad == []
    drained = []
    while True:
        try:
            drained.append(tag_of(q.get_nowait()))
        except (std_queue.Empty, pc_queue.ShutDown):
            break
    if immediate:  # items dropped: nothing may appear twice or from nowhere
        assert len(set(got + drained)) == len(got + drained)
        assert set(got + drained) <= set(put)
    else:
        assert sorted(got + drained) == sorted(put), "items lost or duplicated"
        assert q.unfinished_tasks == len(put) - len(task_dones)
    if variant == "hooked" and maxsize:
        assert q.high <= maxsize, "a bounded queue held more than maxsize items"
    # every remaining task marked done: join() returns
    for _ in range(q.unfinished_tasks):
        q.task_done()
    run_threads([q.join])


# -- locks and semaphores: mutual exclusion --------------------------------------------------

lock_ops = st.one_of(
    st.tuples(st.just("acquire"), st.sampled_from(["block", "nonblock", 0.0002, 0.002])),
    st.just(("release",)),
    st.tuples(st.just("work"), st.integers(0, 3)),
)


@fuzz_settings(80)
@given(kind=st.sampled_from(["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition"]),
       permits=st.integers(1, 3), interval=switch_intervals, repeat=st.integers(1, steps(30)),
       programs=st.lists(st.lists(lock_ops, min_size=1, max_size=steps(30)), min_size=2,
                         max_size=4))
def test_mutual_exclusion_from_threads(kind, permits, interval, repeat, programs):
    programs = [p * repeat for p in programs]
    tally(1, sum(map(len, programs)))
    if kind in ("Semaphore", "BoundedSemaphore"):
        lock, limit = getattr(pc_threading, kind)(permits), permits
    else:
        lock, limit = getattr(pc_threading, kind)(), 1
    reentrant = kind in ("RLock", "Condition")
    inside = [0]
    over = []

    def program(ops):
        held = 0
        for op in ops:
            if op[0] == "acquire":
                if held and not reentrant:
                    continue  # a second permit could wait for itself
                mode = op[1]
                if mode == "block":
                    ok = lock.acquire()
                elif mode == "nonblock":
                    ok = lock.acquire(False)
                else:
                    ok = lock.acquire(True, mode)
                assert ok in (True, False)
                if ok:
                    held += 1
                    if held == 1:
                        inside[0] += 1
                        if inside[0] > limit:
                            over.append(inside[0])
            elif op[0] == "release":
                if held:
                    held -= 1
                    if held == 0:
                        inside[0] -= 1
                    lock.release()
            elif held:
                for _ in range(op[1]):
                    if inside[0] > limit:
                        over.append(inside[0])
                    time.sleep(0)
        while held:
            held -= 1
            if held == 0:
                inside[0] -= 1
            lock.release()
    with switching(interval):
        errors = run_threads([lambda ops=ops: program(ops) for ops in programs])
    assert errors == []
    assert over == [], f"{max(over)} threads inside a {kind} that admits {limit}"
    if kind in ("Semaphore", "BoundedSemaphore"):
        assert lock._value == permits
    elif kind == "Lock":
        assert not lock.locked()
    else:
        assert lock.acquire(False)  # free again
        lock.release()


# -- Event: every waiter returns once the event stays set ---------------------------------------

event_ops = st.one_of(st.sampled_from([("set",), ("clear",), ("is_set",)]),
                      st.tuples(st.just("wait"), st.sampled_from([0, 0.0002, 0.002])))


@fuzz_settings(50)
@given(interval=switch_intervals, n_waiters=st.integers(0, 3), repeat=st.integers(1, steps(20)),
       programs=st.lists(st.lists(event_ops, min_size=1, max_size=steps(30)), min_size=1,
                         max_size=4))
def test_event_from_threads(interval, n_waiters, repeat, programs):
    programs = [p * repeat for p in programs]
    tally(1, sum(map(len, programs)))
    ev = pc_threading.Event()
    bad = []
    final = threading_event = std_threading.Event()  # the harness's own "programs done" flag

    def program(ops):
        for op in ops:
            r = getattr(ev, op[0])(*op[1:])
            if op[0] in ("wait", "is_set") and r not in (True, False):
                bad.append((op, r))

    def waiter():
        # waits until the event stays set after the programs: must return True
        while not final.is_set() or not ev.is_set():
            ev.wait(0.01)
        if ev.wait() is not True:
            bad.append("wait() after set() did not return True")
    targets = [lambda ops=ops: program(ops) for ops in programs]
    waiters = [pc_threading.Thread(target=waiter, daemon=True) for _ in range(n_waiters)]
    for w in waiters:
        w.start()
    with switching(interval):
        errors = run_threads(targets)
    ev.set()
    threading_event.set()
    for w in waiters:
        w.join(HANG_S)
        assert not w.is_alive(), "hang: an Event waiter did not return after set()"
    assert errors == [] and bad == []
    assert ev.is_set() and ev.wait(0) is True


# -- Condition: tokens produced and consumed, no waiter left behind ----------------------------

@fuzz_settings(50)
@given(interval=switch_intervals, lock=st.sampled_from([None, "Lock", "RLock"]),
       producers=st.lists(st.lists(st.tuples(st.integers(1, 3),
                                             st.sampled_from(["notify", "notify_n", "all"])),
                                   max_size=steps(15)), min_size=1, max_size=3),
       n_consumers=st.integers(1, 4), timeouts=st.booleans(), repeat=st.integers(1, steps(20)))
def test_condition_from_threads(interval, lock, producers, n_consumers, timeouts, repeat):
    producers = [p * repeat for p in producers]
    cond = pc_threading.Condition(None if lock is None else getattr(pc_threading, lock)())
    tokens = [0]
    total = sum(n for p in producers for n, _ in p)
    consumed = []
    bad = []
    share = [total // n_consumers + (c < total % n_consumers) for c in range(n_consumers)]
    tally(1, 2 * total)

    def producer(steps_):
        for n, how in steps_:
            with cond:
                tokens[0] += n
                if how == "notify":
                    cond.notify()
                elif how == "notify_n":
                    cond.notify(n)
                else:
                    cond.notify_all()
            time.sleep(0)

    def consumer(need):
        while need:
            with cond:
                ok = cond.wait_for(lambda: tokens[0] > 0, 0.01 if timeouts else None)
                if ok:
                    if tokens[0] <= 0:
                        bad.append("wait_for returned True with a false predicate")
                        return
                    tokens[0] -= 1
                    consumed.append(1)
                    need -= 1
                elif tokens[0] > 0:
                    bad.append("wait_for returned False with a true predicate")
    consumers = [std_threading.Thread(target=consumer, args=(n,), daemon=True) for n in share]
    for c in consumers:
        c.start()
    with switching(interval):
        errors = run_threads([lambda p=p: producer(p) for p in producers])
    with cond:
        cond.notify_all()  # wakes anyone whose wake-up went to a consumer that barged in
    for c in consumers:
        c.join(HANG_S)
        assert not c.is_alive(), "hang: a consumer was left waiting with tokens available"
    assert errors == [] and bad == []
    assert len(consumed) == total and tokens[0] == 0


# -- Barrier: every generation hands out each index once ---------------------------------------

@fuzz_settings(40)
@given(parties=st.integers(1, 4), rounds=st.integers(1, steps(100)), interval=switch_intervals,
       abort_at=st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(0, 100))),
       use_action=st.booleans())
def test_barrier_from_threads(parties, rounds, interval, abort_at, use_action):
    tally(1, parties * rounds)
    actions = []
    b = pc_threading.Barrier(parties, action=(lambda: actions.append(1)) if use_action else None)
    # round -> indices, made up front: a defaultdict's __missing__ allocates, the allocation may
    # run the collector, and a finalizer it runs may switch threads between the miss and the
    # store -- two threads would each store a list for the same round and one append be lost
    results = {r: [] for r in range(rounds)}
    broken = []

    def party(p):
        for r in range(rounds):
            if abort_at is not None and abort_at == (p, r):
                b.abort()
            try:
                results[r].append(b.wait())
            except std_threading.BrokenBarrierError:
                broken.append((p, r))
                return
    with switching(interval):
        errors = run_threads([lambda p=p: party(p) for p in range(parties)])
    assert errors == []
    aborted = abort_at is not None and abort_at[0] < parties and abort_at[1] < rounds
    for r, idx in results.items():
        if not idx:
            continue
        if len(idx) == parties:
            assert sorted(idx) == list(range(parties)), f"round {r}: {idx}"
        else:
            assert aborted, f"round {r} incomplete without an abort: {idx}"
    if not aborted:
        assert broken == [] and all(len(results[r]) == parties for r in range(rounds))
        if use_action:
            assert len(actions) == rounds
    else:
        assert b.broken


# -- Thread: trees of threads started and joined from threads ----------------------------------

@fuzz_settings(30)
@given(tree=st.recursive(st.just([]), lambda kids: st.lists(kids, max_size=3), max_leaves=12),
       join_timeouts=st.booleans(), interval=switch_intervals)
def test_thread_trees(tree, join_timeouts, interval):
    ran = []
    bad = []

    def count(t):
        return 1 + sum(count(k) for k in t)
    tally(1, count(tree))

    def node(path, kids):
        me = pc_threading.current_thread()
        if me.name != f"n{path}" or pc_threading.get_ident() != me.ident:
            bad.append(("identity", path, me.name))
        children = [pc_threading.Thread(target=node, args=(path + (i,), k), name=f"n{path + (i,)}")
                    for i, k in enumerate(kids)]
        for c in children:
            c.start()
        for c in children:
            if join_timeouts:
                c.join(0.001)
            c.join(HANG_S)
            if c.is_alive():
                bad.append(("hang", c.name))
        ran.append(path)
    with switching(interval):
        root = pc_threading.Thread(target=node, args=((), tree), name="n()")
        root.start()
        root.join(HANG_S * 2)
    assert not root.is_alive(), "hang"
    assert bad == []
    assert len(ran) == len(set(ran)) == count(tree)
