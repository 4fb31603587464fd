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
