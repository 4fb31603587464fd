"""gevent.queue: Queue, SimpleQueue, JoinableQueue, PriorityQueue, LifoQueue, Channel, Empty,
Full, ShutDown. gevent 26 is the oracle (see conftest.py)."""
import queue as std_queue
import time
import warnings

import pytest

from .conftest import norm

pytestmark = pytest.mark.timeout(30)


def test_names_and_classes(gv):
    Q = gv.queue
    for name in ("Queue", "SimpleQueue", "JoinableQueue", "PriorityQueue", "LifoQueue", "Channel",
                 "Empty", "Full", "ShutDown"):
        assert hasattr(Q, name), name
    assert Q.Empty is std_queue.Empty and Q.Full is std_queue.Full
    assert issubclass(Q.ShutDown, Exception)
    if hasattr(std_queue, "ShutDown"):           # 3.13+: the stdlib's own
        assert Q.ShutDown is std_queue.ShutDown
    assert Q.JoinableQueue is Q.Queue             # gevent 25.4.1+: a plain alias
    assert issubclass(Q.Queue, Q.SimpleQueue)     # unlike the stdlib, Queue extends SimpleQueue
    assert issubclass(Q.PriorityQueue, Q.Queue) and issubclass(Q.LifoQueue, Q.Queue)
    assert not issubclass(Q.Channel, Q.SimpleQueue)


@pytest.mark.parametrize("maxsize", [None, -1, -5])
def test_maxsize_none_or_negative_is_unbounded(gv, maxsize):
    q = gv.queue.Queue(maxsize)
    assert q.maxsize is None
    for i in range(1000):
        q.put_nowait(i)
    assert not q.full() and q.qsize() == 1000 and len(q) == 1000


def test_queue0_is_unbounded_with_deprecation_warning(gv):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        q = gv.queue.Queue(0)
    assert [(x.category, str(x.message)) for x in w] == [
        (DeprecationWarning,
         "Queue(0) now equivalent to Queue(None); if you want a channel, use Channel")]
    assert q.maxsize is None
    q.put_nowait(1)
    q.put_nowait(2)
    assert q.qsize() == 2 and not q.full()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        gv.queue.SimpleQueue(0)
        gv.queue.PriorityQueue(0)
    assert [x.category for x in w] == [DeprecationWarning, DeprecationWarning]


def test_repr_and_str(gv):
    Q = gv.queue
    assert norm(repr(Q.Queue())) == "<Queue at 0xADDR>"
    assert str(Q.Queue()) == "<Queue>"
    assert norm(repr(Q.Queue(3))) == "<Queue at 0xADDR maxsize=3>"
    assert str(Q.Queue(3)) == "<Queue maxsize=3>"
    sq = Q.SimpleQueue(2)
    sq.put(1)
    assert str(sq) == "<SimpleQueue maxsize=2 queue=deque([1])>"
    assert str(Q.LifoQueue()) == "<LifoQueue>" and str(Q.PriorityQueue(1)) == \
        "<PriorityQueue maxsize=1>"
    # A Queue with unfinished tasks shows "queue=deque([...]) tasks=N" first, then internals.
    q = Q.Queue()
    q.put(1)
    q.put(2)
    assert str(q).startswith("<Queue queue=deque([1, 2]) tasks=2")
    c = Q.Channel()
    assert norm(repr(c)) == "<Channel at 0xADDR >" and str(c) == "<Channel >"


def test_fifo_lifo_priority_order(gv):
    Q = gv.queue
    q, lq, pq = Q.Queue(), Q.LifoQueue(), Q.PriorityQueue()
    for x in (3, 1, 2):
        q.put(x)
        lq.put(x)
        pq.put(x)
    assert [q.get() for _ in range(3)] == [3, 1, 2]
    assert [lq.get() for _ in range(3)] == [2, 1, 3]
    assert [pq.get() for _ in range(3)] == [1, 2, 3]
    assert Q.Queue(items=[1, 2]).get() == 1
    assert Q.PriorityQueue(items=[5, 1, 3]).get() == 1


def test_peek(gv):
    Q = gv.queue
    q = Q.Queue()
    q.put(1)
    q.put(2)
    assert q.peek() == 1 and q.peek_nowait() == 1 and q.qsize() == 2
    lq = Q.LifoQueue()
    lq.put(1)
    lq.put(2)
    assert lq.peek() == 2
    e = Q.Queue()
    for call in (lambda: e.peek(block=False), e.peek_nowait, lambda: e.peek(timeout=0.01)):
        with pytest.raises(Q.Empty):
            call()
    gv.gevent.spawn_later(0.02, e.put, "x")
    assert e.peek() == "x" and e.qsize() == 1      # a blocking peek waits, leaves the item


def test_empty_full_errors_and_timeouts(gv):
    Q = gv.queue
    e = Q.Queue()
    for call in (lambda: e.get(block=False), e.get_nowait, lambda: e.get(timeout=0.01),
                 lambda: e.get(False, 10)):
        with pytest.raises(Q.Empty) as info:
            call()
        assert repr(info.value) == "Empty()"
    f = Q.Queue(1)
    f.put(1)
    assert f.full()
    t0 = time.monotonic()
    for call in (lambda: f.put(2, block=False), lambda: f.put_nowait(2),
                 lambda: f.put(2, timeout=0.05)):
        with pytest.raises(Q.Full) as info:
            call()
        assert repr(info.value) == "Full()"
    assert time.monotonic() - t0 >= 0.04
    with pytest.raises(ValueError) as info:
        e.get(timeout=-1)
    assert str(info.value) == "'timeout' must be a non-negative number"
    # put checks a negative timeout only when there is room (gevent 24.10.1+); on a full queue
    # the negative timeout simply expires: Full.
    with pytest.raises(ValueError) as info:
        gv.queue.Queue(5).put(2, timeout=-1)
    assert str(info.value) == "'timeout' must be a non-negative number"
    with pytest.raises(Q.Full):
        f.put(2, timeout=-1)
    # ... an unbounded queue always has room: the negative timeout is refused there too, and
    # nothing is put
    for kind in (Q.Queue, Q.SimpleQueue, Q.LifoQueue):
        unbounded = kind()
        with pytest.raises(ValueError) as info:
            unbounded.put(2, timeout=-1)
        assert str(info.value) == "'timeout' must be a non-negative number"
        assert unbounded.qsize() == 0
        unbounded.put(3, block=False, timeout=-1)     # not blocking: the timeout is ignored
        assert unbounded.qsize() == 1
    e.put(1)
    with pytest.raises(ValueError):              # get checks it only when it would wait
        Q.Queue().get(timeout=-1)
    assert e.get(timeout=-1) == 1


def test_blocking_get_and_put_wake_in_order(gv):
    gevent = gv.gevent
    q = gv.queue.Queue(1)
    got = []
    getters = [gevent.spawn(lambda i=i: got.append((i, q.get()))) for i in range(3)]
    gevent.sleep(0)
    for x in "abc":
        q.put(x)
    gevent.joinall(getters)
    assert got == [(0, "a"), (1, "b"), (2, "c")]
    q.put("full")
    log = []
    putters = [gevent.spawn(lambda i=i: (q.put(i), log.append(("put", i)))) for i in range(3)]
    gevent.sleep(0)
    assert log == []
    assert [q.get() for _ in range(4)] == ["full", 0, 1, 2]
    gevent.joinall(putters)
    assert sorted(log) == [("put", 0), ("put", 1), ("put", 2)]


def test_iteration_ends_on_stopiteration_item(gv):
    q = gv.queue.Queue()
    for x in (1, 2, StopIteration, 3):
        q.put(x)
    assert list(q) == [1, 2]
    assert q.qsize() == 1 and q.get() == 3
    assert iter(q) is q


def test_len_bool_copy(gv):
    q = gv.queue.Queue(5)
    assert bool(q) is True and len(q) == 0
    q.put(1)
    c = q.copy()
    assert type(c) is type(q) and c.maxsize == 5 and c.get() == 1 and q.qsize() == 1


def test_maxsize_setter(gv):
    q = gv.queue.Queue(1)
    q.put(1)
    assert q.full()
    q.maxsize = 2
    assert q.maxsize == 2 and not q.full()
    q.put_nowait(2)
    assert q.full()
    q.maxsize = None
    assert q.maxsize is None and not q.full()
    q.maxsize = 0
    assert q.maxsize is None


def test_joinable_queue(gv):
    gevent = gv.gevent
    q = gv.queue.JoinableQueue()
    assert q.unfinished_tasks == 0 and q.join() is True
    for i in range(3):
        q.put(i)
    assert q.unfinished_tasks == 3
    assert q.join(timeout=0.01) is False
    done = []

    def worker():
        for item in q:
            done.append(item)
            q.task_done()

    w = gevent.spawn(worker)
    assert q.join(timeout=5) is True
    assert done == [0, 1, 2] and q.unfinished_tasks == 0
    with pytest.raises(ValueError) as info:
        q.task_done()
    assert str(info.value) == "task_done() called too many times"
    q.put(StopIteration)
    w.join()
    assert gv.queue.Queue(items=[1, 2]).unfinished_tasks == 2
    assert gv.queue.Queue(items=[1, 2], unfinished_tasks=5).unfinished_tasks == 5


def test_simple_queue_has_no_task_methods(gv):
    sq = gv.queue.SimpleQueue()
    assert not hasattr(sq, "task_done") and not hasattr(sq, "join")
    sq.put(1)
    assert sq.get() == 1


def test_shutdown(gv):
    gevent = gv.gevent
    Q = gv.queue
    q = Q.Queue()
    q.put(1)
    waiter = gevent.spawn(Q.Queue(1).get)        # unrelated queue: not affected
    blocked_get = None
    q2 = Q.Queue()
    blocked_get = gevent.spawn(q2.get)
    gevent.sleep(0)
    q.shutdown()
    assert q.is_shutdown
    with pytest.raises(Q.ShutDown):
        q.put(2)
    assert q.get() == 1                          # not immediate: existing items still come out
    with pytest.raises(Q.ShutDown):
        q.get()
    q2.shutdown()
    blocked_get.join()
    assert isinstance(blocked_get.exception, Q.ShutDown)
    q3 = Q.Queue()
    q3.put(1)
    q3.shutdown(immediate=True)
    assert q3.qsize() == 0 and q3.unfinished_tasks == 0
    with pytest.raises(Q.ShutDown):
        q3.get()
    waiter.kill()


def test_channel_rendezvous(gv):
    gevent = gv.gevent
    Q = gv.queue
    c = Q.Channel()
    assert (c.qsize(), c.empty(), c.full(), c.balance) == (0, True, True, 0)
    with pytest.raises(ValueError) as info:
        Q.Channel(2)
    assert str(info.value) == "Channels have a maxsize of 1"
    with pytest.raises(Q.Full):
        c.put(1, block=False)
    with pytest.raises(Q.Empty):
        c.get(block=False)
    with pytest.raises(Q.Empty):
        c.get(timeout=0.01)
    log = []
    p = gevent.spawn(lambda: (c.put("x"), log.append("put returned")))
    gevent.sleep(0)
    assert c.balance == 1 and log == []          # the putter waits for a getter
    assert str(c) == "<Channel  putters[1]>"
    assert c.get() == "x"
    p.join()
    assert log == ["put returned"]
    g = gevent.spawn(c.get)
    gevent.sleep(0)
    assert c.balance == -1 and str(c) == "<Channel  getters[1]>"
    c.put_nowait("y")                            # a waiting getter: put_nowait succeeds
    assert g.get() == "y"
    p = gevent.spawn(c.put, "z")
    gevent.sleep(0)
    assert c.get_nowait() == "z"                 # a waiting putter: get_nowait succeeds
    p.join()
    for x in ("a", StopIteration):
        gevent.spawn(c.put, x)
    assert list(c) == ["a"]


def test_many_producers_consumers(gv):
    gevent = gv.gevent
    q = gv.queue.Queue(10)
    out = []

    def prod(base):
        for i in range(100):
            q.put(base + i)

    def cons():
        while True:
            x = q.get()
            if x is None:
                return
            out.append(x)

    ps = [gevent.spawn(prod, b) for b in (0, 1000, 2000)]
    cs = [gevent.spawn(cons) for _ in range(4)]
    gevent.joinall(ps)
    for _ in cs:
        q.put(None)
    gevent.joinall(cs)
    assert sorted(out) == sorted(list(range(100)) + list(range(1000, 1100)) +
                                 list(range(2000, 2100)))


def test_channel_hand_over_runs_the_getter_first(gv):
    # gevent's hand-over: a hub callback switches to the getter with the item (it runs until
    # it blocks), then to the putter.
    gevent = gv.gevent
    c = gv.queue.Channel()
    events = []

    def getter():
        events.append(c.get())
        events.append(c.get())

    g = gevent.spawn(getter)
    events.append("sending")
    c.put("hello")
    events.append("sent hello")
    c.put("world")
    events.append("sent world")
    assert events == ["sending", "hello", "sent hello", "world", "sent world"]
    g.get()

    events = []

    def putter():
        events.append("sending hello")
        c.put("hello")
        events.append("sending world")
        c.put("world")
        events.append("sent world")

    p = gevent.spawn(putter)
    events.append("waiting")
    events.append(c.get())
    events.append(c.get())
    assert events == ["waiting", "sending hello", "hello", "sending world", "world"]
    gevent.sleep(0)
    assert events[-1] == "sent world"
    p.get()


def test_channel_in_hub_callbacks_and_subscript(gv):
    import types
    gevent = gv.gevent
    c = gv.queue.Channel()
    assert isinstance(gv.queue.Channel[int], types.GenericAlias)
    results = []

    def call(func, *args):
        try:
            results.append(func(*args))
        except Exception as e:
            results.append(type(e).__name__)

    run_callback = gevent.get_hub().loop.run_callback
    run_callback(call, c.put_nowait, 1)      # in the hub, no getter: Full at once
    run_callback(call, c.get_nowait)         # in the hub, no putter: it would have to wait
    gevent.sleep(0)
    assert results == ["Full", "BlockingSwitchOutError"] and c.balance == 0
    g = gevent.spawn(c.get)
    gevent.sleep(0)
    run_callback(call, c.put_nowait, 2)      # in the hub, a getter waits: handed over
    gevent.sleep(0)
    assert g.get() == 2 and results[-1] is None


def test_subclass_init_may_assign_queue(gv):
    # gevent's `queue` is a plain attribute that a subclass's _init may set.
    for name in ("SimpleQueue", "Queue", "LifoQueue", "PriorityQueue"):
        mine = []

        class Q(getattr(gv.queue, name)):
            def _init(self, maxsize):
                self.queue = mine

        assert Q().queue is mine, name
        q = getattr(gv.queue, name)()
        q.put(1)
        assert list(q.queue) == [1]
