"""CPython's own multiprocessing tests (Lib/test/_test_multiprocessing.py) against
pyconc.multiprocessing; see mp_suite.py for how, and for what is excluded. The failures must be
exactly mp_suite.KNOWN_FAILING (none today)."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mp_suite  # noqa: E402


@pytest.mark.timeout(600)
def test_cpython_multiprocessing_suite():
    r = subprocess.run([sys.executable, os.path.join(HERE, "mp_suite.py")],
                       capture_output=True, text=True, timeout=550)
    assert r.stdout.strip(), r.stderr[-4000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    failed = set(summary["failed"])
    known = set(mp_suite.KNOWN_FAILING)
    unexpected = sorted(t for t in failed if not any(t.endswith(k) for k in known))
    now_passing = sorted(k for k in known if not any(t.endswith(k) for t in failed))
    assert unexpected == [], "new failures:\n" + "\n".join(unexpected) + "\n" + r.stderr[-4000:]
    assert now_passing == [], f"these pass now; remove them from KNOWN_FAILING: {now_passing}"
    assert summary["run"] >= 100
