"""Helpers shared by the fuzz tests: outcomes compared across implementations, items ordered by
Python code, and thread runners that turn a hang into a failure."""
import math
import threading
import time

from .profiles import HANG_S


def outcome(fn, *args, **kwargs):
    """What fn(*args, **kwargs) does, comparable across implementations: ("ok", canon(value))
    or ("raise", exception class name, message). Exceptions are compared by name because the
    oracles define some of their own (queue313.Full and .ShutDown are not queue.Full)."""
    try:
        value = fn(*args, **kwargs)
    except Exception as exc:
        return ("raise", type(exc).__name__, str(exc))
    return ("ok", canon(value))


def canon(x):
    """A comparable description of x in which items that compare equal look the same (the
    stdlib's heapq is not stable, pyconc's PriorityQueue is: equal items may come out in another
    order, and must then be indistinguishable)."""
    if isinstance(x, PyItem):
        return ("PyItem", x.k)
    if isinstance(x, tuple):
        return tuple(canon(e) for e in x)
    if isinstance(x, list):
        return [canon(e) for e in x]
    if isinstance(x, float) and math.isnan(x):
        return ("float", "nan")
    return (type(x).__name__, x)


class PyItem:
    """An item ordered by Python code (__lt__ and friends, the way @dataclass(order=True) and
    @total_ordering classes are): PyItem(k) sorts just after the int k, and like k among PyItems.
    Comparing it with a queue item runs Python code, which may switch threads."""
    __slots__ = ("k",)

    def __init__(self, k):
        self.k = k

    @staticmethod
    def key(x):
        return (x.k, 1) if isinstance(x, PyItem) else (x, 0)

    def __lt__(self, other):
        return (self.k, 1) < PyItem.key(other)

    def __le__(self, other):
        return (self.k, 1) <= PyItem.key(other)

    def __gt__(self, other):
        return (self.k, 1) > PyItem.key(other)

    def __ge__(self, other):
        return (self.k, 1) >= PyItem.key(other)

    def __eq__(self, other):
        return isinstance(other, (PyItem, int)) and (self.k, 1) == PyItem.key(other)

    def __hash__(self):
        return hash((self.k, 1))

    def __repr__(self):
        return f"PyItem({self.k!r})"

    def __reduce__(self):
        return (PyItem, (self.k,))


def run_threads(targets, hang_s=HANG_S):
    """Runs each callable of targets in its own thread (the stdlib's threads: the harness must
    not depend on the code under test), all released at once, and joins them. Returns the
    exceptions they raised. A thread still alive after hang_s fails the test as a hang (it is a
    daemon: it cannot keep the interpreter from exiting)."""
    errors = []
    gate = threading.Barrier(len(targets)) if targets else None

    def wrap(fn):
        def run():
            try:
                gate.wait(hang_s)
                fn()
            except BaseException as exc:  # reported, not lost in a thread
                errors.append(exc)
        return run
    threads = [threading.Thread(target=wrap(fn), daemon=True) for fn in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + hang_s
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in threads if t.is_alive()]
    assert not alive, f"hang: {alive} still running after {hang_s} s"
    return errors


# What the fuzz tests did in this run, printed at the end (tests/fuzz/conftest.py).
TALLY = {"examples": 0, "operations": 0}


def tally(examples=0, operations=0):
    TALLY["examples"] += examples
    TALLY["operations"] += operations
