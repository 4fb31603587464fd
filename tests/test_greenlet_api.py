"""pyconc.greenlet against the greenlet package (installed from PyPI for the tests) as the oracle:
each scenario runs on both modules and must leave the same log."""
import contextvars
import gc
import os
import sys
import threading
import time
import weakref

import pytest

import pyconc.greenlet as pg

greenlet_pkg = pytest.importorskip(
    "greenlet", reason="the greenlet package is the oracle; .ci/run installs it")

pytestmark = pytest.mark.timeout(60)

MODS = [greenlet_pkg, pg]

# Under the ASan build (.ci/sanitize sets PYCONC_UNDER_ASAN=1) the oracle cannot run: the greenlet
# package copies stacks with an intercepted memcpy, which AddressSanitizer stops on as soon as the
# stack holds instrumented (pyconc) frames. There each scenario runs on pyconc alone, which still
# checks for memory errors; the comparison with greenlet is made by the regular run.
UNDER_ASAN = os.environ.get("PYCONC_UNDER_ASAN") == "1"


def describe(exc):
    return ("raise", type(exc).__name__, str(exc))


def run_both(scenario):
    logs = []
    for m in ([pg] if UNDER_ASAN else MODS):
        log = []
        try:
            log.append(("result", scenario(m, log)))
        except BaseException as exc:  # the oracle compares every outcome
            log.append(describe(exc))
        logs.append(log)
    if UNDER_ASAN:
        return logs[0]
    assert logs[1] == logs[0], f"\npyconc: {logs[1]}\ngreenlet: {logs[0]}"
    return logs[1]


def test_names():
    for name in ("greenlet", "getcurrent", "GreenletExit", "error", "settrace", "gettrace"):
        assert hasattr(pg, name)
    assert issubclass(pg.GreenletExit, BaseException)
    assert not issubclass(pg.GreenletExit, Exception)
    assert issubclass(pg.error, Exception)


@pytest.mark.parametrize("args,kwargs", [((), {}), ((1,), {}), ((1, 2), {}), ((), {"a": 1}),
                                         ((1,), {"a": 1}), (((1, 2),), {}), ((None,), {})])
def test_switch_return_value_rules(args, kwargs):
    def s(m, log):
        main = m.getcurrent()

        def f(*a, **k):
            log.append(("run got", a, k))
            log.append(("back in f", main.switch(*args, **kwargs)))
            return "done"
        g = m.greenlet(f)
        log.append(("first", g.switch(*args, **kwargs)))
        log.append(("second", g.switch(*args, **kwargs)))
        return g.dead
    run_both(s)


def test_result_and_exception_go_to_parent():
    def s(m, log):
        g = m.greenlet(lambda: 1 / 0)
        try:
            g.switch()
        except ZeroDivisionError as e:
            log.append(("caught", str(e)))
        log.append(("dead", g.dead, bool(g)))
        g2 = m.greenlet(lambda: "value")
        return g2.switch(), g2.dead
    run_both(s)


def test_greenlet_exit_comes_back_as_value():
    def s(m, log):
        def f():
            raise m.GreenletExit("bye")
        r = m.greenlet(f).switch()
        return type(r).__name__, str(r)
    run_both(s)


def test_switch_to_dead_goes_to_parent():
    def s(m, log):
        main = m.getcurrent()

        def f():
            return "f result"
        g = m.greenlet(f)
        log.append(g.switch())
        log.append(("dead", g.dead))
        return g.switch("again")  # dead: the switch goes to its parent (main, ourselves)
    run_both(s)


def test_nested_parents_and_finish_order():
    def s(m, log):
        def inner():
            log.append("inner runs")
            return "inner result"

        def outer():
            child = m.greenlet(inner)
            log.append(("outer got", child.switch()))
            return "outer result"
        return m.greenlet(outer).switch()
    run_both(s)


def test_explicit_parent_receives_result():
    def s(m, log):
        main = m.getcurrent()

        def parent_body():
            log.append(("parent got", main.switch("parent ready")))
            return "parent end"
        p = m.greenlet(parent_body)
        log.append(p.switch())
        child = m.greenlet(lambda: "child end", parent=p)
        log.append(("main got", child.switch()))
        return p.dead, child.dead
    run_both(s)


def test_throw_into_suspended_greenlet():
    def s(m, log):
        main = m.getcurrent()

        def f():
            try:
                main.switch("suspended")
            except KeyError as e:
                log.append(("f caught", repr(e)))
                return "handled"
        g = m.greenlet(f)
        log.append(g.switch())
        log.append(g.throw(KeyError, "k"))
        return g.dead
    run_both(s)


def test_throw_greenlet_exit_default_and_unstarted_and_dead():
    def s(m, log):
        main = m.getcurrent()

        def f():
            try:
                main.switch(1)
            finally:
                log.append("finally ran")
        g = m.greenlet(f)
        g.switch()
        r = g.throw()
        log.append(("default throw", type(r).__name__, g.dead))
        fresh = m.greenlet(lambda: log.append("never"))
        r2 = fresh.throw()
        log.append(("unstarted", type(r2).__name__, fresh.dead))
        try:
            m.greenlet(lambda: None).throw(ValueError("v"))
        except ValueError as e:
            log.append(("unstarted value error", str(e)))
        return "ok"
    run_both(s)


def test_greenlet_exit_thrown_into_dead_greenlet_starts_unstarted_parent_without_arguments():
    """Found by the greenlet state machine (PYCONC_FUZZ=long): GreenletExit thrown into a dead
    greenlet goes on as a value to its nearest live parent; greenlet starts an unstarted one's
    run() with no arguments (pyconc passed the GreenletExit instance), a started one's switch()
    returns the instance. The same for a greenlet that dies of GreenletExit with a dead parent
    (pyconc looked at the dead parent only)."""
    def s(m, log):
        def parent_run(*args, **kwargs):
            log.append(("parent run", len(args), kwargs))
            return "parent done"

        def dead():
            g = m.greenlet(lambda: None)
            g.switch()
            return g
        g = dead()
        g.parent = m.greenlet(parent_run)
        log.append(g.throw())
        inner, outer = dead(), dead()     # a chain of dead greenlets before the unstarted one
        outer.parent = m.greenlet(parent_run)
        inner.parent = outer
        log.append(inner.throw(m.GreenletExit("named")))
        log.append(type(dead().throw()).__name__)   # the main greenlet gets the instance
        # a greenlet that dies of GreenletExit, with a dead parent whose parent has not started
        dead_parent = dead()
        dead_parent.parent = m.greenlet(parent_run)
        log.append(m.greenlet(lambda: log.append("never"), dead_parent).throw())
        return "ok"
    log = run_both(s)
    assert log.count(("parent run", 0, {})) == 3


def test_throw_argument_errors():
    for args in [(1,), (ValueError, 1, 2), (ValueError(), 1), (ValueError, None, "x")]:
        run_both(lambda m, log, a=args: m.greenlet(lambda: None).throw(*a))


def test_parent_checks():
    def cycle(m, log):
        g1 = m.greenlet(lambda: None)
        g2 = m.greenlet(lambda: None, parent=g1)
        g1.parent = g2
    run_both(cycle)
    run_both(lambda m, log: setattr(m.greenlet(lambda: None), "parent", 1))
    run_both(lambda m, log: delattr(m.greenlet(lambda: None), "parent"))
    run_both(lambda m, log: m.getcurrent().parent)


@pytest.mark.parametrize("op", ["parent = None", "parent = greenlet", "del parent", "run",
                                "run = len", "del run"])
def test_main_greenlet_has_no_run_and_a_fixed_parent(op):
    def s(m, log):
        main = m.getcurrent()
        return {"parent = None": lambda: setattr(main, "parent", None),
                "parent = greenlet": lambda: setattr(main, "parent", m.greenlet()),
                "del parent": lambda: delattr(main, "parent"),
                "run": lambda: main.run,
                "run = len": lambda: setattr(main, "run", len),
                "del run": lambda: delattr(main, "run")}[op]()
    run_both(s)


def test_run_attribute():
    def s(m, log):
        g = m.greenlet()
        log.append(hasattr(g, "run"))
        g.run = lambda: "set later"
        log.append(g.switch())
        try:
            g.run = len
        except AttributeError as e:
            log.append(("after start", str(e)))
        return hasattr(g, "run")
    run_both(s)

    def subclass(m, log):
        class G(m.greenlet):
            def run(self, x):
                return ("subclass run", x)
        return G().switch(5)
    run_both(subclass)


def test_bool_dead_and_gr_frame():
    def s(m, log):
        main = m.getcurrent()

        def f():
            main.switch()
        g = m.greenlet(f)
        log.append((bool(g), g.dead, g.gr_frame is None))
        g.switch()
        log.append((bool(g), g.dead, g.gr_frame.f_code.co_name))
        log.append(main.gr_frame is None)
        g.switch()
        return bool(g), g.dead, g.gr_frame is None
    run_both(s)


def test_gr_context_per_greenlet():
    var = contextvars.ContextVar("var", default="unset")

    def s(m, log):
        main = m.getcurrent()
        var.set("main")

        def f():
            log.append(("f sees", var.get()))
            var.set("f")
            main.switch()
            log.append(("f sees again", var.get()))
        g = m.greenlet(f)
        g.switch()
        log.append(("main sees", var.get()))
        log.append(("f context has", g.gr_context[var]))
        ctx = contextvars.Context()
        g.gr_context = ctx
        g.switch()
        try:
            g.gr_context = 1
        except TypeError as e:
            log.append(("bad context", type(e).__name__))
        return var.get()
    run_both(s)


def test_kill_on_last_reference():
    def s(m, log):
        main = m.getcurrent()

        def f():
            try:
                main.switch("parked")
            except m.GreenletExit:
                log.append("got GreenletExit")
                raise
            finally:
                log.append("finally")
        g = m.greenlet(f)
        log.append(g.switch())
        del g
        gc.collect()
        return "after"
    run_both(s)


@pytest.mark.parametrize("subclass", [False, True])
def test_greenlet_that_survives_its_kill_is_killed_again(subclass):
    def s(m, log):
        main = m.getcurrent()
        hub = m.greenlet(lambda: log.append("hub ran"))
        kind = type("Sub", (m.greenlet,), {}) if subclass else m.greenlet
        keep = []

        def worker():
            try:
                main.switch()
            except m.GreenletExit:
                log.append(("first kill", m.getcurrent().parent is main))
                keep.append(m.getcurrent())          # resurrected
                try:
                    hub.switch()                     # and parked again
                finally:
                    log.append("second kill ran its finally")
        g = kind(worker, parent=hub)
        g.switch()
        del g
        log.append(("parent restored", keep[0].parent is hub, keep[0].dead))
        ref = weakref.ref(keep[0])
        del keep[:]
        gc.collect()
        return ref() is None
    assert run_both(s)[-1] == ("result", True)


def test_greenlets_released_in_another_thread_are_killed_in_theirs():
    def s(m, log):
        class Sub(m.greenlet):
            pass
        refs_before = sys.getrefcount(Sub)
        glets, published, release = [], [], threading.Event()

        def park():
            try:
                m.getcurrent().parent.switch()
            finally:
                log.append("killed in own thread")

        def thread_main():
            g = Sub(park)
            glets.append(g)
            g.switch()
            del g
            published.append(1)
            release.wait(10)
            m.getcurrent()     # the thread's next greenlet call runs the queued kills
        threads = [threading.Thread(target=thread_main) for _ in range(40)]
        for t in threads:
            t.start()
        while len(published) < len(threads):
            threading.Event().wait(0.005)
        del glets[:]
        release.set()
        for t in threads:
            t.join()
        gc.collect()
        return sys.getrefcount(Sub) - refs_before
    assert run_both(s)[-1] == ("result", 0)


def test_greenlets_of_an_ended_thread_are_unwound_without_running():
    """pyconc only (greenlet keeps a suspended frame's locals in this case): a greenlet suspended
    in a thread that has ended cannot run again; when it is released its frames are unwound as if
    they returned, without running any code: their locals are freed, and a frame object still
    referenced elsewhere keeps its locals readable."""
    class Token:
        pass
    ran, refs, frames = [], [], []

    def park(token):
        inner_local = Token()
        refs.append(weakref.ref(inner_local))
        try:
            pg.getcurrent().parent.switch()
        finally:
            ran.append("finally")   # must not run: the thread is gone
        return token, inner_local

    def deeper(token):
        return park(token)

    def thread_main(out):
        for i in range(50):
            token = Token()
            refs.append(weakref.ref(token))
            g = pg.greenlet(deeper)
            g.switch(token)
            out.append(g)
        frames.append(out[0].gr_frame)   # the top frame of the first one, kept past the end
    out = []
    t = threading.Thread(target=thread_main, args=(out,))
    t.start()
    t.join()
    assert all(g and not g.dead for g in out[1:]) or all(g.dead for g in out)
    del out[:]
    gc.collect()
    assert ran == []
    assert [r() for r in refs[2:]] == [None] * (len(refs) - 2)   # locals of the others freed
    f = frames[0]
    assert f.f_code.co_name == "park"
    assert isinstance(f.f_locals["token"], Token)   # a frame object keeps its locals
    assert f.f_lineno > 0
    del f, frames[:]
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)


def test_cycle_through_suspended_greenlet_is_collected():
    def s(m, log):
        main = m.getcurrent()

        class Box:
            pass

        def f(box):
            box.me = m.getcurrent()     # cycle: box -> greenlet -> frame -> box
            try:
                main.switch()
            finally:
                log.append("killed")
        box = Box()
        g = m.greenlet(f)
        g.switch(box)
        ref = weakref.ref(g)
        del g, box
        for _ in range(3):
            gc.collect()
        return ref() is None
    run_both(s)


def test_cross_thread_switch_is_an_error():
    def s(m, log):
        holder = {}

        def other():
            holder["g"] = m.getcurrent()
            holder["main"] = m.getcurrent().parent
            holder["t_main_is_main"] = m.getcurrent().parent is None
        base = len(os.listdir("/proc/self/task"))
        t = threading.Thread(target=other)
        t.start()
        t.join()
        # greenlet learns that the thread has ended only when the OS thread is gone (a TLS
        # destructor), which may be after join() returns: wait for it, so that the oracle's
        # message does not depend on timing
        deadline = time.monotonic() + 10
        while len(os.listdir("/proc/self/task")) > base and time.monotonic() < deadline:
            time.sleep(0.001)
        try:
            holder["g"].switch()
        except m.error as e:
            log.append(("error", str(e)))
        return holder["t_main_is_main"]
    run_both(s)


def test_each_thread_has_its_own_main():
    def s(m, log):
        mains = []

        def body():
            cur = m.getcurrent()
            g = m.greenlet(lambda: m.getcurrent() is not cur)
            mains.append((cur.parent is None, g.switch()))
        ts = [threading.Thread(target=body) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return mains
    run_both(s)


def test_settrace_events():
    def s(m, log):
        main = m.getcurrent()
        names = {}

        def tracer(event, args):
            origin, target = args
            log.append((event, names.get(id(origin), "?"), names.get(id(target), "?")))
        old = m.settrace(tracer)
        try:
            def f():
                main.switch()
            g = m.greenlet(f)
            names[id(main)], names[id(g)] = "main", "g"
            g.switch()
            g.throw(m.GreenletExit)
            log.append(("gettrace is tracer", m.gettrace() is tracer))
        finally:
            m.settrace(old)
        return m.gettrace() is old
    run_both(s)


def test_deep_python_recursion_in_greenlet():
    def s(m, log):
        def rec(n):
            return 0 if n == 0 else 1 + rec(n - 1)

        def f():
            try:
                return rec(100000)
            except RecursionError:
                return "RecursionError"
        return m.greenlet(f).switch(), m.greenlet(lambda: rec(500)).switch()
    run_both(s)


def test_tracebacks_and_getframe_across_switches():
    def s(m, log):
        main = m.getcurrent()

        def f():
            log.append(sys._getframe().f_code.co_name)
            main.switch()
            raise ValueError("late")
        g = m.greenlet(f)
        g.switch()
        try:
            g.switch()
        except ValueError as e:
            tb = e.__traceback__
            names = []
            while tb:
                names.append(tb.tb_frame.f_code.co_name)
                tb = tb.tb_next
            log.append(names[-1])
        return sys._getframe().f_code.co_name
    run_both(s)


def test_exception_state_is_per_greenlet():
    def s(m, log):
        main = m.getcurrent()

        def f():
            try:
                raise KeyError("in f")
            except KeyError:
                main.switch()
                log.append(("f exc_info", repr(sys.exc_info()[1])))
        g = m.greenlet(f)
        try:
            raise IndexError("in main")
        except IndexError:
            g.switch()
            log.append(("main exc_info", repr(sys.exc_info()[1])))
            g.switch()
            log.append(("main exc_info again", repr(sys.exc_info()[1])))
        return repr(sys.exc_info()[1])
    run_both(s)


def test_many_switches_and_greenlets():
    def s(m, log):
        main = m.getcurrent()
        total = 0

        def worker(i):
            n = 0
            while True:
                n += main.switch(i)
        gs = [m.greenlet(worker) for _ in range(200)]
        for rnd in range(50):
            for i, g in enumerate(gs):
                total += g.switch(rnd if rnd else i)
        for g in gs:
            g.throw()
        return total, all(g.dead for g in gs)
    run_both(s)
