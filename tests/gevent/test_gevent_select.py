"""gevent.select (select, poll) and gevent.selectors (GeventSelector): readiness, timeouts,
closed and bad descriptors, errors, many greenlets selecting at once, and waits that park only
the calling greenlet. gevent 26 is the oracle (see conftest.py).

The descriptors are the stdlib's socketpairs and pipes (only fileno() matters here); data is
sent from greenlets with plain non-blocking sends."""
import errno
import os
import select as std_select
import selectors as std_selectors
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def ticker(gevent, log, period=0.01):
    """A greenlet that counts while others wait: proof the waits park only their greenlet."""
    def run():
        while True:
            gevent.sleep(period)
            log.append(1)
    return gevent.spawn(run)


# ---------------------------------------------------------------- the module

def test_select_module_names(gv):
    sel = gv.select
    assert sel.__all__ == ['error', 'select', 'poll']
    assert sel.__implements__ == ['select', 'poll']
    assert sel.error is OSError is std_select.error
    assert sel.epoll is std_select.epoll            # the blocking one, as gevent's
    for name in ('POLLIN', 'POLLOUT', 'POLLPRI', 'POLLERR', 'POLLHUP', 'POLLNVAL', 'EPOLLIN',
                 'EPOLLOUT', 'PIPE_BUF'):
        assert getattr(sel, name) == getattr(std_select, name)
    assert sel._original_select is std_select.select
    assert sel.get_fileno(5) == 5
    with pytest.raises(ValueError, match="Invalid file object: 'x'"):
        sel.get_fileno('x')
    with pytest.raises(ValueError, match="Invalid file descriptor: -2"):
        sel.get_fileno(-2)
    assert callable(sel._gevent_do_monkey_patch)


def test_selectors_module_names(gv):
    gs = gv.selectors
    assert gs.__all__ == ['DefaultSelector', 'GeventSelector']
    assert gs.DefaultSelector is gs.GeventSelector
    assert gs.EpollSelector is std_selectors.EpollSelector
    assert gs.PollSelector is std_selectors.PollSelector
    assert gs.SelectorKey is std_selectors.SelectorKey
    assert (gs.EVENT_READ, gs.EVENT_WRITE) == (1, 2)
    assert issubclass(gs.GeventSelector, std_selectors._BaseSelectorImpl)
    s = gs.GeventSelector()
    assert isinstance(s, std_selectors.BaseSelector)
    assert s.hub is gv.gevent.get_hub()
    s.close()
    assert s.hub is None


# ---------------------------------------------------------------- select()

def test_select_ready_now_yields_once(gv, pair):
    gevent, sel = gv.gevent, gv.select
    a, b = pair
    log = []
    gevent.spawn(log.append, 'other')
    r = sel.select([a], [a], [], 0)
    assert r == ([], [a], []) and type(r) is tuple and type(r[0]) is list
    assert log == ['other']
    gevent.spawn(log.append, 'again')
    assert sel.select([], [a], []) == ([], [a], [])      # ready: no wait even without timeout
    assert log == ['other', 'again']
    gevent.spawn(log.append, 'zero')
    assert sel.select([a], [], [], 0) == ([], [], [])    # nothing, timeout 0: one turn
    assert log == ['other', 'again', 'zero']


def test_select_waits_cooperatively(gv, pair):
    gevent, sel = gv.gevent, gv.select
    a, b = pair
    ticks = []
    t = ticker(gevent, ticks)

    def send_later():
        gevent.sleep(0.08)
        b.send(b'x')
    gevent.spawn(send_later)
    t0 = time.monotonic()
    r = sel.select([a, a.fileno()], [], [], 5)
    elapsed = time.monotonic() - t0
    t.kill()
    assert r == ([a, a.fileno()], [], [])
    assert 0.07 <= elapsed < 3
    assert len(ticks) >= 3


def test_select_timeout(gv, pair):
    gevent, sel = gv.gevent, gv.select
    a, b = pair
    ticks = []
    t = ticker(gevent, ticks)
    t0 = time.monotonic()
    assert sel.select([a], [], [a], 0.1) == ([], [], [])
    assert 0.09 <= time.monotonic() - t0 < 3
    t.kill()
    assert len(ticks) >= 3
    t0 = time.monotonic()
    assert sel.select([], [], [], 0.05) == ([], [], [])
    assert 0.04 <= time.monotonic() - t0 < 3


def test_select_input_forms(gv, pair):
    sel = gv.select
    a, b = pair
    b.send(b'x')

    class Fileno:
        def fileno(self):
            return a.fileno()
    f = Fileno()
    assert sel.select((a,), (), (), 0) == ([a], [], [])
    assert sel.select(iter([a]), [], [], 0) == ([a], [], [])
    assert sel.select([f], [], [], 0) == ([f], [], [])
    assert sel.select([a, a, a.fileno()], [], [], 1) == ([a, a, a.fileno()], [], [])
    a.recv(10)

    def gen():
        yield a.fileno()
    gv.gevent.spawn(lambda: (gv.gevent.sleep(0.02), b.send(b'y')))
    assert sel.select(gen(), [], [], 2) == ([a.fileno()], [], [])


@pytest.mark.parametrize("args, exc, message", [
    (([], [], [], -1), ValueError, "timeout must be non-negative"),
    (([], [], [], -0.5), ValueError, "timeout must be non-negative"),
    (([], [], [], "x"), TypeError, "'<' not supported between instances of 'str' and 'int'"),
    ((["x"], [], [], 0), TypeError, r"argument must be an int, or have a fileno\(\) method\."),
    (([1.5], [], [], 0), TypeError, r"argument must be an int, or have a fileno\(\) method\."),
    (([-1], [], [], 0), ValueError, r"file descriptor cannot be a negative integer \(-1\)"),
    (([99999], [], [], 0), ValueError, r"filedescriptor out of range in select\(\)"),
    ((5, [], [], 0), TypeError, "'int' object is not iterable"),
])
def test_select_errors(gv, args, exc, message):
    with pytest.raises(exc, match=message):
        gv.select.select(*args)


def test_select_closed_descriptor(gv):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as info:
        gv.select.select([r], [], [], 1)
    assert info.value.errno == errno.EBADF
    s = socket.socket()
    s.close()
    with pytest.raises(ValueError, match=r"cannot be a negative integer \(-1\)"):
        gv.select.select([s], [], [], 0)


def test_select_many_greenlets_same_socket(gv, pair):
    gevent, sel = gv.gevent, gv.select
    a, b = pair
    results = []
    gs = [gevent.spawn(lambda: results.append(sel.select([a], [], [], 5))) for _ in range(20)]
    gevent.sleep(0.05)
    assert results == []
    b.send(b'x')
    gevent.joinall(gs, timeout=5)
    assert results == [([a], [], [])] * 20


def test_select_many_greenlets_own_sockets(gv):
    gevent, sel = gv.gevent, gv.select
    pairs = [socket.socketpair() for _ in range(30)]
    try:
        order = []

        def wait(i):
            a = pairs[i][0]
            assert sel.select([a], [], [], 5) == ([a], [], [])
            order.append(i)
            a.recv(10)
        gs = [gevent.spawn(wait, i) for i in range(30)]
        gevent.sleep(0.02)
        for i in reversed(range(30)):
            pairs[i][1].send(b'x')
            gevent.sleep(0.001)
        gevent.joinall(gs, timeout=5, raise_error=True)
        assert order == list(reversed(range(30)))
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_select_hangup_is_readable(gv, pair):
    gevent, sel = gv.gevent, gv.select
    a, b = pair
    gevent.spawn(lambda: (gevent.sleep(0.02), b.close()))
    assert sel.select([a], [], [], 5) == ([a], [], [])


def test_select_in_a_plain_thread(gv, pair):
    a, b = pair
    out = []

    def run():
        out.append(gv.select.select([a], [], [], 0.05))
        b.send(b'x')
        out.append(gv.select.select([a], [a], [], 1))
    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    assert out == [([], [], []), ([a], [a], [])]


# ---------------------------------------------------------------- poll

def test_poll_basics(gv, pair):
    gevent, sel = gv.gevent, gv.select
    a, b = pair
    p = sel.poll()
    p.register(a, sel.POLLIN | sel.POLLOUT)
    assert p.poll(0) == [(a.fileno(), sel.POLLOUT)]
    assert p.poll() == [(a.fileno(), sel.POLLOUT)]
    p2 = sel.poll()
    p2.register(a, sel.POLLIN)
    t0 = time.monotonic()
    assert p2.poll(50) == []
    assert 0.04 <= time.monotonic() - t0 < 3
    b.send(b'x')
    assert p2.poll(0) == [(a.fileno(), sel.POLLIN)]
    p3 = sel.poll()
    p3.register(a)                                    # default: POLLIN | POLLOUT
    assert p3.poll(10) == [(a.fileno(), sel.POLLIN | sel.POLLOUT)]
    assert p3.poll(-5) == [(a.fileno(), sel.POLLIN | sel.POLLOUT)]   # negative: forever
    assert p3.poll(1.5) == [(a.fileno(), sel.POLLIN | sel.POLLOUT)]
    p3.modify(a, sel.POLLOUT)
    assert p3.poll(0) == [(a.fileno(), sel.POLLOUT)]
    p3.unregister(a)
    gevent.spawn(lambda: None)
    assert p3.poll(10) == []


def test_poll_zero_yields(gv, pair):
    gevent, sel = gv.gevent, gv.select
    a, b = pair
    log = []
    p = sel.poll()
    p.register(a, sel.POLLIN)
    gevent.spawn(log.append, 1)
    assert p.poll(0) == []
    assert log == [1]


def test_poll_waits_cooperatively(gv, pair):
    gevent, sel = gv.gevent, gv.select
    a, b = pair
    ticks = []
    t = ticker(gevent, ticks)
    p = sel.poll()
    p.register(a.fileno(), sel.POLLIN)
    gevent.spawn(lambda: (gevent.sleep(0.08), b.send(b'x')))
    t0 = time.monotonic()
    assert p.poll(5000) == [(a.fileno(), sel.POLLIN)]
    assert 0.07 <= time.monotonic() - t0 < 3
    t.kill()
    assert len(ticks) >= 3


def test_poll_closed_descriptors(gv, pair):
    sel = gv.select
    a, b = pair
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    p = sel.poll()
    p.register(r, sel.POLLIN)
    t0 = time.monotonic()
    assert p.poll(100) == [(r, sel.POLLNVAL)]         # not open: reported, but no wake-up
    assert 0.09 <= time.monotonic() - t0 < 3
    b.send(b'x')
    p.register(a, sel.POLLIN)
    t0 = time.monotonic()
    assert sorted(p.poll(2000)) == sorted([(a.fileno(), sel.POLLIN), (r, sel.POLLNVAL)])
    assert time.monotonic() - t0 < 1.5
    p2 = sel.poll()
    p2.register(99999, sel.POLLIN)
    assert p2.poll(10) == [(99999, sel.POLLNVAL)]


def test_poll_masks_without_events(gv, pair):
    sel = gv.select
    a, b = pair
    b.send(b'x')
    for mask in (0, sel.POLLPRI):
        p = sel.poll()
        p.register(a, mask)
        t0 = time.monotonic()
        assert p.poll(50) == []
        assert time.monotonic() - t0 >= 0.04


def test_poll_regular_file(gv, tmp_path):
    sel = gv.select
    with open(tmp_path / "f", "w") as f:
        p = sel.poll()
        p.register(f, sel.POLLIN)
        assert p.poll(10) == [(f.fileno(), sel.POLLIN)]


def test_poll_errors(gv, pair):
    sel = gv.select
    a, b = pair
    p = sel.poll()
    with pytest.raises(KeyError) as info:
        p.unregister(12345)
    assert info.value.args == (12345,)
    with pytest.raises(ValueError, match="Invalid file object: 'x'"):
        p.register('x')
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        p.register(-1)
    with pytest.raises(TypeError):
        p.register(a, 'x')
    with pytest.raises(TypeError):
        p.modify(a)
    p.register(a, sel.POLLIN)
    with pytest.raises(TypeError, match="'<' not supported between instances of 'str' and "
                                        "'int'"):
        p.poll('x')
    p.modify(999, sel.POLLIN)                       # modify registers, as gevent's does
    p.unregister(999)
    p.unregister(a)
    with pytest.raises(KeyError):
        p.unregister(a)


def test_poll_many_greenlets(gv, pair):
    gevent, sel = gv.gevent, gv.select
    a, b = pair
    results = []

    def run():
        p = sel.poll()
        p.register(a, sel.POLLIN)
        results.append(p.poll(5000))
    gs = [gevent.spawn(run) for _ in range(20)]
    gevent.sleep(0.05)
    b.send(b'x')
    gevent.joinall(gs, timeout=5)
    assert results == [[(a.fileno(), sel.POLLIN)]] * 20


# ---------------------------------------------------------------- GeventSelector

def test_gevent_selector_basics(gv, pair):
    gevent, gs = gv.gevent, gv.selectors
    a, b = pair
    s = gs.GeventSelector()
    k = s.register(a, gs.EVENT_READ, 'd')
    assert k == gs.SelectorKey(a, a.fileno(), 1, 'd')
    log = []
    gevent.spawn(log.append, 1)
    assert s.select(0) == []
    assert log == [1]
    b.send(b'x')
    gevent.spawn(log.append, 2)
    assert s.select(0) == [(k, 1)]
    assert log == [1, 2]                               # ready now: still one turn
    assert s.select(-1) == [(k, 1)]
    assert s.select() == [(k, 1)]
    k2 = s.modify(a, gs.EVENT_READ | gs.EVENT_WRITE)
    assert s.select(0) == [(k2, 3)]
    with pytest.raises(KeyError, match="is already registered"):
        s.register(a, 1)
    with pytest.raises(ValueError, match="Invalid events: 4"):
        s.register(b, 4)
    with pytest.raises(TypeError, match="'<' not supported"):
        s.select("x")
    assert s.unregister(a) == k2
    with pytest.raises(KeyError, match="is not registered"):
        s.unregister(a)
    s.close()
    assert s.get_map() is None


def test_gevent_selector_waits_cooperatively(gv, pair):
    gevent, gs = gv.gevent, gv.selectors
    a, b = pair
    ticks = []
    t = ticker(gevent, ticks)
    with gs.GeventSelector() as s:
        s.register(a, gs.EVENT_READ)
        t0 = time.monotonic()
        assert s.select(0.1) == []
        assert 0.09 <= time.monotonic() - t0 < 3
        gevent.spawn(lambda: (gevent.sleep(0.05), b.send(b'x')))
        t0 = time.monotonic()
        [(key, ev)] = s.select(5)
        assert key.fileobj is a and ev == gs.EVENT_READ
        assert 0.04 <= time.monotonic() - t0 < 3
    t.kill()
    assert len(ticks) >= 6


def test_gevent_selector_bad_descriptors(gv, tmp_path):
    gs = gv.selectors
    s = gs.GeventSelector()
    sock = socket.socket()
    os.close(sock.fileno())
    with pytest.raises(ValueError, match="Invalid file descriptor") as info:
        s.register(sock, gs.EVENT_READ)
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.EBADF
    sock.detach()
    s.close()
    # (gevent keeps the key of a failed register; pyconc drops it, as the stdlib's selectors
    # do: a fresh selector for the rest)
    s = gs.GeventSelector()
    with pytest.raises(ValueError, match="Invalid file object"):
        s.register("x", gs.EVENT_READ)
    with open(tmp_path / "f", "w") as f:            # a regular file: always ready
        k = s.register(f, gs.EVENT_READ)
        assert s.select(0) == [(k, gs.EVENT_READ)]
        s.unregister(f)
    s.close()


def test_gevent_selector_many_greenlets(gv):
    gevent, gs = gv.gevent, gv.selectors
    pairs = [socket.socketpair() for _ in range(10)]
    try:
        server_sel = gs.GeventSelector()
        client_sel = gs.GeventSelector()
        for i, (server, client) in enumerate(pairs):
            server_sel.register(server, gs.EVENT_READ, i)
            client_sel.register(client, gs.EVENT_READ, i)
        got = []

        def serve():
            while len(got) < len(pairs):
                for key, mask in server_sel.select(timeout=5):
                    data = key.fileobj.recv(50)
                    got.append(key.data)
                    key.fileobj.send(data)
        g = gevent.spawn(serve)
        for i in (3, 1, 4, 0, 9, 2, 6, 5, 8, 7):
            pairs[i][1].send(str(i).encode())
            gevent.sleep(0.002)
        g.join(10)
        assert sorted(got) == list(range(10))
        found = 0
        for key, _ in client_sel.select(timeout=3):
            assert key.fileobj.recv(50) == str(key.data).encode()
            found += 1
        assert found == 10
        server_sel.close()
        client_sel.close()
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_gevent_selector_in_a_plain_thread(gv, pair):
    a, b = pair
    out = []

    def run():
        s = gv.selectors.GeventSelector()
        s.register(a, 1, 'a')
        out.append(s.select(0.05))
        b.send(b'x')
        out.append([(k.data, ev) for k, ev in s.select(1)])
        s.close()
    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    assert out == [[], [('a', 1)]]
