"""The order of things within one turn of the hub, as gevent's libev loop gives it (found by the
differential fuzz tests tests/fuzz/test_model_gevent*.py; each case was a difference before).

- A wait given a timeout of 0 by a greenlet still yields for one turn (gevent arms a 0-second
  Timeout): the greenlets already ready run first and may make the object ready, and a loop that
  polls with timeout 0 does not starve them. blocking=False does not wait.
- A Timeout (priority -1) fires after what the same turn's I/O woke, after timers of priority 0
  and after the idle() callers: one of them that leaves its `with Timeout` first stops it.
- idle() callers wake in libev's order (the last fed first), and not in a turn where a timer of
  priority 0 fired.
- wait_read / wait_write may wait beside another greenlet waiting for the same descriptor.
- Killing a greenlet twice before the first kill ran reports nothing.
- A greenlet's end reaches its joiners and links through one callback queued when it ends (gevent's
  _notify_links), in the order they came: a zero timeout that fires in the turn the greenlet ends
  wins; a joiner that came before a link returns before that link runs; kill(block=True) returns
  before the callback; Pool.map raises while the other items still have steps to run.
- A wait on an Event or AsyncResult that is set while its notification is under way waits for
  that notification: the greenlets the set() woke run first.

Each scenario runs in a fresh interpreter (gv.run), against gevent (the oracle) and pyconc."""
import pytest

pytestmark = pytest.mark.timeout(60)


def lines(gv, code):
    r = gv.run(code)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines(), r.stderr


def test_zero_timeout_waits_let_the_ready_greenlets_run_first(gv):
    out, err = lines(gv, '''
        ev, lk, qu = sub("event"), sub("lock"), sub("queue")
        def show(name, fn):
            try:
                print(name, "ok", fn())
            except BaseException as x:
                print(name, "raise", type(x).__name__)
        e = ev.Event(); gevent.spawn(e.set)
        show("Event.wait(0)", lambda: e.wait(0))
        s = lk.Semaphore(0); gevent.spawn(s.release)
        show("Semaphore.acquire(timeout=0)", lambda: s.acquire(timeout=0))
        s = lk.Semaphore(0); gevent.spawn(s.release)
        show("Semaphore.acquire(blocking=False)", lambda: s.acquire(blocking=False))
        q = qu.Queue(); gevent.spawn(q.put, 7)
        show("Queue.get(timeout=0)", lambda: q.get(timeout=0))
        q = qu.Queue(); gevent.spawn(q.put, 7)
        show("Queue.get(block=False)", lambda: q.get(block=False))
        q = qu.Queue(1); q.put(1); gevent.spawn(q.get)
        show("Queue.put(timeout=0)", lambda: q.put(2, timeout=0))
        q = qu.JoinableQueue(); q.put(1)
        def consume():
            q.get(); q.task_done()
        gevent.spawn(consume)
        show("JoinableQueue.join(timeout=0)", lambda: q.join(timeout=0))
        a = ev.AsyncResult(); gevent.spawn(a.set, 3)
        show("AsyncResult.get(timeout=0)", lambda: a.get(timeout=0))
        g = gevent.spawn(lambda: 5)
        show("Greenlet.join(0)", lambda: (g.join(0), g.dead))
        g = gevent.spawn(lambda: 5)
        show("joinall(timeout=0)", lambda: len(gevent.joinall([g], timeout=0)))
        s = lk.Semaphore(0); gevent.spawn(s.release)
        show("Semaphore.wait(0)", lambda: s.wait(0))
        po = sub("pool").Pool(2); po.spawn(lambda: None); po.spawn(lambda: None)
        show("Pool.wait_available(0)", lambda: po.wait_available(0))
        # a loop polling with timeout 0 lets the setter run (it would spin for ever otherwise)
        e = ev.Event(); gevent.spawn(e.set)
        n = 0
        while not e.wait(timeout=0):
            n += 1
        print("polling loop ended after", n, "polls")
    ''')
    assert out == [
        "Event.wait(0) ok True",
        "Semaphore.acquire(timeout=0) ok True",
        "Semaphore.acquire(blocking=False) ok False",
        "Queue.get(timeout=0) ok 7",
        "Queue.get(block=False) raise Empty",
        "Queue.put(timeout=0) ok None",
        "JoinableQueue.join(timeout=0) ok True",
        "AsyncResult.get(timeout=0) ok 3",
        "Greenlet.join(0) ok (None, True)",
        "joinall(timeout=0) ok 1",
        "Semaphore.wait(0) ok 1",
        "Pool.wait_available(0) ok 2",
        "polling loop ended after 0 polls",
    ], err


def test_a_timeout_fires_after_the_io_of_its_turn(gv):
    out, err = lines(gv, '''
        gsocket, gselect, gselectors = sub("socket"), sub("select"), sub("selectors")
        lst = gsocket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(8)
        got = []
        for _ in range(5):
            c = gsocket.socket()
            try:
                with gevent.Timeout(0):
                    c.connect(lst.getsockname())   # the handshake is done by the next poll
                got.append("connected")
                lst.accept()[0].close()
            except gevent.Timeout:
                got.append("Timeout")
            c.close()
        print("connect:", got)
        a, b = gsocket.socketpair()
        try:
            with gevent.Timeout(0):
                gsocket.wait_write(a.fileno())     # writable now: reported before the Timeout
            print("wait_write: ok")
        except gevent.Timeout:
            print("wait_write: Timeout")
        # a 0-second poll or select of a selector is a 0-second Timeout of its own, armed after
        # the outer one: the outer fires first
        for name, fn in [("poll(0)", lambda: gselect.poll().poll(0)),
                         ("selector.select(0)", lambda: gselectors.DefaultSelector().select(0)),
                         ("select(0)", lambda: gselect.select([a], [], [], 0))]:
            try:
                with gevent.Timeout(0):
                    r = fn()
                print(name, "ok", r)
            except gevent.Timeout:
                print(name, "Timeout")
    ''')
    assert out == [
        "connect: ['connected', 'connected', 'connected', 'connected', 'connected']",
        "wait_write: ok",
        "poll(0) Timeout",
        "selector.select(0) Timeout",
        "select(0) ok ([], [], [])",
    ], err


def test_idle_callers_and_a_due_timeout(gv):
    out, err = lines(gv, '''
        ev = sub("event")
        log = []
        e = ev.Event()
        def w():
            try:
                with gevent.Timeout(0):
                    e.wait()
            except gevent.Timeout:
                log.append("Timeout(0) fired")
        g = gevent.spawn(w)
        gevent.sleep(0)
        gevent.idle()               # priority 0: before the Timeout (priority -1)
        log.append("main back from idle")
        g.join()
        print(log)
        # a greenlet started by a timer of priority 0: no idle caller wakes in that turn
        log = []
        g = gevent.spawn_later(0, w)
        gevent.idle()
        log.append("main back from idle")
        gevent.sleep(0)
        log.append("after sleep(0)")
        print(log)
        # several idle callers: the last fed wakes first (libev's array of idle watchers)
        log = []
        def idler(name, n):
            for i in range(n):
                gevent.idle()
                log.append("%s%d" % (name, i))
        gevent.spawn(idler, "b", 2)
        gevent.spawn(idler, "c", 2)
        gevent.sleep(0)
        for i in range(3):
            gevent.idle()
            log.append("main%d" % i)
        print(log)
    ''')
    assert out == [
        "['main back from idle', 'Timeout(0) fired']",
        "['main back from idle', 'Timeout(0) fired', 'after sleep(0)']",
        "['main0', 'c0', 'b0', 'b1', 'main1', 'c1', 'main2']",
    ], err


def test_channel_put_without_blocking_waits_for_the_turn_to_end(gv):
    out, err = lines(gv, '''
        qu = sub("queue")
        log = []
        ch = qu.Channel()
        def w():
            try:
                ch.put(0, False)
                log.append("put ok")
            except Exception as x:
                log.append("put " + type(x).__name__)
        g = gevent.spawn(w)
        gevent.sleep(0)
        log.append("sleep(0)")
        gevent.sleep(0)
        log.append("sleep(0)")
        g.join()
        print(log)
    ''')
    assert out == ["['sleep(0)', 'sleep(0)', 'put Full']"], err


def test_wait_read_beside_another_waiter_of_the_same_descriptor(gv):
    out, err = lines(gv, '''
        gsocket = sub("socket")
        def outcome(g):
            return ("ok", g.value) if g.successful() else ("raise", type(g.exception).__name__)
        for first in ("recv", "wait_read"):
            a, b = gsocket.socketpair()
            g1 = (gevent.spawn(a.recv, 10) if first == "recv"
                  else gevent.spawn(gsocket.wait_read, a.fileno()))
            gevent.sleep(0.01)
            g2 = gevent.spawn(gsocket.wait_read, a.fileno())
            g3 = gevent.spawn(gsocket.wait_readwrite, a.fileno())
            gevent.sleep(0.01)
            b.sendall(b"x")
            gevent.joinall([g1, g2, g3], timeout=5)
            print(first, outcome(g1), outcome(g2), outcome(g3))
            a.close(); b.close()
    ''')
    assert out == ["recv ('ok', b'x') ('ok', None) ('ok', None)",
                   "wait_read ('ok', None) ('ok', None) ('ok', None)"], err


def test_killing_twice_before_the_first_kill_ran_reports_nothing(gv):
    out, err = lines(gv, '''
        ev = sub("event")
        class MyExc(Exception):
            pass
        e = ev.Event()
        g = gevent.spawn(e.wait)
        gevent.sleep(0)
        g.kill(block=False)
        g.kill(MyExc, block=False)
        gevent.sleep(0.01)
        print(g.dead, repr(g.exception))
    ''')
    assert out == ["True None"]
    assert "MyExc" not in err, err


def test_wait_on_ready_greenlets_lets_queued_link_callbacks_run_first(gv):
    out, err = lines(gv, '''
        log = []
        g = gevent.spawn(lambda: 1)
        gevent.sleep(0)
        g.link(lambda glet: log.append("link"))
        done = gevent.wait([g], timeout=0)
        log.append("wait returned %d" % len(done))
        print(log)
    ''')
    assert out == ["['link', 'wait returned 1']"], err


def test_a_zero_timeout_wins_over_an_end_notified_after_it(gv):
    # spawn_later(0): a timer of priority 0 runs the greenlet to its end in the wait's own turn;
    # its end is notified by a callback of the next pass, after the Timeout (priority -1) fired
    out, err = lines(gv, '''
        g = gevent.spawn_later(0, lambda: 5)
        print("joinall", len(gevent.joinall([g], timeout=0)))
        g = gevent.spawn_later(0, lambda: 5)
        try:
            print("get", g.get(timeout=0))
        except gevent.Timeout:
            print("get Timeout", g.ready())
        g = gevent.spawn_later(0, lambda: 5)
        print("wait", len(gevent.wait([g], timeout=0)))
        h = gevent.spawn(lambda: 6)
        g = gevent.spawn_later(0, lambda: 5)
        gevent.sleep(0)
        print("wait two", [x is h for x in gevent.wait([g, h], timeout=0)])
    ''')
    assert out == ["joinall 0", "get Timeout True", "wait 0", "wait two [True]"], err


def test_joiners_and_links_are_notified_in_the_order_they_came(gv):
    out, err = lines(gv, '''
        ev = sub("event")
        log = []
        def joiner(g):
            g.join()
            log.append("joiner back")
        # a link, then a joiner: killall's kill of the unstarted greenlet notifies both before
        # its throw reaches the joiner
        g = gevent.Greenlet(lambda: 1)
        h = gevent.spawn(joiner, g)
        g.link(lambda x: log.append("link"))
        gevent.sleep(0)
        gevent.killall([g, h])
        print(log)
        # a joiner, then links
        log = []
        e = ev.Event()
        g = gevent.spawn(e.wait)
        gevent.spawn(joiner, g)
        gevent.sleep(0)
        g.rawlink(lambda x: log.append("rawlink"))
        g.link(lambda x: log.append("link"))
        e.set()
        gevent.sleep(0)
        gevent.sleep(0)
        print(log)
    ''')
    assert out == ["['link', 'joiner back']", "['joiner back', 'rawlink', 'link']"], err


def test_kill_returns_before_the_dead_greenlets_links_run(gv):
    out, err = lines(gv, '''
        ev, pool = sub("event"), sub("pool")
        log = []
        group = pool.Group()
        g = group.spawn(ev.Event().wait)
        gevent.sleep(0)
        g.rawlink(lambda x: log.append("rawlink"))
        g.kill()
        log.append("kill returned, %d member(s)" % len(group))
        gevent.sleep(0)
        log.append("%d member(s)" % len(group))
        print(log)
    ''')
    assert out == ["['kill returned, 1 member(s)', 'rawlink', '0 member(s)']"], err


def test_pool_map_raises_as_soon_as_the_failure_is_notified(gv):
    # map's helper waits in get() on the first item; its failure is notified (the helper
    # switched to from the notification) before the second item's next step
    out, err = lines(gv, '''
        pool = sub("pool")
        log = []
        def item(x):
            if x == 0:
                raise ValueError("boom")
            for i in range(2):
                gevent.sleep(0)
                log.append("step %d" % i)
            return x
        try:
            pool.Pool(2).map(item, [0, 1])
        except ValueError:
            log.append("map raised")
        gevent.sleep(0)
        gevent.sleep(0)
        print(log)
    ''')
    assert out == ["['step 0', 'map raised', 'step 1']"], err


def test_a_wait_on_a_set_event_waits_while_its_notification_is_under_way(gv):
    out, err = lines(gv, '''
        ev = sub("event")
        for cls in (ev.Event, ev.AsyncResult):
            log = []
            e = cls()
            def waiter():
                e.wait()
                log.append("waiter back")
            def setter():
                e.set()
                r = e.wait()
                log.append("setter's wait returned %r" % (r,))
                e.wait()
                log.append("a second wait returned at once")
            gevent.spawn(waiter)
            gevent.sleep(0)
            g = gevent.spawn(setter)
            gevent.sleep(0)
            log.append("main")
            g.join()
            print(cls.__name__, log)
    ''')
    assert out == [
        "Event ['main', 'waiter back', \"setter's wait returned True\", "
        "'a second wait returned at once']",
        "AsyncResult ['main', 'waiter back', \"setter's wait returned None\", "
        "'a second wait returned at once']",
    ], err


def test_a_wait_on_a_set_event_waits_for_a_queued_link_notifier(gv):
    # wait() links main to the set Event: the notifier queued then also serves a greenlet that
    # waits on the Event before it ran, after its links
    out, err = lines(gv, '''
        ev = sub("event")
        log = []
        e1, e0 = ev.Event(), ev.Event()
        e1.set()
        def first():
            e1.wait()
            log.append("first")
        def second():
            e0.set()
            log.append("second")
        gevent.spawn(first)
        g = gevent.spawn(second)
        log.append(len(gevent.wait([g, e1], timeout=0)))
        gevent.sleep(0)
        print(log)
    ''')
    assert out == ["['second', 'first', 2]"], err


def test_a_timeout_is_final_even_if_the_object_is_made_ready_before_the_waiter_runs(gv):
    # The waiter's zero timeout and main's fire in the same timer pass, main's first: main then
    # makes the object ready before the waiter runs again. gevent throws the waiter's Timeout
    # from the timer's callback, so the waiter reports the timeout and what main gave stays
    # (pyconc's waiter used to look again and take it).
    out, err = lines(gv, '''
        ev, lk, qu = sub("event"), sub("lock"), sub("queue")
        def race(name, wait, make_ready):
            def waiter():
                try:
                    print(name, "ok", wait())
                except BaseException as x:
                    print(name, "raise", type(x).__name__, str(x))
            g = gevent.spawn(waiter)
            print(name, "joinall", len(gevent.joinall([g], timeout=0)))
            make_ready()
            g.join()
        a = ev.AsyncResult()
        race("AsyncResult.get/set", lambda: a.get(timeout=0), lambda: a.set(5))
        a = ev.AsyncResult()
        race("AsyncResult.get/set_exception", lambda: a.get(timeout=0),
             lambda: a.set_exception(ValueError("x")))
        a = ev.AsyncResult()
        race("AsyncResult.wait/set", lambda: a.wait(timeout=0), lambda: a.set(5))
        e = ev.Event()
        race("Event.wait/set", lambda: e.wait(timeout=0), e.set)
        for cls in ("Queue", "JoinableQueue", "SimpleQueue", "LifoQueue", "PriorityQueue"):
            q = getattr(qu, cls)()
            race(cls + ".get/put_nowait", lambda: q.get(timeout=0), lambda: q.put_nowait(1))
            print(cls, "left", q.qsize())
        q = qu.Queue()
        race("Queue.peek/put", lambda: q.peek(timeout=0), lambda: q.put(1))
        q = qu.Queue(1); q.put(0)
        race("Queue.put/get", lambda: q.put(2, timeout=0), q.get)
        print("Queue left", q.qsize())
        q = qu.JoinableQueue(); q.put(0); q.get()
        race("JoinableQueue.join/task_done", lambda: q.join(timeout=0), q.task_done)
        for cls in ("Semaphore", "BoundedSemaphore"):
            s = getattr(lk, cls)(1); s.acquire()
            race(cls + ".acquire/release", lambda: s.acquire(timeout=0), s.release)
            print(cls, "left", s.counter)
        s = lk.Semaphore(0)
        race("Semaphore.wait/release", lambda: s.wait(timeout=0), s.release)
        r = lk.RLock(); r.acquire()
        race("RLock.acquire/release", lambda: r.acquire(timeout=0), r.release)
        print("RLock free", r.acquire(blocking=False))
    ''')
    assert out == [
        "AsyncResult.get/set joinall 0", "AsyncResult.get/set raise Timeout 0 seconds",
        "AsyncResult.get/set_exception joinall 0",
        "AsyncResult.get/set_exception raise Timeout 0 seconds",
        "AsyncResult.wait/set joinall 0", "AsyncResult.wait/set ok 5",
        "Event.wait/set joinall 0", "Event.wait/set ok False",
        "Queue.get/put_nowait joinall 0", "Queue.get/put_nowait raise Empty ", "Queue left 1",
        "JoinableQueue.get/put_nowait joinall 0", "JoinableQueue.get/put_nowait raise Empty ",
        "JoinableQueue left 1",
        "SimpleQueue.get/put_nowait joinall 0", "SimpleQueue.get/put_nowait raise Empty ",
        "SimpleQueue left 1",
        "LifoQueue.get/put_nowait joinall 0", "LifoQueue.get/put_nowait raise Empty ",
        "LifoQueue left 1",
        "PriorityQueue.get/put_nowait joinall 0", "PriorityQueue.get/put_nowait raise Empty ",
        "PriorityQueue left 1",
        "Queue.peek/put joinall 0", "Queue.peek/put raise Empty ",
        "Queue.put/get joinall 0", "Queue.put/get raise Full ", "Queue left 0",
        "JoinableQueue.join/task_done joinall 0", "JoinableQueue.join/task_done ok False",
        "Semaphore.acquire/release joinall 0", "Semaphore.acquire/release ok False",
        "Semaphore left 1",
        "BoundedSemaphore.acquire/release joinall 0", "BoundedSemaphore.acquire/release ok False",
        "BoundedSemaphore left 1",
        "Semaphore.wait/release joinall 0", "Semaphore.wait/release ok 1",
        "RLock.acquire/release joinall 0", "RLock.acquire/release ok False", "RLock free True",
    ], err


def test_the_patched_stdlib_primitives_keep_their_own_timeout_rules(gv):
    # After patch_all: the stdlib's Semaphore and Condition are the stdlib's code in gevent (a
    # zero timeout does not wait) and pyconc's stdlib faces in pyconc; queue.Queue is the
    # stdlib's code in gevent (its zero timeout does not wait) and pyconc's gevent Queue in
    # pyconc (its zero timeout waits one turn and is final): the same answers here.
    # threading.Lock and RLock are gevent's locks in both: acquire(timeout=0) yields one turn
    # and its timeout is final; blocking=False does not wait.
    out, err = lines(gv, '''
        sub("monkey").patch_all()
        import queue, threading
        def race(name, wait, make_ready):
            def waiter():
                try:
                    print(name, "ok", wait())
                except BaseException as x:
                    print(name, "raise", type(x).__name__)
            g = gevent.spawn(waiter)
            print(name, "joinall", len(gevent.joinall([g], timeout=0)))
            make_ready()
            g.join()
        calls = []
        class Q(queue.Queue):
            def _qsize(self):
                calls.append(1)
                return super()._qsize()
        for cls in (queue.Queue, queue.LifoQueue, queue.PriorityQueue, queue.SimpleQueue, Q):
            q = cls()
            race(cls.__name__, lambda: q.get(timeout=0), lambda: q.put(1))
            print(cls.__name__, "left", q.qsize())
        q = queue.Queue(1); q.put(0)
        race("Queue.put", lambda: q.put(2, timeout=0), q.get)
        for cls in (threading.Semaphore, threading.BoundedSemaphore):
            s = cls(1); s.acquire()
            race(cls.__name__, lambda: s.acquire(timeout=0), s.release)
        for cls in (threading.Lock, threading.RLock):
            lk = cls(); lk.acquire()
            race("Lock" if cls is threading.Lock else "RLock", lambda: lk.acquire(timeout=0),
                 lk.release)
            lk = cls(); lk.acquire()
            race("non-blocking", lambda: lk.acquire(blocking=False), lk.release)
        e = threading.Event()
        race("Event", lambda: e.wait(timeout=0), e.set)
        c = threading.Condition()
        def notify():
            with c:
                c.notify()
        def cwait():
            with c:
                return c.wait(timeout=0)
        race("Condition", cwait, notify)
    ''')
    assert out == [
        "Queue joinall 0", "Queue raise Empty", "Queue left 1",
        "LifoQueue joinall 0", "LifoQueue raise Empty", "LifoQueue left 1",
        "PriorityQueue joinall 0", "PriorityQueue raise Empty", "PriorityQueue left 1",
        "SimpleQueue joinall 0", "SimpleQueue raise Empty", "SimpleQueue left 1",
        "Q joinall 0", "Q raise Empty", "Q left 1",
        "Queue.put joinall 0", "Queue.put raise Full",
        "Semaphore ok False", "Semaphore joinall 1",
        "BoundedSemaphore ok False", "BoundedSemaphore joinall 1",
        "Lock joinall 0", "Lock ok False",
        "non-blocking ok False", "non-blocking joinall 1",
        "RLock joinall 0", "RLock ok False",
        "non-blocking ok False", "non-blocking joinall 1",
        "Event joinall 0", "Event ok False",
        "Condition ok False", "Condition joinall 1",
    ], err
