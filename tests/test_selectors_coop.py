"""pyconc.selectors inside a hub (pyconc.gevent greenlets) and across threads: select() parks only
the calling greenlet; a plain thread blocks; a register or a write from another thread wakes a
waiting greenlet; several greenlets may select on one selector at once; close() while a greenlet
waits; select() in the hub greenlet itself. Also gevent.select with a descriptor closed while a
greenlet waits (gevent's own libev aborts there with plain sockets, so pyconc alone).

No oracle: the stdlib's selectors block the thread, gevent's unpatched selectors too; the
expected behaviour is the issue's (cooperative inside a hub, the stdlib's otherwise)."""
import os
import selectors as std
import socket
import threading
import time

import pytest

import pyconc.gevent as gevent
import pyconc.gevent.select as gselect
import pyconc.selectors as pc
from pyconc.gevent.exceptions import BlockingSwitchOutError

pytestmark = pytest.mark.timeout(60)

KINDS = ["DefaultSelector", "EpollSelector", "PollSelector", "SelectSelector"]


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def ticker(log, period=0.01):
    def run():
        while True:
            gevent.sleep(period)
            log.append(1)
    return gevent.spawn(run)


@pytest.mark.parametrize("kind", KINDS)
def test_select_parks_only_the_greenlet(kind, pair):
    a, b = pair
    s = getattr(pc, kind)()
    s.register(a, std.EVENT_READ, "a")
    ticks = []
    t = ticker(ticks)
    t0 = time.monotonic()
    assert s.select(0.1) == []
    assert 0.09 <= time.monotonic() - t0 < 3
    assert len(ticks) >= 3
    gevent.spawn(lambda: (gevent.sleep(0.05), b.send(b"x")))
    n = len(ticks)
    got = s.select(5)
    assert [(k.data, ev) for k, ev in got] == [("a", std.EVENT_READ)]
    assert len(ticks) >= n + 2
    # ready now: no switch
    gevent.spawn(ticks.append, "spawned")
    assert len(s.select(0)) == 1 and len(s.select()) == 1
    assert "spawned" not in ticks
    t.kill()
    s.close()


@pytest.mark.parametrize("kind", KINDS)
def test_many_greenlets_select_one_selector(kind, pair):
    a, b = pair
    s = getattr(pc, kind)()
    s.register(a, std.EVENT_READ, "a")
    results = []
    gs = [gevent.spawn(lambda: results.append(s.select(5))) for _ in range(5)]
    gevent.sleep(0.05)
    assert results == []
    b.send(b"x")
    gevent.joinall(gs, timeout=5)
    assert len(results) == 5
    assert all([(k.data, ev) for k, ev in r] == [("a", 1)] for r in results)
    s.close()


@pytest.mark.parametrize("kind", ["DefaultSelector", "EpollSelector"])
def test_register_from_another_thread_wakes_the_greenlet(kind, pair):
    a, b = pair
    b.send(b"x")
    s = getattr(pc, kind)()
    ticks = []
    t = ticker(ticks)
    th = threading.Thread(target=lambda: (time.sleep(0.1), s.register(a, 1, "late")))
    th.start()
    got = s.select(10)
    th.join()
    t.kill()
    assert [(k.data, ev) for k, ev in got] == [("late", 1)]
    assert len(ticks) >= 3
    s.close()


@pytest.mark.parametrize("kind", KINDS)
def test_write_from_another_thread_wakes_the_greenlet(kind, pair):
    a, b = pair
    s = getattr(pc, kind)()
    s.register(a, 1, "a")
    th = threading.Thread(target=lambda: (time.sleep(0.05), b.send(b"x")))
    th.start()
    t0 = time.monotonic()
    got = s.select(10)
    th.join()
    assert [(k.data, ev) for k, ev in got] == [("a", 1)]
    assert time.monotonic() - t0 < 5
    s.close()


@pytest.mark.parametrize("kind", KINDS)
def test_greenlets_and_a_thread_share_a_selector(kind, pair):
    # a thread without a hub blocks in the system call while greenlets of the main thread park
    a, b = pair
    s = getattr(pc, kind)()
    s.register(a, 1, "a")
    out = []
    th = threading.Thread(target=lambda: out.append(("thread", len(s.select(5)))))
    th.start()
    g = gevent.spawn(lambda: out.append(("greenlet", len(s.select(5)))))
    gevent.sleep(0.05)
    b.send(b"x")
    g.join(5)
    th.join(5)
    assert sorted(out) == [("greenlet", 1), ("thread", 1)]
    s.close()


@pytest.mark.parametrize("kind", KINDS)
def test_close_while_a_greenlet_selects(kind, pair):
    a, b = pair
    s = getattr(pc, kind)()
    s.register(a, 1)
    fd = s.fileno() if hasattr(s, "fileno") else None
    out = []
    g = gevent.spawn(lambda: out.append(s.select(0.2)))
    gevent.sleep(0.02)
    s.close()
    g.join(5)
    assert out == [[]]
    if fd is not None:
        with pytest.raises(OSError):
            os.fstat(fd)          # released once the waiter left
    # the hub is still usable for the same descriptor numbers
    s2 = getattr(pc, kind)()
    s2.register(a, 1)
    gevent.spawn(lambda: (gevent.sleep(0.02), b.send(b"x")))
    assert len(s2.select(5)) == 1
    s2.close()


@pytest.mark.parametrize("kind", KINDS)
def test_timeout_thrown_into_select(kind, pair):
    a, b = pair
    s = getattr(pc, kind)()
    s.register(a, 1)
    with pytest.raises(gevent.Timeout):
        with gevent.Timeout(0.05):
            s.select(5)
    # nothing of that wait is left behind: the next one works
    gevent.spawn(lambda: (gevent.sleep(0.02), b.send(b"x")))
    assert len(s.select(5)) == 1
    s.close()


@pytest.mark.parametrize("kind", KINDS)
def test_select_in_the_hub_greenlet(kind, pair):
    a, b = pair
    s = getattr(pc, kind)()
    s.register(a, 1)
    out = []

    def callback():
        out.append(s.select(0))
        try:
            s.select(1)
        except BlockingSwitchOutError as e:
            out.append(type(e))
    gevent.get_hub().loop.run_callback(callback)
    gevent.sleep(0.01)
    assert out == [[], BlockingSwitchOutError]
    s.close()


def test_gevent_select_descriptor_closed_while_waiting():
    r, w = os.pipe()
    gevent.spawn(os.close, r)
    t0 = time.monotonic()
    res = gselect._gselect([r], [], [], 0.1, lambda *a: ([], [], []))
    assert res == ([], [], []) or res == ([r], [], [])
    assert time.monotonic() - t0 < 3
    os.close(w)
    # a descriptor closed before the wait: libev reports it ready (its watchers are killed)
    r, w = os.pipe()
    os.close(r)
    assert gselect._gselect([r], [], [], 1, lambda *a: ([], [], [])) == ([r], [], [])
    os.close(w)


def test_gevent_poll_descriptor_closed_while_waiting():
    r, w = os.pipe()
    p = gselect.poll()
    p.register(r, gselect.POLLIN)
    gevent.spawn(os.close, r)
    assert p.poll(100) == [(r, gselect.POLLNVAL)]
    assert p.poll(50) == [(r, gselect.POLLNVAL)]
    os.close(w)


FORK_SCRIPT = r'''
import os, socket, sys, threading, time
import pyconc.selectors as pc
s = pc.EpollSelector()
a, b = socket.socketpair()
s.register(a, 1, "a")
t = threading.Thread(target=s.select, args=(0.5,))
t.start()
time.sleep(0.05)                 # the thread is inside select(), waiting
pid = os.fork()
if pid == 0:
    # that thread is not in the child: close() must release the epoll fd at once, and the
    # selector's buffers must be usable
    fd = s.fileno()
    s2 = pc.EpollSelector()
    for i in range(40):
        c, d = socket.socketpair()
        s2.register(c, 2, i)
    ok = len(s2.select(0)) == 40
    s.close()
    try:
        os.fstat(fd)
        ok = False
    except OSError:
        pass
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
t.join()
print("child", os.waitstatus_to_exitcode(status))
'''


def test_fork_while_another_thread_selects():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True,
                       timeout=60)
    assert r.stdout.strip() == "child 0", r.stdout + r.stderr
