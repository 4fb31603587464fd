"""The hub's observable behaviour: sleep/idle scheduling, get_hub, the switch interval, how a
failing greenlet is reported, SystemExit/KeyboardInterrupt reaching the main greenlet, blocking
inside a hub callback, LoopExit, fork and Ctrl-C. gevent 26 is the oracle (see conftest.py).
Scenarios that need a fresh process run as subprocess scripts (gv.run)."""
import os
import re
import signal
import sys
import time

import pytest

from .conftest import norm

pytestmark = pytest.mark.timeout(60)


def test_sleep0_round_robin_order(gv):
    gevent = gv.gevent
    log = []

    def w(n):
        for i in range(3):
            log.append((n, i))
            gevent.sleep(0)

    gevent.joinall([gevent.spawn(w, n) for n in range(3)])
    assert log == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2)]


def test_sleep0_yields_to_every_ready_greenlet_once(gv):
    gevent = gv.gevent
    log = []

    def w(n):
        log.append(n)
        gevent.sleep(0)
        log.append(n + 10)

    for n in range(3):
        gevent.spawn(w, n)
    log.append("main")
    gevent.sleep(0)          # the three run once each (up to their own sleep(0)), then main
    log.append("main again")
    gevent.sleep(0)
    assert log == ["main", 0, 1, 2, "main again", 10, 11, 12]


def test_sleep_concurrency_coarse_bound(gv):
    gevent = gv.gevent
    t0 = time.monotonic()
    gevent.joinall([gevent.spawn(gevent.sleep, 0.2) for _ in range(3)])
    elapsed = time.monotonic() - t0
    assert 0.19 <= elapsed < 0.5


def test_sleep_order_by_deadline(gv):
    gevent = gv.gevent
    log = []

    def s(d):
        gevent.sleep(d)
        log.append(d)

    gevent.joinall([gevent.spawn(s, d) for d in (0.15, 0.05, 0.1, 0.05)])
    assert log == [0.05, 0.05, 0.1, 0.15]


def test_sleep_negative_is_yield(gv):
    gevent = gv.gevent
    log = []
    gevent.spawn(log.append, 1)
    gevent.sleep(-1)
    assert log == [1]


def test_idle_runs_after_busy_greenlets(gv):
    gevent = gv.gevent
    log = []

    def idler():
        gevent.idle()
        log.append("idle done")

    def busy():
        for i in range(3):
            log.append(("busy", i))
            gevent.sleep(0)

    gevent.joinall([gevent.spawn(idler), gevent.spawn(busy)])
    assert log == [("busy", 0), ("busy", 1), ("busy", 2), "idle done"]


def test_get_hub_and_switch_interval(gv):
    gevent = gv.gevent
    hub = gevent.get_hub()
    assert hub is gevent.get_hub()
    assert gevent.getcurrent() is not hub
    assert hub.parent is gevent.getcurrent()          # the main greenlet is the hub's parent
    assert hub.loop is not None
    assert isinstance(hub.loop.now(), float)
    pool = hub.threadpool
    assert pool is hub.threadpool
    assert isinstance(pool, gv.threadpool.ThreadPool)
    assert pool.maxsize == 10                          # Hub.threadpool_size
    assert pool.apply(sum, ((1, 2, 3),)) == 6
    old = gevent.getswitchinterval()
    assert isinstance(old, float) and old > 0
    try:
        gevent.setswitchinterval(0.01)
        assert gevent.getswitchinterval() == 0.01
        assert sys.getswitchinterval() == 0.01   # gevent's are the sys functions themselves
    finally:
        gevent.setswitchinterval(old)


def test_loop_run_callback_minimal(gv):
    gevent = gv.gevent
    log = []
    hub = gevent.get_hub()
    hub.loop.run_callback(log.append, "cb")
    assert log == []
    gevent.sleep(0)
    assert log == ["cb"]


def test_get_hub_per_thread(gv):
    import threading
    gevent = gv.gevent
    main_hub = gevent.get_hub()
    seen = []

    def t():
        h = gevent.get_hub()
        gevent.sleep(0.01)
        seen.append((h is not main_hub, h is gevent.get_hub(), gevent.spawn(lambda: 5).get()))

    th = threading.Thread(target=t)
    th.start()
    th.join(10)
    assert seen == [(True, True, 5)]


FAILING = '''
import sys
def boom(x, y=1):
    return x / 0
g = gevent.spawn(boom, 5, y=2)
g.name = "worker"
g.join()
print("--", file=sys.stderr)
h = gevent.spawn(boom, 7)
h.join()
print("ok", h.dead, type(h.exception).__name__)
'''


def test_failing_greenlet_is_printed_as_gevent(gv):
    r = gv.run(FAILING)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok True ZeroDivisionError\n"
    first, second = norm(r.stderr).split("--\n")
    for text, head in ((first, '<Greenlet "worker" at 0xADDR: boom(5, y=2)>'),
                       (second, "<Greenlet at 0xADDR: boom(7)>")):
        lines = text.splitlines()
        assert lines[0] == "Traceback (most recent call last):", text
        assert any(re.search(r'File ".*", line \d+, in boom$', ln) for ln in lines), text
        assert lines[-3:] == ["ZeroDivisionError: division by zero",
                              "TIMESTAMP %s failed with ZeroDivisionError" % head, ""], text


def test_error_in_link_callback_is_reported_not_raised(gv):
    r = gv.run('''
import sys
g = gevent.spawn(lambda: 1)
def bad(src):
    raise ValueError("in link")
g.rawlink(bad)
g.join()
gevent.sleep(0.01)
print("still running")
''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == "still running\n"
    err = norm(r.stderr)
    assert "ValueError: in link" in err
    # the context is (link, greenlet); the greenlet's repr was first formatted after it finished
    # and freed its function, so it reads "_run" (gevent's quirk)
    assert re.search(r"TIMESTAMP \(<function bad at 0xADDR>, <Greenlet at 0xADDR: _run>\) "
                     r"failed with ValueError\n\n$", err), err


@pytest.mark.parametrize("exc,printed", [("SystemExit(3)", False),
                                         ("KeyboardInterrupt('k')", True),
                                         ("SystemError('se')", True)])
def test_system_errors_in_greenlet_reach_main(gv, exc, printed):
    r = gv.run('''
def body():
    raise %s
g = gevent.spawn(body)
try:
    gevent.sleep(1)
except BaseException as e:
    print("main got", repr(e), repr(g.exception))
else:
    print("main not interrupted")
''' % exc)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "main got %s %s\n" % (exc, exc)
    assert ("failed with %s" % exc.split("(")[0] in r.stderr) == printed, r.stderr


def test_system_exit_in_greenlet_exits_process(gv):
    r = gv.run('''
gevent.spawn(lambda: __import__("sys").exit(7))
gevent.sleep(1)
print("not reached")
''')
    assert r.returncode == 7
    assert r.stdout == ""
    assert r.stderr == ""          # SystemExit is a NOT_ERROR: not printed


def test_greenlet_exit_is_success(gv):
    gevent = gv.gevent
    g = gevent.spawn(lambda: (_ for _ in ()).throw(gevent.GreenletExit("bye")))
    g.join()
    assert g.successful() and g.exception is None
    assert repr(g.value) == "GreenletExit('bye')"


def test_blocking_in_hub_callback_raises(gv):
    gevent = gv.gevent
    hub = gevent.get_hub()
    log = []

    def cb():
        assert gevent.getcurrent() is hub
        for name, call in (("sleep", lambda: gevent.sleep(0.01)),
                           ("sem", lambda: gv.lock.Semaphore(0).acquire()),
                           ("event", lambda: gv.event.Event().wait(0.01)),
                           ("join", lambda: gevent.spawn(gevent.sleep, 0.01).join())):
            try:
                call()
            except BaseException as e:
                log.append((name, type(e).__name__, isinstance(e, AssertionError), str(e)))
            else:
                log.append((name, "no error"))

    def queue_in_hub():
        # Queue.get/peek in the hub never block: Empty at once (gevent's special case), after
        # first letting a waiting putter in.
        q = gv.queue.Queue()
        try:
            q.get()
        except gv.queue.Empty:
            log.append(("queue get", "Empty"))
        try:
            q.peek()
        except gv.queue.Empty:
            log.append(("queue peek", "Empty"))
        log.append(("queue with putter", full.get()))

    full = gv.queue.Queue(1)
    full.put(1)
    gevent.spawn(full.put, 2)
    gevent.sleep(0)
    hub.loop.run_callback(cb)
    hub.loop.run_callback(queue_in_hub)
    gevent.sleep(0.05)
    msg = "Impossible to call blocking function in the event loop callback"
    assert log == [(n, "BlockingSwitchOutError", True, msg)
                   for n in ("sleep", "sem", "event", "join")] + \
        [("queue get", "Empty"), ("queue peek", "Empty"), ("queue with putter", 1)]
    assert issubclass(gv.exceptions.BlockingSwitchOutError, AssertionError)


def test_blocking_in_rawlink_callback_raises(gv):
    gevent = gv.gevent
    log = []
    ev = gv.event.Event()

    def rl(e):
        try:
            gevent.sleep(0)
        except gv.exceptions.BlockingSwitchOutError as x:
            log.append(str(x))

    ev.rawlink(rl)
    ev.set()
    gevent.sleep(0.01)
    assert log == ["Impossible to call blocking function in the event loop callback"]


@pytest.mark.parametrize("call", ["sub('queue').Queue().get()", "sub('event').Event().wait()",
                                  "sub('lock').Semaphore(0).acquire()",
                                  "gevent.get_hub().switch()",
                                  "gevent.spawn(sub('event').Event().wait).join()"])
def test_loop_exit_when_everything_would_block(gv, call):
    r = gv.run('''
LoopExit = sub("exceptions").LoopExit
assert sub("hub").LoopExit is LoopExit
try:
    %s
except LoopExit as e:
    print(type(e).__name__, isinstance(e, Exception), e.args[0])
    print(str(e) == repr(e), str(e).startswith("This operation would block forever\\n\\tHub: "))
    print(e.hub is gevent.get_hub(), len(e.args))
''' % call)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("LoopExit True This operation would block forever\n"
                        "True True\nTrue 3\n"), r.stdout + r.stderr


def test_loop_exit_is_not_raised_while_a_timer_is_pending(gv):
    r = gv.run('''
q = sub("queue").Queue()
gevent.spawn_later(0.05, q.put, "late")
print(q.get())
''')
    assert r.returncode == 0 and r.stdout == "late\n", r.stderr


def test_callbacks_queued_in_a_pass_run_before_due_timers(gv):
    # gevent runs its callback queue until it is empty (what a callback or a resumed greenlet
    # queues runs in the same pass), then the expired timers: a callback queued after a timer
    # fell due still runs first, and a sleep(0) in the pass lets the later-queued greenlets run
    r = gv.run('''
import time
loop = gevent.get_hub().loop
order = []
def a():
    t = loop.timer(0.001)
    t.start(order.append, "timer")
    time.sleep(0.005)
    loop.run_callback(order.append, "cb")
gevent.spawn(a)
gevent.sleep(0.02)
print(order)
order.clear()
def b():
    loop.run_callback(order.append, "cb1")
    gevent.sleep(0)
    order.append("b-after-sleep0")
def c():
    order.append("c")
    loop.run_callback(order.append, "cb2")
gevent.spawn(b)
gevent.spawn(c)
loop.timer(0).start(order.append, "timer0")
gevent.sleep(0.02)
print(order)
''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("['cb', 'timer']\n"
                        "['c', 'cb1', 'b-after-sleep0', 'cb2', 'timer0']\n"), r.stdout


def test_timer_ref_can_be_changed_while_armed(gv):
    # libev's watcher attribute: an armed timer set to ref=False no longer keeps the loop (and
    # gevent.wait()) alive; set back to True it does again
    r = gv.run('''
import time
loop = gevent.get_hub().loop
w = loop.timer(10)
w.start(lambda: None)
print(w.ref)
w.ref = False
t0 = time.monotonic()
print(gevent.wait(), w.ref, w.active, time.monotonic() - t0 < 5)
w.stop()
w2 = loop.timer(0.05, ref=False)
w2.ref = True
w2.start(lambda: print("fired"))
print(gevent.wait(), w2.ref)
''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == "True\nTrue False True True\nfired\nTrue True\n", r.stdout + r.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_has_working_hub(gv):
    r = gv.run('''
import os
q = sub("queue").Queue()
gevent.spawn(q.put, "parent item").join()
gevent.sleep(0.01)
pid = os.fork()
if pid == 0:
    try:
        r = gevent.spawn(lambda: 42).get(timeout=5)
        gevent.sleep(0.02)
        q2 = sub("queue").Queue()
        gevent.spawn_later(0.01, q2.put, "child item")
        ok = (r, q2.get(timeout=5), q.get_nowait())
        os.write(1, ("child %r\\n" % (ok,)).encode())
        os._exit(0)
    except BaseException as e:
        os.write(1, ("child error %r\\n" % (e,)).encode())
        os._exit(1)
_, status = os.waitpid(pid, 0)
print("parent", os.waitstatus_to_exitcode(status), gevent.spawn(lambda: 1).get())
''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == "child (42, 'child item', 'parent item')\nparent 0 1\n", r.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_parents_pending_greenlets(gv):
    """gevent (plain os.fork, no monkey patching) keeps the same hub in the child, so a timer
    the parent armed fires in the child too. pyconc.gevent differs on purpose (issue 11): the
    child gets a fresh hub and the parent's parked greenlets do not run there."""
    r = gv.run('''
import os
h = gevent.get_hub()
g = gevent.spawn_later(0.1, os.write, 1, b"timer ran\\n")
gevent.sleep(0)
pid = os.fork()
if pid == 0:
    gevent.sleep(0.3)
    os.write(1, b"child done\\n")
    os._exit(0)
os.waitpid(pid, 0)
gevent.sleep(0.2)
print("parent done")
''')
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == "parent done"
    if gv.is_pyconc:
        assert sorted(lines) == ["child done", "parent done", "timer ran"], r.stdout
    else:
        assert sorted(lines) == ["child done", "parent done", "timer ran", "timer ran"], r.stdout


SIGINT_SCRIPT = '''
import time
what = %r
g = gevent.spawn(gevent.sleep, 100)
gevent.sleep(0)
print("ready", flush=True)
try:
    if what == "joinall":
        gevent.joinall([g])
    elif what == "sleep":
        gevent.sleep(100)
    elif what == "queue_get":
        sub("queue").Queue().get()
    elif what == "join":
        g.join()
    elif what == "event_wait":
        sub("event").Event().wait()
except KeyboardInterrupt as e:
    print("KeyboardInterrupt", repr(e), flush=True)
else:
    print("no KeyboardInterrupt", flush=True)
'''


@pytest.mark.parametrize("what", ["joinall", "sleep", "queue_get", "join", "event_wait"])
def test_ctrl_c_reaches_main_greenlet(gv, what):
    p = gv.popen(SIGINT_SCRIPT % what)
    try:
        assert p.stdout.readline() == "ready\n"
        time.sleep(0.2)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        line = p.stdout.readline()
        latency = time.monotonic() - t0
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert line == "KeyboardInterrupt KeyboardInterrupt()\n", (line, err)
    assert latency < 0.5, latency        # a coarse bound: gevent takes milliseconds
    assert p.returncode == 0
    # gevent's hub reports the interrupt it caught as a system error before passing it on:
    # "KeyboardInterrupt\n<timestamp>\n"
    assert norm(err) == "KeyboardInterrupt\nTIMESTAMP\n", err


def test_hub_handle_error_and_print_exception_called_directly(gv):
    # Hub.handle_error as an API (gevent.testing and applications call and override it):
    # printing through print_exception to exception_stream, NOT_ERROR and SYSTEM_ERROR read
    # from the class, a None context is a system error, raised in the main greenlet.
    r = gv.run('''
import io
hub = gevent.get_hub()
buf = hub.exception_stream = io.StringIO()
hub.handle_error("ctx", ValueError, ValueError("v"), None)
hub.print_exception("ctx2", KeyError, None, None)
hub.handle_error(hub, gevent.GreenletExit, gevent.GreenletExit(), None)   # not an error
try:
    hub.handle_error("ctx3", SystemExit, SystemExit(4), None)
except SystemExit as e:
    print("raised", repr(e))
try:
    hub.handle_error(None, LookupError, "s", None)   # a string value is instantiated
except LookupError as e:
    print("raised", repr(e))
type(hub).SYSTEM_ERROR = object
try:
    hub.handle_error("ctx4", TypeError, TypeError("t"), None)
except TypeError as e:
    print("raised", repr(e))
type(hub).SYSTEM_ERROR = (KeyboardInterrupt, SystemExit, SystemError)
type(hub).NOT_ERROR = (gevent.GreenletExit, SystemExit, ValueError)
hub.handle_error("ctx5", ValueError, ValueError("quiet"), None)
hub.exception_stream = None
hub.print_exception("ctx6", KeyError, KeyError("k"), None)
del hub.exception_stream
import sys
print(hub.exception_stream is sys.stderr)
sys.stdout.write(buf.getvalue())
''')
    assert r.returncode == 0, r.stderr
    assert norm(r.stdout) == (
        "raised SystemExit(4)\n"
        "raised LookupError('s')\n"
        "raised TypeError('t')\n"
        "True\n"
        "ValueError: v\nTIMESTAMP ctx failed with ValueError\n\n"
        "KeyError\nTIMESTAMP ctx2 failed with KeyError\n\n"
        "LookupError: s\nTIMESTAMP\n"
        "TypeError: t\nTIMESTAMP ctx4 failed with TypeError\n\n")


def test_hub_minimal_ident(gv):
    r = gv.run('''
import threading
idents = [gevent.get_hub().minimal_ident]
def other():
    idents.append(gevent.get_hub().minimal_ident)
t = threading.Thread(target=other)
t.start()
t.join()
print(idents, gevent.get_hub().minimal_ident)
''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == "[1, 2] 1\n"


def test_util_wrap_errors(gv):
    wrap_errors = gv.util.wrap_errors

    def div(a, b=1):
        """divides"""
        return a / b

    w = wrap_errors(ZeroDivisionError, div)
    assert w(6, b=3) == 2
    err = w(1, 0)
    assert isinstance(err, ZeroDivisionError)
    assert (str(w), repr(w), w.__name__, w.__doc__) == (str(div), repr(div), "div", "divides")
    with pytest.raises(TypeError):
        wrap_errors((ValueError, KeyError), div)("x")
    assert isinstance(wrap_errors((ValueError, TypeError), div)("x"), TypeError)
    # a forced switch into a sleeping greenlet is an invalid switch (what gevent's own suite
    # checks through wrap_errors)
    gevent = gv.gevent
    p = gevent.spawn(wrap_errors(AssertionError, gevent.sleep), 2)
    gevent.sleep(0)
    switcher = gevent.spawn(p.switch, None)
    result = p.get()
    assert isinstance(result, AssertionError) and "Invalid switch" in str(result)
    switcher.kill()


def test_waiter_str(gv):
    gevent = gv.gevent
    Waiter = gv.hub.Waiter
    w = Waiter()
    assert str(w) == "<Waiter greenlet=None>"
    w.switch(25)
    assert str(w) == "<Waiter greenlet=None value=25>" and w.get() == 25
    w = Waiter()
    w.throw(ZeroDivisionError)
    assert re.match(r"^<Waiter greenlet=None exc_info=.*ZeroDivisionError.*>$", str(w)), str(w)
    with pytest.raises(ZeroDivisionError):
        w.get()
    w = Waiter()
    g = gevent.spawn(w.get)
    g.name = "AName"
    gevent.sleep(0)
    assert str(w).startswith('<Waiter greenlet=<Greenlet "AName'), str(w)
    g.kill()


def test_hub_destroy_takes_destroy_loop(gv):
    r = gv.run('''
import threading
hubs = []
def work():
    g = gevent.spawn(lambda: 0)
    g.join()
    hub = gevent.get_hub()
    hub.join()
    hub.destroy(destroy_loop=True)
    hubs.append(hub)
t = threading.Thread(target=work)
t.start()
t.join()
print(len(hubs), gevent.get_hub() is not hubs[0])
''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1 True\n"


def test_wait_returns_many_in_finish_order(gv):
    # wait() lists the greenlets done before it was called in the order given, then the others
    # in the order they finished; with thousands finishing out of order (a sort, not an
    # insertion sort: this once took quadratic time)
    g = gv.gevent
    import random
    rnd = random.Random(7)
    early = [g.spawn(lambda: None) for _ in range(3)]
    g.sleep(0)
    finished = []

    def work(i, d):
        g.sleep(d)
        finished.append(i)
        return i
    delays = [rnd.choice((0.001, 0.002, 0.003, 0.004)) for _ in range(3000)]
    late = [g.spawn(work, i, d) for i, d in enumerate(delays)]
    done = g.wait(early[::-1] + late)
    assert done[:3] == early[::-1]
    assert [x.value for x in done[3:]] == finished
    assert len(done) == 3003
