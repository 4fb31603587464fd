"""pyconc's Python faces are its own code: no file may carry lines taken from gevent's sources.

The project reads other projects to learn and never copies their code or text. The drop-in
contract makes some text shared by necessity -- names, signatures (`def`/`class` lines), imports
and the exact error messages the oracle tests pin -- so those are not counted. Every other code or
docstring line of 25 characters or more that also occurs, stripped, in the installed gevent
package's Python sources counts as shared; a file may have at most MAX_SHARED of them (one-line
bodies that any implementation of the same API would write). Comments are not compared.

Lines that also occur in the running interpreter's own stdlib sources are not gevent's: gevent's
socket and ssl classes subclass and mirror the stdlib's, and the stdlib is the module a
drop-in face follows (its method bodies that delegate, its attribute assignments). They are
left out of this count."""
import glob
import os
import re
import sysconfig

import pytest

gevent = pytest.importorskip("gevent", reason="the comparison needs gevent's sources (a test extra)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_SHARED = 8
MIN_LEN = 25
API = re.compile(r"^(def |class |async def |@|raise \w+\(['\"]|['\"][\w.]+['\"],?$|__all__|"
                 r"__implements__|__imports__|__extra__|import |from )")


def _code_lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            s = line.strip()
            if s and not s.startswith("#"):
                yield s


def _stdlib_lines():
    lib = sysconfig.get_paths()["stdlib"]
    lines = set()
    for p in glob.glob(os.path.join(lib, "*.py")) + glob.glob(os.path.join(lib, "*", "*.py")):
        lines.update(_code_lines(p))
    return lines


def _gevent_lines():
    base = os.path.dirname(gevent.__file__)
    lines = set()
    for p in glob.glob(os.path.join(base, "**", "*.py"), recursive=True):
        if os.sep + "tests" + os.sep in p or os.sep + "testing" + os.sep in p:
            continue
        lines.update(_code_lines(p))
    return lines - _stdlib_lines()


FILES = sorted(glob.glob(os.path.join(ROOT, "pyconc", "**", "*.py"), recursive=True))


@pytest.fixture(scope="module")
def theirs():
    return _gevent_lines()


@pytest.mark.parametrize("path", FILES, ids=[os.path.relpath(p, ROOT) for p in FILES])
def test_no_lines_taken_from_gevent(path, theirs):
    shared = [s for s in _code_lines(path)
              if len(s) >= MIN_LEN and s in theirs and not API.match(s)]
    assert len(shared) <= MAX_SHARED, (
        "%d lines of %s also occur in gevent's sources (at most %d allowed):\n  %s"
        % (len(shared), os.path.relpath(path, ROOT), MAX_SHARED, "\n  ".join(shared)))
