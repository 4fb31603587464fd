"""The frames of suspended greenlets: walking them (gr_frame, f_back, tracebacks) while other
greenlets use the same stack, and freeing them. Each scenario is a script run in a subprocess (a
crash must fail the test, not kill pytest), on pyconc.greenlet and, where the outcome is the
greenlet package's too, on greenlet (the oracle); the outputs must be the same.

From CPython 3.12 on, the eval loop links a frame that lives on the C stack into the frame chain
at every call from C into Python; a suspended greenlet's C stack is overwritten by the greenlets
that run after it, so walking its frames must step over those."""
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(120)


def run_script(code, *args, oracle=False):
    env = dict(os.environ)
    if oracle:
        # The oracle imports no pyconc: it runs without the sanitizer runtime (greenlet's stack
        # copy is a memcpy that AddressSanitizer would stop on).
        env.pop("LD_PRELOAD", None)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                       capture_output=True, text=True, timeout=100, env=env)
    assert r.returncode == 0, "%s exited with %s\n%s\n%s" % (
        args, r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    return r.stdout


# Greenlets suspended below calls from C (map, sorted's key, a class's __init__, a generator
# driven by list()), each through a different number of them, so that each one's C stack is
# overwritten by the next ones' with different contents; then every suspended greenlet's frames
# are walked from gr_frame, from a frame object taken inside it, and with the traceback module.
WALK = r'''
import sys, traceback
if sys.argv[1] == "pyconc":
    import pyconc.greenlet as m
else:
    import greenlet as m
main = m.getcurrent()
kept = {}


def leaf(i):
    kept[i] = sys._getframe()
    main.switch()
    return i


def through_c(i, depth):
    if depth == 0:
        return leaf(i)
    if depth % 4 == 1:
        return list(map(lambda _: through_c(i, depth - 1), [0]))[0]
    if depth % 4 == 2:
        return sorted([0], key=lambda _: through_c(i, depth - 1))[0]
    if depth % 4 == 3:
        class Init:
            def __init__(self):
                self.r = through_c(i, depth - 1)
        return Init().r

    def gen():
        yield through_c(i, depth - 1)
    return list(gen())[0]


def names(f):
    out = []
    while f is not None:
        out.append(f.f_code.co_name)
        f = f.f_back
    return out


glets = [m.greenlet(lambda i=i: through_c(i, 2 * i + 1)) for i in range(6)]
for g in glets:
    g.switch()
for i, g in enumerate(glets):
    print(i, "gr_frame:", names(g.gr_frame))
    print(i, "kept:", names(kept[i]))
    print(i, "stack:", [s.name for s in traceback.extract_stack(g.gr_frame)])
for i, g in enumerate(glets):
    print(i, "result:", g.switch(), g.dead)
'''


def test_frames_of_suspended_greenlets_across_calls_from_c():
    expected = run_script(WALK, "greenlet", oracle=True)
    assert run_script(WALK, "pyconc") == expected
    assert "5 gr_frame: ['leaf', 'through_c', '<lambda>', 'through_c', '<lambda>', " \
           "'through_c', '__init__', 'through_c', 'gen', 'through_c', '<lambda>'," in expected


# A greenlet suspended in a thread that then ends is freed without running its code: everything
# its frames held is released: locals, cells, and, where the version records the value stack of a
# frame suspended in a call from Python (3.14), that value stack too. A frame object still
# referenced keeps a copy of its locals.
UNWIND = r'''
import gc, sys, threading, weakref
import pyconc.greenlet as m


class Obj:
    pass


refs = []
frames = []


def track(kind, name):
    o = Obj()
    refs.append((kind, name, weakref.ref(o)))
    return o


def park(kind):
    parked_local = track(kind, "local")
    main = m.getcurrent().parent
    # the list display keeps two items on the value stack during the switch() call
    return [track(kind, "stack 1"), track(kind, "stack 2"), main.switch(), parked_local]


def cell_owner(kind):
    captured = track(kind, "cell")

    def inner():
        return captured, park(kind)
    return inner()


def thread_main(out):
    for kind in ("plain", "kept frame"):
        g = m.greenlet(cell_owner)
        g.switch(kind)
        if kind == "kept frame":
            frames.append(g.gr_frame)
        out.append(g)


out = []
t = threading.Thread(target=thread_main, args=(out,))
t.start()
t.join()
del out[:]
gc.collect()
alive = lambda: sorted("%s: %s" % (k, n) for k, n, r in refs if r() is not None)
print("alive:", alive())
f = frames[0]
print("kept frame:", f.f_code.co_name, sorted(f.f_locals))
del f, frames[:]
gc.collect()
print("after the frame:", alive())
'''


def test_greenlet_of_an_ended_thread_is_unwound_without_leaks():
    out = run_script(UNWIND)
    # The frame object kept by the caller keeps park's locals (and, as a copy of the frame, what
    # it knows of the value stack); everything else is freed.
    assert "kept frame: park ['kind', 'main', 'parked_local']" in out, out
    if sys.version_info >= (3, 14):
        assert "after the frame: []" in out, out
        assert "alive: ['kept frame: local', 'kept frame: stack 1', 'kept frame: stack 2']" \
            in out, out
    else:
        # before 3.14 the value stack of a frame that is calling C code is not recorded: its
        # items stay alive (a leak, never a wrong decref); locals and cells are freed
        assert "after the frame: ['kept frame: stack 1', 'kept frame: stack 2', " \
               "'plain: stack 1', 'plain: stack 2']" in out, out


# Suspended greenlets that go away: released in their own thread (killed with GreenletExit: the
# interpreter unwinds their frames), and a greenlet of an ended thread kept only by a reference
# cycle through its own frame (the collector frees it; its frames are unwound without running).
COLLECTED = r'''
import gc, sys, threading, weakref
import pyconc.greenlet as m


class Obj:
    pass


refs = []
ran = []


def track(kind, name):
    o = Obj()
    refs.append((kind, name, weakref.ref(o)))
    return o


def park(kind, box):
    local = track(kind, "local")
    box.me = m.getcurrent() if kind == "cycle" else None     # greenlet -> frame -> box -> greenlet
    try:
        return [track(kind, "stack"), m.getcurrent().parent.switch(), local]
    finally:
        ran.append(kind)


g = m.greenlet(park)
g.switch("released", Obj())
refs.append(("released", "greenlet", weakref.ref(g)))
del g


def thread_main():
    g = m.greenlet(park)
    g.switch("cycle", Obj())
    refs.append(("cycle", "greenlet", weakref.ref(g)))


t = threading.Thread(target=thread_main)
t.start()
t.join()
for _ in range(3):
    gc.collect()
print("finally ran in:", ran)
print("alive:", sorted("%s: %s" % (k, n) for k, n, r in refs if r() is not None))
'''


def test_suspended_greenlets_that_go_away_release_what_they_held():
    out = run_script(COLLECTED)
    assert "finally ran in: ['released']" in out, out        # not in the ended thread's
    if sys.version_info >= (3, 14):
        assert "alive: []" in out, out
    else:
        # before 3.14, the value stack of the frame suspended in switch() in the ended thread
        # stays (see test_greenlet_of_an_ended_thread_is_unwound_without_leaks)
        assert "alive: ['cycle: stack']" in out, out
