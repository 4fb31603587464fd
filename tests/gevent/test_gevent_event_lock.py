"""gevent.event (Event, AsyncResult) and gevent.lock (Semaphore, BoundedSemaphore, RLock,
DummySemaphore). gevent 26 is the oracle (see conftest.py)."""
import time

import pytest

from .conftest import norm

pytestmark = pytest.mark.timeout(30)


# ---------------------------------------------------------------- Event

def test_event_basics(gv):
    ev = gv.event.Event()
    assert (ev.is_set(), ev.isSet(), ev.ready()) == (False, False, False)
    t0 = time.monotonic()
    assert ev.wait(0.05) is False
    assert time.monotonic() - t0 >= 0.04
    assert ev.wait(timeout=0) is False
    ev.set()
    assert (ev.is_set(), ev.isSet(), ev.ready()) == (True, True, True)
    assert ev.wait() is True and ev.wait(0) is True
    ev.clear()
    assert not ev.is_set()
    assert "clear" in str(ev)
    ev.set()
    assert "set" in str(ev)


def test_event_wakes_all_waiters_in_order(gv):
    gevent = gv.gevent
    ev = gv.event.Event()
    log = []
    gs = [gevent.spawn(lambda i=i: log.append((i, ev.wait()))) for i in range(5)]
    gevent.sleep(0)
    assert log == []
    ev.set()
    assert log == []                     # set() only schedules the wake-ups
    gevent.joinall(gs)
    assert log == [(i, True) for i in range(5)]


def test_event_set_then_clear_before_waiters_run(gv):
    # The waiters were notified at set(): a clear() before they run does not put them back to
    # sleep.
    gevent = gv.gevent
    ev = gv.event.Event()
    log = []
    gs = [gevent.spawn(lambda: log.append(ev.wait(1))) for _ in range(2)]
    gevent.sleep(0)
    ev.set()
    ev.clear()
    gevent.joinall(gs)
    assert log == [True, True]


def test_event_rawlink_runs_in_hub_later(gv):
    gevent = gv.gevent
    hub = gevent.get_hub()
    ev = gv.event.Event()
    log = []
    ev.rawlink(lambda e: log.append(("raw", e is ev, gevent.getcurrent() is hub)))
    cb = lambda e: log.append("unlinked")  # noqa: E731
    ev.rawlink(cb)
    ev.unlink(cb)
    ev.unlink(cb)                        # unlinking an unknown callback is quiet
    ev.set()
    assert log == []                     # not called synchronously by set()
    gevent.sleep(0)
    assert log == [("raw", True, True)]
    ev.clear()
    ev.set()
    gevent.sleep(0)
    assert log == [("raw", True, True)]  # a rawlink is called once, then dropped
    with pytest.raises(TypeError) as info:
        ev.rawlink(1)
    assert str(info.value) == "Expected callable: 1"


def test_event_rawlink_on_already_set_event(gv):
    gevent = gv.gevent
    ev = gv.event.Event()
    ev.set()
    log = []
    ev.rawlink(log.append)
    assert log == []
    gevent.sleep(0)
    assert log == [ev]


def test_event_wait_timeout_in_greenlet(gv):
    gevent = gv.gevent
    ev = gv.event.Event()
    g = gevent.spawn(ev.wait, 0.05)
    assert g.get() is False


# ---------------------------------------------------------------- AsyncResult

def test_async_result_unset(gv):
    gevent = gv.gevent
    a = gv.event.AsyncResult()
    assert (a.ready(), a.successful(), a.value, a.exception) == (False, False, None, None)
    assert a.exc_info == ()
    assert str(a) == "<AsyncResult unset  _links[0]>"
    for call in (lambda: a.get(block=False), a.get_nowait):
        with pytest.raises(gevent.Timeout) as info:
            call()
        assert info.value.seconds is None
    with pytest.raises(gevent.Timeout):
        a.get(timeout=0.01)
    assert a.wait(0.01) is None


def test_async_result_value(gv):
    gevent = gv.gevent
    a = gv.event.AsyncResult()
    g = gevent.spawn(a.get)
    gevent.sleep(0)
    assert a.set(5) is None
    assert (a.ready(), a.successful(), a.value, a.exception, a.exc_info) == \
        (True, True, 5, None, ())
    assert a.get() == 5 and a.get_nowait() == 5 and a.wait() == 5
    assert g.get() == 5
    a.set(6)                             # set again: overwrites
    assert a.get() == 6
    b = gv.event.AsyncResult()
    gevent.spawn_later(0.02, b.set, "later")
    assert b.wait() == "later"
    assert gv.event.AsyncResult().set() is None


def test_async_result_exception(gv):
    gevent = gv.gevent
    a = gv.event.AsyncResult()
    g = gevent.spawn(a.get)
    gevent.sleep(0)
    exc = ValueError("x")
    a.set_exception(exc)
    assert (a.ready(), a.successful(), a.value) == (True, False, None)
    assert a.exception is exc
    assert a.exc_info[0] is ValueError and a.exc_info[1] is exc
    assert a.wait() is None              # wait() does not raise
    with pytest.raises(ValueError):
        a.get()
    g.join()
    assert g.exception is exc
    b = gv.event.AsyncResult()
    b.set_exception(KeyError, exc_info=(KeyError, KeyError("k"), None))
    assert repr(b.exception) == "KeyError('k')"


def test_async_result_as_link_target(gv, capsys):
    gevent = gv.gevent
    a = gv.event.AsyncResult()
    g = gevent.spawn(lambda: 3)
    g.link(a)
    assert a.get(timeout=5) == 3
    b = gv.event.AsyncResult()
    h = gevent.spawn(lambda: 1 / 0)
    h.link(b)
    with pytest.raises(ZeroDivisionError):
        b.get(timeout=5)
    capsys.readouterr()


def test_async_result_rawlink(gv):
    gevent = gv.gevent
    a = gv.event.AsyncResult()
    log = []
    a.rawlink(lambda r: log.append(r.get()))
    a.set(1)
    assert log == []
    gevent.sleep(0)
    assert log == [1]


# ---------------------------------------------------------------- Semaphore & co

def test_semaphore_counter_and_results(gv):
    lock = gv.lock
    s = lock.Semaphore(2)
    assert str(s) == "<Semaphore at %s counter=2 _links[0]>" % hex(id(s))
    assert (s.counter, s.locked()) == (2, False)
    assert s.acquire() is True and s.counter == 1
    assert s.acquire(blocking=False) is True and s.locked()
    assert s.acquire(blocking=False) is False
    assert s.acquire(timeout=0.01) is False
    assert s.acquire(timeout=0) is False
    assert s.wait(0.01) == 0             # wait() returns the counter, acquires nothing
    assert s.release() == 1              # release() returns the new counter
    assert s.wait() == 1 and s.counter == 1
    s.release()
    with s:
        assert s.counter == 1
    assert s.counter == 2
    assert lock.Semaphore().counter == 1
    with pytest.raises(ValueError) as info:
        lock.Semaphore(-1)
    assert str(info.value) == "semaphore initial value must be >= 0"


def test_semaphore_nonblocking_acquire_ignores_a_timeout_object(gv):
    # blocking=False wins over a Timeout object: one try, False, no wait and no Timeout raised
    # (pyconc's acquire used to wait for the Timeout and raise it)
    gevent = gv.gevent
    for sem in (gv.lock.Semaphore(0), gv.lock.BoundedSemaphore(1)):
        if sem.counter:
            sem.acquire()
        timeout = gevent.Timeout(0.05)
        try:
            assert sem.acquire(blocking=False, timeout=timeout) is False
        finally:
            timeout.close()
        assert sem.counter == 0
    rlock = gv.lock.RLock()
    gevent.spawn(rlock.acquire).join()
    timeout = gevent.Timeout(0.05)
    try:
        assert rlock.acquire(blocking=False, timeout=timeout) is False
    finally:
        timeout.close()


def test_semaphore_fifo_wakeups(gv):
    gevent = gv.gevent
    s = gv.lock.Semaphore(0)
    log = []

    def w(i):
        s.acquire()
        log.append(i)

    gs = [gevent.spawn(w, i) for i in range(4)]
    gevent.sleep(0)
    for _ in range(4):
        s.release()
    gevent.joinall(gs)
    assert log == [0, 1, 2, 3]


def test_semaphore_rawlink(gv):
    gevent = gv.gevent
    s = gv.lock.Semaphore(0)
    log = []
    s.rawlink(lambda x: log.append(("a", x is s)))
    s.rawlink(lambda x: log.append(("b", x.counter)))
    s.release()
    assert log == []
    gevent.sleep(0)
    # rawlinks do not acquire; both are called (the counter stays 1) and then dropped
    assert log == [("a", True), ("b", 1)]
    s.acquire()
    s.release()
    gevent.sleep(0)
    assert len(log) == 2


def test_semaphore_rawlink_notifies_only_while_ready(gv):
    # Unlike Event, a Semaphore stops notifying links as soon as it is not ready: a link that
    # acquires leaves the rest waiting for the next release.
    gevent = gv.gevent
    s = gv.lock.Semaphore(0)
    log = []
    s.rawlink(lambda x: (log.append("first"), x.acquire(blocking=False)))
    s.rawlink(lambda x: log.append("second"))
    s.release()
    gevent.sleep(0)
    assert log == ["first"]
    s.release()
    gevent.sleep(0)
    assert log == ["first", "second"]


def test_bounded_semaphore(gv):
    b = gv.lock.BoundedSemaphore(1)
    with pytest.raises(ValueError) as info:
        b.release()
    assert str(info.value) == "Semaphore released too many times"
    b.acquire()
    b.release()
    assert b.counter == 1
    assert issubclass(gv.lock.BoundedSemaphore, gv.lock.Semaphore)


def test_dummy_semaphore(gv):
    d = gv.lock.DummySemaphore()
    assert d.acquire() is True and d.acquire() is True
    assert d.locked() is False and d.ready() is True
    assert d.wait() == 1 and d.release() is None
    assert str(d) == "<DummySemaphore>"
    with d:
        pass
    d.rawlink(print)
    d.unlink(print)


def test_rlock(gv):
    gevent = gv.gevent
    r = gv.lock.RLock()
    assert r.acquire() is True
    assert r.acquire() == 1              # a re-entrant acquire returns the count... (gevent)
    assert r.locked()
    log = []
    g = gevent.spawn(lambda: log.append(r.acquire(timeout=0.02)))
    g.join()
    assert log == [False]
    r.release()
    r.release()
    assert not r.locked()
    with pytest.raises(RuntimeError) as info:
        r.release()
    assert str(info.value).startswith("cannot release un-acquired lock")
    with r:
        with r:
            assert r.locked()
    h = gevent.spawn(lambda: (r.acquire(), gevent.sleep(0.05), r.release()))
    gevent.sleep(0)
    t0 = time.monotonic()
    with r:
        assert time.monotonic() - t0 >= 0.03
    h.join()
    assert norm(repr(gv.lock.RLock())).startswith("<RLock at 0xADDR ")


def test_rlock_release_by_other_greenlet_fails(gv):
    gevent = gv.gevent
    r = gv.lock.RLock()
    r.acquire()
    g = gevent.spawn(r.release)
    g.join()
    assert isinstance(g.exception, RuntimeError)
    r.release()


def test_semaphore_shared_by_many(gv):
    gevent = gv.gevent
    s = gv.lock.BoundedSemaphore(2)
    active, peak = [0], [0]

    def w():
        with s:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            gevent.sleep(0.01)
            active[0] -= 1

    gevent.joinall([gevent.spawn(w) for _ in range(10)])
    assert peak[0] == 2 and s.counter == 2


# ---------------------------------------------------------------- links and hub ownership

def test_links_stay_registered_until_their_notifier_runs(gv):
    # A link is one-shot, but it is consumed when the hub calls it, not when the object becomes
    # ready: until then linkcount() counts it and unlink() can still take it back.
    gevent = gv.gevent
    s1, s2 = gv.lock.Semaphore(), gv.lock.Semaphore()   # both ready from the start
    let = gevent.spawn(s1.release)
    with gevent.iwait((s1, s2)) as it:
        assert next(it) is s1
        assert (s1.linkcount(), s2.linkcount()) == (0, 1)
    assert s2.linkcount() == 0
    let.get()
    ev = gv.event.Event()
    ev.set()
    log = []
    ev.rawlink(log.append)
    assert ev.linkcount() == 1 and log == []
    ev.unlink(log.append)
    gevent.sleep(0)
    assert log == [] and ev.linkcount() == 0


def test_link_unlinked_by_an_earlier_link_is_not_called(gv):
    gevent = gv.gevent
    for make in (gv.event.AsyncResult, gv.event.Event):
        obj = make()
        log = []

        def one(o):
            o.unlink(two)
            log.append(1)

        def two(o):
            o.unlink(one)
            log.append(2)

        obj.rawlink(one)
        obj.rawlink(two)
        obj.rawlink(lambda o: log.append(3))
        gevent.spawn(obj.set)
        gevent.sleep(0.01)
        assert log == [1, 3], make


def test_same_callable_linked_twice_is_called_once_per_notification(gv):
    # gevent's notifier stops at the callable that was linked last when it began, and does
    # not call a callable twice in one pass: f linked twice is called once per pass.
    gevent = gv.gevent
    ev = gv.event.Event()
    log = []
    f = log.append
    ev.rawlink(f)
    ev.rawlink(f)
    assert ev.linkcount() == 2
    ev.set()
    gevent.sleep(0)
    assert log == [ev] and ev.linkcount() == 1
    gevent.sleep(0)
    assert log == [ev, ev] and ev.linkcount() == 0
    g = lambda e: log.append("g")  # noqa: E731
    ev.rawlink(f)
    ev.rawlink(g)
    ev.rawlink(f)
    ev.rawlink(print)
    gevent.sleep(0)
    assert log == [ev, ev, ev, "g"] and ev.linkcount() == 0


def test_semaphore_and_event_take_no_hub_until_they_wait(gv):
    # gevent's Semaphore and Event do not make the thread's hub when they are made (a
    # module-level one must not); a wait does, and a semaphore that plain threads share makes
    # none in them.
    r = gv.run('''
        import threading
        lock, event = sub("lock"), sub("event")
        # gevent keeps get_hub_if_exists in gevent._hub_local; pyconc in pyconc.gevent.hub
        hubmod = sub("hub") if MOD.startswith("pyconc") else sub("_hub_local")
        s, ev, b = lock.Semaphore(), event.Event(), lock.BoundedSemaphore(2)
        print(hubmod.get_hub_if_exists() is None, s.hub, b.hub)
        assert s.acquire() is True and s.acquire(blocking=False) is False
        s.release()
        print(hubmod.get_hub_if_exists() is None, s.hub)
        shared = lock.Semaphore()
        hubs = []
        def work():
            for _ in range(200):
                with shared:
                    pass
            hubs.append(hubmod.get_hub_if_exists())
        ts = [threading.Thread(target=work) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        print(hubs, shared.counter)
        print(ev.wait(0), hubmod.get_hub_if_exists() is not None, ev.hub is hubmod.get_hub())
        s.acquire()
        print(s.hub is hubmod.get_hub())
        b.acquire()
        print(b.hub is hubmod.get_hub())
        b.release()
        print(b.hub)
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["True None None", "True None", "[None, None] 1",
                                     "False True True", "True", "True", "None"]
