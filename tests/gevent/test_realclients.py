"""Real client libraries after monkey.patch_all(), on 127.0.0.1 only (issue 12): requests from
500 greenlets, urllib.request over HTTPS with a certificate the test makes (trustme), and
redis-py from 200 greenlets against a real redis-server that the test starts.

Each scenario runs in a fresh interpreter (patch_all() changes the process for good) through
`gv.run`, with the same body for gevent (the oracle) and pyconc.gevent. The HTTP server is a
separate stdlib-asyncio process (_http_barrier_server.py) that answers none of a batch of
requests until all of them have arrived: the batch succeeds only if the client really has them
all in flight at once, so cooperation is checked without timing anything."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SERVER = HERE / "_http_barrier_server.py"


class BarrierServer:
    def __init__(self, barrier, certs=None):
        args = [sys.executable, str(SERVER), str(barrier)]
        if certs is not None:
            args += [certs["cert"], certs["key"]]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line.strip():
            self.proc.kill()
            raise RuntimeError("barrier server did not start: " + self.proc.stderr.read())
        self.port = int(line)

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def certs(tmp_path):
    trustme = pytest.importorskip("trustme", reason="trustme (test extras) makes the test CA")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "server.pem",
             "key": tmp_path / "server.key"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    return {k: str(v) for k, v in paths.items()}


def run_ok(gv, code, timeout=240, **env):
    r = gv.run(code, timeout=timeout, env=dict(os.environ, **env))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


# -- requests from 500 greenlets ----------------------------------------------------------

REQUESTS_500 = '''
import os
sub("monkey").patch_all()
import json
import requests
sys.path.insert(0, os.environ["HERE"])
from _http_barrier_server import body

N = 500
base = "http://127.0.0.1:%s" % os.environ["PORT"]
results = {}

def fetch(i):
    r = requests.get("%s/b/%d" % (base, i), timeout=60)
    results[i] = (r.status_code, r.content == body(i), r.headers["Content-Length"])

gevent.joinall([gevent.spawn(fetch, i) for i in range(N)], raise_error=True)
bad = {i: v for i, v in results.items() if v[:2] != (200, True)}
print("fetched", len(results), "bad", len(bad), sorted(bad.items())[:3])

# a Session (one pool of keep-alive connections) shared by 50 greenlets, 10 requests each
s = requests.Session()
got = []
def session_fetch(k):
    for j in range(10):
        i = k * 10 + j
        r = s.get("%s/p/%d" % (base, i), timeout=60)
        got.append(r.content == body(i))
gevent.joinall([gevent.spawn(session_fetch, k) for k in range(50)], raise_error=True)
print("session", len(got), all(got))
print("stats", requests.get(base + "/stats").text)
'''


@pytest.mark.timeout(300)
def test_requests_from_500_greenlets(gv):
    pytest.importorskip("requests", reason="requests is in the test extras")
    server = BarrierServer(500)
    try:
        r = run_ok(gv, REQUESTS_500, PORT=str(server.port), HERE=str(HERE))
    finally:
        server.close()
    lines = r.stdout.splitlines()
    assert lines[0] == "fetched 500 bad 0 []", r.stdout
    assert lines[1] == "session 500 True", r.stdout
    stats = json.loads(lines[2].split(" ", 1)[1])
    # all 500 were in flight at once (the server answered none before the 500th arrived)
    assert stats == {"arrived": 500, "max_inflight": 500, "timeouts": 0}


# -- urllib.request over HTTPS ------------------------------------------------------------

URLLIB_HTTPS = '''
import os
sub("monkey").patch_all()
import ssl
import urllib.error
import urllib.request
sys.path.insert(0, os.environ["HERE"])
from _http_barrier_server import body

port = os.environ["PORT"]
ctx = ssl.create_default_context(cafile=os.environ["CA"])
N = 50
ok = []

def fetch(i):
    with urllib.request.urlopen("https://127.0.0.1:%s/b/%d" % (port, i), context=ctx,
                                timeout=60) as resp:
        ok.append((resp.status, resp.read() == body(i)))

gevent.joinall([gevent.spawn(fetch, i) for i in range(N)], raise_error=True)
print("fetched", len(ok), sorted(set(ok)))

# by name: localhost resolves through the patched resolver, and the certificate's DNS name
# is checked against it (SNI + hostname verification)
with urllib.request.urlopen("https://localhost:%s/p/7" % port, context=ctx, timeout=60) as resp:
    print("localhost", resp.status, resp.read() == body(7))

# the default context does not trust the test's CA: verification fails, as the stdlib's does
try:
    urllib.request.urlopen("https://127.0.0.1:%s/p/1" % port, timeout=60)
except urllib.error.URLError as e:
    print("untrusted", type(e.reason).__name__, e.reason.verify_message)
else:
    print("untrusted: no error")

# a certificate for another name: hostname mismatch
bad = ssl.create_default_context(cafile=os.environ["CA"])
import socket as _socket
with _socket.create_connection(("127.0.0.1", int(port)), timeout=60) as raw:
    try:
        bad.wrap_socket(raw, server_hostname="example.invalid")
    except ssl.SSLCertVerificationError as e:
        print("mismatch", e.verify_message)
'''


@pytest.mark.timeout(300)
def test_urllib_https_with_test_certificate(gv, certs):
    server = BarrierServer(50, certs)
    try:
        # SSL_CERT_FILE/SSL_CERT_DIR unset: "untrusted" must really be untrusted
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSL_CERT")}
        r = gv.run(URLLIB_HTTPS, timeout=240,
                   env=dict(env, PORT=str(server.port), HERE=str(HERE), CA=certs["ca"]))
    finally:
        server.close()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.splitlines() == [
        "fetched 50 [(200, True)]",
        "localhost 200 True",
        "untrusted SSLCertVerificationError unable to get local issuer certificate",
        "mismatch Hostname mismatch, certificate is not valid for 'example.invalid'.",
    ], r.stdout + r.stderr[-2000:]


# -- redis-py from 200 greenlets ------------------------------------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_port(tmp_path):
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server; "
                    ".ci/run installs it)")
    pytest.importorskip("redis", reason="redis-py is in the test extras")
    port = _free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path), "--maxclients",
                             "1000"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("redis-server did not start: " + proc.stdout.read().decode()[-2000:])
        time.sleep(0.05)
    yield port
    proc.kill()
    proc.wait()
    proc.stdout.close()


REDIS_200 = '''
import os
sub("monkey").patch_all()
import redis

r = redis.Redis(host="127.0.0.1", port=int(os.environ["PORT"]), socket_timeout=60,
                max_connections=400)
r.flushall()
N = 200

def worker(i):
    r.set("key:%d" % i, "value %d" % i)
    r.incr("counter")
    r.rpush("list:%d" % (i % 10), i)
    p = r.pipeline()
    for j in range(20):
        p.hset("hash:%d" % i, "f%d" % j, i * j)
    p.hgetall("hash:%d" % i)
    res = p.execute()
    assert res[-1] == {b"f%d" % j: b"%d" % (i * j) for j in range(20)}, res[-1]
    return r.get("key:%d" % i)

jobs = [gevent.spawn(worker, i) for i in range(N)]
gevent.joinall(jobs, raise_error=True)
print("values", all(g.value == b"value %d" % i for i, g in enumerate(jobs)))
print("counter", int(r.get("counter")))
print("lists", sum(r.llen("list:%d" % k) for k in range(10)),
      sorted(int(x) for k in range(10) for x in r.lrange("list:%d" % k, 0, -1)) == list(range(N)))

# 100 greenlets block in BLPOP (each on its own connection, parked in the hub) while 100 others
# push: every value is popped once. A BLPOP that blocked the thread would hold everything up
# for its 30 s timeout and then return None.
popped = []
def popper():
    item = r.blpop("q", timeout=30)
    popped.append(None if item is None else int(item[1]))
poppers = [gevent.spawn(popper) for _ in range(100)]
gevent.sleep(0.2)
pushers = [gevent.spawn(r.rpush, "q", i) for i in range(100)]
gevent.joinall(poppers + pushers, raise_error=True)
print("popped", sorted(popped) == list(range(100)))
print("clients", r.info("clients")["connected_clients"] >= 100)
'''


@pytest.mark.timeout(300)
def test_redis_from_200_greenlets(gv, redis_port):
    r = run_ok(gv, REDIS_200, PORT=str(redis_port))
    assert r.stdout.splitlines() == [
        "values True", "counter 200", "lists 200 True", "popped True", "clients True",
    ], r.stdout + r.stderr[-2000:]
