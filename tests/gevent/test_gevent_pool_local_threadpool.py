"""gevent.pool (Pool, Group), gevent.local.local, gevent.threadpool.ThreadPool and the hub's
threadpool. gevent 26 is the oracle (see conftest.py)."""
import threading
import time

import pytest

from .conftest import norm

pytestmark = pytest.mark.timeout(30)


# ---------------------------------------------------------------- Pool / Group

def test_pool_spawn_blocks_when_full(gv):
    gevent = gv.gevent
    p = gv.pool.Pool(2)
    assert (p.size, p.free_count(), p.full(), len(p)) == (2, 2, False, 0)
    assert norm(repr(p)) == "<Pool at 0xADDR set()>"
    log = []

    def w(i):
        log.append(("start", i))
        gevent.sleep(0.05)
        log.append(("end", i))
        return i * 10

    a = p.spawn(w, 1)
    b = p.spawn(w, 2)
    assert (p.full(), p.free_count(), len(p), a in p, b in p) == (True, 0, 2, True, True)
    t0 = time.monotonic()
    c = p.spawn(w, 3)                    # blocks until a slot frees
    assert time.monotonic() - t0 >= 0.04
    assert log == [("start", 1), ("start", 2), ("end", 1), ("end", 2)]
    assert a not in p and c in p
    assert p.join() is True
    assert log[-2:] == [("start", 3), ("end", 3)]
    assert (len(p), p.free_count()) == (0, 2)
    assert [a.value, b.value, c.value] == [10, 20, 30]


def test_pool_sizes(gv):
    P = gv.pool
    with pytest.raises(ValueError) as info:
        P.Pool(-1)
    assert str(info.value) == "size must not be negative: -1"
    pn = P.Pool()                        # None: unbounded
    assert (pn.size, pn.free_count(), pn.full()) == (None, 1, False)
    gs = [pn.spawn(gv.gevent.sleep, 0.01) for _ in range(50)]
    assert len(pn) == 50 and not pn.full()
    pn.join()
    assert P.Pool(0).full()              # size 0: always full


def test_pool_add_nonblocking_and_timeout_raise_poolfull(gv):
    gevent = gv.gevent
    P = gv.pool
    p = P.Pool(1)
    p.spawn(gevent.sleep, 0.2)
    g = gevent.Greenlet(gevent.sleep, 0)
    with pytest.raises(P.PoolFull):
        p.add(g, blocking=False)
    with pytest.raises(P.PoolFull):
        p.add(g, timeout=0.01)
    assert issubclass(P.PoolFull, gv.queue.Full)
    assert p.wait_available(timeout=0.01) == 0
    assert p.wait_available() == 1       # returns once a slot is free
    p.start(g)
    assert g in p and g.started
    p.join()


def test_group_add_discard_start_len_in(gv):
    gevent = gv.gevent
    G = gv.pool.Group()
    assert norm(repr(G)) == "<Group at 0xADDR set()>" and len(G) == 0
    assert (G.full(), G.wait_available()) == (False, None)
    x = G.spawn(gevent.sleep, 1)
    assert len(G) == 1 and x in G and list(G) == [x]
    y = gevent.spawn(gevent.sleep, 0.01)
    G.add(y)
    G.discard(y)
    assert y not in G
    y.join()
    z = gevent.Greenlet(lambda: "zz")
    G.start(z)
    assert z in G and z.started
    assert z.get() == "zz"
    gevent.sleep(0)
    assert z not in G                    # finished greenlets leave the group (a rawlink)
    G.kill()
    assert len(G) == 0 and x.dead
    assert G.join(timeout=0.01) is True
    gg = G.spawn(gevent.sleep, 1)
    assert G.join(timeout=0.01) is False
    G.killone(gg)
    assert gg.dead and len(G) == 0
    G.killone(gg)                        # not in the group any more: nothing happens
    assert gv.pool.Group([gevent.spawn(lambda: 1)]).join(timeout=5) is True


def test_group_join_raise_error(gv, capsys):
    gevent = gv.gevent
    G = gv.pool.Group()
    G.spawn(lambda: 1 / 0)
    G.spawn(gevent.sleep, 0.01)
    with pytest.raises(ZeroDivisionError):
        G.join(raise_error=True)
    assert len(G) == 0
    G.spawn(lambda: 1 / 0)
    assert G.join() is True              # without raise_error: quiet
    capsys.readouterr()


def test_group_kill_with_exception_and_timeout(gv):
    gevent = gv.gevent
    G = gv.pool.Pool(5)

    stop = []

    def stubborn():
        while not stop:
            try:
                gevent.sleep(10)
            except gevent.GreenletExit:
                pass

    s = G.spawn(stubborn)
    n = G.spawn(gevent.sleep, 10)
    gevent.sleep(0)
    t0 = time.monotonic()
    G.kill(timeout=0.1)
    assert time.monotonic() - t0 >= 0.09
    assert n.dead and not s.dead and s in G
    G.kill(KeyError, block=False)        # s is "dying" already: not killed again
    gevent.sleep(0.01)
    assert not s.dead
    G.discard(s)
    stop.append(1)
    s.kill()
    assert s.dead


def test_apply_and_apply_async(gv):
    gevent = gv.gevent
    p = gv.pool.Pool(1)
    assert p.apply(lambda a, b=0: a + b, (1,), {"b": 2}) == 3
    assert p.apply(lambda: "x") == "x"
    # apply from inside a pool greenlet runs at once (no deadlock on a full pool)
    assert p.apply(lambda: p.apply(lambda: "nested")) == "nested"
    log = []
    r = p.apply_async(lambda x: x * 5, (10,), callback=log.append)
    assert isinstance(r, gevent.Greenlet)
    assert r.get() == 50
    gevent.sleep(0.01)
    assert log == [50]
    # when the pool is full, apply_async returns at once anyway (a helper greenlet waits)
    p.spawn(gevent.sleep, 0.05)
    t0 = time.monotonic()
    r = p.apply_async(lambda: "later", callback=log.append)
    assert time.monotonic() - t0 < 0.04
    assert r.get() == "later"
    gevent.sleep(0.01)
    assert log == [50, "later"]


def test_map_and_map_async(gv):
    gevent = gv.gevent
    p = gv.pool.Pool(3)
    assert p.map(lambda x: x * 2, range(10)) == [x * 2 for x in range(10)]
    assert p.map(lambda x: x, iter([])) == []
    log = []
    m = p.map_async(lambda x: x * 3, range(3), callback=log.append)
    assert isinstance(m, gevent.Greenlet)
    assert m.get() == [0, 3, 6]
    gevent.sleep(0.01)
    assert log == [[0, 3, 6]]
    # results in input order although they finish in reverse
    assert p.map(lambda x: (gevent.sleep(0.03 * (3 - x)), x)[1], range(3)) == [0, 1, 2]


def test_imap_ordered_and_unordered(gv):
    gevent = gv.gevent
    p = gv.pool.Pool(4)
    delays = {0: 0.15, 1: 0.0, 2: 0.3, 3: 0.05}

    def f(x):
        gevent.sleep(delays[x])
        return x

    assert list(p.imap(f, range(4))) == [0, 1, 2, 3]
    assert list(p.imap_unordered(f, range(4))) == [1, 3, 0, 2]
    assert list(p.imap(lambda a, b: a + b, [1, 2, 3], [10, 20, 30])) == [11, 22, 33]
    with pytest.raises(TypeError) as info:
        p.imap(f, [1], foo=1)
    assert str(info.value) == "Unsupported keyword arguments"


def test_imap_is_lazy(gv):
    gevent = gv.gevent
    consumed = []

    def gen(n):
        for i in range(n):
            consumed.append(i)
            yield i

    p = gv.pool.Pool(2)
    it = p.imap(lambda x: (gevent.sleep(0.05), x)[1], gen(10))
    assert consumed == []                # nothing read before the iterator greenlet runs
    gevent.sleep(0)
    assert consumed == [0, 1, 2]         # two running, the third waits for a pool slot
    assert next(it) == 0
    assert list(it) == list(range(1, 10))
    consumed.clear()
    it = gv.pool.Pool(10).imap(lambda x: (gevent.sleep(0.05), x)[1], gen(10), maxsize=2)
    gevent.sleep(0.2)
    assert len(consumed) <= 3            # maxsize bounds the results waiting to be read
    assert list(it) == list(range(10))


def test_imap_error_stops_iteration(gv, capsys):
    def err(x):
        if x == 2:
            raise ValueError(x)
        return x

    res = []
    with pytest.raises(ValueError):
        for x in gv.pool.Pool(3).imap(err, range(5)):
            res.append(x)
    assert res == [0, 1]
    capsys.readouterr()


# ---------------------------------------------------------------- local

def test_local_per_greenlet(gv):
    gevent = gv.gevent
    loc = gv.local.local()
    loc.x = 1

    def g():
        seen = hasattr(loc, "x")
        loc.x = 2
        gevent.sleep(0)
        return (seen, loc.x)

    assert gevent.spawn(g).get() == (False, 2)
    assert loc.x == 1 and loc.__dict__ == {"x": 1}
    with pytest.raises(AttributeError):
        del loc.nope
    seen = []
    t = threading.Thread(target=lambda: seen.append(hasattr(loc, "x")))
    t.start()
    t.join(10)
    assert seen == [False]


def test_local_subclass_init_runs_per_greenlet(gv):
    gevent = gv.gevent
    calls = []

    class L(gv.local.local):
        def __init__(self, v=5):
            calls.append(v)
            self.v = v

        def meth(self):
            return self.v

    ll = L(7)
    assert gevent.spawn(lambda: (ll.v, ll.meth())).get() == (7, 7)
    assert calls == [7, 7]               # __init__ runs again, with the same args, per greenlet
    with pytest.raises(TypeError) as info:
        gv.local.local(1)
    assert info.value.args[0] == "Initialization arguments are not supported"


def test_local_values_are_dropped_with_greenlet(gv):
    import gc
    import weakref
    gevent = gv.gevent
    loc = gv.local.local()

    class Obj:
        pass

    refs = []

    def g():
        o = Obj()
        refs.append(weakref.ref(o))
        loc.o = o

    gevent.spawn(g).join()
    gevent.sleep(0)
    gc.collect()
    assert refs[0]() is None


# ---------------------------------------------------------------- ThreadPool

def test_threadpool_basics(gv):
    gevent = gv.gevent
    tp = gv.threadpool.ThreadPool(3)
    try:
        assert (tp.size, tp.maxsize) == (0, 3)
        r = tp.spawn(threading.get_ident)
        assert isinstance(r, gv.event.AsyncResult)
        assert r.get() != threading.get_ident()
        assert tp.size >= 1
        assert tp.apply(lambda a, b=0: a + b, (1,), {"b": 2}) == 3
        assert tp.map(lambda x: x * x, range(5)) == [0, 1, 4, 9, 16]
        assert list(tp.imap(lambda x: x * x, range(5))) == [0, 1, 4, 9, 16]
        assert sorted(tp.imap_unordered(lambda x: x, range(5))) == [0, 1, 2, 3, 4]
        tp.join()
        tp.size = 1
        assert tp.size == 1
        with pytest.raises(ValueError) as info:
            tp.size = 5
        assert str(info.value) == "Size of the pool cannot be bigger than maxsize: 5 > 3"
        log = []
        ar = tp.apply_async(lambda: 5, callback=log.append)
        assert ar.get() == 5
        gevent.sleep(0.01)
        assert log == [5]
    finally:
        tp.kill()


def test_threadpool_error_delivered_to_waiter(gv, capsys):
    tp = gv.threadpool.ThreadPool(1)
    try:
        r = tp.spawn(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            r.get()
    finally:
        tp.kill()
    err = norm(capsys.readouterr().err)
    assert "ZeroDivisionError: division by zero" in err
    assert "failed with ZeroDivisionError" in err


def test_threadpool_wait_does_not_block_hub(gv):
    gevent = gv.gevent
    tp = gv.gevent.get_hub().threadpool
    log = []

    def ticker():
        for i in range(5):
            log.append(i)
            gevent.sleep(0.01)

    g = gevent.spawn(ticker)
    t0 = time.monotonic()
    assert tp.spawn(time.sleep, 0.15).get() is None
    assert time.monotonic() - t0 >= 0.14
    assert log == [0, 1, 2, 3, 4]        # the greenlet ran while the main one waited
    g.join()


def test_threadpool_many_tasks_from_many_greenlets(gv):
    gevent = gv.gevent
    tp = gv.threadpool.ThreadPool(4)
    try:
        def one(i):
            return tp.apply(lambda x: x * 2, (i,))

        gs = [gevent.spawn(one, i) for i in range(100)]
        gevent.joinall(gs, timeout=20)
        assert [g.value for g in gs] == [i * 2 for i in range(100)]
    finally:
        tp.kill()
