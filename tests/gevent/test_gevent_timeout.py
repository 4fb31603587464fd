"""gevent.Timeout and gevent.with_timeout: gevent 26 is the oracle (see conftest.py)."""
import time

import pytest

from .conftest import norm

pytestmark = pytest.mark.timeout(30)


def test_repr_str_and_attributes(gv):
    Timeout = gv.gevent.Timeout
    t = Timeout(0.1)
    assert norm(repr(t)) == "<Timeout at 0xADDR seconds=0.1>"
    assert str(t) == "0.1 seconds"
    assert (t.pending, t.seconds, t.exception) == (False, 0.1, None)
    t.start()
    assert norm(repr(t)) == "<Timeout at 0xADDR seconds=0.1 pending>"
    assert t.pending
    t.close()
    assert not t.pending
    assert str(Timeout()) == "" and norm(repr(Timeout())) == "<Timeout at 0xADDR seconds=None>"
    assert str(Timeout(1)) == "1 second" and str(Timeout(2.5)) == "2.5 seconds"
    assert str(Timeout(1, False)) == "1 second (silent)"
    assert str(Timeout(0.1, ValueError("x"))) == "0.1 seconds: x"
    assert norm(repr(Timeout(0.1, ValueError("x")))) == \
        "<Timeout at 0xADDR seconds=0.1 exception=ValueError('x')>"
    assert norm(repr(Timeout(0.1, False))) == "<Timeout at 0xADDR seconds=0.1 exception=False>"
    assert Timeout(0).seconds == 0
    assert Timeout(1) < Timeout(2) and Timeout(1) < 2
    assert issubclass(Timeout, BaseException) and not issubclass(Timeout, Exception)


def test_raises_itself(gv):
    gevent = gv.gevent
    t = gevent.Timeout(0.05)
    t.start()
    t0 = time.monotonic()
    with pytest.raises(gevent.Timeout) as info:
        gevent.sleep(2)
    assert info.value is t
    assert time.monotonic() - t0 >= 0.04
    assert not t.pending
    t.close()


def test_context_manager_and_custom_exceptions(gv):
    gevent = gv.gevent
    with pytest.raises(gevent.Timeout) as info:
        with gevent.Timeout(0.05) as t:
            gevent.sleep(2)
    assert info.value is t and not t.pending
    exc = ValueError("v")
    with pytest.raises(ValueError) as info:
        with gevent.Timeout(0.05, exc):
            gevent.sleep(2)
    assert info.value is exc
    with pytest.raises(ValueError) as info:
        with gevent.Timeout(0.05, ValueError):
            gevent.sleep(2)
    assert repr(info.value) == "ValueError()"
    with pytest.raises(RuntimeError):
        with gevent.Timeout(0.05, exception=RuntimeError):
            gevent.sleep(2)
    # a string "exception" raises the Timeout itself
    with pytest.raises(gevent.Timeout) as info:
        with gevent.Timeout(0.05, "message") as t:
            gevent.sleep(2)
    assert info.value is t and str(t) == "0.05 seconds: message"


def test_false_returns_silently(gv):
    gevent = gv.gevent
    log = []
    t0 = time.monotonic()
    with gevent.Timeout(0.05, False):
        gevent.sleep(2)
        log.append("not reached")
    assert log == []
    assert time.monotonic() - t0 < 1.5
    # an exception other than the timeout itself is not swallowed
    with pytest.raises(KeyError):
        with gevent.Timeout(1, False):
            raise KeyError("k")


def test_none_never_fires(gv):
    gevent = gv.gevent
    with gevent.Timeout(None) as t:
        gevent.sleep(0.05)
    assert not t.pending
    t = gevent.Timeout()
    t.start()
    assert not t.pending
    t.cancel()


def test_nested_outer_fires_first(gv):
    gevent = gv.gevent
    log = []
    with pytest.raises(gevent.Timeout) as info:
        with gevent.Timeout(0.05) as outer:
            try:
                with gevent.Timeout(1) as inner:
                    gevent.sleep(2)
            except gevent.Timeout as e:
                log.append((e is outer, e is inner))
                raise
    assert info.value is outer
    assert log == [(True, False)]
    assert not inner.pending and not outer.pending


def test_nested_inner_fires_first(gv):
    gevent = gv.gevent
    with gevent.Timeout(1) as outer:
        with pytest.raises(gevent.Timeout) as info:
            with gevent.Timeout(0.05) as inner:
                gevent.sleep(2)
        assert info.value is inner
        assert outer.pending
        gevent.sleep(0.01)
    assert not outer.pending


def test_nested_silent_inner_does_not_swallow_outer(gv):
    gevent = gv.gevent
    with pytest.raises(gevent.Timeout) as info:
        with gevent.Timeout(0.05) as outer:
            with gevent.Timeout(1, False):
                gevent.sleep(2)
    assert info.value is outer


def test_start_new_cancel_close_restart(gv):
    gevent = gv.gevent
    Timeout = gevent.Timeout
    t = Timeout.start_new(0.05)
    assert t.pending and norm(repr(t)) == "<Timeout at 0xADDR seconds=0.05 pending>"
    with pytest.raises(Timeout) as info:
        gevent.sleep(1)
    assert info.value is t
    t.cancel()
    assert Timeout.start_new(t) is t      # a Timeout passed in: started (again) if not pending
    assert t.pending
    assert Timeout.start_new(t) is t      # already pending: left alone
    t.close()
    t = Timeout.start_new(0.05, ValueError)
    t.cancel()
    assert not t.pending
    gevent.sleep(0.1)                     # cancelled: nothing fires
    t.start()                             # cancel() allows a restart
    assert t.pending
    with pytest.raises(ValueError):
        gevent.sleep(1)
    t.close()
    t = Timeout(0.05)
    t.start()
    with pytest.raises(AssertionError) as info:
        t.start()
    assert norm(str(info.value)) == \
        "<Timeout at 0xADDR seconds=0.05 pending> is already started; to restart it, cancel it first"
    t.cancel()
    t.close()
    t.close()                             # closing twice is fine
    with pytest.raises(AssertionError) as info:
        t.start()                         # a closed Timeout cannot be started again
    assert str(info.value) == "non-expiring timer cannot be started"
    assert not t.pending
    gevent.sleep(0.1)


def test_timeout_in_other_greenlet_is_independent(gv):
    gevent = gv.gevent

    def worker():
        with gevent.Timeout(0.05, False):
            gevent.sleep(1)
            return "slept"
        return "timed out"

    g = gevent.spawn(worker)
    gevent.sleep(0.2)                     # the main greenlet is not interrupted
    assert g.get() == "timed out"


def test_with_timeout(gv):
    gevent = gv.gevent
    assert gevent.with_timeout(1, lambda x, y=0: x * 2 + y, 21, y=0) == 42
    assert gevent.with_timeout(0.05, gevent.sleep, 1, timeout_value="tv") == "tv"
    assert gevent.with_timeout(0.05, gevent.sleep, 1, timeout_value=None) is None
    with pytest.raises(gevent.Timeout) as info:
        gevent.with_timeout(0.05, gevent.sleep, 1)
    assert str(info.value) == "0.05 seconds"
    seen = []

    def kw(**k):
        seen.append(k)
    gevent.with_timeout(1, kw, a=1, timeout_value=2)
    assert seen == [{"a": 1}]              # timeout_value is not passed on


def test_with_timeout_does_not_swallow_other_timeouts(gv):
    gevent = gv.gevent
    with pytest.raises(gevent.Timeout) as info:
        with gevent.Timeout(0.05) as outer:
            gevent.with_timeout(1, gevent.sleep, 2, timeout_value="tv")
    assert info.value is outer


def test_get_and_join_timeouts_are_timeout_instances(gv):
    gevent = gv.gevent
    ev = gv.event.Event()
    g = gevent.spawn(ev.wait)
    with pytest.raises(gevent.Timeout) as info:
        g.get(timeout=0.02)
    assert info.value.seconds == 0.02
    ar = gv.event.AsyncResult()
    with pytest.raises(gevent.Timeout) as info:
        ar.get(timeout=0.02)
    assert info.value.seconds == 0.02
    ev.set()
    g.join()
