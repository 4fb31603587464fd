"""pyconc.multiprocessing.connection against the stdlib's multiprocessing.connection: the same
test body runs on both modules (Listener, Client, wait, Pipe), and a pyconc end talks to a stdlib
end in both directions, with and without an authkey."""
import multiprocessing.connection as std_conn
import os
import pickle
import socket
import tempfile
import threading
import time

import pytest

import pyconc.multiprocessing as pc_mp
import pyconc.multiprocessing.connection as pc_conn
from pyconc.multiprocessing._shared import Connection as PcConnection

pytestmark = pytest.mark.timeout(60)

MODS = [pytest.param(std_conn, id="stdlib"), pytest.param(pc_conn, id="pyconc")]


def serve(listener, n=1, handler=None):
    """Accepts n connections in a thread; each echoes (doubling ints) until EOF. Returns the
    thread and a list that collects (type of connection, error) per accept."""
    seen = []

    def run():
        for _ in range(n):
            try:
                c = listener.accept()
            except Exception as e:   # noqa: BLE001 -- reported to the test
                seen.append((None, e))
                continue
            seen.append((type(c), None))
            with c:
                if handler is not None:
                    handler(c)
                    continue
                try:
                    while True:
                        b = c.recv_bytes()
                        x = pickle.loads(b) if b.startswith(b"\x80") else None
                        if isinstance(x, int):
                            c.send(x * 2)
                        else:
                            c.send_bytes(b)
                except EOFError:
                    pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, seen


def test_names_match_the_stdlib():
    assert pc_conn.__all__ == std_conn.__all__
    for name in ("Listener", "Client", "Pipe", "wait", "Connection", "families",
                 "default_family", "address_type", "arbitrary_address", "deliver_challenge",
                 "answer_challenge", "AuthenticationError", "BufferTooShort", "BUFSIZE",
                 "CONNECTION_TIMEOUT", "SocketListener", "SocketClient"):
        assert hasattr(pc_conn, name), name
    assert issubclass(pc_conn.Listener, std_conn.Listener)
    assert pc_conn.Connection is pc_mp.Connection
    assert pc_conn.families == std_conn.families


@pytest.mark.parametrize("mod", MODS)
@pytest.mark.parametrize("family", ["AF_INET", "AF_UNIX"])
@pytest.mark.parametrize("authkey", [None, b"secret"])
def test_listener_client_round_trip(mod, family, authkey):
    with mod.Listener(family=family, authkey=authkey) as listener:
        if family == "AF_INET":
            assert listener.address[0] == "127.0.0.1" and listener.address[1] > 0
        else:
            assert isinstance(listener.address, str) and os.path.exists(listener.address)
        assert listener.last_accepted is None
        t, seen = serve(listener)
        with mod.Client(listener.address, authkey=authkey) as c:
            assert [c.send(i) or c.recv() for i in range(5)] == [0, 2, 4, 6, 8]
            c.send_bytes(b"raw")
            assert c.recv_bytes() == b"raw"
            assert c.poll(0) is False
        t.join(10)
        assert seen == [(mod.Connection, None)]
        if family == "AF_INET":
            assert listener.last_accepted[0] == "127.0.0.1"
        address = listener.address
    if family == "AF_UNIX":
        assert not os.path.exists(address)   # unlinked by close()


@pytest.mark.parametrize("server_mod, client_mod",
                         [(std_conn, pc_conn), (pc_conn, std_conn)],
                         ids=["stdlib-server", "pyconc-server"])
@pytest.mark.parametrize("authkey", [None, b"k" * 40])
def test_interop_with_stdlib_ends(server_mod, client_mod, authkey):
    with server_mod.Listener(authkey=authkey) as listener:
        t, seen = serve(listener)
        with client_mod.Client(listener.address, authkey=authkey) as c:
            c.send({"a": [1, 2], "b": "x" * 100_000})
            assert c.recv() == {"a": [1, 2], "b": "x" * 100_000}
            c.send(21)
            assert c.recv() == 42
        t.join(10)
    assert seen == [(server_mod.Connection, None)]


@pytest.mark.parametrize("server_mod, client_mod",
                         [(std_conn, std_conn), (pc_conn, pc_conn), (std_conn, pc_conn),
                          (pc_conn, std_conn)],
                         ids=["stdlib", "pyconc", "stdlib-server", "pyconc-server"])
def test_wrong_authkey_fails_both_ends(server_mod, client_mod):
    with server_mod.Listener(authkey=b"right") as listener:
        t, seen = serve(listener)
        with pytest.raises(std_conn.AuthenticationError):
            client_mod.Client(listener.address, authkey=b"wrong")
        t.join(10)
    assert len(seen) == 1 and isinstance(seen[0][1], std_conn.AuthenticationError)


@pytest.mark.parametrize("mod", MODS)
def test_bad_arguments(mod):
    with pytest.raises(ValueError) as e:
        mod.Listener(family="AF_PIPE")
    assert str(e.value) == "Family AF_PIPE is not recognized."
    with pytest.raises(TypeError) as e:
        mod.Listener(authkey="text")
    assert str(e.value) == "authkey should be a byte string"
    with pytest.raises((TypeError, ValueError)) as e:   # TypeError from multiprocessing.util
        mod.Client(12345)
    assert str(e.value) == "address type of 12345 unrecognized"
    with pytest.raises(ValueError):
        mod.Client("\\\\.\\pipe\\x")   # a Windows pipe name
    with pytest.raises(OSError):
        mod.Client(("127.0.0.1", 1))   # nobody listens: ConnectionRefusedError
    with pytest.raises(OSError):
        mod.Client(tempfile.mktemp())   # no such socket file


@pytest.mark.parametrize("mod", MODS)
def test_closed_listener(mod):
    listener = mod.Listener()
    listener.close()
    listener.close()   # twice is harmless
    with pytest.raises(OSError) as e:
        listener.accept()
    assert str(e.value) == "listener is closed"
    with pytest.raises(AttributeError):
        listener.address


@pytest.mark.parametrize("mod", MODS)
def test_abstract_unix_address(mod):
    name = f"\0pyconc-test-{os.getpid()}-{id(mod)}"
    with mod.Listener(name) as listener:
        assert listener.address == name.encode() or listener.address == name
        t, seen = serve(listener)
        with mod.Client(name) as c:
            c.send(4)
            assert c.recv() == 8
        t.join(10)


@pytest.mark.parametrize("mod", MODS)
def test_client_sees_eof_when_server_closes(mod):
    with mod.Listener() as listener:
        t, seen = serve(listener, handler=lambda c: c.send("bye"))
        with mod.Client(listener.address) as c:
            assert c.recv() == "bye"
            with pytest.raises(EOFError):
                c.recv()
        t.join(10)


@pytest.mark.parametrize("mod", MODS)
def test_recv_bytes_maxlength(mod):
    with mod.Listener() as listener:
        t, seen = serve(listener, handler=lambda c: c.send_bytes(b"x" * 300))
        with mod.Client(listener.address) as c:
            with pytest.raises(OSError) as e:
                c.recv_bytes(256)
            assert str(e.value) == "bad message length"
        t.join(10)


# -- wait ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mod", MODS)
def test_wait_returns_the_ready_objects(mod):
    a, b = mod.Pipe()
    r, w = mod.Pipe(duplex=False)
    s1, s2 = socket.socketpair()
    try:
        assert mod.wait([a, r, s1], timeout=0) == []
        b.send(1)
        s2.send(b"x")
        got = mod.wait([a, r, s1], timeout=5)
        assert set(map(id, got)) == {id(a), id(s1)}
        w.send_bytes(b"")
        assert set(map(id, mod.wait([a, r, s1]))) == {id(a), id(r), id(s1)}
        assert mod.wait([r.fileno()], 5) == [r.fileno()]
    finally:
        for o in (a, b, r, w, s1, s2):
            o.close()


@pytest.mark.parametrize("mod", MODS)
def test_wait_timeout(mod):
    a, b = mod.Pipe()
    with a, b:
        t0 = time.monotonic()
        assert mod.wait([a], timeout=0.2) == []
        assert time.monotonic() - t0 >= 0.19
        assert mod.wait([], timeout=0.05) == []


@pytest.mark.parametrize("mod", MODS)
def test_wait_wakes_on_send_from_a_thread(mod):
    a, b = mod.Pipe()
    with a, b:
        threading.Timer(0.1, b.send, ("late",)).start()
        assert mod.wait([a], timeout=10) == [a]
        assert a.recv() == "late"


@pytest.mark.parametrize("mod", MODS)
def test_wait_sees_eof_and_process_sentinels(mod):
    a, b = mod.Pipe()
    b.close()
    with a:
        assert mod.wait([a], timeout=5) == [a]     # EOF is readable
        with pytest.raises(EOFError):
            a.recv()
    p = pc_mp.get_context("fork").Process(target=time.sleep, args=(0.1,))
    p.start()
    assert mod.wait([p.sentinel], timeout=10) == [p.sentinel]
    p.join()


@pytest.mark.parametrize("mod", MODS)
def test_wait_bad_objects(mod):
    with pytest.raises((TypeError, ValueError)):
        mod.wait([object()], timeout=0)
    with pytest.raises(ValueError):
        mod.wait([-1], timeout=0)


@pytest.mark.parametrize("mod", MODS)
def test_wait_same_object_twice(mod):
    a, b = mod.Pipe()
    with a, b:
        with pytest.raises(KeyError):
            mod.wait([a, a], timeout=0)


def test_wait_mixes_stdlib_and_pyconc_connections():
    sa, sb = std_conn.Pipe()
    pa, pb = pc_conn.Pipe()
    try:
        sb.send(1)
        pb.send(2)
        for mod in (pc_conn, std_conn):
            assert set(map(id, mod.wait([sa, pa], timeout=5))) == {id(sa), id(pa)}
    finally:
        for o in (sa, sb, pa, pb):
            o.close()


def test_listener_in_a_child_process():
    """A pyconc Process listens; the parent's Client talks to it (retrying until it listens)."""
    with pc_conn.Listener(authkey=b"abc") as listener:
        address = listener.address      # a fresh AF_UNIX path, unlinked again by close()
    p = pc_mp.get_context("fork").Process(target=_child_serve, args=(address,))
    p.start()
    try:
        with _connect_retry(address, b"abc") as c:
            c.send([1, 2, 3])
            assert c.recv() == [1, 2, 3, 1, 2, 3]
    finally:
        p.join(10)
    assert p.exitcode == 0


def _child_serve(address):
    with pc_conn.Listener(address, authkey=b"abc") as listener:
        with listener.accept() as c:
            c.send(c.recv() * 2)


def _connect_retry(address, authkey):
    deadline = time.monotonic() + 10
    while True:
        try:
            return pc_conn.Client(address, authkey=authkey)
        except (ConnectionRefusedError, FileNotFoundError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
