"""pyconc.threading against the stdlib's threading as the oracle: names, signatures, defaults,
results, exception types and messages."""
import re
import sys
import threading
import time
import warnings

import pytest

from pyconc import threading as pth

from .support import MODULE_IDS, MODULES, assert_same, run_python

pytestmark = pytest.mark.timeout(60)


def test_all_names_of_the_stdlib_exist():
    missing = [n for n in threading.__all__ if not hasattr(pth, n)]
    assert missing == []
    for name in ("currentThread", "activeCount", "ExceptHookArgs", "excepthook"):
        assert hasattr(pth, name)


def test_public_attributes_of_the_stdlibs_objects_exist():
    # what the running stdlib's objects have, pyconc's have (3.14: RLock.locked and
    # Condition.locked; 3.13: Queue.shutdown ...)
    def public(obj):
        return {n for n in dir(obj) if not n.startswith("_")}
    made = {}
    for T in (threading, pth):
        made[T] = [T.Lock(), T.RLock(), T.Condition(), T.Semaphore(), T.BoundedSemaphore(),
                   T.Event(), T.Barrier(1), T.Thread(), T.Timer(1, print)]
    missing = {type(s).__name__: sorted(public(s) - public(p))
               for s, p in zip(made[threading], made[pth]) if public(s) - public(p)}
    assert missing == {}


def test_thread_context_as_stdlib():
    # 3.14: Thread(..., context=None) runs run() in the given contextvars.Context, by default
    # in a new empty one (a copy of the caller's with -X thread_inherit_context); before 3.14
    # the keyword does not exist.
    import contextvars
    var = contextvars.ContextVar("var", default="unset")

    def f(T):
        seen = []
        token = var.set("caller")
        try:
            ctx = contextvars.copy_context()
            for kw in ({}, {"context": ctx}, {"context": contextvars.Context()}):
                t = T.Thread(target=lambda: (seen.append(var.get()), var.set("thread")), **kw)
                t.start()
                t.join()
            seen.append(ctx[var])
        finally:
            var.reset(token)
        return seen
    assert_same(f)


def test_thread_os_name_as_stdlib():
    # 3.14 names the OS thread after the Thread (truncated to 15 bytes by Linux), at start and
    # when the running thread is renamed; before 3.14 the OS thread keeps the process's name.
    def comm():
        with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
            return f.read().strip()

    def f(T):
        seen = []

        def body():
            seen.append(comm())
            T.current_thread().name = "renamed-while-running"
            seen.append(comm())
        t = T.Thread(target=body, name="a-rather-long-thread-name")
        t.start()
        t.join()
        return seen
    assert_same(f)


def test_shared_exception_objects_are_the_stdlibs():
    assert pth.BrokenBarrierError is threading.BrokenBarrierError
    assert pth.ThreadError is threading.ThreadError
    assert pth.TIMEOUT_MAX == threading.TIMEOUT_MAX


def test_types_are_pyconcs_own():
    for name in ("Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "Event",
                 "Barrier", "Thread"):
        assert getattr(pth, name).__module__ == "pyconc"
    assert issubclass(pth.BoundedSemaphore, pth.Semaphore)
    assert issubclass(pth.Timer, pth.Thread)


# -- Lock and RLock ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["Lock", "RLock"])
@pytest.mark.parametrize("kwargs", [
    dict(blocking=False, timeout=1), dict(timeout=-2), dict(timeout=-1), dict(timeout=1e10),
    dict(timeout=1e300), dict(timeout=float("nan")), dict(timeout="1"), dict(timeout=None),
    dict(blocking=False), dict(timeout=0), dict(timeout=True), dict(timeout=9223372036.0),
    dict(bogus=1),
])
def test_acquire_arguments(kind, kwargs):
    def f(mod):
        lock = getattr(mod, kind)()
        r1 = lock.acquire(**kwargs)
        return r1
    assert_same(f)


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_acquire_positional_and_too_many(kind):
    assert_same(lambda mod: getattr(mod, kind)().acquire(True, 0.01))
    assert_same(lambda mod: getattr(mod, kind)().acquire(False))
    assert_same(lambda mod: getattr(mod, kind)().acquire(1, 2, 3))


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_release_takes_no_arguments(kind):
    # pyconc's release is METH_FASTCALL (so 3.12+ specialises its calls) and words the error as
    # CPython words a METH_NOARGS method's; the type's name is its own ("Lock", the stdlib "lock")
    for call in (lambda lock: lock.release(1), lambda lock: lock.release(x=1)):
        msgs = []
        for mod in (threading, pth):
            lock = getattr(mod, kind)()
            lock.acquire()
            with pytest.raises(TypeError) as e:
                call(lock)
            msgs.append(re.sub(r"^\w+\.", "T.", str(e.value)))
            assert repr(lock).startswith("<locked")      # still held
            lock.release()
        assert msgs[0] == msgs[1]


def test_lock_release_unlocked():
    assert_same(lambda mod: mod.Lock().release())


def test_rlock_release_unacquired():
    assert_same(lambda mod: mod.RLock().release())
    assert_same(lambda mod: mod.RLock()._release_save())


def test_lock_contended_timeouts():
    def f(mod):
        lock = mod.Lock()
        lock.acquire()
        t0 = time.monotonic()
        got = lock.acquire(timeout=0.05)
        waited = time.monotonic() - t0
        return got, waited >= 0.045, lock.acquire(False), lock.locked()
    assert assert_same(f) == ("ok", (False, True, False, True))


def test_lock_released_by_other_thread():
    def f(mod):
        lock = mod.Lock()
        lock.acquire()
        t = mod.Thread(target=lock.release)
        t.start()
        t.join()
        return lock.locked(), lock.acquire(timeout=1)
    assert_same(f)


def test_rlock_other_thread_cannot_release():
    def f(mod):
        lock = mod.RLock()
        lock.acquire()
        errors = []

        def other():
            try:
                lock.release()
            except RuntimeError as e:
                errors.append(str(e))
        t = mod.Thread(target=other)
        t.start()
        t.join()
        return errors, lock._is_owned()
    assert_same(f)


def test_rlock_recursion_and_helpers():
    def f(mod):
        r = mod.RLock()
        out = [r._is_owned(), r._recursion_count()]
        r.acquire()
        r.acquire()
        out += [r._is_owned(), r._recursion_count()]
        state = r._release_save()
        out += [state[0], r._is_owned(), r._recursion_count()]
        r._acquire_restore(state)
        out += [r._recursion_count()]
        r.release()
        r.release()
        out += [r._recursion_count()]
        return out
    assert_same(f)


def test_lock_reprs():
    lock = pth.Lock()
    assert re.fullmatch(r"<unlocked pyconc\.Lock object at 0x[0-9a-f]+>", repr(lock))
    lock.acquire()
    assert re.fullmatch(r"<locked pyconc\.Lock object at 0x[0-9a-f]+>", repr(lock))
    r = pth.RLock()
    r.acquire()
    assert re.fullmatch(r"<locked pyconc\.RLock object owner=\d+ count=1 at 0x[0-9a-f]+>",
                        repr(r))


def test_lock_not_picklable_and_weakrefable():
    import pickle
    import weakref
    for mod in MODULES:
        with pytest.raises(TypeError):
            pickle.dumps(mod.Lock())
    lock = pth.Lock()
    assert weakref.ref(lock)() is lock


def test_lock_context_manager():
    def f(mod):
        lock = mod.Lock()
        with lock as entered:
            inside = lock.locked()
        return entered, inside, lock.locked()
    assert_same(f)


# -- Semaphores ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["Semaphore", "BoundedSemaphore"])
def test_semaphore_errors(kind):
    assert_same(lambda mod: getattr(mod, kind)(-1))
    assert_same(lambda mod: getattr(mod, kind)(1).acquire(False, 1))
    assert_same(lambda mod: getattr(mod, kind)(1).release(0))
    assert_same(lambda mod: getattr(mod, kind)(0).acquire(timeout=-1))
    assert_same(lambda mod: getattr(mod, kind)(0).acquire(False))
    assert_same(lambda mod: getattr(mod, kind)(0).acquire(timeout=1e10))
    assert_same(lambda mod: getattr(mod, kind)(1).acquire(timeout=1e10))
    assert_same(lambda mod: getattr(mod, kind)(value=3)._value)


def test_bounded_semaphore_over_release():
    assert_same(lambda mod: mod.BoundedSemaphore(2).release())
    def f(mod):
        s = mod.BoundedSemaphore(2)
        s.acquire()
        s.acquire()
        s.release(2)
        return s._value
    assert_same(f)
    def g(mod):
        s = mod.BoundedSemaphore(2)
        s.acquire()
        s.release(2)
    assert_same(g)


def test_semaphore_release_n_wakes_n():
    def f(mod):
        s = mod.Semaphore(0)
        got = []
        threads = [mod.Thread(target=lambda: got.append(s.acquire(timeout=5))) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        s.release(3)
        for t in threads:
            t.join()
        return got, s._value
    assert_same(f)


def test_semaphore_reprs():
    assert re.fullmatch(r"<pyconc\.Semaphore at 0x[0-9a-f]+: value=3>", repr(pth.Semaphore(3)))
    assert re.fullmatch(r"<pyconc\.BoundedSemaphore at 0x[0-9a-f]+: value=3/3>",
                        repr(pth.BoundedSemaphore(3)))


# -- Event --------------------------------------------------------------------------------------

def test_event_basics():
    def f(mod):
        e = mod.Event()
        out = [e.is_set(), e.wait(0), e.wait(-1), e.wait(0.01)]
        e.set()
        out += [e.is_set(), e.wait(), e.wait(1e300)]
        e.clear()
        out += [e.is_set()]
        return out
    assert_same(f)
    assert_same(lambda mod: mod.Event().wait(1e10))
    assert_same(lambda mod: mod.Event().wait("x"))
    assert_same(lambda mod: mod.Event(1))


def test_event_isSet_deprecated():
    for mod in MODULES:
        with pytest.warns(DeprecationWarning, match=r"isSet\(\) is deprecated"):
            assert mod.Event().isSet() is False


def test_event_wakes_all_waiters():
    def f(mod):
        e = mod.Event()
        results = []
        threads = [mod.Thread(target=lambda: results.append(e.wait(5))) for _ in range(5)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        e.set()
        for t in threads:
            t.join()
        return results
    assert assert_same(f) == ("ok", [True] * 5)


# -- Condition ----------------------------------------------------------------------------------

def test_condition_unacquired():
    assert_same(lambda mod: mod.Condition().wait())
    assert_same(lambda mod: mod.Condition().notify())
    assert_same(lambda mod: mod.Condition().notify_all())
    assert_same(lambda mod: mod.Condition(mod.Lock()).wait(0))


def test_condition_wait_timeout_and_notify_n():
    def f(mod):
        c = mod.Condition()
        with c:
            timed_out = c.wait(0.01)
        woke = []

        def waiter():
            with c:
                woke.append(c.wait(5))
        threads = [mod.Thread(target=waiter) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        with c:
            c.notify(2)
        time.sleep(0.05)
        first = len(woke)
        with c:
            c.notify_all()
        for t in threads:
            t.join()
        return timed_out, first, woke
    assert_same(f)


# pyconc's notify() on a Condition over a pyconc Lock or RLock marks the waiter at once but holds
# the futex wake of a sleeping one back until the lock is let go (wait.h, rule 8): each way of
# letting go must issue it. The waiters sleep (0.1 s is far past any spin) with a long timeout;
# a wake that is never issued leaves them asleep past the join below.

def _sleeping_waiters(mod, c, n, timeout=20):
    got = []

    def waiter():
        with c:
            got.append(c.wait(timeout))
    threads = [mod.Thread(target=waiter) for _ in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    return threads, got


def _joined(threads, got):
    end = time.monotonic() + 5       # 5 s for all: well before the waiters' own timeout
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    return [t.is_alive() for t in threads], got


def _let_go_with(mod):
    c = mod.Condition()
    threads, got = _sleeping_waiters(mod, c, 1)
    with c:
        c.notify()
    return _joined(threads, got)


def _let_go_release(mod):
    c = mod.Condition(mod.Lock())
    threads, got = _sleeping_waiters(mod, c, 1)
    c.acquire()
    c.notify()
    c.release()
    return _joined(threads, got)


def _let_go_lock_release(mod):
    lock = mod.Lock()
    c = mod.Condition(lock)
    threads, got = _sleeping_waiters(mod, c, 1)
    lock.acquire()
    c.notify()
    lock.release()
    return _joined(threads, got)


def _let_go_other_thread(mod):
    lock = mod.Lock()                # a Lock may be released by any thread
    c = mod.Condition(lock)
    threads, got = _sleeping_waiters(mod, c, 1)
    lock.acquire()
    c.notify()
    helper = mod.Thread(target=lock.release)
    helper.start()
    helper.join()
    return _joined(threads, got)


def _let_go_recursive(mod):
    c = mod.Condition()              # an RLock: only the outermost release lets go
    threads, got = _sleeping_waiters(mod, c, 1)
    with c:
        with c:
            c.notify()
        time.sleep(0.1)
        inner = list(got)
    return inner, _joined(threads, got)


def _let_go_wait(mod):
    c = mod.Condition()
    threads, got = _sleeping_waiters(mod, c, 1)
    with c:
        c.notify()
        got.append(("notifier", c.wait(0.3)))
    return _joined(threads, got)


def _let_go_wait_zero(mod):
    c = mod.Condition(mod.Lock())
    threads, got = _sleeping_waiters(mod, c, 1)
    with c:
        c.notify()
        got.append(("notifier", c.wait(0)))
        time.sleep(0.05)
    return _joined(threads, got)


def _let_go_many(mod):
    c = mod.Condition(mod.Lock())    # more sleepers than the lock holds wakes back for
    threads, got = _sleeping_waiters(mod, c, 7)
    with c:
        c.notify_all()
    return _joined(threads, got)


def _let_go_late(mod):
    c = mod.Condition()              # notified, then the lock is kept past the waiter's timeout
    threads, got = _sleeping_waiters(mod, c, 1, timeout=0.3)
    with c:
        c.notify()
        time.sleep(0.5)
    return _joined(threads, got)


def _let_go_release_save(mod):
    c = mod.Condition()
    threads, got = _sleeping_waiters(mod, c, 1)
    c.acquire()
    c.notify()
    state = c._release_save()        # what a Condition subclass or a second Condition does
    alive, result = _joined(threads, got)
    c._acquire_restore(state)
    c.release()
    return alive, result


@pytest.mark.parametrize("scenario", [
    _let_go_with, _let_go_release, _let_go_lock_release, _let_go_other_thread, _let_go_recursive,
    _let_go_wait, _let_go_wait_zero, _let_go_many, _let_go_late, _let_go_release_save],
    ids=lambda f: f.__name__[8:])
def test_a_notified_waiter_wakes_whichever_way_the_lock_is_let_go(scenario):
    assert_same(scenario)


def test_a_greenlet_that_notifies_then_waits_wakes_a_sleeping_thread():
    # the notifier is a greenlet of a hub thread: its wait() parks on the hub, and must still
    # issue the wake it held back on the lock for the sleeping OS thread
    from pyconc import gevent
    c = pth.Condition()
    threads, got = _sleeping_waiters(pth, c, 1)

    def notifier():
        with c:
            c.notify()
            return c.wait(0.3)
    g = gevent.spawn(notifier)
    g.join(10)
    assert g.value is False
    assert _joined(threads, got) == ([False], [True])


def test_condition_wait_for():
    def f(mod):
        c = mod.Condition()
        state = []

        def producer():
            for i in range(3):
                time.sleep(0.01)
                with c:
                    state.append(i)
                    c.notify()
        t = mod.Thread(target=producer)
        t.start()
        with c:
            r = c.wait_for(lambda: len(state) == 3, timeout=5)
            r2 = c.wait_for(lambda: len(state) == 99, timeout=0.02)
        t.join()
        return r, r2
    assert_same(f)


def test_condition_over_a_lock_without_locked_as_stdlib():
    # From 3.14 the stdlib's Condition.__init__ exports lock.locked as well (after acquire and
    # release): a lock without it fails there, with acquire and release already set.
    class Bare:
        def acquire(self, *a):
            return True

        def release(self):
            pass

    def f(T):
        c = T.Condition.__new__(T.Condition)
        try:
            c.__init__(Bare())
        except AttributeError as exc:
            return ("raise", str(exc), type(c.acquire).__name__, type(c.release).__name__)
        return ("ok", c.locked.__name__ if hasattr(c, "locked") else None)
    assert_same(f)


@pytest.mark.parametrize("lockfactory", ["pyconc.Lock", "pyconc.RLock", "stdlib.Lock",
                                         "stdlib.RLock", "custom"])
def test_condition_over_any_lock(lockfactory):
    class Custom:  # acquire/release (and locked, which 3.14's Condition exports too)
        def __init__(self):
            self._l = threading.Lock()

        def acquire(self, *a, **k):
            return self._l.acquire(*a, **k)

        def release(self):
            self._l.release()

        def locked(self):
            return self._l.locked()

        __enter__ = acquire

        def __exit__(self, *exc):
            self.release()
    src, _, name = lockfactory.partition(".")
    lock = Custom() if src == "custom" else getattr(pth if src == "pyconc" else threading, name)()
    c = pth.Condition(lock)
    assert c.acquire is not None
    got, waiting = [], []

    def waiter():
        with c:
            waiting.append(1)   # set while holding the lock: wait() releases it
            got.append(c.wait(5))
    t = pth.Thread(target=waiter)
    t.start()
    while not waiting:
        time.sleep(0.001)
    with c:                     # only possible once the waiter is inside wait()
        assert c._is_owned()
        c.notify()
    t.join(5)
    assert got == [True]


def test_condition_repr_and_notifyAll():
    c = pth.Condition(pth.Lock())
    assert re.fullmatch(r"<Condition\(<unlocked pyconc\.Lock object at 0x[0-9a-f]+>, 0\)>",
                        repr(c))
    with c, pytest.warns(DeprecationWarning, match=r"notifyAll\(\) is deprecated"):
        c.notifyAll()


# -- Barrier ------------------------------------------------------------------------------------

def test_barrier_abort_reset_broken():
    def f(mod):
        b = mod.Barrier(2)
        out = [b.parties, b.n_waiting, b.broken]
        b.abort()
        out.append(b.broken)
        try:
            b.wait()
        except mod.BrokenBarrierError as e:
            out.append(("broken", type(e).__name__))
        b.reset()
        out.append(b.broken)
        return out
    assert_same(f)


def test_barrier_timeout_breaks():
    def f(mod):
        b = mod.Barrier(2, timeout=0.02)
        try:
            b.wait()
        except mod.BrokenBarrierError:
            return "broken", b.broken
    assert assert_same(f) == ("ok", ("broken", True))
    assert_same(lambda mod: mod.Barrier(2).wait(-1))


def test_barrier_action_and_indices():
    def f(mod):
        calls = []
        b = mod.Barrier(3, action=lambda: calls.append(1))
        idx = []
        threads = [mod.Thread(target=lambda: idx.append(b.wait(5))) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(idx), calls
    assert assert_same(f) == ("ok", ([0, 1, 2], [1]))


def test_barrier_action_raising_breaks():
    def f(mod):
        b = mod.Barrier(1, action=lambda: 1 / 0)
        try:
            b.wait()
        except ZeroDivisionError:
            pass
        return b.broken
    assert assert_same(f) == ("ok", True)


def test_barrier_reset_wakes_waiters_with_broken():
    def f(mod):
        b = mod.Barrier(3)
        errs = []

        def w():
            try:
                b.wait(5)
            except mod.BrokenBarrierError:
                errs.append(1)
        ts = [mod.Thread(target=w) for _ in range(2)]
        for t in ts:
            t.start()
        while b.n_waiting < 2:
            time.sleep(0.001)
        b.reset()
        for t in ts:
            t.join()
        return errs, b.broken, b.n_waiting
    assert_same(f)


def test_barrier_repr():
    b = pth.Barrier(3)
    assert re.fullmatch(r"<pyconc\.Barrier at 0x[0-9a-f]+: waiters=0/3>", repr(b))
    b.abort()
    assert re.fullmatch(r"<pyconc\.Barrier at 0x[0-9a-f]+: broken>", repr(b))


# -- Thread -------------------------------------------------------------------------------------

def test_thread_lifecycle_errors():
    assert_same(lambda mod: mod.Thread().join())
    def twice(mod):
        t = mod.Thread()
        t.start()
        t.join()
        t.start()
    assert_same(twice)
    def set_daemon_after_start(mod):
        t = mod.Thread()
        t.start()
        t.join()
        t.daemon = True
    assert_same(set_daemon_after_start)
    assert_same(lambda mod: mod.Thread(group=1))
    def join_self(mod):
        err = []
        def body():
            try:
                mod.current_thread().join()
            except RuntimeError as e:
                err.append(str(e))
        t = mod.Thread(target=body)
        t.start()
        t.join()
        return err
    assert_same(join_self)


def test_thread_init_not_called():
    for mod in MODULES:
        class NoInit(mod.Thread):
            def __init__(self):
                pass
        t = NoInit()
        with pytest.raises(RuntimeError, match=r"thread.__init__\(\) not called"):
            t.start()
        with pytest.raises(RuntimeError, match=r"Thread.__init__\(\) not called"):
            t.daemon = True


def test_thread_names_and_attributes():
    def f(mod):
        def work():
            pass
        t = mod.Thread(target=work, name=0)
        named = mod.Thread(name=42, daemon=True)
        before = (t.ident, t.native_id, t.is_alive(), t.daemon, named.name, named.daemon)
        t.start()
        t.join()
        after = (isinstance(t.ident, int), isinstance(t.native_id, int), t.is_alive())
        return before, after, bool(re.fullmatch(r"Thread-\d+ \(work\)", t.name))
    assert_same(f)
    def unnamed(mod):
        class Callable:
            def __call__(self):
                pass
        return (bool(re.fullmatch(r"Thread-\d+", mod.Thread().name)),
                bool(re.fullmatch(r"Thread-\d+", mod.Thread(target=Callable()).name)))
    assert_same(unnamed)


def test_thread_args_kwargs_and_subclass():
    def f(mod):
        out = []
        t = mod.Thread(target=lambda *a, **k: out.append((a, k)), args=[1, 2], kwargs={"x": 3})
        t.start()
        t.join()

        class My(mod.Thread):
            def __init__(self, n):
                super().__init__()
                self.n = n

            def run(self):
                out.append(("run", self.n, self.name == mod.current_thread().name))
        m = My(7)
        m.start()
        m.join()
        return out, hasattr(t, "_target")
    assert_same(f)


def test_thread_target_reference_dropped_after_run():
    def f(mod):
        t = mod.Thread(target=len, args=("ab",))
        attrs = (t._target, t._args, t._kwargs)
        t.start()
        t.join()
        return attrs, hasattr(t, "_target"), hasattr(t, "_args")
    assert_same(f)


def test_thread_deprecated_accessors():
    for mod in MODULES:
        t = mod.Thread(name="a")
        for meth, args, pattern in [("getName", (), "getName"), ("setName", ("b",), "setName"),
                                    ("isDaemon", (), "isDaemon"),
                                    ("setDaemon", (True,), "setDaemon")]:
            with pytest.warns(DeprecationWarning, match=pattern):
                getattr(t, meth)(*args)
        assert t.name == "b" and t.daemon is True
    for mod in MODULES:
        with pytest.warns(DeprecationWarning, match="currentThread"):
            mod.currentThread()
        with pytest.warns(DeprecationWarning, match="activeCount"):
            mod.activeCount()


def test_thread_repr():
    t = pth.Thread(target=time.sleep, args=(0.2,), name="x", daemon=True)
    assert repr(t) == "<Thread(x, initial daemon)>"
    t.start()
    assert re.fullmatch(r"<Thread\(x, started daemon \d+\)>", repr(t))
    t.join()
    assert re.fullmatch(r"<Thread\(x, stopped daemon \d+\)>", repr(t))

    class Sub(pth.Thread):
        pass
    assert repr(Sub(name="y")) == "<Sub(y, initial)>"


def test_join_timeout_and_alive():
    def f(mod):
        e = mod.Event()
        t = mod.Thread(target=e.wait)
        t.start()
        t0 = time.monotonic()
        t.join(0.05)
        waited = time.monotonic() - t0
        alive = t.is_alive()
        t.join(-1)
        e.set()
        t.join()
        return alive, waited >= 0.045, t.is_alive()
    assert assert_same(f) == ("ok", (True, True, False))


def test_current_main_enumerate_active_count():
    assert pth.current_thread() is threading.current_thread()
    assert pth.main_thread() is threading.main_thread()
    seen = {}
    go = pth.Event()

    def body():
        seen["cur"] = pth.current_thread()
        seen["ident"] = pth.get_ident()
        seen["native"] = pth.get_native_id()
        go.wait(5)
    t = pth.Thread(target=body)
    before = pth.active_count()
    t.start()
    while "cur" not in seen:
        time.sleep(0.001)
    assert seen["cur"] is t
    assert seen["ident"] == t.ident
    assert seen["native"] == t.native_id
    assert t in pth.enumerate()
    assert threading.main_thread() in pth.enumerate()
    assert pth.active_count() == before + 1 == len(pth.enumerate())
    go.set()
    t.join()
    assert t not in pth.enumerate()
    assert pth.active_count() == before


def test_daemon_inherited_from_creating_thread():
    out = {}

    def body():
        out["child"] = pth.Thread().daemon
    t = pth.Thread(target=body, daemon=True)
    t.start()
    t.join()
    assert out["child"] is True
    assert pth.Thread().daemon is False


def test_timer_runs_and_cancels():
    hits = []
    t = pth.Timer(0.02, hits.append, args=[1])
    t.start()
    t.join(5)
    c = pth.Timer(5, hits.append, args=[2])
    c.start()
    c.cancel()
    c.join(5)
    assert hits == [1] and not c.is_alive()


def test_local_is_per_thread():
    data = pth.local()
    data.x = "main"
    out = []

    def body():
        out.append(hasattr(data, "x"))
        data.x = "thread"
        out.append(data.x)
    t = pth.Thread(target=body)
    t.start()
    t.join()
    assert out == [False, "thread"] and data.x == "main"


def test_settrace_hook_reaches_pyconc_threads():
    calls = []

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "traced_body":
            calls.append(event)
        return None

    def traced_body():
        return 1
    threading.settrace(tracer)
    try:
        t = pth.Thread(target=traced_body)
        t.start()
        t.join()
    finally:
        threading.settrace(None)
    assert calls == ["call"]


EXCEPTHOOK_SCRIPT = """
import sys
from {mod} import Thread
def boom():
    raise ValueError("bad thing")
t = Thread(target=boom, name="worker")
t.start()
t.join()
def bye():
    raise SystemExit(3)
t = Thread(target=bye, name="quiet")
t.start()
t.join()
print("main continues", flush=True)
"""


def test_excepthook_output_matches_stdlib():
    outs = []
    for mod in ("threading", "pyconc.threading"):
        r = run_python(EXCEPTHOOK_SCRIPT.format(mod=mod))
        assert r.returncode == 0, r.stderr
        # The stdlib's traceback also shows its own frames in threading.py (_bootstrap_inner,
        # run); pyconc's run() is C and adds none. Compare the frames of the user's code. From
        # 3.13 on, a frame's source line may be followed by a line of ~ and ^ carets.
        err = re.sub(r'  File ".*threading\.py", line \d+, in \w+\n    .*\n( *[~^]+\n)?', "",
                     r.stderr)
        outs.append((r.stdout, re.sub(r'File ".*", line', "File X, line", err)))
    assert outs[0] == outs[1]
    assert "Exception in thread worker:" in outs[1][1]
    assert "ValueError: bad thing" in outs[1][1]
    assert "quiet" not in outs[1][1]


def test_custom_excepthook_receives_args():
    seen = []
    old = pth.excepthook
    pth.excepthook = lambda args: seen.append((args.exc_type, str(args.exc_value), args.thread))
    try:
        t = pth.Thread(target=lambda: 1 / 0)
        t.start()
        t.join()
    finally:
        pth.excepthook = old
    assert seen == [(ZeroDivisionError, "division by zero", t)]


def test_failing_excepthook_falls_back_to_sys_excepthook():
    r = run_python("""
        from pyconc import threading
        def hook(args):
            raise RuntimeError("hook broke")
        threading.excepthook = hook
        t = threading.Thread(target=lambda: 1 / 0)
        t.start(); t.join()
        print("ok")
    """)
    assert r.returncode == 0
    assert "Exception in threading.excepthook:" in r.stderr
    assert "RuntimeError: hook broke" in r.stderr
    assert r.stdout.strip() == "ok"


def test_many_threads_start_and_join():
    results = []
    threads = [pth.Thread(target=results.append, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(200))
    assert all(not t.is_alive() for t in threads)


def test_stdlib_excepthook_is_honoured():
    """Issue 9 item 9: a hook set on the stdlib's threading.excepthook (pytest's thread-exception
    plugin and sentry-sdk install theirs there) sees exceptions of pyconc threads, unless
    pyconc.threading.excepthook was set itself."""
    import threading as std
    from pyconc import threading as pc
    seen = []
    saved = std.excepthook
    std.excepthook = lambda args: seen.append(("std", args.exc_type, args.thread.name))
    try:
        t = pc.Thread(target=lambda: 1 / 0, name="boom")
        t.start()
        t.join()
        assert seen == [("std", ZeroDivisionError, "boom")]
        own = pc.excepthook
        pc.excepthook = lambda args: seen.append(("pc", args.exc_type))
        try:
            t = pc.Thread(target=lambda: [][1])
            t.start()
            t.join()
        finally:
            pc.excepthook = own
        assert seen[1:] == [("pc", IndexError)]
    finally:
        std.excepthook = saved


def test_lock_cannot_be_subclassed_as_the_stdlibs():
    # threading.Lock refuses subclasses (a function up to 3.12, a final type from 3.13, where
    # CPython's test_threading checks it); pyconc's own faces may subclass it
    for T in (threading, pth):
        with pytest.raises(TypeError):
            class MyLock(T.Lock):
                pass
    with pytest.raises(TypeError, match="is not an acceptable base type"):
        class MyLock2(pth.Lock):
            pass
    from pyconc.gevent.thread import LockType
    assert issubclass(LockType, pth.Lock)
