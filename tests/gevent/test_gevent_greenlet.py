"""gevent.Greenlet, spawn*, joinall, wait, iwait, kill, killall: gevent 26 is the oracle (see
conftest.py). Each test runs on gevent and on pyconc.gevent with the same body."""
import functools
import re
import time

import pytest

from .conftest import norm

pytestmark = pytest.mark.timeout(30)


def f(a, b=2):
    return a + b


def test_names_exist(gv):
    g = gv.gevent
    for name in ("spawn", "spawn_later", "spawn_raw", "joinall", "wait", "iwait", "sleep",
                 "idle", "getcurrent", "kill", "killall", "Greenlet", "Timeout", "with_timeout",
                 "GreenletExit", "get_hub", "getswitchinterval", "setswitchinterval"):
        assert hasattr(g, name), name
    assert issubclass(g.GreenletExit, BaseException)
    assert not issubclass(g.GreenletExit, Exception)
    assert issubclass(g.Timeout, BaseException) and not issubclass(g.Timeout, Exception)
    assert g.greenlet.Greenlet is g.Greenlet
    assert g.timeout.Timeout is g.Timeout
    assert g.hub.get_hub is g.get_hub


def test_lifecycle_flags_value_and_repr(gv):
    gevent = gv.gevent
    g = gevent.Greenlet(f, 1, b=3)
    assert norm(repr(g)) == "<Greenlet at 0xADDR: f(1, b=3)>"
    assert (g.args, g.kwargs) == ((1,), {"b": 3})
    assert (g.started, g.dead, bool(g.ready()), bool(g)) == (False, False, False, False)
    assert g.value is None and g.exception is None and not g.exc_info
    g.start()
    assert (g.started, g.dead, bool(g.ready()), bool(g)) == (True, False, False, True)
    g.join()
    assert (g.started, g.dead, bool(g.ready()), bool(g.successful()), bool(g)) == \
        (False, True, True, True, False)
    assert g.value == 4 and g.exception is None and g.exc_info is None
    # The repr keeps the formatted call even though args/kwargs are freed when it finishes.
    assert norm(repr(g)) == "<Greenlet at 0xADDR: f(1, b=3)>"
    assert (g.args, g.kwargs) == ((), {})


def test_repr_formatted_first_after_finish_reads_run(gv):
    # gevent caches the "f(args)" part the first time the repr is formatted; a greenlet that
    # finished (and freed its function and args) before that shows "_run".
    gevent = gv.gevent
    g = gevent.spawn(f, 1)
    g.join()
    assert norm(repr(g)) == "<Greenlet at 0xADDR: _run>"


def test_repr_shows_name_only_once_assigned_or_generated(gv):
    gevent = gv.gevent
    g = gevent.Greenlet(f, 1)
    assert norm(repr(g)) == "<Greenlet at 0xADDR: f(1)>"
    assert re.fullmatch(r"Greenlet-\d+", g.name)
    assert g.name == "Greenlet-%d" % g.minimal_ident
    assert norm(repr(g)) == '<Greenlet "%s" at 0xADDR: f(1)>' % g.name
    h = gevent.Greenlet(f, 2)
    h.name = "worker"
    assert norm(repr(h)) == '<Greenlet "worker" at 0xADDR: f(2)>'
    assert h.name == "worker"


def test_repr_of_various_callables(gv):
    gevent = gv.gevent
    assert norm(repr(gevent.Greenlet(lambda: 0))) == "<Greenlet at 0xADDR: <lambda>>"
    assert norm(repr(gevent.Greenlet(functools.partial(f, 1)))) == \
        "<Greenlet at 0xADDR: functools.partial(<function f at 0xADDR>, 1)>"
    assert norm(repr(gevent.Greenlet(print, 1, 2, c=3))) == \
        "<Greenlet at 0xADDR: <built-in function print>(1, 2, c=3)>"
    # `name` is not a constructor keyword: it goes to the function as a keyword argument.
    assert norm(repr(gevent.Greenlet(f, name="x"))) == "<Greenlet at 0xADDR: f(name='x')>"
    # Long argument reprs are cut at 50 characters.
    long = "a" * 100
    assert norm(repr(gevent.Greenlet(f, long))) == \
        "<Greenlet at 0xADDR: f(%s)>" % repr(long)[:50]
    assert norm(repr(gevent.Greenlet())) == "<Greenlet at 0xADDR: _run>"


def test_minimal_ident_small_and_distinct(gv):
    gevent = gv.gevent
    gs = [gevent.Greenlet(f, i) for i in range(5)]
    ids = [g.minimal_ident for g in gs]
    assert len(set(ids)) == 5
    assert all(isinstance(i, int) and 0 <= i < 1000 for i in ids)
    assert ids == sorted(ids)


def test_subclass_with_run(gv):
    gevent = gv.gevent

    class Worker(gevent.Greenlet):
        def __init__(self, n):
            gevent.Greenlet.__init__(self)
            self.n = n

        def _run(self):
            gevent.sleep(0)
            return self.n * 2

    w = Worker(21)
    assert norm(repr(w)) == "<Worker at 0xADDR: _run>"
    w.start()
    assert w.get() == 42
    assert Worker.spawn(5).get() == 10


def test_repr_of_subclass_given_a_run_callable_names_that_callable(gv):
    # A subclass that defines _run but is given run=...: the given callable is what runs, and
    # what the repr names (gevent formats the greenlet's own run slot, not the class's method).
    gevent = gv.gevent

    class Worker(gevent.Greenlet):
        def _run(self):
            return "class"

    def given(x):
        return "given %s" % x

    w = Worker(given, 1)
    assert norm(repr(w)) == "<Worker at 0xADDR: given(1)>"
    w.start()
    assert w.get() == "given 1"
    assert norm(repr(Worker())) == "<Worker at 0xADDR: _run>"


def test_constructor_rejects_non_callable(gv):
    with pytest.raises(TypeError):
        gv.gevent.Greenlet(42)


def test_spawn_order_and_args(gv):
    gevent = gv.gevent
    log = []
    gs = [gevent.spawn(log.append, i) for i in range(5)]
    assert log == []          # spawn only schedules
    gevent.joinall(gs)
    assert log == [0, 1, 2, 3, 4]
    assert gevent.spawn(f, 1, b=10).get() == 11


def test_spawn_later_and_start_later(gv):
    gevent = gv.gevent
    log = []
    t0 = time.monotonic()
    a = gevent.spawn_later(0.2, log.append, "late")
    b = gevent.spawn_later(0.05, log.append, "early")
    c = gevent.Greenlet(log.append, "start_later")
    c.start_later(0.1)
    assert c.started
    gevent.joinall([a, b, c])
    assert log == ["early", "start_later", "late"]
    assert time.monotonic() - t0 >= 0.19
    with pytest.raises(TypeError):
        gevent.spawn_later(0.1)


def test_start_twice_runs_once(gv):
    gevent = gv.gevent
    log = []
    g = gevent.Greenlet(log.append, 1)
    g.start()
    g.start()
    g.join()
    assert log == [1]


def test_spawn_raw(gv):
    gevent = gv.gevent
    log = []
    r = gevent.spawn_raw(log.append, "raw")
    assert not isinstance(r, gevent.Greenlet)
    assert not hasattr(r, "join")
    gevent.sleep(0)
    assert log == ["raw"]
    assert r.dead
    log2 = []
    gevent.spawn_raw(lambda *a, **k: log2.append((a, k)), 1, x=2)
    gevent.sleep(0)
    assert log2 == [((1,), {"x": 2})]


def test_failed_greenlet_state(gv, capsys):
    gevent = gv.gevent
    g = gevent.spawn(lambda: 1 / 0)
    g.join()
    assert g.dead and g.ready() and not g.successful()
    assert isinstance(g.exception, ZeroDivisionError)
    assert g.value is None
    t, v, tb = g.exc_info
    assert t is ZeroDivisionError and v is g.exception and tb is not None
    with pytest.raises(ZeroDivisionError):
        g.get()
    with pytest.raises(ZeroDivisionError):
        gevent.joinall([g], raise_error=True)


def test_error_reported_when_hub_has_instance_attributes(gv, capsys):
    # regression: the C loop looked up hub.handle_error with the greenlet's exception still
    # set; once the hub had an instance __dict__ that lookup failed and the error vanished
    gevent = gv.gevent
    hub = gevent.get_hub()
    hub.pyconc_test_attribute = 1
    try:
        g = gevent.spawn(lambda: 1 / 0)
        g.join()
        assert isinstance(g.exception, ZeroDivisionError)
        assert "failed with ZeroDivisionError" in capsys.readouterr().err
    finally:
        del hub.pyconc_test_attribute


def test_get_nonblocking_and_timeout_raise_timeout(gv):
    gevent = gv.gevent
    g = gevent.spawn(gevent.sleep, 5)
    with pytest.raises(gevent.Timeout) as info:
        g.get(block=False)
    assert info.value.seconds is None
    t0 = time.monotonic()
    with pytest.raises(gevent.Timeout) as info:
        g.get(timeout=0.05)
    assert str(info.value) == "0.05 seconds"
    assert time.monotonic() - t0 >= 0.04
    # join(timeout) returns quietly; the greenlet still runs.
    g.join(timeout=0.01)
    assert not g.ready()
    g.kill()
    assert g.ready() and g.successful()
    assert isinstance(g.value, gevent.GreenletExit)


def test_get_of_unstarted_nonblocking(gv):
    gevent = gv.gevent
    with pytest.raises(gevent.Timeout):
        gevent.Greenlet(f, 1).get(block=False)


def test_kill_unstarted_never_runs(gv):
    gevent = gv.gevent
    log = []
    g = gevent.Greenlet(log.append, 1)
    g.kill()
    assert g.dead and g.ready() and g.successful()
    assert isinstance(g.value, gevent.GreenletExit) and g.exception is None
    # gevent quirk: killing before start frees run/args before the repr was ever formatted, so
    # the repr falls back to the class's _run.
    assert norm(repr(g)) == "<Greenlet at 0xADDR: _run>"
    g.start()
    gevent.sleep(0.01)
    assert log == []
    s = gevent.spawn(log.append, 2)   # started but not yet run
    s.kill(ValueError("early"))
    assert s.dead and not s.successful()
    assert isinstance(s.exception, ValueError) and str(s.exception) == "early"
    gevent.sleep(0.01)
    assert log == []


def test_kill_running_with_exceptions(gv, capsys):
    gevent = gv.gevent
    log = []

    def body():
        try:
            gevent.sleep(10)
        except BaseException as e:
            log.append(type(e).__name__)
            raise

    a = gevent.spawn(body)
    gevent.sleep(0)
    a.kill()
    assert log == ["GreenletExit"] and a.successful()
    b = gevent.spawn(body)
    gevent.sleep(0)
    b.kill(ValueError)          # a class: instantiated
    assert type(b.exception) is ValueError and str(b.exception) == ""
    c = gevent.spawn(body)
    gevent.sleep(0)
    c.kill(KeyError("k"))
    assert repr(c.exception) == "KeyError('k')"
    assert log == ["GreenletExit", "ValueError", "KeyError"]
    capsys.readouterr()   # the two failures were printed by the hub


def test_kill_nonblocking_and_timeout(gv):
    gevent = gv.gevent
    g = gevent.spawn(gevent.sleep, 10)
    gevent.sleep(0)
    g.kill(block=False)
    assert not g.dead
    gevent.sleep(0)
    assert g.dead and g.successful()

    def stubborn():
        while True:
            try:
                gevent.sleep(10)
            except gevent.GreenletExit:
                pass

    s = gevent.spawn(stubborn)
    gevent.sleep(0)
    t0 = time.monotonic()
    s.kill(timeout=0.1)          # returns after the timeout, greenlet still alive
    assert time.monotonic() - t0 >= 0.09
    assert not s.dead
    s.kill(SystemError, block=False)   # not caught by `except GreenletExit`
    with pytest.raises(SystemError):
        s.join()                 # a SYSTEM_ERROR propagates to the main greenlet


def test_kill_dead_is_noop(gv):
    gevent = gv.gevent
    g = gevent.spawn(f, 1)
    g.join()
    g.kill()
    assert g.value == 3 and g.successful()


def test_module_kill(gv):
    gevent = gv.gevent
    g = gevent.spawn(gevent.sleep, 10)
    gevent.sleep(0)
    gevent.kill(g)               # asynchronous: returns at once
    assert not g.dead
    g.join()
    assert g.dead and isinstance(g.value, gevent.GreenletExit)
    log = []

    def raw():
        try:
            gevent.sleep(10)
        except gevent.GreenletExit:
            log.append("raw killed")
    r = gevent.spawn_raw(raw)
    gevent.sleep(0)
    gevent.kill(r)
    gevent.sleep(0)
    assert log == ["raw killed"]


def test_killall(gv):
    gevent = gv.gevent
    log = []

    def body(i):
        try:
            gevent.sleep(10)
        except gevent.GreenletExit:
            log.append(i)

    gs = [gevent.spawn(body, i) for i in range(4)]
    unstarted = gevent.Greenlet(body, 99)
    gevent.sleep(0)
    gevent.killall(gs + [unstarted])
    assert sorted(log) == [0, 1, 2, 3]
    assert all(g.dead for g in gs) and unstarted.dead
    gs = [gevent.spawn(body, i) for i in range(10, 13)]
    gevent.sleep(0)
    gevent.killall(gs, block=False)
    assert not any(g.dead for g in gs)
    gevent.sleep(0)
    assert all(g.dead for g in gs)
    gs = [gevent.spawn(body, i) for i in range(20, 22)]
    gevent.sleep(0)
    gevent.killall(gs, exception=KeyError)
    assert all(isinstance(g.exception, KeyError) for g in gs)
    gevent.killall([])


def test_joinall_return_values(gv):
    gevent = gv.gevent
    fast = gevent.spawn(gevent.sleep, 0.01)
    slow = gevent.spawn(gevent.sleep, 2)
    done = gevent.joinall([slow, fast], timeout=0.2)
    assert done == [fast]
    done = gevent.joinall([slow, fast], count=1)
    assert done == [fast]
    slow.kill()
    done = gevent.joinall([slow, fast])
    assert done == [slow, fast]        # input order when all are already done
    assert gevent.joinall([]) == []


def test_joinall_raise_error_stops_at_first(gv, capsys):
    gevent = gv.gevent
    a = gevent.spawn(gevent.sleep, 0.05)
    b = gevent.spawn(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        gevent.joinall([a, b], raise_error=True)
    assert not a.ready()
    gevent.joinall([a])
    assert gevent.joinall([a, b]) == [a, b]      # without raise_error: failures are just done
    capsys.readouterr()


def test_wait_and_iwait(gv):
    gevent = gv.gevent
    gs = [gevent.spawn(gevent.sleep, d) for d in (0.15, 0.05, 0.1)]
    order = [g for g in gevent.iwait(gs)]
    assert order == [gs[1], gs[2], gs[0]]
    gs = [gevent.spawn(gevent.sleep, d) for d in (0.15, 0.05, 0.1)]
    assert list(gevent.iwait(gs, count=2)) == [gs[1], gs[2]]
    gevent.joinall(gs)
    gs = [gevent.spawn(gevent.sleep, d) for d in (1, 0.02)]
    assert list(gevent.iwait(gs, timeout=0.2)) == [gs[1]]
    assert gevent.wait(gs, timeout=0.05) == [gs[1]]
    gs[0].kill()
    assert gevent.wait(gs) == gs
    gs = [gevent.spawn(gevent.sleep, d) for d in (0.02, 1)]
    assert gevent.wait(gs, count=1) == [gs[0]]
    gs[1].kill()


def test_iwait_works_on_events_and_async_results(gv):
    gevent = gv.gevent
    ev = gv.event.Event()
    ar = gv.event.AsyncResult()
    gevent.spawn_later(0.05, ar.set, 1)
    gevent.spawn_later(0.1, ev.set)
    assert list(gevent.iwait([ev, ar])) == [ar, ev]
    with gevent.iwait([ev]) as it:       # iwait is a context manager in gevent 26
        assert list(it) == [ev]


def test_wait_without_objects_waits_for_everything(gv):
    gevent = gv.gevent
    log = []
    gevent.spawn_later(0.05, log.append, 1)
    gevent.spawn_later(0.1, log.append, 2)
    assert gevent.wait() is True
    assert log == [1, 2]
    assert gevent.wait(timeout=0.01) is True     # nothing left


def test_links_run_in_hub_after_completion(gv):
    gevent = gv.gevent
    log = []
    hub = gevent.get_hub()
    g = gevent.spawn(f, 1)
    # link(): called in a new greenlet whose parent is the hub; rawlink(): called by the hub
    # itself. All are called from one hub callback scheduled when g finishes, in the order they
    # were registered; join() is itself a rawlink registered last, so it returns after them.
    g.link(lambda src: log.append(("link", src is g, gevent.getcurrent() is not hub,
                                   gevent.getcurrent().parent is hub)))
    g.link_value(lambda src: log.append(("value", src.value)))
    g.link_exception(lambda src: log.append(("exc",)))
    g.rawlink(lambda src: log.append(("raw", gevent.getcurrent() is hub)))
    assert log == []
    g.join()
    assert log == [("link", True, True, True), ("value", 3), ("raw", True)]


def test_links_are_not_called_synchronously(gv):
    gevent = gv.gevent
    log = []
    g = gevent.spawn(f, 1)
    g.join()
    g.rawlink(lambda src: log.append("raw"))      # on a finished greenlet: scheduled, not called
    g.link(lambda src: log.append("link"))
    assert log == []
    gevent.sleep(0)
    assert log == ["raw", "link"]


def test_link_exception_and_unlink(gv, capsys):
    gevent = gv.gevent
    log = []
    cb = lambda src: log.append("link")  # noqa: E731
    g = gevent.spawn(lambda: 1 / 0)
    g.link(cb)
    g.unlink(cb)
    g.unlink(cb)                         # unlinking twice is quiet
    g.link_value(lambda src: log.append("value"))
    g.link_exception(lambda src: log.append(("exc", type(src.exception).__name__)))
    g.join()
    gevent.sleep(0.01)
    assert log == [("exc", "ZeroDivisionError")]
    # linking to a finished greenlet still calls the link
    g.link(lambda src: log.append("late"))
    gevent.sleep(0.01)
    assert log[-1] == "late"
    with pytest.raises(TypeError):
        g.rawlink(42)
    capsys.readouterr()


def test_greenlet_context_manager(gv):
    gevent = gv.gevent
    with gevent.spawn(f, 1) as g:
        pass
    assert g.value == 3


def test_getcurrent(gv):
    gevent = gv.gevent
    main = gevent.getcurrent()
    seen = []
    g = gevent.spawn(lambda: seen.append(gevent.getcurrent()))
    g.join()
    assert seen == [g]
    assert gevent.getcurrent() is main
    assert not isinstance(main, gevent.Greenlet)


def test_kill_calls_a_subclass_join_after_the_throw(gv):
    # gevent's kill(block=True) waits for the hub to throw the exception in, then calls
    # self.join(timeout): a subclass's join() included.
    gevent = gv.gevent
    log = []

    class Joining(gevent.Greenlet):
        def join(self, timeout=None):
            log.append(("join", timeout, self.dead))
            return gevent.Greenlet.join(self, timeout)

    g = Joining.spawn(gevent.sleep, 10)
    gevent.sleep(0)
    g.kill(timeout=5)
    assert log == [("join", 5, True)] and g.dead
    g.kill()                                   # dead: nothing to do, no join
    u = Joining(gevent.sleep, 10)
    u.kill()                                   # never started: dead at once, no join
    n = Joining.spawn(gevent.sleep, 10)
    gevent.sleep(0)
    n.kill(block=False)                        # not blocking: no join
    assert log == [("join", 5, True)] and u.dead and not n.dead
    with pytest.raises(ValueError):
        with Joining.spawn(gevent.sleep, 10):
            gevent.sleep(0)
            raise ValueError                   # __exit__ kills, kill joins
    assert log[1:] == [("join", None, True)]


def test_spawn_callbacks(gv):
    gevent = gv.gevent
    seen = []

    def cb(g):
        seen.append(g)

    gevent.Greenlet.add_spawn_callback(cb)
    gevent.Greenlet.add_spawn_callback(cb)     # a set: called once
    try:
        a = gevent.spawn(lambda: None)
        b = gevent.spawn_later(0.001, lambda: None)
        c = gevent.Greenlet(lambda: None)
        assert seen == [a, b]
        c.start()
        c.start()                              # already started: not again
        d = gevent.Greenlet(lambda: None)
        d.start_later(0.001)
        k = gevent.Greenlet(lambda: None)
        k.kill()
        k.start()                              # killed before it started: no callback
        gevent.joinall([a, b, c, d])
        assert seen == [a, b, c, d]
    finally:
        gevent.Greenlet.remove_spawn_callback(cb)
    gevent.Greenlet.remove_spawn_callback(cb)  # quietly, when it is not there
    gevent.spawn(lambda: None).join()
    assert len(seen) == 4
