"""A small HTTP/1.1 server on the stdlib's asyncio, run as a separate process by
test_realclients.py: the real clients under test (requests, urllib.request) talk to it, and it
owes nothing to gevent or pyconc.

    python _http_barrier_server.py BARRIER [CERT KEY]

prints its port on the first line of stdout, then serves until killed:
- GET /b/<i>: counted; no answer is given until BARRIER such requests have arrived (all in
  flight at once), then every one is answered with body(i). If they have not all arrived within
  BARRIER_TIMEOUT seconds (a client that sends them one after the other), the waiting ones and
  every later one get 503 instead, so such a client fails instead of hanging.
- GET /p/<i>: answered at once with body(i).
- GET /stats: JSON {"arrived": n, "max_inflight": n, "timeouts": n}.
Keep-alive: several requests may come on one connection.
"""
import asyncio
import json
import ssl
import sys

BARRIER_TIMEOUT = 20.0


def body(i):
    """The page for request i: about 8 KiB, different for each i, so a mixed-up answer shows."""
    line = f"page {i} of the barrier server\n".encode()
    return line * (8192 // len(line) + 1)


async def main():
    barrier = int(sys.argv[1])
    context = None
    if len(sys.argv) > 3:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
    stats = {"arrived": 0, "max_inflight": 0, "timeouts": 0}
    broken = []   # set once the barrier timed out: every later /b/ request fails at once
    inflight = [0]
    all_in = asyncio.Event()

    async def answer(path):
        if path == "/stats":
            return 200, json.dumps(stats).encode()
        kind, _, num = path[1:].partition("/")
        if kind == "p":
            return 200, body(int(num))
        if kind != "b":
            return 404, b"not found\n"
        stats["arrived"] += 1
        inflight[0] += 1
        stats["max_inflight"] = max(stats["max_inflight"], inflight[0])
        try:
            if stats["arrived"] >= barrier:
                all_in.set()
            if broken:
                stats["timeouts"] += 1
                return 503, b"the barrier broke\n"
            try:
                await asyncio.wait_for(all_in.wait(), BARRIER_TIMEOUT)
            except asyncio.TimeoutError:
                broken.append(True)
                stats["timeouts"] += 1
                return 503, b"the other requests never came\n"
            return 200, body(int(num))
        finally:
            inflight[0] -= 1

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
                _, path, _ = request_line.split(" ", 2)
                status, data = await answer(path)
                writer.write(f"HTTP/1.1 {status} {'OK' if status == 200 else 'NO'}\r\n"
                             f"Content-Type: text/plain; charset=utf-8\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, backlog=2048)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
