"""Runs greenlet's own test suite (it ships inside the installed greenlet package as
greenlet.tests) against pyconc.greenlet.

A stand-in package named `greenlet` is written to a temporary directory that goes first on
PYTHONPATH, for this process and every interpreter the suite starts: its names are pyconc's, its
`greenlet._greenlet` offers the introspection helpers the suite's base class calls, and its
__path__ also reaches the installed greenlet's directory, so that `greenlet.tests` is loaded from
there. Nothing of greenlet is copied.

    python tests/conformance/greenlet_suite.py      # prints a JSON summary, exit 0 if all passed
    SUITE_K=test_name python tests/conformance/greenlet_suite.py test_greenlet   # one test

EXCLUDED lists the tests that cannot apply, each with the reason."""
import importlib.util
import json
import os
import sys
import tempfile
import unittest

# Whole modules that need greenlet's C API or build details.
EXCLUDED_MODULES = {
    "test_cpp": "drives greenlet through C/C++ extension modules built against greenlet's C API",
    "test_extension_interface": "drives greenlet through a C extension built against greenlet's "
                                "C API (PyGreenlet_Import)",
    "test_version": "checks greenlet's own release metadata",
}

# Single tests, by id suffix: they use greenlet internals or its C API.
_UNSWITCHABLE = "uses greenlet._greenlet.UnswitchableGreenlet, a test hook inside greenlet's C " \
                "extension"
_C_EXT = "imports greenlet's _test_extension, built against greenlet's C API"
_INTERNAL = "calls greenlet._greenlet.set_thread_local/enable_optional_cleanup, internals of " \
            "greenlet's C extension"
EXCLUDED = {
    "TestBrokenGreenlets.test_failed_to_initialstub": _UNSWITCHABLE,
    "TestBrokenGreenlets.test_failed_to_switch_into_running": _UNSWITCHABLE,
    "TestBrokenGreenlets.test_failed_to_slp_switch_into_running":
        "runs fail_slp_switch.py, which " + _UNSWITCHABLE[5:],
    "TestGreenlet.test_get_stack_with_nested_c_calls":
        "drives greenlet through _test_extension_cpp, built against greenlet's C API",
    "TestInterpreterShutdown.test_api_getcurrent_no_system_error_at_module_gc_time": _C_EXT,
    "TestInterpreterShutdown.test_switch_no_error_at_module_gc_time": _C_EXT,
    "TestLeaks.test_issue251_issue252_need_to_collect_in_background_cleanup_disabled": _INTERNAL,
    "TestLeaks.test_issue251_with_cleanup_disabled": _INTERNAL,
    "TestLeaks.test_issue251_issue252_explicit_reference_not_collectable": _INTERNAL,
    "TestLeaks.test_issue251_issue252_need_to_collect_in_background": _INTERNAL,
    "TestLeaks.test_issue251_killing_cross_thread_leaks_list": _INTERNAL,
    "TestTrashCanReEnter.test_it":
        "reads greenlet._greenlet.get_tstate_trash_delete_nesting, an internal of greenlet's C "
        "extension",
}

if sys.version_info >= (3, 14):
    EXCLUDED["TestGreenlet.test_throw_to_dead_thread_doesnt_crash"] = (
        "requires a leak (fails_leakcheck_on_py314_or_less: greenlet keeps what the suspended "
        "frame of a greenlet of an ended thread holds on its value stack); from CPython 3.14 on, "
        "where that value stack is known, pyconc frees it (tests/test_greenlet_frames.py), and the "
        "leak check then fails with 'Expected ... to leak but it did not'")

# Tests of public behaviour that pyconc does not pass yet (none). The pytest wrapper requires the
# failures to be exactly these: a new failure fails, and so does one of these starting to pass
# (so that this list is kept true).
KNOWN_FAILING = {}

SHIM_INIT = '''
"""Stand-in `greenlet` package for running greenlet's test suite against pyconc.greenlet."""
from pyconc.greenlet import *  # greenlet, getcurrent, GreenletExit, error, settrace, ...
__version__ = {version!r}
__path__.append({real!r})          # greenlet.tests comes from the installed greenlet
from . import _greenlet
'''

SHIM_GREENLET = '''
"""The introspection helpers greenlet's test base class uses."""
from pyconc._core import _greenlet_pending_cleanups as get_pending_cleanup_count
from pyconc._core import _greenlet_total_main_greenlets as get_total_main_greenlets
'''


def write_shim(root):
    spec = importlib.util.find_spec("greenlet")
    if spec is None or spec.origin is None:
        raise SystemExit("the greenlet package (the suite's home) is not installed")
    real = os.path.dirname(spec.origin)
    from importlib.metadata import version
    pkg = os.path.join(root, "greenlet")
    os.makedirs(pkg)
    with open(os.path.join(pkg, "__init__.py"), "w") as f:
        f.write(SHIM_INIT.format(version=version("greenlet"), real=real))
    with open(os.path.join(pkg, "_greenlet.py"), "w") as f:
        f.write(SHIM_GREENLET)
    return real


def main():
    root = tempfile.mkdtemp(prefix="pyconc-greenlet-suite-")
    real = write_shim(root)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    sys.path.insert(0, root)
    for name in [m for m in sys.modules if m == "greenlet" or m.startswith("greenlet.")]:
        del sys.modules[name]
    import greenlet
    assert greenlet.greenlet.__module__ == "pyconc.greenlet", greenlet.greenlet
    names = sorted(f[:-3] for f in os.listdir(os.path.join(real, "tests"))
                   if f.startswith("test_") and f.endswith(".py"))
    only = sys.argv[1:]
    suite = unittest.TestSuite()
    for name in names:
        if name in EXCLUDED_MODULES or (only and name not in only):
            continue
        loaded = unittest.defaultTestLoader.loadTestsFromName(f"greenlet.tests.{name}")
        for test in _flatten(loaded):
            if any(test.id().endswith(key) for key in EXCLUDED):
                continue
            if os.environ.get("SUITE_K") and os.environ["SUITE_K"] not in test.id():
                continue
            suite.addTest(test)
    result = unittest.TextTestRunner(verbosity=int(os.environ.get("SUITE_VERBOSITY", "1")), stream=sys.stderr).run(suite)
    summary = {
        "run": result.testsRun,
        "failures": [t.id() for t, _ in result.failures],
        "errors": [t.id() for t, _ in result.errors],
        "skipped": [(t.id(), why) for t, why in result.skipped],
        "excluded_modules": EXCLUDED_MODULES,
        "excluded": EXCLUDED,
        "known_failing": KNOWN_FAILING,
    }
    print(json.dumps(summary))
    failed = {t.id() for t, _ in result.failures + result.errors}
    unexpected = [t for t in failed if not any(t.endswith(k) for k in KNOWN_FAILING)]
    return 1 if unexpected else 0


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


if __name__ == "__main__":
    sys.exit(main())
