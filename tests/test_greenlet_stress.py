"""pyconc.greenlet under load and at the edges: 100,000 parked greenlets, deep Python and C
recursion inside a greenlet, leaks, many OS threads switching at once, suspended greenlets at
thread and interpreter exit, and the aarch64 switch compiling with Debian's cross compiler."""
import gc
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading

import pytest

import pyconc.greenlet as pg

from .support import run_python

pytestmark = pytest.mark.timeout(180)
HERE = os.path.dirname(os.path.abspath(__file__))


def test_100000_parked_greenlets_then_all_resumed():
    r = run_python("""
        from pyconc.greenlet import greenlet, getcurrent
        with open("/proc/sys/vm/max_map_count") as f:
            print("max_map_count", f.read().strip())
        main = getcurrent()
        def park(i):
            got = main.switch(i)
            return got + i
        gs = [greenlet(park) for _ in range(100_000)]
        assert [g.switch(i) for i, g in enumerate(gs)] == list(range(100_000))
        alive = sum(1 for g in gs if g and not g.dead)
        total = sum(g.switch(1) for g in gs)
        print("alive", alive, "total", total, "dead", all(g.dead for g in gs))
    """, timeout=150)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "alive 100000 total 5000050000 dead True" in r.stdout


def test_python_recursion_limit_inside_greenlet_is_recursionerror():
    r = run_python("""
        import sys
        from pyconc.greenlet import greenlet
        sys.setrecursionlimit(20000)
        def rec(n):
            return rec(n + 1)
        def body():
            try:
                rec(0)
            except RecursionError:
                return "RecursionError"
        print(greenlet(body).switch())
        print(greenlet(body).switch())
    """)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["RecursionError", "RecursionError"]


def test_c_recursion_inside_greenlet():
    def body():
        nested = []
        for _ in range(500):
            nested = [nested]
        d = {}
        cur = d
        for _ in range(400):
            cur["k"] = {}
            cur = cur["k"]
        return len(json.dumps(nested)), len(repr(d))

    main_result = body()
    assert pg.greenlet(body).switch() == main_result

    def deep_in_greenlet_chain(n):
        if n == 0:
            return body()
        return pg.greenlet(deep_in_greenlet_chain).switch(n - 1)
    assert deep_in_greenlet_chain(50) == main_result


def test_no_leak_over_100000_cycles():
    sentinel = object()
    main = pg.getcurrent()

    def f(x):
        y = main.switch(x)
        return y

    def cycle(n):
        for _ in range(n):
            g = pg.greenlet(f)
            g.switch(sentinel)
            g.switch(sentinel)

    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096
    cycle(20_000)
    gc.collect()
    base_refs = sys.getrefcount(sentinel)
    base_rss = rss()
    cycle(100_000)
    gc.collect()
    assert sys.getrefcount(sentinel) == base_refs
    if os.environ.get("PYCONC_UNDER_ASAN") != "1":
        # (under ASan, freed memory sits in the sanitizer's quarantine: RSS says nothing there)
        assert rss() - base_rss < 4 * 1024 * 1024


def test_greenlets_switching_in_8_threads():
    errors = []
    results = []

    def thread_body(t):
        try:
            main = pg.getcurrent()

            def worker(i):
                total = 0
                while True:
                    v = main.switch(total)
                    if v is None:
                        return total
                    total += v
            gs = [pg.greenlet(worker) for _ in range(20)]
            for g in gs:
                g.switch(0)
            for rnd in range(300):
                for g in gs:
                    g.switch(t)
            results.append(sum(g.switch(None) for g in gs))
        except BaseException as e:  # reported by the assertion below
            errors.append(repr(e))
    ts = [threading.Thread(target=thread_body, args=(t,)) for t in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    assert sorted(results) == sorted(t * 300 * 20 for t in range(8))


def test_suspended_greenlets_at_thread_and_interpreter_exit():
    r = run_python("""
        import threading
        from pyconc.greenlet import greenlet, getcurrent
        keep = []
        def in_thread():
            main = getcurrent()
            def parked():
                try:
                    main.switch()
                finally:
                    print("finally in thread greenlet", flush=True)
            g = greenlet(parked)
            g.switch()
            keep.append(g)          # outlives its thread, suspended
        t = threading.Thread(target=in_thread)
        t.start(); t.join()
        try:
            keep[0].switch()
        except Exception as e:
            print(type(e).__name__, e, flush=True)
        del keep[:]                # its thread is gone: freed without running its code
        main = getcurrent()
        def parked_main():
            main.switch()
        g2 = greenlet(parked_main)
        g2.switch()
        print("exiting with a suspended greenlet", flush=True)
    """)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert lines[0] == "error cannot switch to a different thread (which happens to have exited)"
    assert "finally in thread greenlet" not in r.stdout
    assert lines[-1] == "exiting with a suspended greenlet"
    assert "Fatal" not in r.stderr and "Segmentation" not in r.stderr


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None,
                    reason="Debian's aarch64 cross compiler (gcc-aarch64-linux-gnu) is not "
                           "installed; .ci/run installs it when apt-get can")
def test_aarch64_switch_compiles(tmp_path):
    src = os.path.join(HERE, os.pardir, "csrc", "core", "switch.c")
    obj = tmp_path / "switch_aarch64.o"
    r = subprocess.run(["aarch64-linux-gnu-gcc", "-c", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-o", str(obj), src], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    syms = subprocess.run(["aarch64-linux-gnu-nm", str(obj)], capture_output=True, text=True)
    assert "pc_stack_switch" in syms.stdout


def test_unsupported_architecture_is_an_error(tmp_path):
    # The selector must refuse an architecture it has no switch for, never build a broken one.
    src = os.path.join(HERE, os.pardir, "csrc", "core", "switch.c")
    (tmp_path / "stdint.h").write_text("/* stand-in: the system headers need a known arch */\n")
    r = subprocess.run(["gcc", "-E", "-nostdinc", "-I", str(tmp_path), "-U__x86_64__",
                        "-U__aarch64__", src], capture_output=True, text=True)
    assert r.returncode != 0
    assert "no stack switch for this architecture" in r.stderr


VALGRIND_SCRIPT = """
from pyconc.greenlet import greenlet, getcurrent, GreenletExit
main = getcurrent()
def worker(i):
    total = 0
    try:
        while True:
            total += main.switch(i)
    except GreenletExit:
        return total
gs = [greenlet(worker) for _ in range(50)]
for g in gs: g.switch(1)
for r in range(20):
    for g in gs: g.switch(r)
for g in gs: g.throw()
def rec(n): return 0 if n == 0 else 1 + rec(n - 1)
print(greenlet(lambda: rec(300)).switch(), all(g.dead for g in gs))
"""


@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.skipif(os.environ.get("PYCONC_UNDER_ASAN") == "1",
                    reason="valgrind cannot run a process with the ASan runtime preloaded")
def test_switching_is_clean_under_valgrind(tmp_path):
    script = tmp_path / "vg.py"
    script.write_text(VALGRIND_SCRIPT)
    env = dict(os.environ, PYTHONMALLOC="malloc")
    env.pop("LD_PRELOAD", None)
    # sys.executable is the real interpreter binary (a wrapper script such as pyenv's shim would
    # have valgrind trace the shell instead).
    r = subprocess.run(["valgrind", "-q", "--num-callers=40", sys.executable, str(script)],
                       capture_output=True, text=True, env=env, timeout=540)
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stdout.split() == ["300", "True"]
    assert "Invalid read" not in r.stderr and "Invalid write" not in r.stderr, r.stderr[-4000:]
    # The interpreter itself (a build without valgrind support) has reports of its own, the same
    # with or without pyconc; none may involve pyconc's code.
    blocks = r.stderr.split("==\n")
    ours = [b for b in blocks if "csrc/" in b or "_core.cpython" in b]
    assert ours == [], "\n".join(ours)[-4000:]
