"""Greenlets and threads, with the greenlet package as the oracle: greenlets of a thread that has
ended, used from a new thread that got the same thread ident (glibc hands an ended thread's ident
to the next thread it starts), and the "GreenletExit did not kill" report.

Each scenario is a script run in a subprocess (a crash must fail the test, not kill pytest), once
on the greenlet package with the stdlib's threads (the oracle) and once on pyconc.greenlet with the
stdlib's and with pyconc's threads; the outputs must be the same."""
import os
import platform
import re
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("greenlet", reason="the greenlet package is the oracle; .ci/run installs it")

pytestmark = pytest.mark.timeout(120)

UNDER_ASAN = os.environ.get("PYCONC_UNDER_ASAN") == "1"
GLIBC = platform.libc_ver()[0] == "glibc"

# The ended thread leaves its main greenlet, a greenlet suspended in a try/finally and one never
# started. Every operation gets fresh ones (greenlet frees a greenlet of an ended thread the first
# time it notices the thread is gone, so operations on one greenlet would depend on their order).
ENDED_THREAD = r'''
import gc, os, sys, threading, time, weakref
MOD, THREADS = sys.argv[1], sys.argv[2]
if MOD == "pyconc":
    import pyconc.greenlet as m
else:
    import greenlet as m
if THREADS == "pyconc":
    from pyconc.threading import Thread
else:
    from threading import Thread


def os_threads():
    return len(os.listdir("/proc/self/task"))


def ended_thread():
    """The greenlets a thread left behind, once that OS thread is gone (its stack, and with it
    its ident, is then free for the next thread)."""
    box = {}
    base = os_threads()

    def body():
        main = m.getcurrent()

        def park():
            try:
                main.switch()
            finally:
                print("FINALLY RAN: a greenlet of an ended thread ran its code")

        g = m.greenlet(park)
        g.switch()
        box.update(main=main, suspended=g, ident=threading.get_ident(),
                   unstarted=m.greenlet(lambda: print("UNSTARTED RAN")))
    t = Thread(target=body)
    t.start()
    t.join()
    deadline = time.monotonic() + 10
    while os_threads() > base and time.monotonic() < deadline:
        time.sleep(0.001)
    return box


def describe(value):
    if isinstance(value, m.greenlet):
        return "a greenlet"
    if value is not None and type(value).__name__ == "frame":
        return "frame of " + value.f_code.co_name
    return repr(value)


def in_new_thread(box, op):
    out = []

    def body():
        out.append(threading.get_ident() == box["ident"])
        try:
            out.append("ok " + describe(op()))
        except Exception as e:
            out.append("%s: %s" % (type(e).__name__, e))
    t = Thread(target=body)
    t.start()
    t.join()
    return out


def as_parent(g):
    x = m.greenlet(lambda: "child ran")
    x.parent = g
    return x.switch()


def drop(box, which):
    g = box.pop(which)
    ref = weakref.ref(g)
    del g
    box.clear()
    gc.collect()
    if which == "main":
        # when the thread's own references to its main greenlet are dropped differs (greenlet:
        # at some later cleanup; pyconc: at the main thread's next pending call)
        return "dropped"
    return "freed" if ref() is None else "alive"


def drop_in_cycle(box, which):
    """The last reference in a reference cycle, collected by a thread that uses greenlets (the
    greenlet machine's crash before the thread identity fix: pyconc took the greenlet for one of
    this thread's, same ident, and killed it here)."""
    m.getcurrent()
    g = box.pop(which)
    g.cycle = [g]
    ref = weakref.ref(g)
    del g
    box.clear()
    gc.collect()
    if which == "main":
        return "dropped"
    return "freed" if ref() is None else "alive"


def g(box):
    return box[WHICH]


OPS = {
    "switch": lambda box: g(box).switch(),
    "switch(1, x=2)": lambda box: g(box).switch(1, x=2),
    "throw()": lambda box: g(box).throw(),
    "throw(ValueError)": lambda box: g(box).throw(ValueError("v")),
    "gr_frame": lambda box: g(box).gr_frame,
    "parent": lambda box: describe(g(box).parent) + (" (the ended thread's main)"
                                                     if g(box).parent is box["main"] else ""),
    "parent = new main": lambda box: setattr(g(box), "parent", m.getcurrent()),
    "parent = new greenlet": lambda box: setattr(g(box), "parent", m.greenlet(len)),
    "as parent": lambda box: as_parent(g(box)),
    "as parent (constructor)": lambda box: m.greenlet(lambda: "child ran", g(box)).switch(),
    "dead": lambda box: g(box).dead,
    "bool": lambda box: bool(g(box)),
    "gr_context": lambda box: g(box).gr_context,
    "last reference": lambda box: drop(box, WHICH),
    "last reference, in a cycle": lambda box: drop_in_cycle(box, WHICH),
}
reused = 0
for WHICH in ("main", "suspended", "unstarted"):
    for name, op in OPS.items():
        box = ended_thread()
        same, result = in_new_thread(box, lambda: op(box))
        reused += same
        print(WHICH, name, "->", result, flush=True)
        del box
        gc.collect()
print("ident reused %d of %d times" % (reused, 3 * len(OPS)), file=sys.stderr)
'''

# A greenlet that catches the GreenletExit its last reference's release throws, and switches
# away: greenlet reports it on stderr and keeps it (it is neither dead nor referenced).
DID_NOT_KILL = r'''
import gc, re, sys
if sys.argv[1] == "pyconc":
    import pyconc.greenlet as m
else:
    import greenlet as m
main = m.getcurrent()
log = []


def stubborn():
    while True:
        try:
            main.switch("parked")
        except m.GreenletExit:
            log.append("caught")
            log.append(main.switch("switched away"))


class Sub(m.greenlet):
    pass


for kind in (m.greenlet, Sub):
    g = kind(stubborn)
    g.switch()
    del g
    print(kind.__name__, log, file=sys.stderr, flush=True)
    del log[:]
    gc.collect()

keep = []


def resurrects():
    try:
        main.switch()
    except m.GreenletExit:
        keep.append(m.getcurrent())    # referenced again: not reported
        main.switch()


g = m.greenlet(resurrects)
g.switch()
del g
print("resurrected", len(keep), file=sys.stderr, flush=True)


def dies():
    try:
        main.switch()
    finally:
        log.append("finally")          # killed: not reported


g = m.greenlet(dies)
g.switch()
del g
print("killed", log, file=sys.stderr, flush=True)
'''


def run_script(code, *args, asan_runtime=True):
    env = dict(os.environ)
    if not asan_runtime:
        # The oracle imports no pyconc: it runs without the sanitizer runtime (greenlet's stack
        # copy is a memcpy that AddressSanitizer would stop on).
        env.pop("LD_PRELOAD", None)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                       capture_output=True, text=True, timeout=100, env=env)
    assert r.returncode == 0, "%s exited with %s\n%s\n%s" % (
        args, r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    return r


@pytest.mark.skipif(not GLIBC, reason="relies on glibc reusing an ended thread's ident")
@pytest.mark.parametrize("threads", ["threading", "pyconc"])
def test_greenlets_of_an_ended_thread_from_a_thread_with_its_ident(threads):
    """Issue 9, item 2: switch, throw, parent, gr_frame, last reference ... on greenlets of an
    ended thread, from a new thread with the same ident, segfaulted; greenlet raises its error
    and frees them without running them."""
    expected = run_script(ENDED_THREAD, "greenlet", "threading", asan_runtime=False).stdout
    r = run_script(ENDED_THREAD, "pyconc", threads)
    m = re.search(r"ident reused (\d+) of (\d+) times", r.stderr)
    # the case is reproduced when the ident is reused (nearly always, not always under ASan)
    assert m and 2 * int(m.group(1)) >= int(m.group(2)), r.stderr
    assert "RAN" not in r.stdout
    assert r.stdout == expected
    # the oracle's answers, so that a change in the oracle is seen
    assert "suspended switch -> error: cannot switch to a different thread (which happens to " \
           "have exited)" in expected
    assert "main as parent -> error: cannot switch to a different thread (which happens to " \
           "have exited)" in expected
    assert "suspended last reference -> ok 'freed'" in expected


def test_greenletexit_did_not_kill_is_reported():
    """Issue 9, item 12: greenlet writes "GreenletExit did not kill <greenlet>" to stderr when a
    released greenlet survives GreenletExit without being referenced again, and keeps it."""
    def normalized(stderr):
        return re.sub(r"<\S+ object at 0x[0-9a-f]+ \(otid=0x[0-9a-f]+\)", "<OBJECT", stderr)
    expected = normalized(run_script(DID_NOT_KILL, "greenlet", asan_runtime=False).stderr)
    actual = normalized(run_script(DID_NOT_KILL, "pyconc").stderr)
    assert actual == expected
    report = "GreenletExit did not kill <OBJECT suspended active started>\n"
    assert expected == (report + "greenlet ['caught']\n" + report + "Sub ['caught']\n"
                        "resurrected 1\nkilled ['finally']\n")


# Greenlets of a live thread, used from another thread: which thread a greenlet belongs to, and
# the messages. A greenlet not started yet belongs to the thread of its parent chain, as with
# greenlet: re-parented to another thread's greenlet, it starts there.
LIVE_THREAD = r'''
import re, sys, threading
if sys.argv[1] == "pyconc":
    import pyconc.greenlet as m
else:
    import greenlet as m


def attempt(label, fn):
    try:
        out = "ok %r" % (fn(),)
    except Exception as e:
        out = "%s: %s" % (type(e).__name__, e)
    out = re.sub(r"<\S+ object at 0x[0-9a-f]+ \(otid=0x[0-9a-f]+\)", "<OBJECT", out)
    print(label, "->", out.replace("\n", "|"), flush=True)


hold = {}
ready, done = threading.Event(), threading.Event()


def a():
    hold["main"] = m.getcurrent()
    g = m.greenlet(lambda: hold["main"].switch())
    g.switch()
    hold["suspended"] = g
    hold["unstarted"] = m.greenlet(lambda: "ran in " + threading.current_thread().name)
    ready.set()
    done.wait()


t = threading.Thread(target=a, name="A")
t.start()
ready.wait()
for k in ("main", "suspended", "unstarted"):
    attempt(k + " switch", lambda: hold[k].switch())
    attempt(k + " throw", lambda: hold[k].throw())
    attempt(k + " dead", lambda: hold[k].dead)
    attempt(k + " gr_context", lambda: hold[k].gr_context)
mine = m.greenlet(lambda: "ran in " + threading.current_thread().name)


def b():
    attempt("B: switch to the main thread's unstarted greenlet", lambda: mine.switch())
    u = hold["unstarted"]
    attempt("B: re-parent A's unstarted greenlet here", lambda: setattr(u, "parent", m.getcurrent()))
    attempt("B: switch to it", lambda: u.switch())
    y = m.greenlet(lambda: 1)
    attempt("B: parent = A's suspended greenlet", lambda: setattr(y, "parent", hold["suspended"]))
    attempt("B: switch to it", lambda: y.switch())


tb = threading.Thread(target=b, name="B")
tb.start()
tb.join()
done.set()
t.join()
'''


def test_greenlets_of_a_live_thread_from_another_thread():
    expected = run_script(LIVE_THREAD, "greenlet", asan_runtime=False).stdout
    assert run_script(LIVE_THREAD, "pyconc").stdout == expected
    assert "B: switch to it -> ok 'ran in B'" in expected
    assert "main switch -> error: Cannot switch to a different thread|\tCurrent:  <OBJECT " \
           "current active started main>|\tExpected: <OBJECT suspended active started main>" \
           in expected
