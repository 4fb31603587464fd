"""CPython's own Lib/test/test_threading.py (its thread-level classes, of the running
interpreter's version) against pyconc.threading; see threading_suite.py for how, and for what
is left out. The failures must be exactly threading_suite.KNOWN_FAILING."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import threading_suite  # noqa: E402


@pytest.mark.timeout(300)
def test_cpython_threading_suite():
    r = subprocess.run([sys.executable, os.path.join(HERE, "threading_suite.py")],
                       capture_output=True, text=True, timeout=280)
    assert r.stdout.strip(), r.stderr[-4000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    failed = {t.split(" ")[0] for t in summary["failed"]}
    known = set(threading_suite.KNOWN_FAILING)
    unexpected = sorted(failed - known)
    now_passing = sorted(known - failed)
    assert unexpected == [], "new failures:\n" + "\n".join(unexpected) + "\n" + r.stderr[-4000:]
    assert now_passing == [], f"these pass now; remove them from KNOWN_FAILING: {now_passing}"
    assert summary["run"] >= 20
