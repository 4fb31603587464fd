"""Queue operations are atomic with respect to other threads whatever Python code they call
(issue 9, item 5): a PriorityQueue's Python-level comparisons, a subclass's _put/_get/_qsize hooks
and unusual timeout objects run under the queue's mutex, as in the stdlib, so another thread never
enters the same queue meanwhile; the lock-free paths wait for an operation in progress; and a
re-entrant call from the thread inside the operation is a RuntimeError (the stdlib deadlocks)."""
import collections
import dataclasses
import queue as std_queue
import signal
import sys
import threading
import time

import pytest

import pyconc.queue as pc_queue
from pyconc import threading as pc_threading

from .fuzz import queue313
from .support import run_python

pytestmark = pytest.mark.timeout(60)

# The oracle: the stdlib's Queue of Python 3.13 (3.11's has no shutdown; the rest is the same).
MODS = [queue313, pc_queue]
MOD_IDS = ["stdlib", "pyconc"]


@pytest.fixture
def fast_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def run_3_by_3(q, make_item, n_items):
    """3 producers and 3 consumers over q. Returns (errors, items received). Nothing is lost to
    an error (both sides retry), and a consumer gives up after 10 s without an item."""
    errors, got = [], []
    per = n_items // 3

    def produce(p):
        for i in range(per):
            for _ in range(3):
                try:
                    q.put(make_item(p * per + i))
                    break
                except Exception as exc:
                    errors.append(repr(exc))

    def consume():
        for _ in range(per):
            while True:
                try:
                    got.append(q.get(timeout=10))
                    break
                except std_queue.Empty:
                    errors.append("consumer starved")
                    return
                except Exception as exc:
                    errors.append(repr(exc))
    threads = [pc_threading.Thread(target=produce, args=(p,)) for p in range(3)]
    threads += [pc_threading.Thread(target=consume) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors, got


@dataclasses.dataclass(order=True)
class Job:
    priority: int
    serial: int


def test_priority_queue_with_python_comparisons_3_producers_3_consumers(fast_switching):
    # Before the fix: "RuntimeError: PriorityQueue changed during an item comparison", tens to
    # a thousand times per run (the stdlib: never).
    q = pc_queue.PriorityQueue()
    errors, got = run_3_by_3(q, lambda n: Job(n % 7, n), 60000)
    assert errors == []
    assert sorted(j.serial for j in got) == list(range(60000))
    assert q.qsize() == 0


class PyKey:
    """Orders like its tuple t, against tuples and other PyKeys, in Python code."""
    __slots__ = ("t",)

    def __init__(self, t):
        self.t = t

    def __lt__(self, other):
        return self.t < (other.t if isinstance(other, PyKey) else other)

    def __gt__(self, other):
        return self.t > (other.t if isinstance(other, PyKey) else other)


def test_priority_queue_mixed_plain_and_python_items(fast_switching):
    # Plain tuples (compared in C: put and get take no mutex while only such items are stored)
    # and Python-ordered keys share one heap: the lock-free path must wait for an operation
    # that holds the mutex.
    q = pc_queue.PriorityQueue()
    errors, got = run_3_by_3(q, lambda n: (n % 5, n) if n % 2 else PyKey((n % 5, n)), 30000)
    assert errors == []
    assert sorted(x[1] if isinstance(x, tuple) else x.t[1] for x in got) == list(range(30000))


@pytest.mark.parametrize("mod", MODS, ids=MOD_IDS)
def test_deque_subclass_whose_get_releases_the_gil(mod):
    # The documented subclassing pattern, with a _get that releases the GIL before it pops.
    # Before the fix: "IndexError: pop from an empty deque" hundreds of times (stdlib: never).
    class DequeQueue(mod.Queue):
        def _init(self, maxsize):
            self.items = collections.deque()

        def _qsize(self):
            return len(self.items)

        def _put(self, item):
            self.items.append(item)

        def _get(self):
            time.sleep(0.0001)
            return self.items.popleft()
    q = DequeQueue()
    errors, got = [], []

    def produce(p):
        for i in range(1000):
            q.put(p * 1000 + i)
            time.sleep(0.0002)

    def consume():
        for _ in range(1000):
            try:
                got.append(q.get(timeout=10))
            except Exception as exc:
                errors.append(repr(exc))
    threads = [threading.Thread(target=produce, args=(p,)) for p in range(3)]
    threads += [threading.Thread(target=consume) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got) == list(range(3000))


# -- every operation waits for an operation in progress in another thread --------------------

OPS = {
    "qsize": lambda q: q.qsize(),
    "empty": lambda q: q.empty(),
    "full": lambda q: q.full(),
    "put_nowait": lambda q: (q.put_nowait("b"), q.qsize()),
    "put": lambda q: (q.put("b"), q.qsize()),
    "get": lambda q: q.get(),
    "get_nowait": lambda q: q.get_nowait(),
    "task_done": lambda q: (q.task_done(), q.unfinished_tasks),
    "shutdown": lambda q: (q.shutdown(), q.is_shutdown, q.qsize()),
    "shutdown_immediate": lambda q: (q.shutdown(immediate=True), q.qsize(), q.unfinished_tasks),
}


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("mod", MODS, ids=MOD_IDS)
def test_operation_waits_for_a_hook_in_another_thread(mod, op):
    # Thread A is inside put()'s _put hook (blocked on an event); thread B calls op. The stdlib's
    # B waits for A's put to finish (its mutex), so B sees the queue after the put: one item,
    # one unfinished task. pyconc must give the same results.
    entered, release = threading.Event(), threading.Event()

    class Hooked(mod.Queue):
        def _put(self, item):
            if item == "a":
                entered.set()
                assert release.wait(10)
            super()._put(item)
    q = Hooked(3)
    a = threading.Thread(target=q.put, args=("a",))
    a.start()
    assert entered.wait(10)
    result = []
    b = threading.Thread(target=lambda: result.append(OPS[op](q)))
    b.start()
    b.join(0.1)
    early = list(result)
    release.set()
    a.join(10)
    b.join(10)
    assert early == []  # B did not run in the middle of A's put
    expected = {"qsize": 1, "empty": False, "full": False, "put_nowait": (None, 2),
                "put": (None, 2), "get": "a", "get_nowait": "a", "task_done": (None, 0),
                "shutdown": (None, True, 1), "shutdown_immediate": (None, 0, 0)}[op]
    assert result == [expected]


@pytest.mark.parametrize("mod", MODS, ids=MOD_IDS)
def test_join_waits_for_a_hook_in_another_thread(mod):
    # B's join() must see the unfinished task of the put in progress, not return at once.
    entered, release = threading.Event(), threading.Event()

    class Hooked(mod.Queue):
        def _put(self, item):
            entered.set()
            assert release.wait(10)
            super()._put(item)
    q = Hooked()
    a = threading.Thread(target=q.put, args=("a",))
    a.start()
    assert entered.wait(10)
    joined = []
    b = threading.Thread(target=lambda: (q.join(), joined.append(True)))
    b.start()
    b.join(0.1)
    release.set()
    a.join(10)
    b.join(0.1)
    assert joined == []
    assert q.get() == "a"
    q.task_done()
    b.join(10)
    assert joined == [True]


class SlowTimeout:
    """A timeout object whose `< 0` test (the stdlib's first look at it) blocks on an event."""

    def __init__(self, entered, release):
        self.entered, self.release = entered, release

    def __lt__(self, other):
        self.entered.set()
        assert self.release.wait(10)
        return False

    def __gt__(self, other):
        return True

    def __float__(self):
        return 5.0

    def __index__(self):
        return 5

    def __radd__(self, other):
        return other + 5.0


@pytest.mark.parametrize("mod", MODS, ids=MOD_IDS)
def test_put_fast_path_waits_for_a_timeout_being_parsed(mod):
    # A's put(timeout=...) runs Python code (the timeout's __lt__) inside the operation, after
    # its look at the queue. B's put("b") (the lock-free fast path) must wait for A's put.
    entered, release = threading.Event(), threading.Event()
    q = mod.Queue(1)
    a = threading.Thread(target=q.put, args=("a",), kwargs={"timeout": SlowTimeout(entered,
                                                                                     release)})
    a.start()
    assert entered.wait(10)
    b = threading.Thread(target=q.put, args=("b",))
    b.start()
    b.join(0.1)
    release.set()
    a.join(10)
    assert q.get(timeout=5) == "a"
    b.join(10)
    assert q.get(timeout=5) == "b"


@pytest.mark.parametrize("mod", MODS, ids=MOD_IDS)
def test_get_fast_path_waits_for_a_timeout_being_parsed(mod):
    entered, release = threading.Event(), threading.Event()
    q = mod.Queue()
    q.put("x")
    got = {}
    a = threading.Thread(target=lambda: got.setdefault("a", q.get(timeout=SlowTimeout(
        entered, release))))
    a.start()
    assert entered.wait(10)
    b = threading.Thread(target=lambda: got.setdefault("b", q.get()))
    b.start()
    b.join(0.1)
    release.set()
    a.join(10)
    q.put("y")
    b.join(10)
    assert got == {"a": "x", "b": "y"}


# -- re-entrant calls: RuntimeError where the stdlib deadlocks --------------------------------

class CallsBack:
    """An item whose comparison calls back into a queue (its `action`)."""
    action = None

    def __init__(self, v):
        self.v = v

    def __lt__(self, other):
        if CallsBack.action is not None:
            CallsBack.action()
        return self.v < other.v


@pytest.mark.parametrize("call", ["qsize", "empty", "full", "put", "get_nowait", "task_done",
                                  "shutdown"])
def test_reentrant_call_from_a_comparison_is_a_runtime_error(call):
    # The stdlib's mutex is a plain Lock: the same call deadlocks there.
    q = pc_queue.PriorityQueue()
    for v in (1, 2, 3):
        q.put(CallsBack(v))
    args = {"put": (CallsBack(0),)}.get(call, ())
    CallsBack.action = lambda: getattr(q, call)(*args)
    try:
        with pytest.raises(RuntimeError, match="re-entrant call"):
            q.put(CallsBack(0))
        with pytest.raises(RuntimeError, match="re-entrant call"):
            q.get()
    finally:
        CallsBack.action = None
    # the failed operations changed nothing, and the mutex was released
    assert q.qsize() == 3 and q.unfinished_tasks == 3 and not q.is_shutdown
    assert [q.get().v for _ in range(3)] == [1, 2, 3]


def test_reentrant_call_from_a_hook_is_a_runtime_error():
    class Hooked(pc_queue.Queue):
        def _get(self):
            self.empty()  # the stdlib deadlocks here
            return super()._get()
    q = Hooked()
    q.put(1)
    with pytest.raises(RuntimeError, match="re-entrant call"):
        q.get()
    assert q.qsize() == 1
    Hooked._get = lambda self: pc_queue.Queue._get(self)  # the base hook is fine from a hook
    assert q.get() == 1


def test_other_queues_from_a_comparison_are_fine():
    # The mutex is per queue: a comparison may use other queues, SimpleQueue included.
    log, other = pc_queue.SimpleQueue(), pc_queue.Queue()
    q = pc_queue.PriorityQueue()
    CallsBack.action = lambda: (log.put("cmp"), other.put(1), other.get())
    try:
        for v in (3, 1, 2):
            q.put(CallsBack(v))
        assert [q.get().v for _ in range(3)] == [1, 2, 3]
    finally:
        CallsBack.action = None
    assert log.qsize() > 0 and other.qsize() == 0


def test_items_dropped_by_immediate_shutdown_are_released_after_the_operation():
    # A __del__ that uses the queue runs once the shutdown is complete: ShutDown, not a
    # RuntimeError or (the stdlib) a deadlock.
    seen = []
    q = pc_queue.Queue()

    class Dropped:
        def __del__(self):
            try:
                q.put(0)
            except Exception as exc:
                seen.append(type(exc).__name__)
    q.put(Dropped())
    q.put(Dropped())
    q.shutdown(immediate=True)
    assert seen == ["ShutDown", "ShutDown"]


# -- SimpleQueue has no hooks and no comparisons: unaffected -----------------------------------

def test_simple_queue_with_python_items_3_producers_3_consumers(fast_switching):
    q = pc_queue.SimpleQueue()
    errors, got = run_3_by_3(q, lambda n: Job(n % 7, n), 30000)
    assert errors == []
    assert sorted(j.serial for j in got) == list(range(30000))


@pytest.mark.parametrize("mod", MODS, ids=MOD_IDS)
def test_simple_queue_never_calls_hooks(mod):
    calls = []

    class Sub(mod.SimpleQueue):
        def _put(self, item):
            calls.append("put")

        def _get(self):
            calls.append("get")

        def _qsize(self):
            calls.append("qsize")
    q = Sub()
    q.put(1)
    assert (q.qsize(), q.get(), q.empty(), calls) == (1, 1, True, [])


# -- waiting for the mutex: interruptible, and free after a fork -------------------------------

def test_wait_for_the_mutex_is_interruptible_and_changes_nothing():
    entered, release = threading.Event(), threading.Event()

    class Hooked(pc_queue.Queue):
        def _put(self, item):
            if item == "a":
                entered.set()
                assert release.wait(10)
            super()._put(item)
    q = Hooked()
    a = threading.Thread(target=q.put, args=("a",))
    a.start()
    assert entered.wait(10)

    class Alarm(Exception):
        pass

    def handler(signum, frame):
        raise Alarm
    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(Alarm):
            q.put("b")  # waits for A's put: the mutex
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        release.set()
        a.join(10)
    assert q.qsize() == 1 and q.unfinished_tasks == 1 and q.get() == "a"


def test_mutex_held_by_a_thread_lost_in_fork_is_free_in_the_child():
    r = run_python("""
        import os, threading
        import pyconc.queue as pq
        entered, release = threading.Event(), threading.Event()
        class Hooked(pq.Queue):
            def _put(self, item):
                if item == "a":
                    entered.set()
                    release.wait(10)
                super()._put(item)
        q = Hooked()
        t = threading.Thread(target=q.put, args=("a",))
        t.start()
        entered.wait(10)
        pid = os.fork()
        if pid == 0:
            q.put("b")                      # the holder does not exist here
            os._exit(0 if (q.qsize(), q.get()) == (1, "b") else 1)
        _, status = os.waitpid(pid, 0)
        release.set()
        t.join()
        print(os.waitstatus_to_exitcode(status), q.qsize())
    """, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "1"]
