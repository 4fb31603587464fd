"""Cooperative I/O (issue 12): pyconc.gevent against gevent, asyncio, uvloop and threads, in one run.

    python bench/bench_io.py [--repeat N] [--quick] [--mode idle|pinned|loaded] [--json ...]

Cases (each server in a fresh process, its clients in another; best of N, implementations
alternately, repeat by repeat):
- echo: 50 connections, 64-byte messages echoed, one message in flight per connection; the
  client is a separate stdlib process on epoll. Servers: pyconc and gevent written in blocking
  style (a greenlet per connection, recv/sendall), asyncio and uvloop streams and Protocols, and
  the stdlib's threads (a thread per connection). ns per round trip (the table), round trips/s
  (printed).
- HTTP: a StreamServer answering a small fixed response (keep-alive) under `wrk` (Debian package
  wrk) with 50 connections, pyconc vs gevent: ns per request; and, from the same runs, the CPU
  time the server process spent per request (/proc/<pid>/stat, user + system), which tells the
  server's own cost apart from wrk's when both share one CPU (pinned mode).
- idle connections: 10,000 connections parked in recv in one StreamServer: the RSS the server
  added, bytes per connection, pyconc vs gevent.
- `import X; monkey.patch_all()` in a fresh interpreter, the statement alone (bytecode compiled
  first, as bench_imports.py does, since PYTHONDONTWRITEBYTECODE may be set): ms.

Every case checks its work (every echo byte compared, wrk's errors and non-2xx counts zero,
every idle connection accepted). gevent, asyncio and uvloop are only baselines: pyconc never
imports them. An implementation that is not installed (or, for pyconc, not built yet) is left
out with a note. Lower is better in every row; the table's ratio is baseline / pyconc.
"""
import argparse
import compileall
import os
import re
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import MODES, Mode, machine, save  # noqa: E402

ECHO_IMPLS = ["pyconc", "gevent", "asyncio-streams", "asyncio-protocol", "uvloop-streams",
              "uvloop-protocol", "threads"]
IMPLS = ECHO_IMPLS
CONNS = 50
MSG = 64

# case -> [(baseline, minimum ratio baseline/pyconc)] the issue asks for
TARGETS = {
    "echo, 50 connections, 64 bytes": [("uvloop-protocol", 1.0), ("gevent", 1.4)],
    "HTTP small response under wrk, 50 connections": [("gevent", 1.5)],
    "10,000 idle connections: RSS per connection": [("gevent", 1.0)],
    "import + monkey.patch_all()": [("gevent", 1.0)],
}


def available(impl):
    """None if impl can run here, else the reason it cannot."""
    mod = {"pyconc": "pyconc.gevent.socket", "gevent": "gevent",
           "uvloop-streams": "uvloop", "uvloop-protocol": "uvloop"}.get(impl)
    if mod is None:
        return None
    code = f"import {mod}"
    if impl == "pyconc":
        code += "; import pyconc.gevent.server, pyconc.gevent.monkey"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode:
        return r.stderr.strip().splitlines()[-1]
    return None


# -- the servers (run as `bench_io.py --serve KIND IMPL`; print the port, serve until killed) --

def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _green(impl):
    if impl == "pyconc":
        import pyconc.gevent as g
        import pyconc.gevent.server
        import pyconc.gevent.socket
    else:
        import gevent as g
        import gevent.server
        import gevent.socket
    return g, g.socket, g.server


def serve_echo(impl):
    import socket as std_socket
    if impl in ("pyconc", "gevent", "threads"):
        if impl == "threads":
            import threading
            sockmod, spawn = std_socket, (
                lambda f, c: threading.Thread(target=f, args=(c,), daemon=True).start())
        else:
            g, sockmod, _ = _green(impl)
            spawn = g.spawn
        listener = sockmod.socket()
        listener.setsockopt(std_socket.SOL_SOCKET, std_socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        print(listener.getsockname()[1], flush=True)

        def handle(conn):      # blocking style: what a reader of the seeds writes
            recv, sendall = conn.recv, conn.sendall
            while True:
                data = recv(65536)
                if not data:
                    break
                sendall(data)
            conn.close()
        while True:
            conn, _ = listener.accept()
            conn.setsockopt(std_socket.IPPROTO_TCP, std_socket.TCP_NODELAY, 1)
            spawn(handle, conn)
    import asyncio

    async def main():
        loop = asyncio.get_running_loop()
        if impl.endswith("streams"):
            async def handle(reader, writer):
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
                writer.close()
            server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        else:
            class Echo(asyncio.Protocol):
                def connection_made(self, transport):
                    self.transport = transport

                def data_received(self, data):
                    self.transport.write(data)
            server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()
    if impl.startswith("uvloop"):
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())


HTTP_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                 b"Hello, World!")


def serve_http(impl):
    g, _, server_mod = _green(impl)

    def handle(sock, addr):
        buf = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return
            buf += data
            n = buf.count(b"\r\n\r\n")
            if n:
                sock.sendall(HTTP_RESPONSE * n)
                buf = buf[buf.rindex(b"\r\n\r\n") + 4:]
    server = server_mod.StreamServer(("127.0.0.1", 0), handle, backlog=1024)
    server.start()
    print(server.server_port, flush=True)
    server.serve_forever()


def serve_idle(impl):
    _raise_nofile()
    g, _, server_mod = _green(impl)
    n = int(os.environ["IDLE_N"])
    count = [0]

    def handle(sock, addr):
        count[0] += 1
        if count[0] == n:
            print(_rss() - rss0, flush=True)
        sock.recv(1)
    server = server_mod.StreamServer(("127.0.0.1", 0), handle, backlog=4096)
    server.start()
    g.sleep(0)
    rss0 = _rss()
    print(server.server_port, flush=True)
    server.serve_forever()


# -- the clients and the measuring side ---------------------------------------------------

ECHO_CLIENT = r'''
import os, select, socket, sys, time
port, conns, total, size = (int(x) for x in sys.argv[1:5])
msg = bytes((i * 7 + 1) % 256 for i in range(size))
socks = {}
for _ in range(conns):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    socks[s.fileno()] = s
ep = select.epoll()
for fd in socks:
    ep.register(fd, select.EPOLLIN)
got = dict.fromkeys(socks, b"")
done = sent = 0
t0 = time.perf_counter()
for s in socks.values():
    s.send(msg)
    sent += 1
poll = ep.poll
while done < total:
    for fd, ev in poll():
        s = socks[fd]
        data = s.recv(4096)   # one message in flight per connection: at most `size` bytes
        if data == msg and not got[fd]:   # the usual case: one whole message
            done += 1
            if sent < total:
                s.send(msg)
                sent += 1
            continue
        if not data:
            raise SystemExit("server closed a connection")
        buf = got[fd] + data
        while len(buf) >= size:
            if buf[:size] != msg:
                raise SystemExit("wrong echo")
            buf = buf[size:]
            done += 1
            if sent < total:
                s.send(msg)
                sent += 1
        got[fd] = buf
elapsed = time.perf_counter() - t0
print(elapsed, done)
'''

IDLE_CLIENT = r'''
import resource, select, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port, n = int(sys.argv[1]), int(sys.argv[2])
ep = select.epoll()
socks = []
for i in range(n):
    s = socket.socket()
    s.setblocking(False)
    assert s.connect_ex(("127.0.0.1", port)) in (0, 115)
    ep.register(s.fileno(), select.EPOLLOUT)
    socks.append(s)
left = n
while left:
    for fd, ev in ep.poll(30):
        ep.unregister(fd)
        left -= 1
print("connected", flush=True)
sys.stdin.readline()
'''


class Server:
    def __init__(self, kind, impl, env=None):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", kind,
                                      impl], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.strip():
            err = self.proc.stderr.read()
            self.proc.wait()
            raise RuntimeError(f"{kind} server {impl} did not start: {err[-2000:]}")
        self.port = int(line)

    def readline(self):
        return self.proc.stdout.readline()

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def echo_once(impl, total):
    server = Server("echo", impl)
    try:
        out = subprocess.run([sys.executable, "-c", ECHO_CLIENT, str(server.port), str(CONNS),
                              str(total), str(MSG)], capture_output=True, text=True, check=True)
    finally:
        server.close()
    elapsed, done = out.stdout.split()
    assert int(done) == total, out.stdout
    return float(elapsed)


def _proc_cpu_seconds(pid):
    """User + system CPU time of a process (all its threads) so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


HTTP_SERVER_CPU = {}   # impl -> the least server CPU seconds per request over the runs


def wrk_once(impl, seconds):
    server = Server("http", impl)
    try:
        cpu0 = _proc_cpu_seconds(server.proc.pid)
        out = subprocess.run(["wrk", "-t1", f"-c{CONNS}", f"-d{seconds}s",
                              f"http://127.0.0.1:{server.port}/"], capture_output=True,
                             text=True, check=True).stdout
        cpu = _proc_cpu_seconds(server.proc.pid) - cpu0
    finally:
        server.close()
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    assert rps > 0, out
    requests = int(re.search(r"([0-9]+) requests in", out).group(1))
    per = cpu / requests
    HTTP_SERVER_CPU[impl] = min(HTTP_SERVER_CPU.get(impl, float("inf")), per)
    return rps


def idle_once(impl, n):
    server = Server("idle", impl, env=dict(os.environ, IDLE_N=str(n)))
    client = subprocess.Popen([sys.executable, "-c", IDLE_CLIENT, str(server.port), str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline() == "connected\n"
        added = int(server.readline())   # printed when the n-th connection's greenlet parks
    finally:
        client.kill()
        client.wait()
        client.stdin.close()
        client.stdout.close()
        server.close()
    return added / n


IMPORT_STMT = {"pyconc": "import pyconc.gevent; from pyconc.gevent import monkey; "
                         "monkey.patch_all()",
               "gevent": "import gevent; from gevent import monkey; monkey.patch_all()"}


def import_once(impl):
    code = (f"import time; t = time.perf_counter(); {IMPORT_STMT[impl]}; "
            f"print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return float(out)


def best(fn, impls, repeat, *args):
    """Best value of fn(impl, *args) per impl, impls alternately, repeat by repeat."""
    got = {}
    for _ in range(repeat):
        for impl in impls:
            v = fn(impl, *args)
            got[impl] = min(got.get(impl, float("inf")), v)
    return got


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--mode", choices=MODES, default="idle")
    ap.add_argument("--json", default=None)
    ap.add_argument("--serve", nargs=2, metavar=("KIND", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        kind, impl = args.serve
        {"echo": serve_echo, "http": serve_http, "idle": serve_idle}[kind](impl)
        return
    if args.json is None:
        args.json = os.path.join(HERE, "results", f"io.{args.mode}.json")
    k = 10 if args.quick else 1
    missing = {}
    for impl in ECHO_IMPLS:
        why = available(impl)
        if why:
            missing[impl] = why
            print(f"note: {impl} left out: {why}")
    echo_impls = [i for i in ECHO_IMPLS if i not in missing]
    green = [i for i in ("pyconc", "gevent") if i not in missing]
    import pyconc
    compileall.compile_dir(os.path.dirname(pyconc.__file__), quiet=1)
    results = []
    with Mode(args.mode):
        print(f"io ({args.mode}): best of {args.repeat}")
        total = 200_000 // k
        t = best(echo_once, echo_impls, args.repeat, total)
        results.append({"case": "echo, 50 connections, 64 bytes", "unit": "ns/round trip",
                        "ns_per_op": {i: v / total * 1e9 for i, v in t.items()}})
        print("echo, round trips/s: " + ", ".join(f"{i} {total / v:,.0f}" for i, v in t.items()),
              flush=True)
        if shutil.which("wrk") is None:
            print("note: the HTTP case needs wrk (Debian: apt-get install wrk); left out")
        elif green:
            rps = best(lambda i, s: -wrk_once(i, s), green, args.repeat, 1 if args.quick else 5)
            results.append({"case": "HTTP small response under wrk, 50 connections",
                            "unit": "ns/request",
                            "ns_per_op": {i: 1e9 / -v for i, v in rps.items()}})
            print("HTTP, requests/s: " + ", ".join(f"{i} {-v:,.0f}" for i, v in rps.items()),
                  flush=True)
            results.append({"case": "HTTP under wrk: the server's own CPU per request",
                            "unit": "ns/request",
                            "ns_per_op": {i: v * 1e9 for i, v in HTTP_SERVER_CPU.items()}})
            print("HTTP, server CPU per request: " +
                  ", ".join(f"{i} {v * 1e9:,.0f} ns" for i, v in HTTP_SERVER_CPU.items()),
                  flush=True)
        if green:
            n = 10_000 // k
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if hard != resource.RLIM_INFINITY and hard < n + 200:
                print(f"note: idle connections left out: RLIMIT_NOFILE hard limit {hard}")
            else:
                per = best(idle_once, green, max(1, args.repeat // 2), n)
                case = "10,000 idle connections: RSS per connection"
                if args.quick:
                    case = case.replace("10,000", f"{n:,}")
                results.append({"case": case, "unit": "bytes",
                                "ns_per_op": per})
                print("idle connections, bytes each: " +
                      ", ".join(f"{i} {v:,.0f}" for i, v in per.items()), flush=True)
            ms = best(import_once, green, max(5, args.repeat * 2))
            results.append({"case": "import + monkey.patch_all()", "unit": "ms",
                            "ns_per_op": {i: v * 1e3 for i, v in ms.items()}})
            print("import + patch_all, ms: " +
                  ", ".join(f"{i} {v * 1e3:.1f}" for i, v in ms.items()), flush=True)
    versions = {}
    for name in ("gevent", "uvloop"):
        r = subprocess.run([sys.executable, "-c", f"import {name}; print({name}.__version__)"],
                           capture_output=True, text=True)
        versions[name] = r.stdout.strip() or None
    data = {"suite": "io", "kind": "multi", "mode": args.mode, "repeat": args.repeat,
            "quick": args.quick, "impls": IMPLS, "targets": TARGETS, "machine": machine(),
            "versions": versions, "missing": missing, "results": results}
    save(data, args.json)


if __name__ == "__main__":
    main()
