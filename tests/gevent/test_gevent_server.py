"""gevent.server (StreamServer, DatagramServer) and gevent.baseserver, gevent 26 as the oracle
(see conftest.py): serving, attributes, spawn as a Pool or a size, stop/close/serve_forever,
TLS, errors in handlers; and faults: a client that connects and sends nothing, EMFILE during an
accept storm (RLIMIT_NOFILE lowered in a subprocess), SIGPIPE, Ctrl-C in serve_forever."""
import importlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.timeout(60)


def _sub(gv, name):
    return importlib.import_module(gv.name + '.' + name)


def _echo_line(sock, address):
    f = sock.makefile('rb')
    try:
        for line in f:
            sock.sendall(line.upper())
    finally:
        f.close()


def _talk(gv, port, payload=b'hello\n', host='127.0.0.1'):
    gsocket = _sub(gv, 'socket')
    c = gsocket.create_connection((host, port))
    try:
        c.sendall(payload)
        c.shutdown(gsocket.SHUT_WR)
        data = b''
        while True:
            d = c.recv(1024)
            if not d:
                return data
            data += d
    finally:
        c.close()


def test_stream_server_serves_greenlet_per_connection(gv):
    gevent, server = gv.gevent, gv.server
    s = server.StreamServer(('127.0.0.1', 0), _echo_line)
    assert not s.started and s.closed        # no socket before start()
    s.start()
    try:
        assert s.started and not s.closed
        assert s.server_host == '127.0.0.1' and isinstance(s.server_port, int)
        assert s.address == ('127.0.0.1', s.server_port)
        assert re.match(r'<StreamServer at 0x[0-9a-f]+ fileno=\d+ address=127\.0\.0\.1:%d '
                        r'handle=<function _echo_line at 0x[0-9a-f]+>>$' % s.server_port,
                        repr(s)), repr(s)
        assert str(s).startswith('<StreamServer fileno=')
        with gevent.Timeout(20):
            clients = [gevent.spawn(_talk, gv, s.server_port, b'client %d\n' % i)
                       for i in range(30)]
            gevent.joinall(clients, raise_error=True)
        assert sorted(c.value for c in clients) == sorted(b'CLIENT %d\n' % i for i in range(30))
    finally:
        s.stop()
    assert s.closed and not s.started


def test_address_forms_and_argument_errors(gv):
    server, gsocket = gv.server, _sub(gv, 'socket')
    s = server.StreamServer('127.0.0.1:0', _echo_line)
    s.start()
    assert s.family == gsocket.AF_INET and s.server_host == '127.0.0.1'
    s.stop()
    with pytest.raises(TypeError) as exc:
        server.StreamServer(('127.0.0.1', 0))
    assert str(exc.value) == "'handle' must be provided"
    def listener():
        sock = gsocket.socket()
        sock.bind(('127.0.0.1', 0))
        sock.listen(5)
        return sock
    given = listener()
    with pytest.raises(TypeError) as exc:
        server.StreamServer(given, _echo_line, backlog=5)
    assert str(exc.value) == 'backlog must be None when a socket instance is passed'
    assert given.fileno() == -1      # closed by the server that failed to start
    given = listener()
    s = server.StreamServer(given, _echo_line)
    assert s.address == given.getsockname()
    s.start()
    assert _talk(gv, s.server_port, b'given\n') == b'GIVEN\n'
    s.stop()

    class Bad(server.StreamServer):
        max_accept = 0
    with pytest.raises(ValueError) as exc:
        Bad(('127.0.0.1', 0), _echo_line)
    assert str(exc.value) == 'max_accept must be positive int: 0'
    with pytest.raises(ValueError):
        server.StreamServer('127.0.0.1:notaport', _echo_line)


def test_handle_as_a_method_and_context_manager(gv):
    gevent, server = gv.gevent, gv.server

    class Upper(server.StreamServer):
        def handle(self, sock, address):
            sock.sendall(sock.recv(100).upper())

    with Upper(('127.0.0.1', 0)) as s:
        s.start()
        assert 'handle=' not in repr(s)     # a method of the class is not shown
        assert _talk(gv, s.server_port, b'abc') == b'ABC'
    assert s.closed


def test_serve_forever_until_stopped(gv):
    gevent, server = gv.gevent, gv.server
    s = server.StreamServer(('127.0.0.1', 0), _echo_line)
    results = []

    def client_then_stop():
        while not s.started:
            gevent.sleep(0.01)
        results.append(_talk(gv, s.server_port, b'x\n'))
        s.stop()

    with gevent.Timeout(20):
        g = gevent.spawn(client_then_stop)
        s.serve_forever()
        g.get()
    assert results == [b'X\n'] and s.closed


def test_spawn_pool_limits_concurrent_handlers(gv):
    gevent, server, pool = gv.gevent, gv.server, gv.pool
    active = [0, 0]   # now, most ever

    def slow(sock, address):
        active[0] += 1
        active[1] = max(active)
        gevent.sleep(0.05)
        sock.sendall(b'done')
        active[0] -= 1

    for spawn in (2, pool.Pool(2)):
        s = server.StreamServer(('127.0.0.1', 0), slow, spawn=spawn)
        s.start()
        try:
            assert s.pool.size == 2
            with gevent.Timeout(20):
                clients = [gevent.spawn(_talk, gv, s.server_port, b'') for _ in range(6)]
                gevent.joinall(clients, raise_error=True)
            assert [c.value for c in clients] == [b'done'] * 6
            assert active[1] == 2
        finally:
            s.stop()


def test_stop_kills_pool_handlers_after_timeout(gv):
    gevent, server = gv.gevent, gv.server
    stages = []

    def stuck(sock, address):
        stages.append('in')
        try:
            gevent.sleep(30)
        except gevent.GreenletExit:
            stages.append('killed')
            raise

    s = server.StreamServer(('127.0.0.1', 0), stuck, spawn=5)
    s.start()
    gsocket = _sub(gv, 'socket')
    c = gsocket.create_connection(('127.0.0.1', s.server_port))
    with gevent.Timeout(20):
        while not stages:
            gevent.sleep(0.01)
        s.stop(timeout=0.1)
    assert stages == ['in', 'killed']
    assert c.recv(10) == b''     # its socket was closed when the handler ended
    c.close()


def test_handler_error_does_not_stop_the_server(gv, capfd):
    gevent, server = gv.gevent, gv.server
    calls = []

    def handle(sock, address):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError('handler failed')
        sock.sendall(b'ok')

    s = server.StreamServer(('127.0.0.1', 0), handle)
    s.start()
    try:
        with gevent.Timeout(20):
            assert _talk(gv, s.server_port, b'') == b''
            assert _talk(gv, s.server_port, b'') == b'ok'
    finally:
        s.stop()
    assert 'ValueError: handler failed' in capfd.readouterr().err


def test_datagram_server(gv):
    gevent, server, gsocket = gv.gevent, gv.server, _sub(gv, 'socket')

    class Echo(server.DatagramServer):
        def handle(self, data, address):
            self.sendto(data.upper(), address)

    s = Echo('127.0.0.1:0')
    s.start()
    u = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_DGRAM)
    try:
        with gevent.Timeout(20):
            for word in (b'ping', b'pong'):
                u.sendto(word, s.address)
                assert u.recvfrom(100) == (word.upper(), s.address)
    finally:
        u.close()
        s.stop()
    assert s.closed


def test_tls_server(gv):
    trustme = pytest.importorskip('trustme', reason='trustme makes the test certificate '
                                                    '(test extras)')
    gevent, server, gssl = gv.gevent, gv.server, _sub(gv, 'ssl')
    gsocket = _sub(gv, 'socket')
    ca = trustme.CA()
    cert = ca.issue_cert('localhost')
    server_ctx = gssl.SSLContext(gssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server_ctx)
    client_ctx = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)   # (gevent's create_default_context
                                                          # makes a blocking stdlib context)
    ca.configure_trust(client_ctx)
    seen = []

    def handle(sock, address):
        seen.append(type(sock).__name__)
        sock.sendall(sock.recv(100).upper())

    s = server.StreamServer(('127.0.0.1', 0), handle, ssl_context=server_ctx)
    assert s.ssl_enabled
    s.start()
    try:
        with gevent.Timeout(20):
            raw = gsocket.create_connection(('127.0.0.1', s.server_port))
            c = client_ctx.wrap_socket(raw, server_hostname='localhost')
            c.sendall(b'secret')
            assert c.recv(100) == b'SECRET'
            c.close()
    finally:
        s.stop()
    assert seen == ['SSLSocket']


def test_silent_client_times_out_while_others_are_served(gv):
    gevent, server, gsocket = gv.gevent, gv.server, _sub(gv, 'socket')
    log = []

    def handle(sock, address):
        sock.settimeout(0.3)
        try:
            data = sock.recv(100)
        except gsocket.timeout as exc:
            log.append(('timeout', str(exc)))
            return
        sock.sendall(data.upper())
        log.append(('served', data))

    s = server.StreamServer(('127.0.0.1', 0), handle)
    s.start()
    try:
        with gevent.Timeout(20):
            silent = gsocket.create_connection(('127.0.0.1', s.server_port))
            gevent.sleep(0.05)
            assert _talk(gv, s.server_port, b'talker') == b'TALKER'
            assert silent.recv(10) == b''       # closed by the server after its timeout
            silent.close()
    finally:
        s.stop()
    assert log == [('served', b'talker'), ('timeout', 'timed out')]


EMFILE_SCRIPT = '''
import os, resource, subprocess, sys
server = sub("server")
served = []
def handle(sock, address):
    data = sock.recv(10)
    gevent.sleep(0.3)            # hold the descriptor a while: the storm runs out of them
    sock.sendall(data)
    served.append(1)
s = server.StreamServer(("127.0.0.1", 0), handle, backlog=256)
s.max_delay = 0.1
s.start()
client = subprocess.Popen([sys.executable, "-c", CLIENT, str(s.server_port)],
                          stdout=subprocess.PIPE, text=True)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 12, hard))
out = gevent.get_hub().threadpool.apply(client.stdout.read) if False else None
while client.poll() is None:
    gevent.sleep(0.05)
print("client:", client.stdout.read().strip(), "served:", len(served))
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
s.stop()
print("server survived")
'''

EMFILE_CLIENT = '''
import socket, sys, threading
port = int(sys.argv[1])
ok = []
def one(i):
    c = socket.create_connection(("127.0.0.1", port), timeout=30)
    c.sendall(b"%d" % i)
    if c.recv(10) == b"%d" % i:
        ok.append(i)
    c.close()
ts = [threading.Thread(target=one, args=(i,)) for i in range(60)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(len(ok))
'''


@pytest.mark.timeout(120)
def test_emfile_during_accept_storm_server_survives(gv):
    r = gv.run('CLIENT = %r\n' % EMFILE_CLIENT + EMFILE_SCRIPT, timeout=100)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert r.stdout == 'client: 60 served: 60\nserver survived\n', r.stderr[-3000:]
    assert 'Too many open files' in r.stderr       # reported, then accepting paused


def test_sigpipe_never_kills_the_server(gv):
    r = gv.run('''
        monkey = sub("monkey")
        monkey.patch_all()
        import socket
        server = sub("server")
        errors = []
        def handle(sock, address):
            sock.recv(10)
            try:
                for _ in range(200):
                    sock.sendall(b"x" * 65536)     # the peer is gone: EPIPE / ECONNRESET
            except OSError as exc:
                errors.append(type(exc).__name__)
        s = server.StreamServer(("127.0.0.1", 0), handle)
        s.start()
        c = socket.create_connection(("127.0.0.1", s.server_port))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\x01\\0\\0\\0\\0\\0\\0\\0")
        c.sendall(b"go")
        gevent.sleep(0.05)
        c.close()                                   # linger 0: a reset
        with gevent.Timeout(10):
            while not errors:
                gevent.sleep(0.01)
        c = socket.create_connection(("127.0.0.1", s.server_port))
        c.sendall(b"go")
        print(errors[0] in ("BrokenPipeError", "ConnectionResetError"), len(c.recv(10)) > 0)
        c.close()
        s.stop()
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'True True\n'


def test_ctrl_c_stops_serve_forever(gv):
    p = gv.popen('''
        server = sub("server")
        s = server.StreamServer(("127.0.0.1", 0), lambda sock, addr: None)
        s.start()
        print(s.server_port, flush=True)
        try:
            s.serve_forever()
        except KeyboardInterrupt:
            print("KeyboardInterrupt", s.closed, flush=True)
            raise
    ''')
    try:
        port = int(p.stdout.readline())
        time.sleep(0.2)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    # The issue asks for a stop within 0.5 s; timings stay out of assertions on this shared
    # machine (README), so the figure is printed and the test bounds it by the 10 s above.
    print('Ctrl-C to exit: %.3f s' % elapsed)
    assert out == 'KeyboardInterrupt True\n', err
    assert 'KeyboardInterrupt' in err
    assert p.returncode == -signal.SIGINT   # an uncaught KeyboardInterrupt re-raises SIGINT
    import socket
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(('127.0.0.1', port), timeout=5).close()


def test_spawn_none_runs_handle_in_the_hub(gv, capfd):
    # gevent: with spawn=None the handler runs in the hub greenlet, where blocking is an error
    # (reported; the connection is closed, the server goes on)
    gevent, server = gv.gevent, gv.server
    calls = []

    def handle(sock, address):
        calls.append(gevent.getcurrent() is gevent.get_hub())
        if len(calls) == 1:
            gevent.sleep(0.01)
        sock.sendall(b'quick')

    s = server.StreamServer(('127.0.0.1', 0), handle, spawn=None)
    s.start()
    try:
        with gevent.Timeout(20):
            assert _talk(gv, s.server_port, b'') == b''
            assert _talk(gv, s.server_port, b'') == b'quick'
    finally:
        s.stop()
    assert calls == [True, True]
    assert ('Impossible to call blocking function in the event loop callback'
            in capfd.readouterr().err)
