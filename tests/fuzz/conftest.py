"""Prints the size of the fuzz run (its profile, examples and operations) after the tests.

PYCONC_FUZZ_UNDER_HUB=1 gives the main thread a pyconc.gevent hub before any test runs (see
test_stdlib_faces_under_a_hub.py): main is then one of its greenlets, and the stdlib faces must
still answer as the stdlib does."""
import os

from .common import TALLY
from .profiles import PROFILE


def pytest_configure(config):
    if os.environ.get("PYCONC_FUZZ_UNDER_HUB") == "1":
        import pyconc.gevent
        pyconc.gevent.sleep(0)   # makes the main thread's hub; it stays for the whole run
        assert pyconc.gevent.get_hub() is not None


def pytest_terminal_summary(terminalreporter):
    if TALLY["examples"]:
        under = " (main is a greenlet of a hub)" if os.environ.get(
            "PYCONC_FUZZ_UNDER_HUB") == "1" else ""
        terminalreporter.write_line(
            f"fuzz ({PROFILE} profile){under}: {TALLY['examples']} examples, "
            f"{TALLY['operations']} operations")
