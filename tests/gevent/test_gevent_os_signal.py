"""gevent.os (nb_read/nb_write/make_nonblocking, tp_read/tp_write, fork, waitpid,
fork_and_watch, close) and gevent.signal_handler / gevent.signal, gevent 26 as the oracle (see
conftest.py). Signals and forks run in fresh interpreters (gv.run)."""
import os

import pytest

pytestmark = pytest.mark.timeout(60)


def _pipe_through(gv, read, write, pipe):
    # gevent's test__os: a producer fills the pipe well past its buffer while the consumer
    # starts later; if the writes blocked the thread, the consumer would never run
    gevent = gv.gevent
    r, w = pipe()
    nbytes = 1000000
    buf = memoryview(b'x' * 4096)
    counts = {'read': 0, 'written': 0}

    def produce():
        while counts['written'] != nbytes:
            left = nbytes - counts['written']
            counts['written'] += write(w, buf[:min(left, 4096)])

    def consume():
        while counts['read'] != nbytes:
            left = nbytes - counts['read']
            counts['read'] += len(read(r, min(left, 4096)))

    try:
        with gevent.Timeout(30):
            producer = gevent.spawn(produce)
            consumer = gevent.spawn_later(0.1, consume)
            gevent.joinall([producer, consumer], raise_error=True)
    finally:
        os.close(r)
        os.close(w)
    assert counts == {'read': nbytes, 'written': nbytes}


def test_nb_read_nb_write(gv):
    gos = gv.os

    def pipe():
        r, w = os.pipe()
        assert gos.make_nonblocking(r) is True
        assert gos.make_nonblocking(w) is True
        assert gos.make_nonblocking(w) is None
        return r, w
    _pipe_through(gv, gos.nb_read, gos.nb_write, pipe)


def test_tp_read_tp_write(gv):
    gos = gv.os
    _pipe_through(gv, gos.tp_read, gos.tp_write, os.pipe)


def test_nb_read_eof_and_errors(gv):
    gos = gv.os
    r, w = os.pipe()
    gos.make_nonblocking(r)
    os.write(w, b'abc')
    os.close(w)
    assert gos.nb_read(r, 2) == b'ab'
    assert gos.nb_read(r, 10) == b'c'
    assert gos.nb_read(r, 10) == b''
    os.close(r)
    with pytest.raises(OSError) as exc:
        gos.nb_read(r, 10)
    assert exc.value.errno == 9
    with pytest.raises(OSError) as exc:
        gos.nb_write(r, b'x')
    assert exc.value.errno == 9


def test_nb_write_to_a_closed_pipe(gv):
    gos = gv.os
    r, w = os.pipe()
    gos.make_nonblocking(w)
    os.close(r)
    with pytest.raises(BrokenPipeError):
        gos.nb_write(w, b'x')
    os.close(w)


def test_close_wakes_a_parked_reader(gv):
    if not gv.is_pyconc:
        pytest.skip("gevent's os.close defers the close to the loop and leaves a greenlet "
                    "parked in nb_read parked (checked: it times out); pyconc wakes it with "
                    "gevent's socket error, OSError(EBADF, 'File descriptor was closed in "
                    "another greenlet')")
    gevent, gos = gv.gevent, gv.os
    r, w = os.pipe()
    gos.make_nonblocking(r)

    def reader():
        try:
            return gos.nb_read(r, 10)
        except OSError as exc:
            return exc.errno, exc.strerror

    g = gevent.spawn(reader)
    gevent.sleep(0.01)
    gos.close(r)
    assert g.get(timeout=5) == (9, 'File descriptor was closed in another greenlet')
    with pytest.raises(OSError):
        os.fstat(r)
    os.close(w)


def test_waitpid_errors(gv):
    gos = gv.os
    with pytest.raises(OSError):
        gos.waitpid(-2, 0)
    with pytest.raises(OSError):
        gos.waitpid(1, 0)
    # no child at all: in a fresh interpreter (this one may have some, e.g. 3.14's default
    # forkserver, started by an earlier test)
    r = gv.run('''
        import os
        gos = sub("os")
        try:
            print(gos.waitpid(-1, os.WNOHANG))
        except ChildProcessError as e:
            print(type(e).__name__, e.errno)
    ''')
    assert r.stdout == "ChildProcessError 10\n", r.stdout + r.stderr


def test_fork_and_waitpid_are_cooperative(gv):
    r = gv.run('''
        import os, time
        gos = sub("os")
        ticks = []
        ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(5)])
        pid = gevent.fork()
        if pid == 0:
            # a fresh hub in the child: spawn and sleep work
            g = gevent.spawn(lambda: 7)
            gevent.sleep(0.2)
            os._exit(g.get())
        rpid, status = gos.waitpid(pid, 0)
        print(rpid == pid, os.WEXITSTATUS(status), len(ticks))
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'True 7 5\n'


def test_waitpid_any_child(gv):
    # (alone in its process: gevent reports a child it watched once more to waitpid(-1, 0)
    # after waitpid(pid, 0) returned it)
    r = gv.run('''
        import os
        gos = sub("os")
        ticks = []
        ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(5)])
        pid = gos.fork()
        if pid == 0:
            gevent.sleep(0.2)
            os._exit(3)
        print(gos.waitpid(pid, os.WNOHANG), end=" ")
        rpid, status = gos.waitpid(-1, 0)
        print(rpid == pid, os.WEXITSTATUS(status), len(ticks))
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == '(0, 0) True 3 5\n'


def test_fork_and_watch_callback(gv):
    r = gv.run('''
        import os
        gos = sub("os")
        seen = []
        pid = gos.fork_and_watch(lambda watcher: seen.append((watcher.pid == pid,
                                                              os.WEXITSTATUS(watcher.rstatus))))
        if pid == 0:
            gevent.sleep(0.1)
            os._exit(4)
        with gevent.Timeout(10):
            while not seen:
                gevent.sleep(0.01)
        rpid, status = gos.waitpid(pid, 0)
        print(seen, rpid == pid, os.WEXITSTATUS(status))
        pid = gos.fork_and_watch()
        if pid == 0:
            os._exit(0)
        gos.waitpid(-1, 0)
        gos._reap_children(0)
        print("ok")
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == '[(True, 4)] True 4\nok\n'


def test_signal_handler(gv):
    r = gv.run('''
        import os, signal
        try:
            gevent.signal_handler(signal.SIGUSR1, 1)
        except TypeError as exc:
            print("TypeError:", exc)
        main = gevent.getcurrent()
        got = []
        def handler(tag):
            got.append((tag, gevent.getcurrent() is not main))
        a = gevent.signal_handler(signal.SIGUSR1, handler, "a")
        b = gevent.signal_handler(signal.SIGUSR1, handler, "b")
        print(a.ref, b.ref)
        os.kill(os.getpid(), signal.SIGUSR1)
        gevent.sleep(0.05)
        print(sorted(got))
        a.cancel()
        os.kill(os.getpid(), signal.SIGUSR1)
        gevent.sleep(0.05)
        print(sorted(got))
        b.cancel()
        print(signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL)
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("TypeError: signal handler must be callable.\nFalse False\n"
                        "[('a', True), ('b', True)]\n[('a', True), ('b', True), ('b', True)]\n"
                        "True\n")


def test_signal_handler_exception_reaches_the_main_greenlet(gv):
    r = gv.run('''
        import signal
        class Expected(Exception):
            pass
        def boom():
            raise Expected("TestSignal")
        sig = gevent.signal_handler(signal.SIGALRM, boom)
        for _ in range(2):
            signal.alarm(1)
            try:
                gevent.sleep(3)
                print("not raised")
            except Expected as exc:
                print("raised", exc)
        sig.cancel()
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'raised TestSignal\nraised TestSignal\n'
    assert r.stderr.count('Expected: TestSignal') == 2


def test_patched_sigchld_handler_runs_in_a_greenlet(gv):
    # gevent's test__monkey_sigchld: the handler may block, and its exception is printed, not
    # raised into the interrupted code
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import errno, os, signal, sys
        print(signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL)
        awaiting = []
        def handle_sigchld(*args):
            gevent.sleep()
            awaiting.pop()
            raise TypeError("This should be ignored but printed")
        signal.signal(signal.SIGCHLD, handle_sigchld)
        print(signal.getsignal(signal.SIGCHLD) is handle_sigchld)
        for func in (os.fork, lambda: os.forkpty()[0]):
            awaiting[:] = [True]
            pid = func()
            if not pid:
                gevent.sleep(0.3)
                os._exit(0)
            with gevent.Timeout(5):
                while awaiting:
                    gevent.sleep(0.01)
            wpid, status = os.waitpid(-1, os.WNOHANG)
            try:
                os.waitpid(-1, os.WNOHANG)
            except OSError as e:
                print(wpid == pid, e.errno == errno.ECHILD)
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'True\nTrue\nTrue True\nTrue True\n'
    assert r.stderr.count('TypeError: This should be ignored but printed') == 2


def test_sigchld_wakeup_fd(gv):
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import os, signal, subprocess, sys
        gos = sub("os")
        pipe_r, pipe_w = os.pipe()
        gos.make_nonblocking(pipe_r)
        gos.make_nonblocking(pipe_w)
        signal.signal(signal.SIGCHLD, lambda *args: None)
        signal.set_wakeup_fd(pipe_w, warn_on_full_buffer=True)
        with subprocess.Popen([sys.executable, "-c", "pass"]) as proc:
            pass
        with gevent.Timeout(5):
            print(gos.nb_read(pipe_r, 65535) == bytes((signal.SIGCHLD.value,)))
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'True\n'
