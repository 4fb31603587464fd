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
