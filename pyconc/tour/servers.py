"""Local servers for the tour's network programs (the seeds' crawlers and downloaders).

The seeds fetch pages from web sites; the tour points them at servers of its own on 127.0.0.1
instead (no outside network): a threaded http.server whose every page answers after `delay`
seconds, so that fetching three pages one after the other takes three delays and fetching them
at once takes one. The HTTPS variant uses a certificate made for the run by a throw-away CA
(`trustme` when installed, else the `openssl` command); the program trusts it through
SSL_CERT_FILE, which OpenSSL's default verify paths (and so `ssl.create_default_context()`)
read, so the program's own text does not change.

Each server keeps a log of (path, arrival, answered) times on time.monotonic(), which the tests
read to tell fetches in parallel from fetches in turn without timing the whole program.
"""
import os
import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def page_body(path):
    """The bytes a page answers with: small, and naming its path so each fetch is told apart."""
    return (f"<html><head><meta charset='utf-8'><title>tour page {path}</title></head>"
            f"<body><p>tour page {path}</p></body></html>\n").encode()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        arrived = time.monotonic()
        time.sleep(server.delay)
        body = page_body(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        with server.log_lock:
            server.log.append((self.path, arrived, time.monotonic()))

    def log_message(self, *args):  # quiet: the tour shows the program's output, not ours
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # the listen backlog: the tests connect hundreds of clients at once
    request_queue_size = 1024

    def __init__(self, delay, context):
        self.delay = delay
        self.context = context
        self.log = []
        self.log_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self):
        sock, addr = super().get_request()
        if self.context is not None:
            # the handshake runs in the request's thread (do_handshake_on_connect on first read)
            sock = self.context.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):  # a client that went away: not ours
        pass


class PageServer:
    """A threaded HTTP(S) server on 127.0.0.1 answering every GET after `delay` seconds.
    Use as a context manager; .url(path) gives a page's URL, .log the (path, arrived, answered)
    records of the answered requests."""

    def __init__(self, delay=0.5, tls=None):
        """tls: None for plain HTTP, or a Certs (make_certs()) for HTTPS."""
        context = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
        self.scheme = "https" if tls is not None else "http"
        self.server = _Server(delay, context)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def log(self):
        with self.server.log_lock:
            return list(self.server.log)

    def url(self, path):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        return False


class Certs:
    """Paths of a CA certificate (what clients trust), and a server certificate + key for
    127.0.0.1 and localhost that it signed."""

    def __init__(self, ca, cert, key):
        self.ca, self.cert, self.key = ca, cert, key


def make_certs(folder):
    """Writes a throw-away CA and a server certificate for 127.0.0.1/localhost into folder.
    Uses trustme when installed, else the openssl command. Returns a Certs, or raises
    RuntimeError saying what is missing."""
    folder = str(folder)
    ca_path = os.path.join(folder, "ca.pem")
    cert_path = os.path.join(folder, "server.pem")
    key_path = os.path.join(folder, "server.key")
    try:
        import trustme
    except ImportError:
        trustme = None
    if trustme is not None:
        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(ca_path)
        server.private_key_pem.write_to_path(key_path)
        server.cert_chain_pems[0].write_to_path(cert_path)
        return Certs(ca_path, cert_path, key_path)
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("HTTPS pages need a certificate: pip install trustme, or install "
                           "the openssl command")

    def run(*args):
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=folder)
    ca_key = os.path.join(folder, "ca.key")
    ext = os.path.join(folder, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
                "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_path,
        "-days", "2", "-subj", "/CN=pyconc tour CA")
    csr = os.path.join(folder, "server.csr")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key_path, "-out", csr,
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", csr, "-CA", ca_path, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert_path, "-days", "2", "-extfile", ext)
    return Certs(ca_path, cert_path, key_path)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of the call."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port):
    """True if a TCP socket listens on `port` (any address), read from /proc/net/tcp{,6}: no
    probe connection, which a seed server would take for a client."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            continue
    return False


def wait_listening(port, proc, limit=30.0):
    """Waits until something listens on `port`; False if proc exited first or the limit
    passed."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        # exited? (WNOWAIT: leave it to be reaped, with its rusage, by the caller)
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return False
        if _listening(port):
            return True
        time.sleep(0.01)
    return False
