"""Interpreter exit: it waits for non-daemon pyconc threads and not for daemon ones, like the
stdlib does for its own."""
import time

import pytest

from .support import run_python

pytestmark = pytest.mark.timeout(60)


def test_non_daemon_thread_finishes_before_exit():
    r = run_python("""
        import time
        from pyconc import threading
        def work():
            time.sleep(0.3)
            print("worker done", flush=True)
        threading.Thread(target=work).start()
        print("main done", flush=True)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["main", "done", "worker", "done"]


def test_threads_started_during_shutdown_wait_are_waited_for_too():
    r = run_python("""
        import time
        from pyconc import threading
        def grandchild():
            time.sleep(0.2)
            print("grandchild done", flush=True)
        def child():
            time.sleep(0.1)
            threading.Thread(target=grandchild).start()
        threading.Thread(target=child).start()
    """)
    assert r.returncode == 0, r.stderr
    assert "grandchild done" in r.stdout


def test_daemon_thread_does_not_hold_up_exit():
    t0 = time.monotonic()
    r = run_python("""
        import time
        from pyconc import threading
        def forever():
            time.sleep(30)
            print("daemon done", flush=True)
        threading.Thread(target=forever, daemon=True).start()
        blocked = threading.Event()
        threading.Thread(target=blocked.wait, daemon=True).start()
        print("main done", flush=True)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "main done"
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("where", ["main", "atexit", "daemon"])
def test_threads_started_just_before_or_during_exit_do_not_crash_it(where):
    """Daemon threads that the OS has not scheduled yet when the interpreter exits. On 3.14 such a
    thread used to make its thread state while the interpreter was being freed: a segfault or
    'Fatal Python error: gilstate_tss_set' in about half the runs. Threads started before the exit
    hook are waited for until they run; ones started later (an atexit callback, a daemon thread
    that keeps starting threads) do not run at all, as the stdlib's."""
    script = """
        import atexit, sys, time
        from pyconc import threading
        where = WHERE
        def burst():
            for _ in range(20):
                threading.Thread(target=lambda: None, daemon=True).start()
        def spawner():
            while True:
                burst()
        if where == "main":
            burst()
        elif where == "atexit":
            atexit.register(burst)
        else:
            threading.Thread(target=spawner, daemon=True).start()
            time.sleep(0.05)
        print("main done", flush=True)
    """
    for _ in range(8):
        r = run_python(script.replace("WHERE", repr(where)))
        assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "main done", "")


def test_exit_with_stdlib_and_pyconc_threads_mixed():
    r = run_python("""
        import threading as std, time
        from pyconc import threading
        out = []
        def a():
            time.sleep(0.2); print("pyconc thread done", flush=True)
        def b():
            time.sleep(0.1); print("stdlib thread done", flush=True)
        threading.Thread(target=a).start()
        std.Thread(target=b).start()
    """)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["pyconc thread done", "stdlib thread done"]


def test_unhandled_exception_in_main_still_waits_for_threads():
    r = run_python("""
        import time
        from pyconc import threading
        def work():
            time.sleep(0.2)
            print("worker done", flush=True)
        threading.Thread(target=work).start()
        raise SystemExit(4)
    """)
    assert r.returncode == 4
    assert "worker done" in r.stdout


# A Pool left running at exit (no close(), no with-block: what many scripts do). The stdlib's
# exit hook terminates the daemonic children and then joins every child; if the pool's result
# thread sees its workers die in between, it must not start new ones, which nothing would stop:
# the join then waited forever (seen once in a benchmark run). The pool ends itself first, from
# an exit finalizer that runs before that step, as the stdlib's Pool does.
def test_running_pool_at_exit_is_not_restarted_by_the_exit_hook():
    r = run_python("""
        import time
        from multiprocessing import util, active_children
        import pyconc.multiprocessing as mp
        def double(x):
            return 2 * x
        if __name__ == "__main__":
            pool = mp.get_context("fork").Pool(2)   # -c: workers that are forks
            assert pool.map(double, range(10)) == list(range(0, 20, 2))
            # the stdlib's exit hook, step by step, with the window widened
            util._run_finalizers(0)
            for p in active_children():
                if p.daemon:
                    p.terminate()
            time.sleep(0.5)          # the result thread looks at its workers every 50 ms
            left = active_children()
            for p in left:
                p.join(5)
            print("alive", sum(p.is_alive() for p in left), flush=True)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["alive", "0"], r.stdout


def test_exit_with_running_pools_does_not_hang():
    r = run_python("""
        import pyconc.multiprocessing as mp
        def double(x):
            return 2 * x
        if __name__ == "__main__":
            pools = [mp.get_context("fork").Pool(2) for _ in range(3)]
            for pool in pools:
                assert pool.map(double, range(1000)) == [2 * x for x in range(1000)]
            print("main done", flush=True)
    """, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "main done"
