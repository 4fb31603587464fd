"""The tour: the tutorial programs of the seeds, run on pyconc and on the stdlib side by side
(for the greenlet programs, on the greenlet package).

Each program in programs/ is a tutorial program with only its import lines changed to pyconc
(and long sleeps shortened). The stdlib twin is made by changing the imports back, so both run
the same code. A program marked ``# tour: runs-forever`` (the deadlock demo, the traffic light)
is stopped after a fixed time, as a reader would stop it with Ctrl-C.

The network programs (issue 12) get local servers on 127.0.0.1 instead of web sites (see
servers.py), through directives in their header comments:

- ``# tour: urls=http:N`` / ``urls=https:N``: the tour starts a page server whose every page
  answers after PAGE_DELAY seconds and gives the program N page URLs in TOUR_URLS (for HTTPS, a
  certificate made for the run, trusted through SSL_CERT_FILE).
- ``# tour: serves`` and ``# tour: client=FILE [clients=K] [lines=a|b|c]``: the program is a
  server; the tour gives it a free port in TOUR_PORT, waits until it listens, runs its client
  program FILE (K copies at once, each fed the lines one at a time, round robin, each line's
  answer awaited before the next client's line: a server that cannot serve K connections at once
  never answers the second client), then stops the server.
- ``# tour: baseline=stdlib``: the program uses pyconc.gevent's socket/select outside any hub as
  drop-ins for the stdlib's, so its twin imports the stdlib's modules (otherwise
  ``pyconc.gevent`` becomes ``gevent``).
- ``# tour: needs=MODULE``: a third-party module the program imports (requests).
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROGRAMS = Path(__file__).with_name("programs")
FOREVER_LIMIT = 2.0  # seconds a runs-forever program is left running
HARD_LIMIT = 120.0   # a normal program taking longer than this has hung
PAGE_DELAY = 0.5     # seconds each page of the tour's page servers takes to answer
CLIENT_LIMIT = 15.0  # seconds a client may wait for one answer of a tour server program
SERVER_GRACE = 0.3   # seconds a server program runs on after its clients ended, then stopped

_FROM_PKG = re.compile(r"^(\s*)from pyconc import (\w+)", re.M)
_FROM_SUB = re.compile(r"^(\s*)from pyconc\.(\w+) import", re.M)
_IMPORT_SUB = re.compile(r"^(\s*)import pyconc\.(\w+) as", re.M)


def programs():
    """The tour's programs, in order."""
    return sorted(PROGRAMS.glob("t*.py"))


_GEVENT_PATH = re.compile(r"\bpyconc\.gevent\.(\w+)")


def to_stdlib(source):
    """The same program with its pyconc imports changed back to the stdlib's (gevent's for
    ``pyconc.gevent``; the stdlib's socket/select for a ``# tour: baseline=stdlib`` program's
    ``pyconc.gevent.socket``/``pyconc.gevent.select``)."""
    if re.search(r"^# tour: baseline=stdlib$", source, re.M):
        source = _GEVENT_PATH.sub(r"\1", source)
    source = _FROM_PKG.sub(r"\1import \2", source)
    source = _FROM_SUB.sub(r"\1from \2 import", source)
    return _IMPORT_SUB.sub(r"\1import \2 as", source)


def _prepare(path, tmp):
    """A program's `# tour: make-folder=NAME:COUNT` (files for it to work on) and
    `# tour: stdin=TEXT` (what it reads from input()) directives. Returns its stdin."""
    source = Path(path).read_text(encoding="utf-8")
    for name, count in re.findall(r"^# tour: make-folder=([^:\s]+):(\d+)$", source, re.M):
        folder = tmp / name
        folder.mkdir()
        for i in range(int(count)):
            (folder / f"file{i:02d}.txt").write_bytes(f"content of file {i}\n".encode() * 100)
    m = re.search(r"^# tour: stdin=(.*)$", source, re.M)
    if m is None:
        return subprocess.DEVNULL
    f = open(tmp / "stdin", "w+b")
    f.write(m.group(1).encode() + b"\n")
    f.seek(0)
    return f


def runs_forever(path):
    return "# tour: runs-forever" in Path(path).read_text(encoding="utf-8")


def _directive(source, name):
    """The text after `# tour: name=` (or "" for a bare `# tour: name`), or None."""
    m = re.search(rf"^# tour: {re.escape(name)}(?:=(.*))?$", source, re.M)
    if m is None:
        return None
    return m.group(1) or ""


def missing_needs(path):
    """The module a program needs (`# tour: needs=MODULE`) that is not installed, or None."""
    import importlib.util
    need = _directive(Path(path).read_text(encoding="utf-8"), "needs")
    if need and importlib.util.find_spec(need) is None:
        return need
    return None


@dataclass
class Run:
    stdout: str
    stderr: str
    returncode: int
    wall: float      # seconds from start to exit
    cpu: float       # user + system seconds of the process
    stopped: bool    # True if it was still running at the limit and was stopped
    # network programs: the page server's (path, arrived, answered) records (time.monotonic)
    server_log: list = None
    clients: list = None    # a server program's clients: one Run each
    files: dict = None      # name -> size of the files the program left in its folder


def _script(path, variant, tmp):
    path = Path(path)
    if variant == "stdlib":
        script = Path(tmp) / ".twins" / path.name
        script.parent.mkdir(exist_ok=True)
        script.write_text(to_stdlib(path.read_text(encoding="utf-8")), encoding="utf-8")
        return script
    if variant != "pyconc":
        raise ValueError(f"unknown variant {variant!r}")
    return path


def _reap(proc, deadline):
    """Waits for proc until `deadline` (perf_counter), then SIGKILLs it. Returns
    (exit code, rusage, stopped)."""
    stopped = False
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() >= deadline:
            stopped = True
            proc.send_signal(signal.SIGKILL)
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.002)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, rusage, stopped


def _run_clients(source, variant, tmp, env):
    """Runs a server program's client(s) (`# tour: client=FILE clients=K lines=a|b`).
    Returns one Run per client."""
    import queue
    import threading
    spec = _directive(source, "client").split()
    name, opts = spec[0], dict(o.split("=", 1) for o in spec[1:])
    count = int(opts.get("clients", "1"))
    lines = opts["lines"].split("|") if "lines" in opts else None
    script = _script(PROGRAMS / name, variant, tmp)
    start = time.perf_counter()
    procs, outs, readers = [], [], []
    for i in range(count):
        p = subprocess.Popen([sys.executable, str(script)], cwd=tmp, env=env,
                             stdin=subprocess.PIPE if lines else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        q = queue.Queue()

        def read(p=p, q=q):
            for line in iter(p.stdout.readline, b""):
                q.put(line.decode("utf-8", "replace"))
            q.put(None)
        t = threading.Thread(target=read, daemon=True)
        t.start()
        procs.append(p)
        outs.append((q, []))
        readers.append(t)
    errs = [None] * count

    def read_err(i):
        errs[i] = procs[i].stderr.read().decode("utf-8", "replace")
    err_threads = [threading.Thread(target=read_err, args=(i,), daemon=True)
                   for i in range(count)]
    for t in err_threads:
        t.start()
    unanswered = None
    if lines:
        for line in lines:
            for i, p in enumerate(procs):
                if unanswered is not None:
                    break
                try:
                    p.stdin.write(line.encode() + b"\n")
                    p.stdin.flush()
                    got = outs[i][0].get(timeout=CLIENT_LIMIT)
                except (OSError, queue.Empty):
                    got = None
                if got is None:
                    unanswered = (i, line)
                else:
                    outs[i][1].append(got)
        for p in procs:
            try:
                p.stdin.close()   # the reader's Ctrl-D: input() raises EOFError
            except OSError:
                pass
    runs = []
    deadline = time.perf_counter() + (CLIENT_LIMIT if unanswered is None else 0.0)
    for i, p in enumerate(procs):
        code, rusage, stopped = _reap(p, deadline)
        readers[i].join()
        err_threads[i].join()
        q, got = outs[i]
        while True:
            item = q.get()
            if item is None:
                break
            got.append(item)
        stderr = errs[i] or ""
        if unanswered is not None and unanswered[0] == i:
            stderr += f"\n[tour] no answer to {unanswered[1]!r} within {CLIENT_LIMIT} s\n"
        runs.append(Run("".join(got), stderr, code, time.perf_counter() - start,
                        rusage.ru_utime + rusage.ru_stime, stopped))
    return runs


def run_program(path, variant="pyconc", limit=None, env=None, delay=None):
    """Runs one program as a separate interpreter. variant: "pyconc" or "stdlib".
    limit: seconds after which the program is stopped (SIGKILL); None for the default
    (FOREVER_LIMIT for runs-forever programs, else HARD_LIMIT). delay: seconds each page of a
    network program's page server takes (default PAGE_DELAY)."""
    from contextlib import ExitStack
    from . import servers
    path = Path(path)
    source = path.read_text(encoding="utf-8")
    if limit is None:
        limit = FOREVER_LIMIT if runs_forever(path) else HARD_LIMIT
    with tempfile.TemporaryDirectory(prefix="pyconc-tour-") as tmp, ExitStack() as stack:
        script = _script(path, variant, tmp)
        stdin = _prepare(path, Path(tmp))
        out_path, err_path = Path(tmp) / "out", Path(tmp) / "err"
        run_env = dict(os.environ if env is None else env, PYTHONIOENCODING="utf-8",
                       PYTHONUNBUFFERED="1", no_proxy="127.0.0.1,localhost",
                       NO_PROXY="127.0.0.1,localhost")
        page_server = None
        urls = _directive(source, "urls")
        if urls:
            scheme, count = urls.split(":")
            tls = None
            if scheme == "https":
                certs = Path(tmp) / "certs"
                certs.mkdir()
                tls = servers.make_certs(certs)
                run_env["SSL_CERT_FILE"] = tls.ca
            page_server = stack.enter_context(servers.PageServer(
                PAGE_DELAY if delay is None else delay, tls))
            run_env["TOUR_URLS"] = " ".join(page_server.url(f"/page{i}")
                                            for i in range(1, int(count) + 1))
        serves = _directive(source, "serves") is not None
        if serves:
            port = servers.free_port()
            run_env["TOUR_PORT"] = str(port)
        (Path(tmp) / ".twins").mkdir(exist_ok=True)
        before = set(os.listdir(tmp))
        clients = None
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen([sys.executable, str(script)], stdout=out, stderr=err,
                                    stdin=stdin, cwd=tmp, env=run_env)
            deadline = start + limit
            if serves:
                if servers.wait_listening(port, proc, limit=min(limit, 30.0)):
                    clients = _run_clients(source, variant, tmp, run_env)
                # then stop the server, as a reader would, once it has printed what the
                # clients' ends caused
                deadline = time.perf_counter() + SERVER_GRACE
            code, rusage, stopped = _reap(proc, deadline)
            wall = time.perf_counter() - start
        files = {name: os.path.getsize(os.path.join(tmp, name))
                 for name in set(os.listdir(tmp)) - before - {"out", "err"}
                 if os.path.isfile(os.path.join(tmp, name))}
        return Run(out_path.read_text("utf-8", "replace"), err_path.read_text("utf-8", "replace"),
                   code, wall, rusage.ru_utime + rusage.ru_stime, stopped,
                   page_server.log if page_server else None, clients, files)


def baseline_name(path):
    """What a program's twin runs on: gevent, greenlet or the stdlib."""
    source = Path(path).read_text(encoding="utf-8")
    if _directive(source, "baseline") == "stdlib":
        return "stdlib"
    if re.search(r"^\s*(from pyconc import gevent|from pyconc\.gevent)", source, re.M):
        return "gevent"
    if re.search(r"^\s*from pyconc\.greenlet", source, re.M):
        return "greenlet"
    return "stdlib"


def _title(path):
    first = Path(path).read_text(encoding="utf-8").splitlines()[0]
    return first.lstrip("# ").strip()


def _precompile():
    """Writes the bytecode caches of pyconc's modules, as installing a wheel does, so that the
    cpu column compares running programs, not compiling pyconc's sources: the stdlib's and
    gevent's modules come compiled, while an editable install (or PYTHONDONTWRITEBYTECODE) would
    leave pyconc to be compiled again by every program. Quietly does nothing where the package
    directory is not writable."""
    import compileall
    try:
        compileall.compile_dir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               quiet=2, workers=1)
    except OSError:
        pass


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="python -m pyconc tour",
                                     description="Run the tutorial programs on pyconc and on "
                                                 "the stdlib, with their timings.")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each variant, alternating; the best wall time and the "
                             "least cpu time are shown (default 1)")
    parser.add_argument("--lines", type=int, default=6,
                        help="lines of each program's output to show (default 6)")
    parser.add_argument("names", nargs="*", help="only programs whose file name contains these")
    args = parser.parse_args(argv)

    chosen = [p for p in programs() if not args.names or any(n in p.name for n in args.names)]
    _precompile()
    rows = []
    for path in chosen:
        print(f"== {path.name}: {_title(path)}")
        need = missing_needs(path)
        if need:
            print(f"   (needs {need}: pip install {need} to run it)")
            continue
        best, least_cpu = {}, {}
        for _ in range(max(1, args.repeat)):
            for variant in ("pyconc", "stdlib"):   # alternating: a slow spell hits both
                r = run_program(path, variant)
                if variant not in best or r.wall < best[variant].wall:
                    best[variant] = r
                least_cpu[variant] = min(least_cpu.get(variant, r.cpu), r.cpu)
        for variant in best:
            # a program's cpu time varies by tens of percent from run to run on a busy machine:
            # its least is the cost of the code, as bench/ takes the best of several
            best[variant].cpu = least_cpu[variant]
        shown = best["pyconc"].stdout.splitlines()
        for line in shown[:args.lines]:
            print("   | " + line)
        if len(shown) > args.lines:
            print(f"   | ... ({len(shown) - args.lines} more lines)")
        for i, c in enumerate(best["pyconc"].clients or ()):
            for line in c.stdout.splitlines()[:args.lines]:
                print(f"   client {i + 1} | " + line)
        for variant in ("pyconc", "stdlib"):
            r = best[variant]
            if variant == "stdlib" and "ModuleNotFoundError" in r.stderr:
                # e.g. the greenlet programs' baseline is the greenlet package
                missing = r.stderr.strip().splitlines()[-1]
                print(f"   (baseline not installed: {missing}; pip install it to compare)")
                r.cpu = r.wall = float("nan")
            elif r.returncode != 0 and not r.stopped:
                print(f"   !! {variant} exited with {r.returncode}:\n" + r.stderr[-2000:])
        p, s = best["pyconc"], best["stdlib"]
        note = "runs forever: stopped" if p.stopped else ""
        print(f"   pyconc {p.wall:6.3f} s wall {p.cpu:6.3f} s cpu | {baseline_name(path)} "
              f"{s.wall:6.3f} s wall "
              f"{s.cpu:6.3f} s cpu {note}")
        rows.append((path.name, p, s))
    print()
    print(f"{'program':32} {'pyconc wall':>11} {'base wall':>11} {'pyconc cpu':>10} "
          f"{'base cpu':>10}  cpu ratio")
    for name, p, s in rows:
        ratio = s.cpu / p.cpu if p.cpu > 0 else float("nan")
        mark = " (stopped)" if p.stopped else ""
        print(f"{name:32} {p.wall:10.3f}s {s.wall:10.3f}s {p.cpu:9.3f}s {s.cpu:9.3f}s  "
              f"{ratio:5.2f}x{mark}")
    print("\nWall times of these programs are mostly their own sleeps; the cpu column shows the "
          "work the concurrency primitives cost (ratio = baseline cpu / pyconc cpu; the baseline is the "
          "stdlib, or greenlet/gevent for their programs).")
    failed = [name for name, p, s in rows if p.returncode != 0 and not p.stopped]
    return 1 if failed else 0
