"""gevent.monkey's behaviour, gevent 26 as the oracle (see conftest.py). Patching is global, so
every scenario runs in a fresh interpreter (gv.run): the script sees `gevent` and `sub(name)`
of the target under test.

Covered: what patch_all() replaces (time, socket, select/selectors where the target has them,
ssl, subprocess, os, signal, threading, _thread, queue, _threading_local), the query API
(saved, is_module_patched, is_object_patched, get_original), patching twice, the warning for
ssl imported first, events and DoNotPatch, `python -m <target>.monkey`; after patching:
threads are greenlets (one native thread, greenlet idents), current_thread/main_thread/
enumerate stay consistent, the primitives are cooperative (a greenlet blocked in a Lock, RLock,
Condition, Semaphore, Event or Queue lets the others run; an RLock is owned by a greenlet), the
interpreter waits for non-daemon threads at exit, logging works."""
import importlib
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(120)


def _ok(r, expected):
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == textwrap.dedent(expected).lstrip('\n'), r.stdout + r.stderr


def test_patch_all_replaces_the_blocking_modules(gv):
    r = gv.run('''
        monkey = sub("monkey")
        assert monkey.patch_all() is True
        import time, socket, ssl, subprocess, os, signal, threading, _thread, queue
        import _threading_local
        G = lambda name: sub(name)
        checks = [
            time.sleep is gevent.sleep,
            socket.socket is G("socket").socket,
            socket.create_connection is G("socket").create_connection,
            socket.getaddrinfo is G("socket").getaddrinfo,
            ssl.SSLContext is G("ssl").SSLContext,
            subprocess.Popen is G("subprocess").Popen,
            subprocess.check_output is G("subprocess").check_output,
            os.fork is G("os").fork,
            os.waitpid is G("os").waitpid,
            signal.signal is G("signal").signal,
            _thread.start_new_thread is G("thread").start_new_thread,
            _thread.allocate_lock is G("thread").allocate_lock,
            (threading._start_new_thread is G("thread").start_new_thread
             if sys.version_info < (3, 13) else   # 3.13 starts threads through this one
             threading._start_joinable_thread is G("thread").start_joinable_thread),
            threading.Lock is G("thread").allocate_lock,
            threading.Event is G("event").Event,
            threading.local is G("local").local,
            _threading_local.local is G("local").local,
            threading.Thread is G("threading").Thread,
            issubclass(threading.Timer, G("threading").Thread),
            queue.Queue is G("queue").Queue,
            queue.SimpleQueue is G("queue").SimpleQueue,
            queue.PriorityQueue is G("queue").PriorityQueue,
            queue.LifoQueue is G("queue").LifoQueue,
        ]
        print(checks.count(True), len(checks), [i for i, c in enumerate(checks) if not c])
        print(sorted(m for m in monkey.saved if not m.startswith('_gevent')))
    ''')
    _ok(r, '''
        23 23 []
        ['_thread', '_threading_local', 'logging', 'os', 'queue', 'select', 'selectors', 'signal', 'socket', 'ssl', 'subprocess', 'threading', 'time']
    ''' if not gv.is_pyconc or _has(gv, 'select') else '''
        23 23 []
        ['_thread', '_threading_local', 'logging', 'os', 'queue', 'signal', 'socket', 'ssl', 'subprocess', 'threading', 'time']
    ''')


def _has(gv, name):
    try:
        importlib.import_module(gv.name + '.' + name)
    except ImportError:
        return False
    return True


def test_patch_select_and_selectors(gv):
    if gv.is_pyconc and not (_has(gv, 'select') and _has(gv, 'selectors')):
        pytest.skip("pyconc.gevent.select / selectors are written on branch wt-gselect, not "
                    "merged into this one yet; patch_all() skips a module that is missing")
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import select, selectors
        print(select.select is sub("select").select, select.poll is sub("select").poll,
              hasattr(select, "epoll"), hasattr(selectors, "EpollSelector"),
              selectors.DefaultSelector.__name__ != "EpollSelector")
    ''')
    _ok(r, 'True True False False True\n')


def test_query_api(gv):
    r = gv.run('''
        monkey = sub("monkey")
        import time
        real_sleep = time.sleep
        print(monkey.is_module_patched("time"), monkey.is_object_patched("time", "sleep"),
              monkey.get_original("time", "sleep") is real_sleep)
        monkey.patch_time()
        print(monkey.is_module_patched("time"), monkey.is_object_patched("time", "sleep"),
              monkey.is_object_patched("time", "time"))
        print(monkey.get_original("time", "sleep") is real_sleep,
              monkey.get_original("time", ["sleep", "time"]) == [real_sleep, time.time],
              monkey.get_original(("no_such_module_x", "time"), "sleep") is real_sleep,
              time.sleep is gevent.sleep, monkey.saved["time"]["sleep"] is real_sleep)
        try:
            monkey.get_original("no_such_module_x", "sleep")
        except ImportError:
            print("ImportError")
    ''')
    _ok(r, '''
        False False True
        True True False
        True True True True True
        ImportError
    ''')


def test_patching_twice_is_harmless(gv):
    r = gv.run('''
        import warnings
        monkey = sub("monkey")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            first = monkey.patch_all()
            saved = {k: dict(v) for k, v in monkey.saved.items()}
            second = monkey.patch_all()
            print(first, second, [str(x.message) for x in w])
            third = monkey.patch_all(os=False, extra_kwarg=42)
            print(third, len(w), "more than once" in str(w[-1].message),
                  w[-1].category is monkey.MonkeyPatchWarning)
        import time
        saved.pop('logging', None)
        now = {k: v for k, v in monkey.saved.items() if k in saved}
        print(now == saved, time.sleep is gevent.sleep,
              all("gevent" not in str(v) for v in monkey.saved["threading"].values()))
        monkey.patch_subprocess()
        import subprocess
        print(subprocess.Popen is sub("subprocess").Popen,
              "gevent" not in repr(monkey.get_original("subprocess", "Popen")))
    ''')
    _ok(r, '''
        True None []
        None 1 True True
        True True True
        True True
    ''')


def test_ssl_imported_first_warns(gv):
    r = gv.run('''
        import warnings
        import ssl
        from ssl import SSLContext
        class MySubclass(ssl.SSLContext):
            pass
        monkey = sub("monkey")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            monkey.patch_all()
            monkey.patch_all()
        w = [x for x in w if isinstance(x.message, monkey.MonkeyPatchWarning)]
        msg = str(w[0].message)
        print(len(w), "Monkey-patching ssl after ssl has already been imported" in msg,
              "Modules that had direct imports" in msg, "__main__" in msg,
              "Subclasses (NOT patched)" in msg, "MySubclass" in msg)
    ''')
    _ok(r, '1 True True True True True\n')


def test_ssl_not_imported_first_no_warning(gv):
    r = gv.run('''
        import warnings
        monkey = sub("monkey")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            monkey.patch_all()
            monkey.patch_all()
        print([str(x.message) for x in w if isinstance(x.message, monkey.MonkeyPatchWarning)])
    ''')
    _ok(r, '[]\n')


def test_events_and_do_not_patch(gv):
    r = gv.run('''
        events = sub("events")
        monkey = sub("monkey")
        seen = []
        def subscriber(event):
            seen.append(event)
            if (isinstance(event, events.GeventWillPatchModuleEvent)
                    and event.module_name == "ssl"):
                raise events.DoNotPatch
        events.subscribers.append(subscriber)
        print(monkey.patch_all(thread=False, select=False, extra_kwarg=42))
        print(type(seen[0]).__name__, seen[0].patch_all_kwargs,
              seen[0].will_patch_module("socket"), seen[0].will_patch_module("thread"))
        print(type(seen[1]).__name__, seen[1].module_name, type(seen[2]).__name__,
              seen[2].module_name)
        print(type(seen[-2]).__name__, type(seen[-1]).__name__)
        print(any(isinstance(e, events.GeventDidPatchModuleEvent) and e.module_name == "ssl"
                  for e in seen), monkey.is_module_patched("ssl"),
              monkey.is_module_patched("socket"), monkey.is_module_patched("threading"))
        def veto_all(event):
            if isinstance(event, events.GeventWillPatchAllEvent):
                raise events.DoNotPatch
        events.subscribers[:] = [veto_all]
        print(monkey.patch_all(thread=True))
    ''')
    _ok(r, '''
        True
        GeventWillPatchAllEvent {'extra_kwarg': 42} True False
        GeventWillPatchModuleEvent os GeventDidPatchModuleEvent os
        GeventDidPatchBuiltinModulesEvent GeventDidPatchAllEvent
        False False True False
        False
    ''')


def test_signal_without_os_warns_once_and_loads_no_gevent_plugin(gv):
    # gevent's wheel registers a will_patch_all plugin of its own (gevent.monkey's check that
    # signal is not patched without os). pyconc.gevent.monkey makes that check itself: loading
    # gevent's plugin imported the real gevent into a pyconc program (and warned twice)
    r = gv.run('''
        import sys, warnings
        monkey = sub("monkey")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            monkey.patch_all(os=False)
        print(sum("Patching signal but not os" in str(x.message) for x in w),
              all(x.category is monkey.MonkeyPatchWarning for x in w),
              [m for m in sys.modules if m == "gevent" or m.startswith("gevent.")] == []
              or not monkey.__name__.startswith("pyconc"))
    ''')
    _ok(r, '1 True True\n')


def test_threads_are_greenlets(gv):
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import threading, time, _thread
        native_ident = monkey.get_original("_thread", "get_ident")
        main_native = native_ident()
        log = []
        def worker(n):
            cur = threading.current_thread()
            log.append((n, cur.name, cur is threads[n], native_ident() == main_native,
                        threading.get_ident() == id(gevent.getcurrent()),
                        isinstance(gevent.getcurrent(), gevent.Greenlet)))
            time.sleep(0.05)
        threads = [threading.Thread(target=worker, args=(i,), name="w%d" % i) for i in range(3)]
        for t in threads:
            t.start()
        print(len(threading.enumerate()), all(t in threading.enumerate() for t in threads),
              all(t.is_alive() for t in threads))
        for t in threads:
            t.join()
        print(sorted(log))
        print(len(threading.enumerate()), any(t.is_alive() for t in threads),
              threading.current_thread() is threading.main_thread(),
              threading.main_thread().ident == threading.get_ident(),
              _thread.get_ident() == threading.get_ident(), threading.active_count())
    ''')
    _ok(r, '''
        4 True True
        [(0, 'w0', True, True, True, True), (1, 'w1', True, True, True, True), (2, 'w2', True, True, True, True)]
        1 False True True True 1
    ''')


def test_spawned_greenlet_is_a_dummy_thread(gv):
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import threading
        out = []
        def f():
            t = threading.current_thread()
            out.append((type(t).__name__, t.name.startswith("Dummy-"), t.daemon,
                        t in threading.enumerate(), t.ident == threading.get_ident(),
                        t is threading.current_thread()))
        g = gevent.spawn(f)
        g.join()
        gevent.sleep(0)
        print(out, len(threading.enumerate()))
    ''')
    _ok(r, "[('_DummyThread', True, True, True, True, True)] 1\n")


def test_primitives_are_cooperative(gv):
    # each blocked greenlet must let the others run, or the script deadlocks (and times out)
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import threading, queue, time
        log = []
        lock = threading.Lock()
        rlock = threading.RLock()
        cond = threading.Condition()
        sem = threading.Semaphore(1)
        event = threading.Event()
        q = queue.Queue(maxsize=1)
        def holder():
            with lock, rlock, sem:
                with rlock:                          # reentrant for its owner
                    log.append("holding")
                    time.sleep(0.05)
            log.append("released")
        def contender():
            with lock:
                log.append("lock")
            with rlock:                              # owned by a greenlet, not the thread
                log.append("rlock")
            with sem:
                log.append("sem")
        def waiter():
            with cond:
                cond.wait_for(lambda: log.count("notified"))
                log.append("woken")
            event.wait()
            log.append("event")
            log.append(q.get())
        def notifier():
            with cond:
                log.append("notified")
                cond.notify_all()
            event.set()
            q.put("item")
        with gevent.Timeout(10):
            gevent.joinall([gevent.spawn(holder), gevent.spawn(contender),
                            gevent.spawn(waiter), gevent.spawn(notifier)], raise_error=True)
        print(log)
        print(type(threading.RLock()).__name__, rlock._is_owned(),
              isinstance(cond, threading.Condition), lock.acquire(False), lock.locked())
    ''')
    _ok(r, '''
        ['holding', 'notified', 'woken', 'event', 'item', 'released', 'lock', 'rlock', 'sem']
        _RLock False True True True
    ''')


def test_thread_handle_refused_handle_and_join_zero(gv):
    # gevent.thread's thread-handle API (what threading uses on 3.13+; defined on every version).
    # pyconc departs from gevent 26 in two places that are bugs there: a refused handle (not a
    # gevent one) must not start the function anyway, and join(0) on the handle of a raw
    # greenlet (the main thread's on 3.13+) returns at once, as the stdlib's join(0) does, where
    # gevent takes 0 for "no timeout" and waits until that greenlet ends.
    r = gv.run('''
        import os
        thread = sub("thread")
        ran = []
        try:
            thread.start_joinable_thread(lambda: ran.append(1), handle=object())
        except AssertionError as exc:
            print("refused:", exc)
        gevent.sleep(0.01)
        print("ran:", ran)
        main = thread._make_thread_handle()
        print(main.is_done(), main.ident == thread.get_ident())
        joiner = gevent.spawn(main.join, 0)
        joiner.join(1)
        print("join(0) returned:", joiner.dead)
        joiner = gevent.spawn(main.join)     # threading's shutdown marks the main thread done
        gevent.sleep(0.01)                   # while its greenlet still runs (3.13+)
        main._set_done(enter_hub=False)
        joiner.join(1)
        print("join() after _set_done:", joiner.dead)
        h = thread.start_joinable_thread(lambda: gevent.sleep(0.01))
        h.join()
        print(h.is_done())
        os._exit(0)   # gevent's join(0) greenlet would keep the hub busy
    ''')
    if gv.is_pyconc:
        _ok(r, """
            refused: Must be a gevent thread handle
            ran: []
            False True
            join(0) returned: True
            join() after _set_done: True
            True
        """)
    else:
        _ok(r, """
            refused: Must be a gevent thread handle
            ran: [1]
            False True
            join(0) returned: False
            join() after _set_done: True
            True
        """)


def test_thread_join_timeout_and_is_alive_yield(gv):
    # Up to 3.12 gevent's patched Thread.is_alive() lets the other greenlets run, so a loop on it
    # ends; from 3.13 on (threading keeps a _ThreadHandle) it does not: checked with gevent
    # 26.9.0 on 3.13.18 and 3.14.10, where an unbounded loop spins forever. The loop is bounded
    # (one second) so that a difference fails instead of hanging.
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import threading, time
        from time import monotonic     # not patched: the bound
        stop = threading.Event()
        t = threading.Thread(target=stop.wait)
        t.start()
        t.join(0.05)
        print(t.is_alive())
        spins = 0
        gevent.spawn_later(0.05, stop.set)
        end = monotonic() + 1
        while t.is_alive() and monotonic() < end:
            spins += 1
        print(t.is_alive(), stop.is_set(), spins > 0)
        t.join()
        print(t.is_alive())
    ''')
    _ok(r, 'True\nFalse True True\nFalse\n' if sys.version_info < (3, 13) else
        'True\nTrue False True\nFalse\n')


def test_interpreter_waits_for_non_daemon_threads(gv):
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import threading, time
        def late():
            time.sleep(0.2)
            print("thread done", flush=True)
        def daemon():
            time.sleep(30)
            print("daemon must not print", flush=True)
        threading.Thread(target=late).start()
        threading.Thread(target=daemon, daemon=True).start()
        print("main done", flush=True)
    ''')
    _ok(r, 'main done\nthread done\n')


def test_greenlet_joins_the_main_thread(gv):
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import threading
        def watcher():
            threading.main_thread().join()
            print("main thread ended", flush=True)
        threading.Thread(target=watcher).start()
        print("main done", flush=True)
    ''')
    _ok(r, 'main done\nmain thread ended\n')


def test_logging_after_patching(gv):
    r = gv.run('''
        import logging, sys
        logging.basicConfig(stream=sys.stdout, format="%(threadName)s %(message)s",
                            level=logging.INFO)
        monkey = sub("monkey")
        monkey.patch_all()
        import threading
        def work(n):
            logging.info("worker %d", n)
        ts = [threading.Thread(target=work, args=(i,), name="T%d" % i) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        logging.info("end")
    ''')
    _ok(r, 'T0 worker 0\nT1 worker 1\nMainThread end\n')


def test_patched_threading_local(gv):
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import threading
        data = threading.local()
        data.x = "main"
        seen = []
        def f(n):
            seen.append(getattr(data, "x", None))
            data.x = n
            gevent.sleep(0.01)
            seen.append(data.x)
        gevent.joinall([gevent.spawn(f, 1), gevent.spawn(f, 2)])
        print(seen, data.x)
    ''')
    _ok(r, "[None, None, 1, 2] main\n")


def test_fork_after_patching(gv):
    # gevent 26.9.0 itself sometimes hangs here on 3.13 (2 of 30 runs of this script in the
    # chroot did not finish in 10 s; pyconc's 30 of 30 did): the oracle side gets three tries.
    tries = 3 if gv.name == "gevent" else 1
    for attempt in range(tries):
        try:
            r = _run_fork_after_patching(gv, timeout=60 if tries == 1 else 20)
            break
        except subprocess.TimeoutExpired:
            if attempt == tries - 1:
                raise
    _ok(r, '5 3\n')


def _run_fork_after_patching(gv, timeout):
    return gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import os, threading, time
        ticks = []
        ticker = gevent.spawn(lambda: [ticks.append(time.sleep(0.01)) for _ in range(3)])
        pid = os.fork()
        if pid == 0:
            g = gevent.spawn(lambda: 5)        # the child has a working hub
            os._exit(g.get() if threading.current_thread() is threading.main_thread() else 99)
        _, status = os.waitpid(pid, 0)         # the ticker runs meanwhile
        ticker.join()
        print(os.WEXITSTATUS(status), len(ticks))
    ''', timeout=timeout)


def test_python_m_monkey(gv, tmp_path):
    script = tmp_path / 'script.py'
    script.write_text(textwrap.dedent('''
        import importlib, sys, time, socket, threading
        monkey = importlib.import_module(%r)    # the same module that patched: one `saved`
        print(sys.argv[1:], type(time.sleep).__module__.split(".")[0] != "time",
              "gevent" in socket.socket.__module__,
              "gevent" in threading.Thread.__module__, __name__,
              monkey.is_module_patched("time"))
    ''' % (gv.name + '.monkey')))
    env = dict(os.environ)
    r = subprocess.run([sys.executable, '-m', gv.name + '.monkey', str(script), 'a', 'b'],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "['a', 'b'] True True True __main__ True\n"
    r = subprocess.run([sys.executable, '-m', gv.name + '.monkey', '--no-thread', str(script)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "[] True True False __main__ True\n"
    r = subprocess.run([sys.executable, '-m', gv.name + '.monkey', '--nothing', str(script)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1
    assert "Cannot patch 'nothing'" in r.stderr


def test_locks_at_interpreter_exit(gv):
    # a logging Handler collected at exit takes logging's lock (a patched RLock, whose owner is
    # the current greenlet) while the interpreter finalizes: no error may be printed
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        from logging import Handler
        class Cycle:
            pass
        c = Cycle()
        c.self = c
        c.handler = Handler()
        print("end")
    ''')
    assert r.returncode == 0
    assert (r.stdout, r.stderr) == ('end\n', '')


def test_patched_local_leaves_no_link_on_a_running_greenlet(gv):
    # a local collected while the greenlet that used it still runs takes its link back
    # (gevent #981): a long-running greenlet does not collect one per local it touched
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import gc, threading
        def work():
            for _ in range(100):
                x = threading.local()
                x.a = 1
                x = None
            gc.collect()
            print(gevent.getcurrent().has_links())
        gevent.spawn(work)
        gevent.wait()       # (no join: a joiner would be a link)
    ''')
    _ok(r, 'False\n')


def test_patched_stdlib_http_server_and_urllib(gv):
    # the stdlib's ThreadingHTTPServer and urllib, unmodified: five requests from five threads
    # are answered only once all five handlers are in flight together (a Barrier), so this
    # completes only if the patched threads, sockets and selectors all cooperate
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import threading, urllib.request
        from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
        barrier = threading.Barrier(5, timeout=20)
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                barrier.wait()
                body = self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        results = {}
        def fetch(i):
            url = "http://127.0.0.1:%d/p%d" % (srv.server_address[1], i)
            results[i] = urllib.request.urlopen(url, timeout=30).read()
        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        srv.shutdown()
        print(sorted(results.values()))
    ''')
    _ok(r, "[b'/p0', b'/p1', b'/p2', b'/p3', b'/p4']\n")
