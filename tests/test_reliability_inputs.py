"""Regression tests for issue 9's unusual-input items (7, 10, 11, 12), each against the stdlib.

Every call runs in a daemon thread joined with a deadline, so that a call that wrongly blocks
forever fails the test ("blocks") instead of hanging it. The broad, generated comparison of every
timeout/count/size parameter is tests/test_differential_inputs.py.
"""
import copy
import pickle
import queue as std_queue
import sys
import threading as std_threading

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
    assert actual == expected, f"pyconc: {actual!r}, stdlib: {expected!r}"
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
