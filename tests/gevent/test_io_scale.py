"""Scale (issue 12): 10,000 concurrent idle connections to one StreamServer in one process, a
greenlet parked in recv for each; then every client sends 64 bytes and gets them back: nothing
is lost. gevent is the oracle (same server body through `gv.popen`).

The clients live in another process (stdlib sockets on epoll), so each side needs only about
10,000 descriptors; both raise RLIMIT_NOFILE to the hard limit. The RSS the server added per
connection is printed for both gevent and pyconc (shown with -s or in the report of a failure);
it is a figure for the benchmarks, not an assertion."""
import os
import resource
import subprocess
import sys

import pytest

N = 10_000

SERVER = r'''
import os, resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
N = int(os.environ["N"])

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

state = {"connected": 0, "echoed": 0, "closed": 0, "errors": []}

def handle(sock, addr):
    state["connected"] += 1
    if state["connected"] == N:
        print("connected", N, rss() - rss0, flush=True)
    try:
        data = sock.recv(64)            # idle here until the client's go
        while len(data) < 64:
            more = sock.recv(64 - len(data))
            if not more:
                break
            data += more
        sock.sendall(data)
        state["echoed"] += 1
        if state["echoed"] == N:
            print("echoed", N, flush=True)
        if sock.recv(64) == b"":
            state["closed"] += 1
            if state["closed"] == N:
                print("closed", N, "errors", len(state["errors"]), flush=True)
    except Exception as e:
        state["errors"].append(repr(e))
        print("error", repr(e), flush=True)

server = sub("server").StreamServer(("127.0.0.1", 0), handle, backlog=4096)
server.start()
rss0 = rss()
print(server.server_port, flush=True)
server.serve_forever()
'''

CLIENT = r'''
import os, resource, select, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port, n = int(sys.argv[1]), int(sys.argv[2])
ep = select.epoll()
socks = {}
for i in range(n):
    s = socket.socket()
    s.setblocking(False)
    err = s.connect_ex(("127.0.0.1", port))
    assert err in (0, 115), err          # 115: EINPROGRESS
    socks[s.fileno()] = (i, s)
    ep.register(s.fileno(), select.EPOLLOUT)
pending = set(socks)
while pending:
    for fd, ev in ep.poll(30):
        if fd in pending:
            i, s = socks[fd]
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            assert err == 0, (i, os.strerror(err))
            pending.discard(fd)
            ep.modify(fd, 0)
print("connected", n, flush=True)
assert sys.stdin.readline() == "go\n"
expect = {}
for fd, (i, s) in socks.items():
    msg = (b"%05d" % i) * 12 + b"-end"       # 64 bytes, different for each connection
    assert len(msg) == 64
    expect[fd] = msg
    s.send(msg)                              # 64 bytes always fit an empty socket buffer
    ep.modify(fd, select.EPOLLIN)
got = {fd: b"" for fd in socks}
left = set(socks)
while left:
    events = ep.poll(60)
    assert events, "no echo for 60 s; %d connections still waiting" % len(left)
    for fd, ev in events:
        chunk = socks[fd][1].recv(64)
        assert chunk, "connection %d closed before its echo" % socks[fd][0]
        got[fd] += chunk
        if len(got[fd]) >= 64:
            left.discard(fd)
            ep.modify(fd, 0)
wrong = [socks[fd][0] for fd in socks if got[fd] != expect[fd]]
print("echoed", n, "wrong", len(wrong), wrong[:5], flush=True)
for fd, (i, s) in socks.items():
    s.close()
'''


def _readline(proc, what):
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError(f"{what} ended early: " + proc.stderr.read()[-3000:])
    return line.split()


@pytest.mark.timeout(600)
def test_10000_idle_connections_then_all_echo(gv):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < N + 200:
        pytest.skip(f"RLIMIT_NOFILE hard limit is {hard}: {N:,} connections need {N + 200} "
                    f"descriptors in each process")
    server = gv.popen(SERVER, env=dict(os.environ, N=str(N)))
    client = None
    try:
        port = int(_readline(server, "server")[0])
        client = subprocess.Popen([sys.executable, "-c", CLIENT, str(port), str(N)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        assert _readline(client, "client") == ["connected", str(N)]
        line = _readline(server, "server")
        assert line[:2] == ["connected", str(N)], line
        added = int(line[2])
        print(f"\n{gv.name}: {N:,} idle connections added {added / 2**20:.1f} MiB to the "
              f"server's RSS, {added / N:,.0f} bytes per connection")
        client.stdin.write("go\n")
        client.stdin.flush()
        assert _readline(client, "client") == ["echoed", str(N), "wrong", "0", "[]"]
        assert _readline(server, "server") == ["echoed", str(N)]
        client.stdin.close()
        assert client.wait(60) == 0, client.stderr.read()[-3000:]
        assert _readline(server, "server") == ["closed", str(N), "errors", "0"]
    finally:
        for p in (client, server):
            if p is not None:
                p.kill()
                p.wait()
                for f in (p.stdin, p.stdout, p.stderr):
                    if f is not None:
                        f.close()
