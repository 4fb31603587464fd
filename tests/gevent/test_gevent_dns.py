"""Name resolution of pyconc.gevent.socket against gevent's (the oracle) and the stdlib's:
getaddrinfo, gethostbyname(_ex), gethostbyaddr, getnameinfo, getfqdn give the stdlib's results
for local names (localhost, /etc/hosts, numeric addresses) and its errors (gaierror/herror as
the stdlib raises them); a lookup runs in the hub's threadpool, so a slow one does not stop
the other greenlets. No outside network: only names the machine resolves itself."""
import socket as stdsocket

import pytest

pytestmark = pytest.mark.timeout(60)


def _hosts_name():
    """A name from /etc/hosts other than localhost, if there is one."""
    try:
        with open('/etc/hosts') as f:
            for line in f:
                parts = line.split('#')[0].split()
                if len(parts) >= 2 and parts[0] == '127.0.0.1':
                    for name in parts[1:]:
                        if name != 'localhost':
                            return name
    except OSError:
        pass
    return None


@pytest.mark.parametrize('args', [
    ('localhost', 80),
    ('localhost', 'http'),
    ('127.0.0.1', 8080, stdsocket.AF_INET, stdsocket.SOCK_STREAM),
    ('localhost', None, stdsocket.AF_INET),
    (None, 80, 0, stdsocket.SOCK_DGRAM, 0, stdsocket.AI_PASSIVE),
    ('::1', 443, stdsocket.AF_INET6),
])
def test_getaddrinfo_matches_stdlib(gv, args):
    try:
        want = stdsocket.getaddrinfo(*args)
    except stdsocket.gaierror as e:
        with pytest.raises(stdsocket.gaierror) as ei:
            gv.socket.getaddrinfo(*args)
        assert ei.value.args == e.args
        return
    got = gv.socket.getaddrinfo(*args)
    assert got == want
    assert all(type(r[0]) is stdsocket.AddressFamily for r in got)


def test_hostname_lookups_match_stdlib(gv):
    s = gv.socket
    assert s.gethostbyname('localhost') == stdsocket.gethostbyname('localhost')
    assert s.gethostbyname('127.0.0.1') == '127.0.0.1'
    assert s.gethostbyname_ex('localhost') == stdsocket.gethostbyname_ex('localhost')
    assert s.gethostbyaddr('127.0.0.1') == stdsocket.gethostbyaddr('127.0.0.1')
    assert s.getnameinfo(('127.0.0.1', 80), 0) == stdsocket.getnameinfo(('127.0.0.1', 80), 0)
    assert (s.getnameinfo(('127.0.0.1', 80), stdsocket.NI_NUMERICHOST | stdsocket.NI_NUMERICSERV)
            == ('127.0.0.1', '80'))
    assert s.getfqdn('localhost') == stdsocket.getfqdn('localhost')
    name = _hosts_name()
    if name is not None:
        assert s.gethostbyname(name) == stdsocket.gethostbyname(name)
        assert s.getaddrinfo(name, 1) == stdsocket.getaddrinfo(name, 1)


@pytest.mark.parametrize('call', [
    lambda m: m.getaddrinfo('localhost', 'no-such-service-pyconc'),
    lambda m: m.getaddrinfo(None, None),
    lambda m: m.getaddrinfo('localhost', 80, 12345),
    lambda m: m.getnameinfo(('127.0.0.1', 80), 'x'),
    lambda m: m.getnameinfo(('127.0.0.1',), 0),
    lambda m: m.getaddrinfo('localhost', 80.5),
    lambda m: m.gethostbyname(42),
])
def test_lookup_errors_match_stdlib(gv, call):
    with pytest.raises(Exception) as want:
        call(stdsocket)
    with pytest.raises(Exception) as got:
        call(gv.socket)
    assert type(got.value) is type(want.value)
    assert got.value.args == want.value.args


def test_lookup_does_not_block_other_greenlets(gv):
    """A slow lookup (the stdlib's getaddrinfo made slow in the worker) lets the other
    greenlets run meanwhile: the hub's threadpool does the call."""
    r = gv.run('''
        import _socket, time
        socket = sub('socket')
        real = _socket.getaddrinfo
        def slow(*args, **kwargs):
            time.sleep(0.3)
            return real(*args, **kwargs)
        _socket.getaddrinfo = slow
        ticks = []
        def ticker():
            for i in range(10):
                ticks.append(i)
                gevent.sleep(0.01)
        t = gevent.spawn(ticker)
        res = socket.getaddrinfo('localhost', 80, socket.AF_INET, socket.SOCK_STREAM)
        print(len(ticks) >= 5, res[0][4])
        t.join()
    ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True ('127.0.0.1', 80)"


def test_connect_by_name_resolves_cooperatively(gv):
    gevent = gv.gevent
    srv = gv.socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    g = gevent.spawn(srv.accept)
    c = gv.socket.socket()
    c.connect(('localhost', port)) if stdsocket.gethostbyname('localhost') == '127.0.0.1' \
        else c.connect(('127.0.0.1', port))
    conn, addr = g.get(timeout=5)
    assert addr[0] == '127.0.0.1'
    for s in (c, conn, srv):
        s.close()
