"""Regression tests for issue 9's unusual-input items (7, 8, 10, 11, 12), each against the stdlib.

Every call runs in a daemon thread joined with a deadline, so that a call that wrongly blocks
forever fails the test ("blocks") instead of hanging it. The broad, generated comparison of every
timeout/count/size parameter is tests/test_differential_inputs.py.
"""
import copy
import pickle
import queue as std_queue
import sys
import threading as std_threading
from fractions import Fraction

import pytest

from pyconc import queue as pc_queue
from pyconc import threading as pc_threading

IMPLS = {"stdlib": (std_threading, std_queue), "pyconc": (pc_threading, pc_queue)}


def guarded(fn, deadline=5.0):
    """("ret", value) / ("exc", type name, message) / ("blocks",)."""
    out = []

    def run():
        try:
            out.append(("ret", fn()))
        except Exception as exc:
            out.append(("exc", type(exc).__name__, str(exc)))

    t = std_threading.Thread(target=run, daemon=True)
    t.start()
    t.join(deadline)
    return out[0] if out else ("blocks",)


def same(scenario):
    """scenario(threading_module, queue_module) must have the same outcome on both."""
    expected = guarded(lambda: scenario(*IMPLS["stdlib"]))
    actual = guarded(lambda: scenario(*IMPLS["pyconc"]))
    # compared by repr: nan is a value like any other here
    assert repr(actual) == repr(expected), f"pyconc: {actual!r}, stdlib: {expected!r}"
    return actual


class Index:
    def __init__(self, value):
        self.value = value

    def __index__(self):
        return self.value


class BadIndex:
    def __index__(self):
        raise ZeroDivisionError("no index")


def held_elsewhere(lock):
    """Makes lock held by another, live thread (an RLock's owner must stay alive)."""
    got, done = std_threading.Event(), std_threading.Event()

    def hold():
        lock.acquire()
        got.set()
        done.wait()

    std_threading.Thread(target=hold, daemon=True).start()
    got.wait()
    return done


# -- item 7: Lock.acquire(0.5) and friends ----------------------------------------------------

LOCKS = {
    "Lock": lambda T: T.Lock(),
    "RLock": lambda T: T.RLock(),
    "Condition(Lock)": lambda T: T.Condition(T.Lock()),
    "Condition(RLock)": lambda T: T.Condition(T.RLock()),
    "Semaphore": lambda T: T.Semaphore(1),
    "BoundedSemaphore": lambda T: T.BoundedSemaphore(1),
}
BLOCKING = [0.5, 0.0, None, [], "x", (), 2, -1, 0, True, False, 2**40, -2**40, 2**70,
            Index(1), Index(0), BadIndex()]


@pytest.mark.parametrize("blocking", BLOCKING, ids=repr)
@pytest.mark.parametrize("kind", LOCKS)
def test_acquire_blocking_argument(kind, blocking):
    # free: nothing to wait for
    same(lambda T, Q: LOCKS[kind](T).acquire(blocking))
    # held by another thread: a valid blocking argument waits (here for 10 ms), an invalid one
    # raises before waiting -- pyconc used to take acquire(0.5) for acquire(True) and block
    def held(T, Q):
        lock = LOCKS[kind](T)
        done = held_elsewhere(lock)
        try:
            return lock.acquire(blocking, 0.01)
        finally:
            done.set()
    same(held)
    same(lambda T, Q: LOCKS[kind](T).acquire(blocking=blocking))


# -- item 10: a Barrier action that re-initialises the barrier ---------------------------------

def run_barrier_round(T, parties, action_factory, timeout=5):
    """parties-1 helper threads and the caller wait on a new barrier whose action comes from
    action_factory(barrier). Returns the caller's outcome, the helpers' outcomes (sorted), and
    the barrier's broken flag afterwards."""
    box = []
    b = T.Barrier(parties, action=lambda: action_factory(box[0])(), timeout=timeout)
    box.append(b)
    outs = []

    def helper():
        try:
            outs.append(("ret", b.wait()))
        except Exception as exc:
            outs.append(("exc", type(exc).__name__, str(exc)))

    helpers = [std_threading.Thread(target=helper, daemon=True) for _ in range(parties - 1)]
    for h in helpers:
        h.start()
    while b.n_waiting < parties - 1:
        std_threading.Event().wait(0.001)
    mine = guarded(b.wait)
    b.abort()   # releases any helper the round left parked (the stdlib's never wakes them)
    for h in helpers:
        h.join(10)
    return mine, sorted(outs), b.broken


def test_barrier_action_reinitialising_the_barrier():
    # pyconc used to return the index with RuntimeError('release unlocked lock') set
    # (SystemError: "... returned a result with an exception set"). Now the re-initialisation
    # starts a new generation and everybody inside wait() gets BrokenBarrierError. (The stdlib's
    # caller gets RuntimeError from notifying the new, unheld Condition and its other parties
    # stay parked until their timeout: see barrier.c's top comment.)
    for parties in (2, 3):
        mine, others, broken = run_barrier_round(pc_threading, parties,
                                                 lambda b: lambda: b.__init__(2))
        assert mine == ("exc", "BrokenBarrierError", "")
        assert others == [("exc", "BrokenBarrierError", "")] * (parties - 1)
    box = []
    b = pc_threading.Barrier(2, action=lambda: (b.__init__(2, timeout=7), box.append(1)))
    t = std_threading.Thread(target=guarded, args=(b.wait,), daemon=True)
    t.start()
    assert guarded(b.wait) == ("exc", "BrokenBarrierError", "")
    t.join(10)
    assert box == [1] and b.n_waiting == 0 and not b.broken
    # the new generation works
    t = std_threading.Thread(target=b.wait, daemon=True)
    t.start()
    assert guarded(b.wait)[0] == "ret"
    t.join(10)


@pytest.mark.parametrize("action", [
    lambda b: lambda: b.__init__(),            # TypeError: missing parties
    lambda b: lambda: b.__init__("x", 1, 2, 3),  # TypeError: too many arguments
    lambda b: lambda: 1 / 0,
], ids=["init-no-args", "init-too-many", "raises"])
def test_barrier_action_errors_as_stdlib(action):
    std = run_barrier_round(std_threading, 2, action, timeout=1)
    mine = run_barrier_round(pc_threading, 2, action, timeout=1)
    assert mine == std


# -- item 11: arithmetic on user-supplied sizes -------------------------------------------------

def test_semaphore_counter_beyond_ssize_t():
    # pyconc's counter was a Py_ssize_t: release(sys.maxsize) wrapped it to -2**63 and the
    # semaphore could never be acquired again. The stdlib's counter is a Python int.
    # (The stdlib's release(n) also calls notify() n times, so release(sys.maxsize) does not
    # return in practice there; pyconc wakes at most the parked waiters.)
    s = pc_threading.Semaphore(1)
    s.release(sys.maxsize)
    assert s._value == sys.maxsize + 1
    s.release(sys.maxsize)
    assert s._value == 2 * sys.maxsize + 1
    assert s.acquire(False) and s._value == 2 * sys.maxsize
    for _ in range(3):
        assert s.acquire(timeout=0)
    assert s._value == 2 * sys.maxsize - 3
    # and back below Py_ssize_t
    s = pc_threading.Semaphore(2**64)
    assert s.acquire(False) and s._value == 2**64 - 1


@pytest.mark.parametrize("taken", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 2, sys.maxsize, sys.maxsize - 1, 2**63, 2**70])
def test_bounded_semaphore_bound_check_overflow(taken, n):
    # value + n overflowed in the bound check: BoundedSemaphore(2) with a unit taken accepted
    # release(sys.maxsize).
    def scenario(T, Q):
        b = T.BoundedSemaphore(2)
        for _ in range(taken):
            b.acquire()
        try:
            b.release(n)
        finally:
            value = b._value
        return value
    same(scenario)


@pytest.mark.parametrize("value", [1, 0, 2**70, 1.5, "x", -1, -0.5, 2.0, True, float("nan"),
                                   float("inf")], ids=repr)
@pytest.mark.parametrize("n", [1, 2, 2**20, 2.0, 0, -1, 0.5, 2**70], ids=repr)
def test_semaphore_counter_as_stdlib(value, n):
    # The counter is whatever the stdlib's would be: any number (Semaphore(1.5) never blocks,
    # its counter never equals 0), release(n) with a non-integer n raises TypeError after the
    # counter has grown (the stdlib's `for i in range(n)`).
    if n == 2**70:
        n = 2**20  # the stdlib notifies n times: 2**70 does not return there
    for cls in ("Semaphore", "BoundedSemaphore"):
        def scenario(T, Q):
            s = getattr(T, cls)(value)
            seen = []
            for op in (lambda: s.acquire(False), lambda: s.release(n), lambda: s.acquire(False),
                       lambda: s.acquire(timeout=0)):
                try:
                    seen.append(op())
                except Exception as exc:
                    seen.append((type(exc).__name__, str(exc)))
                seen.append(s._value)
            return seen
        same(scenario)


def test_send_bytes_offset_plus_size_overflow():
    # offset + size overflowed the bounds check and ended in OSError: Bad address.
    import multiprocessing as std_mp
    from pyconc import multiprocessing as pc_mp
    outcomes = []
    for mp in (std_mp, pc_mp):
        a, b = mp.Pipe()
        outcomes.append([guarded(lambda: a.send_bytes(b"abc", offset, size))
                         for offset, size in [(1, sys.maxsize), (3, sys.maxsize), (0, 3),
                                              (2, sys.maxsize - 1), (1, 2)]])
        a.close()
        b.close()
    assert outcomes[1] == outcomes[0]


def test_shared_block_size_near_ssize_max():
    # 64 + size wrapped into a negative file size (ftruncate: EINVAL); now refused as a file
    # size that cannot exist (EFBIG, as the stdlib's heap arena reports sizes it cannot have).
    import errno
    from pyconc import _core
    for size in (sys.maxsize, sys.maxsize - 63):
        with pytest.raises(OSError) as info:
            _core.SharedBlock(size)
        assert info.value.errno == errno.EFBIG


# -- item 12: copy.copy, pickling, Barrier.n_waiting after fork --------------------------------

PRIMITIVES = {
    "Lock": lambda T, Q: T.Lock(), "RLock": lambda T, Q: T.RLock(),
    "Condition": lambda T, Q: T.Condition(), "Condition(Lock)": lambda T, Q: T.Condition(T.Lock()),
    "Semaphore": lambda T, Q: T.Semaphore(), "BoundedSemaphore": lambda T, Q: T.BoundedSemaphore(),
    "Event": lambda T, Q: T.Event(), "Barrier": lambda T, Q: T.Barrier(2),
    "Thread": lambda T, Q: T.Thread(), "Queue": lambda T, Q: Q.Queue(),
    "LifoQueue": lambda T, Q: Q.LifoQueue(), "PriorityQueue": lambda T, Q: Q.PriorityQueue(),
    "SimpleQueue": lambda T, Q: Q.SimpleQueue(),
}


@pytest.mark.parametrize("op", ["copy", "deepcopy", "pickle"])
@pytest.mark.parametrize("name", PRIMITIVES)
def test_copy_and_pickle_as_stdlib(name, op):
    # copy.copy(Queue()) was a TypeError; the stdlib's Python classes copy into an object that
    # shares all their state, and pickling fails on the first C lock they hold.
    fn = {"copy": copy.copy, "deepcopy": copy.deepcopy,
          "pickle": lambda o: pickle.dumps(o, pickle.HIGHEST_PROTOCOL)}[op]
    same(lambda T, Q: type(fn(PRIMITIVES[name](T, Q))).__name__)


def test_copied_queue_is_the_same_queue():
    def scenario(T, Q):
        seen = []
        for cls in (Q.Queue, Q.LifoQueue, Q.PriorityQueue):
            q = cls(2)
            c = copy.copy(q)
            c.put(1)
            q.put(2)
            seen += [q.qsize(), c.full(), c.get_nowait(), q.get_nowait(), c.empty()]
        return seen
    same(scenario)


def test_copied_counters_are_shared():
    # A listed difference: the stdlib's copy of a Semaphore or an Event shares its Condition
    # but copies the counter or flag (an int, a bool) -- a half-shared object: setting the
    # copy's flag wakes the original's waiters while the original's flag stays clear. pyconc's
    # state is one C object: the copy is the object itself, counter and flag included.
    e = pc_threading.Event()
    copy.copy(e).set()
    s = pc_threading.Semaphore(1)
    copy.copy(s).acquire()
    assert e.is_set() and not s.acquire(False) and copy.copy(s) is s


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_barrier_n_waiting_right_after_fork():
    # The waiters of threads lost in a fork used to show in n_waiting (and repr) until the
    # barrier's next wait/reset/abort.
    import os
    b = pc_threading.Barrier(3)
    helpers = [std_threading.Thread(target=guarded, args=(b.wait,), daemon=True)
               for _ in range(2)]
    for h in helpers:
        h.start()
    while b.n_waiting < 2:
        std_threading.Event().wait(0.001)
    pid = os.fork()
    if pid == 0:
        ok = b.n_waiting == 0 and not b.broken and "waiters=0/3" in repr(b)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    b.abort()
    for h in helpers:
        h.join(10)
    assert os.waitstatus_to_exitcode(status) == 0


# -- item 8: the issue's examples (the broad comparison is test_differential_inputs.py) ----------

def _simplequeue_get_nan(T, Q):
    return Q.SimpleQueue().get(timeout=float("nan"))


def _thread_join_nan(T, Q):
    ev = std_threading.Event()
    t = T.Thread(target=ev.wait, args=(10,), daemon=True)
    t.start()
    try:
        return t.join(float("nan"))
    finally:
        ev.set()


def _notify_float(T, Q):
    c = T.Condition()
    with c:
        return c.notify(2.0)


def _get_after_put(timeout):
    def scenario(T, Q):
        q = Q.Queue()
        q.put(1)
        return q.get(timeout=timeout)
    return scenario


def _acquires(T, Q):
    s = T.Semaphore(1.5)
    return [s.acquire(False) for _ in range(3)] + [s._value]


def _fill(T, Q):
    q = Q.Queue(maxsize=2.5)
    return [q.put_nowait(i) for i in range(3)] + [q.full()]


def _wait_set(T, Q):
    e = T.Event()
    e.set()
    return e.wait(1e10)


ISSUE_EXAMPLES = {
    "SimpleQueue.get(timeout=nan)": _simplequeue_get_nan,
    "Queue.get(timeout=inf), item there": _get_after_put(float("inf")),
    "Queue.get(timeout=2**64), item there": _get_after_put(2**64),
    "Queue.put(timeout=1e10), room": lambda T, Q: Q.Queue(2).put(1, timeout=1e10),
    "Queue.get(timeout=Fraction(1, 1000))": _get_after_put(Fraction(1, 1000)),
    "Thread.join(nan), alive": _thread_join_nan,
    "Condition.notify(2.0)": _notify_float,
    "Semaphore(1.5)": _acquires,
    "Queue(maxsize=2.5)": _fill,
    "Barrier('x')": lambda T, Q: (T.Barrier("x").parties, T.Barrier("x").n_waiting),
    "Lock.acquire(timeout=-inf)": lambda T, Q: T.Lock().acquire(timeout=float("-inf")),
    "Lock.acquire(timeout=2**64)": lambda T, Q: T.Lock().acquire(timeout=2**64),
    "Event.wait(timeout=1e10), set": _wait_set,
}


@pytest.mark.parametrize("name", ISSUE_EXAMPLES)
def test_issue_input_examples(name):
    same(ISSUE_EXAMPLES[name])
