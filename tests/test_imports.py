"""What importing each face loads (issue 10: import cost at most 2 ms over the stdlib module it
replaces; bench/bench_imports.py measures the time, this checks the structure that keeps it low,
without timing anything)."""
import subprocess
import sys

import pytest


def loaded_after(stmt):
    code = "import sys; before = set(sys.modules); %s; print(sorted(set(sys.modules) - before))" % stmt
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return set(eval(r.stdout))


@pytest.mark.parametrize("face", ["threading", "multiprocessing"])
def test_face_does_not_import_the_stdlib_queue_module(face):
    # the queue exceptions (queue.Empty/Full) are loaded on first use, not by pyconc._core's init
    assert "queue" not in loaded_after("from pyconc import %s" % face)


def test_bare_import_loads_no_face():
    new = loaded_after("import pyconc")
    assert not {"pyconc.threading", "pyconc.queue", "pyconc.multiprocessing", "pyconc._core",
                "pyconc.gevent"} & new, new


def test_queue_exceptions_are_the_stdlib_ones_once_loaded():
    r = subprocess.run([sys.executable, "-c", """
import queue
from pyconc import multiprocessing as mp
from pyconc import queue as pq
import pyconc._core as core
q = mp.Queue()
try:
    q.get_nowait()
except queue.Empty:
    print("mp Empty ok")
try:
    pq.Queue(1).get_nowait()
except queue.Empty:
    print("Empty ok")
print(core.Empty is queue.Empty, core.Full is queue.Full, pq.ShutDown is core.ShutDown)
"""], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "mp Empty ok\nEmpty ok\nTrue True True\n"


def test_sources_compile_without_warnings():
    # every Python file of pyconc compiles without a warning on the running version (3.14: a
    # 'return' in a 'finally' block is a SyntaxWarning, printed at the first import)
    import pathlib
    import warnings
    root = pathlib.Path(__file__).resolve().parent.parent / "pyconc"
    bad = []
    for path in sorted(root.rglob("*.py")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
        bad += ["%s: %s" % (path.relative_to(root), w.message) for w in caught]
    assert bad == []
