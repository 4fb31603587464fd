"""Network faults on cooperative sockets (issue 12), gevent as the oracle: a peer that resets the
connection in the middle of a sendall, half-closed connections in both directions, a peer
process that dies while a greenlet waits on it, and a client that connects and sends nothing.
Everything on 127.0.0.1. (EMFILE during an accept storm, SIGPIPE and Ctrl-C in serve_forever
are the server tests of the monkey/server part.)

Each test also checks that the other greenlets ran while one was parked on the faulty socket:
a socket call that blocked the thread would show up as a ticker that never ticked."""
import importlib
import socket as std_socket
import struct
import subprocess
import sys

import pytest


def mod(gv, name):
    return importlib.import_module(gv.name + "." + name)


class Ticker:
    """A greenlet that counts while the test's greenlet is parked."""

    def __init__(self, gv):
        self.count = 0
        self.g = gv.gevent.spawn(self._run, gv)

    def _run(self, gv):
        while True:
            gv.gevent.sleep(0.005)
            self.count += 1

    def stop(self):
        self.g.kill()
        return self.count


def pair(gv):
    """A connected (client, server-side) pair of the face's sockets, and the listener."""
    gsocket = mod(gv, "socket")
    listener = gsocket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    client = gsocket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    return listener, client, conn


def reset(sock):
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock.setsockopt(std_socket.SOL_SOCKET, std_socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.timeout(60)
def test_peer_reset_mid_sendall(gv):
    listener, client, conn = pair(gv)
    conn.setsockopt(std_socket.SOL_SOCKET, std_socket.SO_SNDBUF, 16384)
    received = []

    def peer():
        received.append(len(client.recv(4096)))   # takes a little of the stream, then resets
        gv.gevent.sleep(0.1)
        reset(client)

    ticker = Ticker(gv)
    p = gv.gevent.spawn(peer)
    with pytest.raises(ConnectionResetError) as info:
        conn.sendall(b"x" * (64 << 20))
    assert info.value.errno == 104
    p.join()
    assert received and received[0] > 0
    assert ticker.stop() > 0
    # the connection stays dead: the next send reports the broken pipe
    with pytest.raises(BrokenPipeError):
        conn.sendall(b"more")
    conn.close()
    listener.close()


@pytest.mark.timeout(60)
def test_peer_reset_wakes_parked_recv(gv):
    listener, client, conn = pair(gv)
    p = gv.gevent.spawn_later(0.05, reset, client)
    ticker = Ticker(gv)
    with pytest.raises(ConnectionResetError):
        conn.recv(100)
    assert ticker.stop() > 0
    p.join()
    conn.close()
    listener.close()


@pytest.mark.timeout(60)
def test_half_close_by_client(gv):
    """The client sends, then shuts down its writing side: the server reads to EOF (recv and
    makefile), answers on the still-open direction, and the client reads the answer to EOF."""
    listener, client, conn = pair(gv)
    payload = bytes(range(256)) * 4096   # 1 MiB: more than the socket buffers hold

    def server():
        f = conn.makefile("rb")
        data = f.read()          # to EOF: the client's SHUT_WR
        f.close()
        assert conn.recv(10) == b""     # EOF stays EOF
        conn.sendall(b"got %d bytes" % len(data))
        conn.sendall(data[-10:])
        conn.close()
        return data == payload

    s = gv.gevent.spawn(server)
    client.sendall(payload)
    client.shutdown(std_socket.SHUT_WR)
    with pytest.raises(BrokenPipeError):
        client.send(b"after shutdown")
    chunks = []
    while True:
        chunk = client.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    assert b"".join(chunks) == b"got %d bytes" % len(payload) + payload[-10:]
    assert s.get() is True
    client.close()
    listener.close()


@pytest.mark.timeout(60)
def test_half_close_by_server(gv):
    """The server shuts down its writing side first: the client sees EOF but can still send,
    and the server still receives."""
    listener, client, conn = pair(gv)
    conn.sendall(b"bye")
    conn.shutdown(std_socket.SHUT_WR)

    def reader():
        got = b""
        while True:
            chunk = conn.recv(1024)
            if not chunk:
                return got
            got += chunk

    r = gv.gevent.spawn(reader)
    assert client.recv(10) == b"bye"
    assert client.recv(10) == b""
    client.sendall(b"still talking")
    client.shutdown(std_socket.SHUT_WR)
    assert r.get() == b"still talking"
    conn.close()
    client.close()
    listener.close()


PEER = r'''
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("connected", flush=True)
time.sleep(60)
'''


def start_peer(port):
    proc = subprocess.Popen([sys.executable, "-c", PEER, str(port)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline() == "connected\n"
    return proc


@pytest.mark.timeout(60)
@pytest.mark.parametrize("unread", [False, True], ids=["fin", "rst"])
def test_peer_process_dies_during_recv(gv, unread):
    """A peer process killed with SIGKILL: its kernel closes the connection, with FIN (recv
    gives b'') or, when data it never read was still queued for it, with RST
    (ConnectionResetError)."""
    gsocket = mod(gv, "socket")
    listener = gsocket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    proc = start_peer(listener.getsockname()[1])
    try:
        conn, _ = listener.accept()
        if unread:
            conn.sendall(b"never read")
        gv.gevent.spawn_later(0.1, proc.kill)
        ticker = Ticker(gv)
        if unread:
            with pytest.raises(ConnectionResetError):
                conn.recv(100)
        else:
            assert conn.recv(100) == b""
        assert ticker.stop() > 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    conn.close()
    listener.close()


@pytest.mark.timeout(60)
def test_peer_process_dies_during_sendall(gv):
    """A peer that never reads, killed while a greenlet is parked in sendall on full buffers."""
    gsocket = mod(gv, "socket")
    listener = gsocket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    proc = start_peer(listener.getsockname()[1])
    try:
        conn, _ = listener.accept()
        gv.gevent.spawn_later(0.2, proc.kill)
        ticker = Ticker(gv)
        with pytest.raises(ConnectionResetError):
            conn.sendall(b"y" * (64 << 20))
        assert ticker.stop() > 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    conn.close()
    listener.close()


@pytest.mark.timeout(60)
def test_silent_client_times_out_while_others_are_served(gv):
    """A StreamServer whose handler reads with a timeout: a client that connects and sends
    nothing gets its handler's recv timed out (socket.timeout, 'timed out'), while another
    client is echoed meanwhile."""
    gsocket = mod(gv, "socket")
    outcomes = []

    def handle(sock, addr):
        sock.settimeout(0.3)
        try:
            data = sock.recv(100)
        except std_socket.timeout as e:
            outcomes.append(("timeout", type(e), str(e)))
            return
        outcomes.append(("data", data))
        sock.sendall(data.upper())

    server = mod(gv, "server").StreamServer(("127.0.0.1", 0), handle)
    server.start()
    try:
        silent = gsocket.create_connection(("127.0.0.1", server.server_port))
        gv.gevent.sleep(0.05)
        talker = gsocket.create_connection(("127.0.0.1", server.server_port))
        talker.sendall(b"hello")
        assert talker.recv(100) == b"HELLO"
        assert outcomes == [("data", b"hello")]     # answered before the silent one timed out
        assert silent.recv(100) == b""              # the handler returned: connection closed
        assert outcomes[1] == ("timeout", TimeoutError, "timed out")
        silent.close()
        talker.close()
    finally:
        server.stop()
