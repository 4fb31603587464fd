"""gevent.subprocess's behaviour, gevent 26 as the oracle (see conftest.py): Popen (wait,
wait(timeout), poll, communicate with and without a timeout, text mode, context manager),
run/call/check_call/check_output, errors, and that waiting for a child -- on its exit or on its
pipes -- parks only the calling greenlet: each "cooperative" test below deadlocks (and fails on
its Timeout) if the wait blocked the hub."""
import os
import signal
import sys

import pytest

pytestmark = pytest.mark.timeout(60)

PY = sys.executable


def test_wait_returns_the_exit_code(gv):
    sp = gv.subprocess
    p = sp.Popen([PY, '-c', 'import sys; sys.exit(10)'])
    assert p.wait() == 10
    assert p.returncode == 10
    assert p.poll() == 10


def test_wait_timeout_raises_timeoutexpired(gv):
    sp = gv.subprocess
    p = sp.Popen([PY, '-c', 'import time; time.sleep(30)'])
    try:
        with pytest.raises(sp.TimeoutExpired) as exc:
            p.wait(timeout=0.1)
        assert exc.value.timeout == 0.1
        assert str(exc.value) == "Command '%s' timed out after 0.1 seconds" % ([PY, '-c', 'import time; time.sleep(30)'],)
        assert p.poll() is None
    finally:
        p.kill()
    assert p.wait() == -signal.SIGKILL


def test_wait_parks_only_the_calling_greenlet(gv):
    # the child exits only once another greenlet has written to it: a wait that blocked the
    # hub would never let that greenlet run
    gevent, sp = gv.gevent, gv.subprocess
    p = sp.Popen([PY, '-c', 'import sys; sys.exit(len(sys.stdin.readline()))'],
                 stdin=sp.PIPE)
    order = []

    def waiter():
        order.append('wait')
        rc = p.wait()
        order.append('done')
        return rc

    def feeder():
        order.append('feed')
        p.stdin.write(b'12345\n')
        p.stdin.close()

    with gevent.Timeout(20):
        w = gevent.spawn(waiter)
        f = gevent.spawn(feeder)
        gevent.joinall([w, f], raise_error=True)
    assert w.value == 6
    assert order == ['wait', 'feed', 'done']


def test_pipe_read_parks_only_the_reading_greenlet(gv):
    gevent, sp = gv.gevent, gv.subprocess
    p = sp.Popen([PY, '-u', '-c', 'import sys\nfor line in sys.stdin: print(line.upper(), end="")'],
                 stdin=sp.PIPE, stdout=sp.PIPE)
    with gevent.Timeout(20):
        reader = gevent.spawn(p.stdout.readline)
        gevent.sleep(0.05)
        assert not reader.ready()
        p.stdin.write(b'hello\n')
        p.stdin.flush()
        assert reader.get() == b'HELLO\n'
        p.stdin.close()
        assert p.stdout.read() == b''
        assert p.wait() == 0
    p.stdout.close()


def test_communicate(gv):
    sp = gv.subprocess
    p = sp.Popen([PY, '-c', 'import sys; d = sys.stdin.read(); sys.stdout.write(d[::-1]); '
                  'sys.stderr.write(str(len(d)))'],
                 stdin=sp.PIPE, stdout=sp.PIPE, stderr=sp.PIPE)
    data = b'abc' * 200000   # bigger than a pipe buffer: writing and reading interleave
    out, err = p.communicate(data)
    assert out == data[::-1]
    assert err == b'600000'
    assert p.returncode == 0
    assert p.stdout.closed and p.stderr.closed and p.stdin.closed


def test_communicate_of_several_children_at_once(gv):
    gevent, sp = gv.gevent, gv.subprocess
    # each child waits for a byte from the next one's feeder: they all must be in flight
    r, w = os.pipe()
    try:
        ps = [sp.Popen([PY, '-c', 'import os, sys; os.read(%d, 1); print(%d)' % (r, i)],
                       stdout=sp.PIPE, pass_fds=(r,)) for i in range(3)]
        with gevent.Timeout(20):
            gs = [gevent.spawn(p.communicate) for p in ps]
            gevent.sleep(0.1)
            os.write(w, b'xxx')
            gevent.joinall(gs, raise_error=True)
        assert sorted(g.value for g in gs) == [(b'0\n', None), (b'1\n', None), (b'2\n', None)]
    finally:
        os.close(r)
        os.close(w)


def test_communicate_timeout_keeps_partial_output_and_resumes(gv):
    sp = gv.subprocess
    p = sp.Popen([PY, '-u', '-c', 'import sys, time; print("first"); time.sleep(1); '
                  'print("second")'], stdin=sp.PIPE, stdout=sp.PIPE)
    with pytest.raises(sp.TimeoutExpired) as exc:
        p.communicate(b'go\n', timeout=0.3)
    if gv.is_pyconc:
        # the stdlib's TimeoutExpired carries what was read so far; gevent's carries None
        assert exc.value.stdout == b'first\n'
    # the next call goes on from where the first one stopped, nothing lost
    out, err = p.communicate()
    assert out == b'first\nsecond\n'
    assert err is None
    assert p.returncode == 0


def test_communicate_text_mode(gv):
    sp = gv.subprocess
    p = sp.Popen([PY, '-c', 'import sys; sys.stdout.buffer.write(b"a\\r\\nb\\rc\\n" + '
                  'sys.stdin.buffer.read())'],
                 stdin=sp.PIPE, stdout=sp.PIPE, universal_newlines=True)
    out, err = p.communicate('d\xe9\n')
    assert out == 'a\nb\nc\nd\xe9\n'
    assert err is None


def test_no_output_is_empty_of_the_right_type(gv):
    sp = gv.subprocess
    for kwargs, kind in (({'universal_newlines': True}, str), ({'encoding': 'utf-8'}, str),
                         ({}, bytes)):
        with sp.Popen([PY, '-c', 'pass'], stdout=sp.PIPE, **kwargs) as proc:
            out, err = proc.communicate()
        assert isinstance(out, kind) and out == kind()
        assert err is None


def test_text_mode_pipes_read_and_write_lines(gv):
    sp = gv.subprocess
    with sp.Popen(['cat'], stdin=sp.PIPE, stdout=sp.PIPE, text=True) as p:
        p.stdin.write('line1\nline2\n')
        p.stdin.flush()
        assert p.stdout.readline() == 'line1\n'
        p.stdin.close()
        assert p.stdout.read() == 'line2\n'
    assert p.returncode == 0


def test_run_and_friends(gv):
    sp = gv.subprocess
    r = sp.run([PY, '-c', 'import sys; print(sys.stdin.read().upper()); sys.exit(3)'],
               input=b'abc', capture_output=True)
    assert isinstance(r, sp.CompletedProcess)
    assert (r.returncode, r.stdout, r.stderr) == (3, b'ABC\n', b'')
    with pytest.raises(sp.CalledProcessError) as exc:
        r.check_returncode()
    assert exc.value.returncode == 3
    assert sp.call([PY, '-c', 'import sys; sys.exit(7)']) == 7
    assert sp.check_call([PY, '-c', 'pass']) == 0
    assert sp.check_output([PY, '-c', 'print("out")']) == b'out\n'
    assert sp.check_output([PY, '-c', 'print("out")'], text=True) == 'out\n'
    assert sp.check_output([PY, '-c', 'import sys; print(sys.stdin.read())'],
                           input=b'in') == b'in\n'
    with pytest.raises(sp.CalledProcessError) as exc:
        sp.check_output([PY, '-c', 'import sys; print("x"); sys.exit(44)'])
    assert exc.value.returncode == 44 and exc.value.output == b'x\n'
    with pytest.raises(sp.CalledProcessError):
        sp.check_call('exit 1', shell=True)


def test_run_timeout(gv):
    sp = gv.subprocess
    with pytest.raises(sp.TimeoutExpired) as exc:
        sp.run([PY, '-u', '-c', 'import time; print("partial"); time.sleep(30)'],
               capture_output=True, timeout=1)
    assert exc.value.timeout == 1
    with pytest.raises(sp.TimeoutExpired):
        sp.run('sleep 30', shell=True, timeout=0.2)


def test_missing_program(gv):
    sp = gv.subprocess
    for _ in range(3):
        with pytest.raises(FileNotFoundError) as exc:
            with sp.Popen('this_name_must_not_exist'):
                pass
        assert exc.value.errno == 2
    with pytest.raises(OSError) as exc:
        sp.Popen(['*']).wait()
    assert exc.value.errno == 2


def test_no_fd_leak(gv):
    sp = gv.subprocess
    before = len(os.listdir('/proc/self/fd'))
    for _ in range(3):
        p = sp.Popen([PY, '-c', 'print()'], stdout=sp.PIPE)
        p.wait()
        p.stdout.close()
        del p
        assert sp.run(['true']).returncode == 0
    assert len(os.listdir('/proc/self/fd')) == before


def test_gevent_wait_on_popen(gv):
    gevent, sp = gv.gevent, gv.subprocess
    p = sp.Popen([PY, '-c', 'import sys; sys.exit(11)'])
    assert gevent.wait([p], timeout=20) == [p]
    assert p.poll() == 11


def test_sigchld_handler_and_subprocess_together(gv):
    # a signal_handler on SIGCHLD runs, and Popen.wait still gets the exit status (in a fresh
    # process: on gevent, a SIGCHLD watcher disturbs libev's child watchers for good)
    r = gv.run('''
        import signal, sys
        sp = sub("subprocess")
        seen = []
        watcher = gevent.signal_handler(signal.SIGCHLD, seen.append, 'chld')
        p = sp.Popen([sys.executable, '-c', 'import sys; sys.exit(5)'])
        rc = p.wait()
        with gevent.Timeout(10):
            while not seen:
                gevent.sleep(0.01)
        watcher.cancel()
        print(rc, seen[0])
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == '5 chld\n'


def test_exit_stops_communicating_greenlets(gv):
    gevent, sp = gv.gevent, gv.subprocess
    with sp.Popen([PY, '-c', 'import time; time.sleep(3600)'], stdout=sp.PIPE,
                  stderr=sp.PIPE) as popen:
        communicator = gevent.spawn(popen.communicate)
        gevent.sleep(0.1)
        readers = list(popen._communicating_greenlets)
        assert len(readers) == 2 and not any(r.dead for r in readers)
        communicator.kill()
        popen.kill()
    assert all(r.dead for r in readers)
    assert popen.stdout.closed and popen.stderr.closed
    assert popen.poll() == -signal.SIGKILL


def test_exit_with_a_foreign_reader_parked_in_a_pipe(gv):
    gevent, sp = gv.gevent, gv.subprocess
    popen = sp.Popen([PY, '-c', 'import time; time.sleep(3600)'], stdout=sp.PIPE)
    reader = gevent.spawn(popen.stdout.read)
    gevent.sleep(0.1)
    assert not reader.dead
    popen.kill()
    try:
        popen.__exit__(None, None, None)   # the reentrant close() is not an error
    finally:
        reader.kill()
    assert popen.stdout.closed
    assert popen.poll() == -signal.SIGKILL


def test_popen_in_a_plain_thread(gv):
    if not gv.is_pyconc:
        pytest.skip("gevent refuses: TypeError('child watchers are only available on the "
                    "default loop'); pyconc's pidfd wait works in any thread (it blocks a "
                    "thread that has no hub, as the stdlib's)")
    import threading
    sp = gv.subprocess
    results = []

    def run():
        p = sp.Popen([PY, '-c', 'import sys; print(sys.stdin.read()); sys.exit(9)'],
                     stdin=sp.PIPE, stdout=sp.PIPE)
        results.append(p.communicate(b'thread'))
        results.append(p.returncode)
        results.append(sp.run(['true']).returncode)

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    assert results == [(b'thread\n', None), 9, 0]


def test_popen_is_a_stdlib_popen(gv):
    if not gv.is_pyconc:
        pytest.skip("gevent's Popen is a class of its own; pyconc's subclasses the stdlib's "
                    "(isinstance checks against subprocess.Popen keep working)")
    import subprocess
    p = gv.subprocess.Popen(['true'])
    assert isinstance(p, subprocess.Popen)
    assert p.wait() == 0


def test_result_and_rawlink(gv):
    gevent, sp = gv.gevent, gv.subprocess
    p = sp.Popen([PY, '-c', 'import sys; sys.exit(4)'])
    linked = []
    p.rawlink(linked.append)
    assert p.result.get(timeout=20) == 4
    gevent.sleep(0.01)
    assert linked == [p]
    if gv.is_pyconc:   # gevent's Popen has no unlink (gevent.wait() looks it up optionally)
        p2 = sp.Popen([PY, '-c', 'pass'])
        unlinked = []
        p2.rawlink(unlinked.append)
        p2.unlink(unlinked.append)
        assert p2.result.get(timeout=20) == 0
        gevent.sleep(0.01)
        assert unlinked == []


def test_monkey_patched_subprocess_in_a_script(gv):
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import subprocess, sys
        gsp = sub("subprocess")
        assert subprocess.Popen is gsp.Popen
        assert monkey.is_object_patched("subprocess", "Popen")
        assert "gevent" not in repr(monkey.get_original("subprocess", "Popen"))
        out = subprocess.check_output([sys.executable, "-c", "print(6 * 7)"])
        print(out.decode().strip(), subprocess.run(["true"]).returncode,
              subprocess.getoutput("echo hi"))
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == '42 0 hi\n'
