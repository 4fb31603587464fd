"""Fork: in the child every primitive is usable; locks held by threads that do not exist there
are released, their waiters dropped, and only the forking thread is alive."""
import os

import pytest

from .support import run_python

pytestmark = pytest.mark.timeout(60)


def test_primitives_usable_in_child():
    r = run_python("""
        import os, sys, time
        from pyconc import threading
        lock, rlock = threading.Lock(), threading.RLock()
        cond, sem, ev = threading.Condition(), threading.Semaphore(1), threading.Event()
        held = threading.Event()
        stop = threading.Event()
        def holder():
            lock.acquire(); rlock.acquire(); cond.acquire(); sem.acquire()
            held.set()
            stop.wait()
        def waiter():
            ev.wait()       # a waiter of a thread that will not exist in the child
        t = threading.Thread(target=holder); t.start()
        w = threading.Thread(target=waiter); w.start()
        held.wait()
        time.sleep(0.05)
        pid = os.fork()
        if pid == 0:
            ok = [lock.acquire(timeout=1), rlock.acquire(timeout=1), cond.acquire(timeout=1)]
            with cond:
                ok.append(cond.wait(0.01) is False)
            ok.append(not t.is_alive() and not w.is_alive())
            t.join(); w.join()          # return at once: they are not alive here
            ok.append(threading.enumerate() == [threading.main_thread()])
            ev.set(); ev.clear()
            ok.append(ev.wait(0.01) is False)
            box = []
            c = threading.Thread(target=box.append, args=(1,)); c.start(); c.join()
            ok.append(box == [1])
            os._exit(0 if all(ok) else 10 + ok.index(False))
        _, status = os.waitpid(pid, 0)
        stop.set(); ev.set()
        t.join(); w.join()
        print(os.waitstatus_to_exitcode(status))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"


def test_lock_held_by_forking_thread_stays_held_in_child():
    r = run_python("""
        import os
        from pyconc import threading
        lock, rlock = threading.Lock(), threading.RLock()
        lock.acquire(); rlock.acquire()
        pid = os.fork()
        if pid == 0:
            ok = [lock.locked(), not lock.acquire(False), rlock._is_owned()]
            lock.release(); rlock.release()
            ok.append(lock.acquire(False))
            os._exit(0 if all(ok) else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"


def test_fork_from_a_pyconc_thread():
    r = run_python("""
        import os
        from pyconc import threading
        res = []
        def body():
            me = threading.current_thread()
            pid = os.fork()
            if pid == 0:
                ok = threading.current_thread() is me and me in threading.enumerate()
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            res.append(os.waitstatus_to_exitcode(status))
        t = threading.Thread(target=body); t.start(); t.join()
        print(res[0])
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"


def test_locked_reports_released_in_child():
    r = run_python("""
        import os
        from pyconc import threading
        lock, rlock = threading.Lock(), threading.RLock()
        held = threading.Event(); stop = threading.Event()
        def holder():
            lock.acquire(); rlock.acquire(); held.set(); stop.wait()
        t = threading.Thread(target=holder); t.start(); held.wait()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if (not lock.locked() and not rlock.locked()) else 1)
        _, status = os.waitpid(pid, 0)
        stop.set(); t.join()
        print(lock.locked(), os.waitstatus_to_exitcode(status))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "0"]



def test_fork_right_after_thread_start_and_while_threads_park():
    """Regression (a child hung in CI under ASan, whose allocator has no fork handlers: a child
    forked while another thread was inside malloc inherits a held allocator lock):
    - pyconc's Thread.start() returns before the new thread has made its thread state (an
      allocation without the GIL); a fork right after start() now first lets every started
      thread run its first line, as the stdlib's start() does anyway;
    - a thread about to spin re-read the cgroup CPU quota with fopen() (malloc) without the GIL,
      on its first park after a fork above all; it now reads with open/read into stack buffers.
    Every child here starts two relaying threads and forks at once, while they start and make
    the first parks of the child's fork generation; the grandchild allocates in a new thread."""
    import signal
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import os
        from pyconc import queue, threading
        def relay(src, dst):
            while True:
                x = src.get()
                dst.put(x)
                if x is None:
                    return
        def child():
            a, b = queue.Queue(), queue.Queue()
            ts = [threading.Thread(target=relay, args=(a, b)),
                  threading.Thread(target=relay, args=(b, a))]
            for t in ts:
                t.start()
            a.put(0)
            pid = os.fork()
            if pid == 0:
                box = []
                t = threading.Thread(target=box.append, args=(1,))
                t.start()
                t.join()
                os._exit(0 if box == [1] else 5)
            code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            a.put(None)
            for t in ts:
                t.join()
            os._exit(code)
        for _ in range(30):
            pid = os.fork()
            if pid == 0:
                child()
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        print("ok")
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=45)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail("a forked child hung")
    assert (p.returncode, out) == (0, "ok\n"), err
