"""The stdlib faces' differential machines again, in a process whose main thread has a
pyconc.gevent hub (main is then a greenlet that waits cooperatively).

A test that gave main a hub once made a later machine fail (pyconc.queue.Queue took gevent's
timeout rules in a greenlet: a zero timeout waited one loop turn, and one _qsize call more than
the stdlib's came after a wait that timed out), which the regular run, in its file order, never
showed. This runs the queue and threading machines in a fresh pytest process with
PYCONC_FUZZ_UNDER_HUB=1 (conftest.py), so that the order of the files no longer decides it."""
import os
import subprocess
import sys

import pytest

from .profiles import PROFILE

pytestmark = pytest.mark.timeout(900 if PROFILE != "long" else 3600)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


@pytest.mark.parametrize("machine", ["test_model_queue.py", "test_model_threading.py"])
def test_machine_with_a_hub_in_main(machine):
    env = dict(os.environ, PYCONC_FUZZ_UNDER_HUB="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        os.path.join(HERE, machine)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=850 if PROFILE != "long" else 3500)
    tail = (r.stdout + r.stderr)[-6000:]
    assert r.returncode == 0, tail
    assert "(main is a greenlet of a hub)" in r.stdout, tail
