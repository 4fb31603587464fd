"""Runs the thread-level classes of CPython's own Lib/test/test_threading.py (shipped with the
installed interpreter) against pyconc.threading. The module is loaded afresh with `threading`
bound to a face of pyconc.threading: its module-level Thread subclasses, and every
`threading.X` in its tests, are pyconc's; a name pyconc does not define (the stdlib's private
helpers some tests reach into, e.g. _active, _PyRLock) falls back to the stdlib's, and a name the
tests set (support.swap_attr(threading, 'excepthook', ...)) is set on pyconc.threading. The
lock_tests-based classes of test_threading run in test_cpython_lock_tests.py.

    python tests/conformance/threading_suite.py [TestClass ...]   # JSON summary on the last line

Tests that run a script in a child interpreter (script_helper, subprocess) are left out: the
child's `import threading` is the stdlib's, so they test the stdlib, not pyconc. EXCLUDED lists
the others that cannot apply, with the reason; KNOWN_FAILING the differences pyconc has not
closed (the pytest wrapper requires exactly these to fail)."""
import importlib.util
import inspect
import json
import os
import sys
import threading as std_threading
import types
import unittest

from test import lock_tests  # noqa: F401  (imported before the swap: it keeps the stdlib's)

import pyconc.threading as pthreading

CLASSES = ["ThreadTests", "ThreadingExceptionTests", "ExceptHookTests", "TimerTests"]

CHILD_MARKERS = ("assert_python_ok", "assert_python_failure", "script_helper",
                 "subprocess", "spawn_python", "run_python_until_end", "_run_and_join")
CHILD_REASON = ("runs a script in a child interpreter, whose `import threading` is the "
                "stdlib's: it tests the stdlib, not pyconc")

EXCLUDED = {
    "ThreadTests.test_limbo_cleanup":
        "mocks the stdlib's private threading._start_new_thread to make start() fail; pyconc "
        "starts its threads in C (csrc/thread/thread.c), without that name",
    "ThreadTests.test_name":
        "mocks the stdlib's private threading._counter; pyconc numbers threads in C (the "
        "names, Thread-N and Thread-N (target), are compared with the stdlib's in "
        "tests/test_threading_api.py)",
    "ThreadTests.test_tstate_lock":
        "reads the stdlib's private Thread._tstate_lock (3.11/3.12); pyconc's Thread ends "
        "through its own wait list",
    "ThreadTests.test_shutdown_locks":
        "reads the stdlib's private threading._shutdown_locks (3.11/3.12); pyconc's non-daemon "
        "threads are waited for at exit by its own list (tests/test_exit.py)",
}

KNOWN_FAILING = {}
if sys.version_info < (3, 13):
    KNOWN_FAILING["ThreadTests.test_disallow_instantiation"] = (
        "pyconc.threading.Lock is the lock type itself, which can be instantiated (as 3.13's "
        "threading.Lock is); 3.11's threading.Lock is a factory of a type that refuses it")


class _Face(types.ModuleType):
    """`threading` as the test module sees it: pyconc.threading, then the stdlib's."""

    def __getattr__(self, name):
        try:
            return getattr(pthreading, name)
        except AttributeError:
            return getattr(std_threading, name)

    def __setattr__(self, name, value):
        setattr(pthreading, name, value)

    def __delattr__(self, name):
        delattr(pthreading, name)


def load():
    spec = importlib.util.find_spec("test.test_threading")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["threading"] = _Face("threading")
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules["threading"] = std_threading
    return mod


def runs_a_child(test):
    method = getattr(type(test), test._testMethodName)
    try:
        src = inspect.getsource(method)
    except (OSError, TypeError):
        return False
    return any(m in src for m in CHILD_MARKERS)


def build(mod, names):
    suite = unittest.TestSuite()
    children = []
    for name in names:
        cls = getattr(mod, name, None)
        if cls is None:
            continue
        for test in unittest.defaultTestLoader.loadTestsFromTestCase(cls):
            short = f"{name}.{test._testMethodName}"
            if short in EXCLUDED or any(short.startswith(k + " ") for k in EXCLUDED):
                continue
            if runs_a_child(test):
                children.append(short)
                continue
            if os.environ.get("SUITE_K") and os.environ["SUITE_K"] not in short:
                continue
            suite.addTest(test)
    return suite, children


def main():
    names = sys.argv[1:] or CLASSES
    mod = load()
    assert mod.threading.Thread is pthreading.Thread
    suite, children = build(mod, names)
    result = unittest.TextTestRunner(verbosity=int(os.environ.get("SUITE_VERBOSITY", "1")),
                                     stream=sys.stderr).run(suite)
    failed = sorted(".".join(t.id().split(".")[-2:]) for t, _ in result.failures + result.errors)
    print(json.dumps({"run": result.testsRun, "failed": failed,
                      "skipped": [(t.id(), why) for t, why in result.skipped],
                      "children": children, "excluded": EXCLUDED,
                      "known_failing": KNOWN_FAILING}))
    unexpected = [t for t in failed if t.split(" ")[0] not in KNOWN_FAILING]
    return 1 if unexpected else 0


if __name__ == "__main__":
    rc = main()
    # A failing test may leave a non-daemon thread behind, for which the interpreter would wait
    # at exit; the summary is out, so end here.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
