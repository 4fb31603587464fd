"""Helpers shared by the tests: the stdlib oracle and subprocess runners."""
import math
import os
import subprocess
import sys
import textwrap
import threading as std_threading

from pyconc import threading as pc_threading

MODULES = [std_threading, pc_threading]
MODULE_IDS = ["stdlib", "pyconc"]


def outcome(fn, *args):
    """What calling fn(*args) does: ('ok', value) or ('raise', type, message)."""
    try:
        value = fn(*args)
    except BaseException as exc:  # the oracle compares every exception, KeyboardInterrupt too
        return ("raise", type(exc), str(exc))
    if isinstance(value, float) and math.isnan(value):
        value = "nan"
    return ("ok", value)


def assert_same(fn):
    """fn(module) must behave the same on the stdlib's threading and on pyconc.threading."""
    expected = outcome(fn, std_threading)
    actual = outcome(fn, pc_threading)
    assert actual == expected, f"pyconc: {actual!r}, stdlib: {expected!r}"
    return actual


def run_python(code, timeout=30, env=None, **kwargs):
    """Runs code in a fresh interpreter; returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ if env is None else env, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=full_env, **kwargs)
