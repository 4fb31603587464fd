"""Fixtures for the gevent-face behaviour tests.

Every test here takes the `gv` fixture and runs twice: once on the real gevent package (the
oracle, from the test extras) and once on pyconc.gevent. The expected values written in a test
are the ones gevent gives, so the gevent half proves the test itself right; the pyconc half holds
pyconc.gevent to it. pyconc.gevent is imported lazily, inside the fixture: while it does not
exist (or does not import), every pyconc half ERRORS at setup with that reason, and the gevent
halves still run.

Scenarios that need a fresh process (a fresh hub, stderr capture, signals, fork, SystemExit,
LoopExit of the main greenlet) run as subprocess scripts through `gv.run(code)`: the script sees
`gevent` (the module under test) and `sub(name)` (its submodule `name`), so its body is the same
for both."""
import importlib
import os
import re
import subprocess
import sys
import textwrap

import pytest

UNDER_ASAN = os.environ.get("PYCONC_UNDER_ASAN") == "1"

TARGETS = ["gevent", "pyconc.gevent"]
IDS = ["gevent", "pyconc"]

SUBMODULES = ("event", "queue", "lock", "pool", "local", "threadpool", "hub", "timeout",
              "greenlet", "exceptions", "util", "socket", "ssl", "select", "selectors")
# issue 12, wt-gmonkey: monkey patching, subprocess, os, signal, servers
SUBMODULES += ("monkey", "subprocess", "os", "signal", "server", "baseserver", "events",
               "thread", "threading")

# The script header for subprocess scenarios: the same body runs against either target.
_HEADER = '''\
import importlib, sys
MOD = {mod!r}
def sub(name):
    return importlib.import_module(MOD + "." + name)
gevent = importlib.import_module(MOD)
'''


class Face:
    """One target (gevent or pyconc.gevent): `.gevent` is the top module, `.queue`, `.event`,
    ... its submodules, imported on first use."""

    def __init__(self, name):
        self.name = name
        self.is_pyconc = name.startswith("pyconc")
        self.gevent = importlib.import_module(name)

    def __getattr__(self, attr):
        if attr in SUBMODULES:
            mod = importlib.import_module(self.name + "." + attr)
            setattr(self, attr, mod)
            return mod
        raise AttributeError(attr)

    def run(self, code, timeout=60, env=None, **kwargs):
        """Runs `code` in a fresh interpreter against this target; returns CompletedProcess."""
        full_env = dict(os.environ if env is None else env, PYTHONIOENCODING="utf-8",
                        PYTHONUNBUFFERED="1")
        script = _HEADER.format(mod=self.name) + textwrap.dedent(code)
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=timeout, env=full_env, **kwargs)

    def popen(self, code, env=None, **kwargs):
        full_env = dict(os.environ if env is None else env, PYTHONIOENCODING="utf-8",
                        PYTHONUNBUFFERED="1")
        script = _HEADER.format(mod=self.name) + textwrap.dedent(code)
        return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=full_env, **kwargs)


_faces = {}


def load_face(name):
    if name not in _faces:
        try:
            _faces[name] = Face(name)
        except ImportError as exc:
            if name == "gevent":
                pytest.skip("gevent (the oracle) is not installed: pip install -e '.[test]'")
            pytest.fail("%s is not importable (yet): %s: %s" % (name, type(exc).__name__, exc),
                        pytrace=False)
    return _faces[name]


@pytest.fixture(params=TARGETS, ids=IDS)
def gv(request):
    if UNDER_ASAN and request.param == "gevent":
        # Checked: with the ASan runtime preloaded, gevent's greenlets (the greenlet package)
        # abort in the intercepted memcpy of their stack copying. The gevent halves prove the
        # tests right in the regular run; under ASan the pyconc halves run alone.
        pytest.skip("the gevent oracle cannot run under ASan (the greenlet package's stack "
                    "copying aborts in ASan's memcpy); the regular CI pass runs it")
    face = load_face(request.param)
    yield face
    if "gevent" in sys.modules and not face.is_pyconc:
        # Let nothing a test left scheduled leak into the next one: run the gevent hub's ready
        # callbacks once.
        face.gevent.sleep(0)


def norm(text):
    """Normalises what differs between runs: addresses, timestamps, line numbers, file paths."""
    text = re.sub(r"0x[0-9a-fA-F]+", "0xADDR", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIMESTAMP", text)
    return text


def traceback_blocks(stderr):
    """Splits gevent-style error output into its non-empty lines, timestamps normalised."""
    return [line for line in norm(stderr).splitlines()]
