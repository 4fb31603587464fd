"""pyconc.gevent.ssl against gevent.ssl (the oracle): cooperative handshake, read, write,
sendall, makefile, unwrap, SNI, certificate and host-name verification, timeouts, a server
with many concurrent TLS clients, plain-thread use. Certificates are made by the test
(trustme); everything on 127.0.0.1."""
import errno
import os
import socket as stdsocket
import ssl as stdssl
import threading

import pytest

trustme = pytest.importorskip("trustme", reason="trustme makes the test certificates "
                                                "(test extras)")

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope='module')
def ca():
    return trustme.CA()


@pytest.fixture(scope='module')
def cert(ca):
    return ca.issue_cert('localhost', '127.0.0.1')


def _contexts(gv, ca, cert):
    sctx = gv.ssl.SSLContext(stdssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(sctx)
    cctx = gv.ssl.SSLContext(stdssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(cctx)
    return sctx, cctx


def _listener(gv):
    s = gv.socket.socket()
    s.bind(('127.0.0.1', 0))
    s.listen(50)
    return s


def test_module_names_match_gevent(gv):
    import gevent.ssl as ref
    assert sorted(gv.ssl.__all__) == sorted(ref.__all__)
    assert hasattr(gv.ssl, 'wrap_socket') == hasattr(ref, 'wrap_socket')
    for name in ('SSLError', 'SSLWantReadError', 'CERT_REQUIRED', 'PROTOCOL_TLS_CLIENT',
                 'SSLCertVerificationError', 'create_default_context'):
        assert getattr(gv.ssl, name) is getattr(stdssl, name)
    assert issubclass(gv.ssl.SSLSocket, gv.socket.socket)
    assert issubclass(gv.ssl.SSLContext, stdssl.SSLContext)


def test_echo_with_sni_and_verification(gv, ca, cert):
    gevent = gv.gevent
    sctx, cctx = _contexts(gv, ca, cert)
    seen = []

    def sni(sslsock, name, ctx):
        seen.append((type(sslsock).__name__, name))
    sctx.sni_callback = sni
    srv = _listener(gv)

    def server():
        c, _ = srv.accept()
        s = sctx.wrap_socket(c, server_side=True)
        f = s.makefile('rb')
        line = f.readline()
        s.sendall(line.upper() * 5000)
        f.close()
        s.close()

    g = gevent.spawn(server)
    c = gv.socket.create_connection(srv.getsockname())
    s = cctx.wrap_socket(c, server_hostname='localhost')
    assert isinstance(s, gv.ssl.SSLSocket) and s.version().startswith('TLS')
    assert s.getpeercert()['subjectAltName']
    s.sendall(b'hello\n')
    data = b''
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    assert data == b'HELLO\n' * 5000
    assert seen == [('SSLSocket', 'localhost')]
    g.get(timeout=5)
    s.close()
    srv.close()


@pytest.mark.parametrize('hostname,trusted', [('example.com', True), ('localhost', False)])
def test_verification_failures(gv, ca, cert, hostname, trusted):
    gevent = gv.gevent
    sctx, cctx = _contexts(gv, ca, cert)
    if not trusted:
        cctx = gv.ssl.SSLContext(stdssl.PROTOCOL_TLS_CLIENT)   # no CA loaded
    srv = _listener(gv)

    def server():
        c, _ = srv.accept()
        try:
            sctx.wrap_socket(c, server_side=True)
        except (stdssl.SSLError, OSError):
            pass
        finally:
            c.close()

    g = gevent.spawn(server)
    c = gv.socket.create_connection(srv.getsockname())
    with pytest.raises(stdssl.SSLCertVerificationError) as ei:
        cctx.wrap_socket(c, server_hostname=hostname)
    assert 'certificate verify failed' in str(ei.value)
    g.join(timeout=5)
    c.close()
    srv.close()


def test_check_hostname_requires_server_hostname(gv, ca, cert):
    _, cctx = _contexts(gv, ca, cert)
    s = gv.socket.socket()
    with pytest.raises(ValueError, match='check_hostname requires server_hostname'):
        cctx.wrap_socket(s)
    s.close()


def test_read_timeout_and_unwrap(gv, ca, cert):
    gevent = gv.gevent
    sctx, cctx = _contexts(gv, ca, cert)
    srv = _listener(gv)
    from importlib import import_module
    done = import_module(gevent.__name__ + '.event').Event()
    out = []

    def server():
        c, _ = srv.accept()
        s = sctx.wrap_socket(c, server_side=True)
        done.wait(5)                    # say nothing until the client timed out
        s.sendall(b'now')
        out.append(s.recv(10))
        plain = s.unwrap()
        out.append(plain.recv(10))
        plain.close()

    g = gevent.spawn(server)
    c = gv.socket.create_connection(srv.getsockname())
    s = cctx.wrap_socket(c, server_hostname='localhost')
    s.settimeout(0.05)
    with pytest.raises(stdsocket.timeout) as ei:
        s.recv(10)
    assert str(ei.value) == 'The read operation timed out'
    s.settimeout(5)
    done.set()
    assert s.recv(10) == b'now'
    s.sendall(b'bye')
    plain = s.unwrap()
    assert plain is s
    plain.sendall(b'clear')
    g.get(timeout=5)
    assert out == [b'bye', b'clear']
    s.close()
    srv.close()


def test_many_concurrent_tls_clients(gv, ca, cert):
    gevent = gv.gevent
    sctx, cctx = _contexts(gv, ca, cert)
    srv = sctx.wrap_socket(_listener(gv), server_side=True)
    N = 10

    def handle(s):
        with s:
            d = s.recv(100)
            s.sendall(d[::-1])

    def serve():
        for _ in range(N):
            s, _ = srv.accept()
            gevent.spawn(handle, s)

    def client(i):
        c = gv.socket.create_connection(srv.getsockname())
        with cctx.wrap_socket(c, server_hostname='localhost') as s:
            s.sendall(b'abc%d' % i)
            return s.recv(100)

    sg = gevent.spawn(serve)
    gs = [gevent.spawn(client, i) for i in range(N)]
    gevent.joinall(gs, raise_error=True)
    assert [g.value for g in gs] == [(b'abc%d' % i)[::-1] for i in range(N)]
    sg.get(timeout=5)
    srv.close()


def test_tls_in_plain_threads(gv, ca, cert):
    """A TLS server thread and a client in the main thread, no greenlets (each thread makes its
    own sockets: gevent binds a socket to its thread's hub)."""
    sctx, cctx = _contexts(gv, ca, cert)
    ready = threading.Event()
    addr = []

    def server():
        srv = _listener(gv)
        addr.append(srv.getsockname())
        ready.set()
        c, _ = srv.accept()
        with sctx.wrap_socket(c, server_side=True) as s:
            s.sendall(s.recv(100) + b'!')
        srv.close()

    t = threading.Thread(target=server)
    t.start()
    ready.wait(10)
    c = gv.socket.create_connection(addr[0])
    with cctx.wrap_socket(c, server_hostname='localhost') as s:
        s.sendall(b'thread')
        assert s.recv(100) == b'thread!'
    t.join(10)


def test_sendall_nonblocking_and_closed(gv, ca, cert):
    _, cctx = _contexts(gv, ca, cert)
    s = gv.socket.socket()
    ss = cctx.wrap_socket(s, server_hostname='localhost', do_handshake_on_connect=False)
    ss.close()
    with pytest.raises(OSError):
        ss.sendall(b'x')


# -- the rest of the API, pinned against the oracle (the same body runs on gevent) ------------

def _pair(gv, sctx, cctx, listener):
    """A connected (client SSLSocket, server SSLSocket) pair, handshakes done."""
    c = gv.socket.create_connection(listener.getsockname())
    a, _ = listener.accept()
    g = gv.gevent.spawn(sctx.wrap_socket, a, server_side=True)
    cs = cctx.wrap_socket(c, server_hostname='localhost')
    return cs, g.get(timeout=5)


def _fill(cs):
    """Makes the client's writes block: the server reads nothing (non-blocking sends until one
    reports 0). Leaves cs non-blocking; OpenSSL then holds a pending 1000-byte write."""
    cs.setblocking(False)
    while cs.send(b'x' * 1000):
        pass


def test_unconnected_and_closed_refusals(gv, ca, cert):
    _, cctx = _contexts(gv, ca, cert)
    raw = gv.socket.socket()
    s = cctx.wrap_socket(raw, server_hostname='localhost', do_handshake_on_connect=False)
    assert raw.fileno() == -1                     # the descriptor moved over
    assert s._sslobj is None and not s._connected
    assert "server=False, cipher=''" in repr(s)
    for call in (lambda: s.recv(1), lambda: s.getpeercert(), lambda: s.do_handshake()):
        with pytest.raises(OSError) as ei:
            call()
        assert ei.value.errno == errno.ENOTCONN
    with pytest.raises(ValueError, match='^Read on closed or unwrapped SSL socket.$'):
        s.read(1)
    with pytest.raises(ValueError, match='^Write on closed or unwrapped SSL socket.$'):
        s.write(b'x')
    assert (s.cipher(), s.version(), s.pending(), s.selected_alpn_protocol(), s.session,
            s.session_reused, s.get_channel_binding()) == (None, None, 0, None, None, None, None)
    with pytest.raises(ValueError, match='^Unsupported channel binding type$'):
        s.get_channel_binding('nope')
    with pytest.raises(ValueError, match='^No SSL wrapper around <'):
        s.unwrap()
    with pytest.raises(NotImplementedError, match="^Can't dup\\(\\) SSLSocket instances$"):
        s.dup()
    for name in ('recvmsg', 'recvmsg_into', 'sendmsg'):
        with pytest.raises(NotImplementedError, match='^%s not allowed on instances of' % name):
            getattr(s, name)([b'x'])
    s.close()
    assert s.fileno() == -1 and '[closed]' in repr(s)
    with pytest.raises(ValueError, match='^Read on closed'):
        s.read(1)
    with pytest.raises(OSError) as ei:
        s.recv(1)
    assert ei.value.errno == errno.EBADF


def test_constructor_and_wrap_checks(gv, ca, cert, tmp_path):
    sctx, cctx = _contexts(gv, ca, cert)
    udp = gv.socket.socket(type=stdsocket.SOCK_DGRAM)
    with pytest.raises(NotImplementedError, match='^only stream sockets are supported$'):
        cctx.wrap_socket(udp, server_hostname='localhost')
    udp.close()
    s = gv.socket.socket()
    with pytest.raises(ValueError, match='^server_hostname can only be specified in client'):
        sctx.wrap_socket(s, server_side=True, server_hostname='x')
    with pytest.raises(ValueError, match='^session can only be specified in client mode$'):
        sctx.wrap_socket(s, server_side=True, session=object())
    with pytest.raises(ValueError, match='^certfile must be specified for server-side'):
        gv.ssl.SSLSocket(s, server_side=True)
    with pytest.raises(ValueError, match='^certfile must be specified$'):
        gv.ssl.SSLSocket(s, keyfile='k.pem')
    with pytest.raises(FileNotFoundError):
        gv.ssl.SSLSocket(s, certfile=str(tmp_path / 'missing.pem'))
    assert s.fileno() >= 0                        # refused: the socket is still the caller's
    x = gv.ssl.SSLSocket(s, cert_reqs=stdssl.CERT_REQUIRED, ciphers='HIGH')
    assert isinstance(x.context, gv.ssl.SSLContext)
    assert x.context.verify_mode == stdssl.CERT_REQUIRED
    assert (x.cert_reqs, x.ciphers, x.keyfile, x.certfile) == (stdssl.CERT_REQUIRED, 'HIGH',
                                                                None, None)
    x.close()
    u = cctx.wrap_socket(gv.socket.socket(), server_hostname=b'localhost')
    assert u.server_hostname == b'localhost'      # kept as given
    u.close()


def test_connect_through_the_tls_socket(gv, ca, cert):
    gevent = gv.gevent
    sctx, cctx = _contexts(gv, ca, cert)
    srv = _listener(gv)

    def server(n):
        for _ in range(n):
            c, _ = srv.accept()
            with sctx.wrap_socket(c, server_side=True) as s:
                s.sendall(b'hi')
                s.recv(1)

    g = gevent.spawn(server, 2)
    s = cctx.wrap_socket(gv.socket.socket(), server_hostname='localhost')
    s.connect(srv.getsockname())
    assert s.version().startswith('TLS') and s.recv(10) == b'hi'
    with pytest.raises(ValueError, match='^attempt to connect already-connected SSLSocket!$'):
        s.connect(srv.getsockname())
    s.close()
    s = cctx.wrap_socket(gv.socket.socket(), server_hostname='localhost')
    assert s.connect_ex(srv.getsockname()) == 0 and s.recv(10) == b'hi'
    s.close()
    g.get(timeout=5)
    port = srv.getsockname()[1]
    srv.close()
    s = cctx.wrap_socket(gv.socket.socket(), server_hostname='localhost')
    assert s.connect_ex(('127.0.0.1', port)) == errno.ECONNREFUSED
    s.close()
    s = cctx.wrap_socket(gv.socket.socket(), server_hostname='localhost')
    with pytest.raises(ConnectionRefusedError):
        s.connect(('127.0.0.1', port))
    assert s._sslobj is None and not s._connected
    s.close()
    s = sctx.wrap_socket(gv.socket.socket(), server_side=True)
    with pytest.raises(ValueError, match="^can't connect in server-side mode$"):
        s.connect(('127.0.0.1', port))
    s.close()


def test_timeout_texts_and_nonblocking(gv, ca, cert):
    sctx, cctx = _contexts(gv, ca, cert)
    srv = _listener(gv)
    c = gv.socket.create_connection(srv.getsockname())
    c.settimeout(0.05)
    a, _ = srv.accept()                            # accepted, never answers the handshake
    with pytest.raises(stdsocket.timeout) as ei:
        cctx.wrap_socket(c, server_hostname='localhost')
    assert ei.value.args == ('The handshake operation timed out',)
    assert c.fileno() == -1
    a.close()

    c = gv.socket.create_connection(srv.getsockname())
    c.setblocking(False)
    with pytest.raises(ValueError, match='^do_handshake_on_connect should not be specified '
                                         'for non-blocking sockets$'):
        cctx.wrap_socket(c, server_hostname='localhost')
    srv.accept()[0].close()

    cs, ss = _pair(gv, sctx, cctx, srv)
    cs.setblocking(False)
    with pytest.raises(stdssl.SSLWantReadError):
        cs.recv(10)
    assert cs.read(0, bytearray(5)) == 0 and cs.recv_into(bytearray(5), 0) == 0
    assert cs.sendall(b'') == 0 and cs.send(b'') == 0
    _fill(cs)
    assert cs.send(b'y' * 1000) == 0               # would block: nothing sent
    with pytest.raises(stdssl.SSLWantWriteError):
        cs.write(b'y' * 1000)
    with pytest.raises(stdssl.SSLWantWriteError) as ei:
        cs.sendall(b'y' * 1000)
    assert ei.value.args == ('The operation did not complete (write)',)
    cs.close()
    ss.close()
    for name, text in (('send', 'timed out'), ('sendall', 'timed out'),
                       ('write', 'The write operation timed out')):
        cs, ss = _pair(gv, sctx, cctx, srv)
        _fill(cs)
        cs.settimeout(0.05)
        with pytest.raises(stdsocket.timeout) as ei:
            getattr(cs, name)(b'y' * 1000)
        assert ei.value.args == (text,), name
        cs.close()
        ss.close()
    cs, ss = _pair(gv, sctx, cctx, srv)
    cs.settimeout(0.05)
    with pytest.raises(stdsocket.timeout) as ei:
        cs.unwrap()                                # the peer never answers the close_notify
    assert ei.value.args == ('timed out',) and cs._sslobj is not None
    cs.close()
    ss.close()
    srv.close()


def test_flags_and_datagram_calls_refused(gv, ca, cert):
    sctx, cctx = _contexts(gv, ca, cert)
    srv = _listener(gv)
    cs, ss = _pair(gv, sctx, cctx, srv)
    cls = "<class '%s.SSLSocket'>" % gv.ssl.__name__
    for call, name in ((lambda: cs.recv(1, 1), 'recv'), (lambda: cs.send(b'x', 1), 'send'),
                       (lambda: cs.sendall(b'x', 1), 'sendall'),
                       (lambda: cs.recv_into(bytearray(1), 1, 1), 'recv_into')):
        with pytest.raises(ValueError) as ei:
            call()
        assert str(ei.value) == 'non-zero flags not allowed in calls to %s() on %s' % (name,
                                                                                      cls)
    for call, name in ((lambda: cs.sendto(b'x', ('127.0.0.1', 1)), 'sendto'),
                       (lambda: cs.recvfrom(1), 'recvfrom'),
                       (lambda: cs.recvfrom_into(bytearray(1)), 'recvfrom_into')):
        with pytest.raises(ValueError) as ei:
            call()
        assert str(ei.value) == '%s not allowed on instances of %s' % (name, cls)
    ss.sendall(b'0123456789')
    buf = bytearray(4)
    assert cs.recv_into(buf) == 4 and bytes(buf) == b'0123'
    assert cs.pending() == 6 and cs.read(100) == b'456789'
    cs.sendall(memoryview(b'abcdef')[2:])
    assert ss.recv(10) == b'cdef'
    assert cs.get_channel_binding('tls-unique') and cs.selected_npn_protocol() is None
    with pytest.raises(ValueError, match="'nope' channel binding type not implemented"):
        cs.get_channel_binding('nope')
    cs.close()
    ss.close()
    srv.close()


def test_ragged_eof_and_close_notify(gv, ca, cert):
    sctx, cctx = _contexts(gv, ca, cert)
    srv = _listener(gv)
    cs, ss = _pair(gv, sctx, cctx, srv)
    os.close(ss.detach())                          # gone without a TLS close_notify
    assert cs.recv(10) == b''
    cs.suppress_ragged_eofs = False
    with pytest.raises(stdssl.SSLEOFError):
        cs.recv(10)
    cs.close()
    cs, ss = _pair(gv, sctx, cctx, srv)
    g = gv.gevent.spawn(ss.unwrap)
    assert cs.recv(10) == b''                      # close_notify: a clean end
    cs.unwrap()
    assert g.get(timeout=5) is ss and ss._sslobj is None
    cs.close()
    ss.close()
    srv.close()


def test_close_while_reading_and_two_readers(gv, ca, cert):
    gevent = gv.gevent
    sctx, cctx = _contexts(gv, ca, cert)
    srv = _listener(gv)
    cs, ss = _pair(gv, sctx, cctx, srv)
    g1 = gevent.spawn(cs.recv, 10)
    gevent.sleep(0.01)
    g2 = gevent.spawn(cs.recv, 10)
    g2.join(timeout=5)
    assert type(g2.exception).__name__ == 'ConcurrentObjectUseError'
    cs.close()
    g1.join(timeout=5)
    assert isinstance(g1.exception, gv.socket.cancel_wait_ex)
    ss.close()
    srv.close()


def test_listener_accept_and_makefile_lifetime(gv, ca, cert):
    gevent = gv.gevent
    sctx, cctx = _contexts(gv, ca, cert)
    sl = sctx.wrap_socket(_listener(gv), server_side=True)
    assert sl._sslobj is None and not sl._connected and 'server=True' in repr(sl)

    def client():
        c = gv.socket.create_connection(sl.getsockname())
        s = cctx.wrap_socket(c, server_hostname='localhost')
        s.sendall(b'a\nb\n')
        return s

    g = gevent.spawn(client)
    acc, _ = sl.accept()
    assert acc.server_side and acc.version().startswith('TLS')
    f = acc.makefile('rb')
    acc.close()                                    # the file keeps it open
    assert acc.fileno() >= 0 and acc._sslobj is not None
    assert f.readline() == b'a\n' and f.readline() == b'b\n'
    f.close()
    assert acc.fileno() == -1 and acc._sslobj is None
    g.get(timeout=5).close()
    sl.do_handshake_on_connect = False
    g = gevent.spawn(client)
    acc, _ = sl.accept()
    assert acc.version() is None and not acc.do_handshake_on_connect
    acc.do_handshake()
    assert acc.recv(10) == b'a\nb\n'
    acc.close()
    g.get(timeout=5).close()
    sl.settimeout(0.05)
    with pytest.raises(stdsocket.timeout):
        sl.accept()
    sl.close()


def test_module_functions(gv, ca, cert, tmp_path):
    gevent = gv.gevent
    sctx, cctx = _contexts(gv, ca, cert)
    srv = _listener(gv)

    def server():
        c, _ = srv.accept()
        with sctx.wrap_socket(c, server_side=True) as s:
            try:
                s.sendall(b'ok')
                s.recv(1)
            except OSError:
                pass             # get_server_certificate hangs up after the handshake

    g = gevent.spawn(server)
    s = gv.ssl.wrap_socket(gv.socket.create_connection(srv.getsockname()))
    assert type(s) is gv.ssl.SSLSocket and s.recv(10) == b'ok'
    assert type(s.context) is gv.ssl.SSLContext and s.context.verify_mode == stdssl.CERT_NONE
    s.close()
    g.get(timeout=5)
    cafile = tmp_path / 'ca.pem'
    ca.cert_pem.write_to_path(str(cafile))
    for kwargs in ({}, {'ca_certs': str(cafile)}):
        g = gevent.spawn(server)
        with pytest.warns(DeprecationWarning, match='PROTOCOL_TLS is deprecated'):
            pem = gv.ssl.get_server_certificate(srv.getsockname(), **kwargs)
        assert stdssl.PEM_cert_to_DER_cert(pem) == stdssl.PEM_cert_to_DER_cert(
            cert.cert_chain_pems[0].bytes().decode())
        g.get(timeout=5)
    srv.close()


def test_context_session_alpn_and_callbacks(gv, ca, cert, monkeypatch):
    # (gevent's _msg_callback setter leaves its own SSLContext in the stdlib's ssl module:
    # put the stdlib's back afterwards)
    monkeypatch.setattr(stdssl, 'SSLContext', stdssl.SSLContext)
    sctx, cctx = _contexts(gv, ca, cert)
    cctx.maximum_version = stdssl.TLSVersion.TLSv1_2     # a session usable at once
    sctx.set_alpn_protocols(['h2', 'http/1.1'])
    cctx.set_alpn_protocols(['http/1.1'])
    messages = []
    cctx._msg_callback = lambda conn, direction, version, ctype, mtype, data: messages.append(
        (type(conn).__name__, direction, type(version).__name__))
    assert cctx._msg_callback is not None
    kinds = set()
    sctx._msg_callback = lambda conn, direction, version, ctype, mtype, data: kinds.add(
        (type(ctype).__name__, type(mtype).__name__))
    with pytest.raises(TypeError, match='^3 is not callable.$'):
        sctx._msg_callback = 3
    srv = _listener(gv)
    cs, ss = _pair(gv, sctx, cctx, srv)
    assert cs.selected_alpn_protocol() == ss.selected_alpn_protocol() == 'http/1.1'
    assert messages and messages[0] == ('SSLSocket', 'write', 'TLSVersion')
    # the message type's enum follows the content type (header, handshake, ...)
    assert {('_TLSContentType', '_TLSContentType'),
            ('_TLSContentType', '_TLSMessageType')} <= kinds, kinds
    sctx._msg_callback = None
    assert sctx._msg_callback is None
    cctx._msg_callback = None
    session = cs.session
    cs.close()
    ss.close()
    c = gv.socket.create_connection(srv.getsockname())
    a, _ = srv.accept()
    g = gv.gevent.spawn(sctx.wrap_socket, a, server_side=True)
    cs = cctx.wrap_socket(c, server_hostname='localhost', session=session)
    ss = g.get(timeout=5)
    assert cs.session_reused
    other = gv.ssl.SSLContext(stdssl.PROTOCOL_TLS_CLIENT)
    cs.context = other
    assert cs.context is other and cs._sslobj.context is other
    cs.close()
    ss.close()
    srv.close()


def test_context_setters_once_ssl_is_patched(gv):
    """After ssl.SSLContext is replaced by the cooperative one (monkey-patching), setting the
    context's properties must not recurse through the stdlib's setters."""
    r = gv.run('''
        import ssl
        gssl = sub('ssl')
        ssl.SSLContext = gssl.SSLContext
        ctx = ssl.create_default_context()
        assert type(ctx) is gssl.SSLContext
        ctx.options |= ssl.OP_NO_TICKET
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        ctx._msg_callback = print
        print(type(ctx.options).__name__, ctx.verify_mode.name, ctx.minimum_version.name,
              ctx.maximum_version.name, ctx._msg_callback is print,
              bool(ctx.verify_flags & ssl.VERIFY_X509_STRICT))
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ['Options', 'CERT_OPTIONAL', 'TLSv1_2', 'TLSv1_3', 'True', 'True']
