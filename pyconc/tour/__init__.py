"""The tour: the tutorial programs of the seeds, run on pyconc and on the stdlib side by side
(for the greenlet programs, on the greenlet package).

Each program in programs/ is a tutorial program with only its import lines changed to pyconc
(and long sleeps shortened). The stdlib twin is made by changing the imports back, so both run
the same code. A program marked ``# tour: runs-forever`` (the deadlock demo, the traffic light)
is stopped after a fixed time, as a reader would stop it with Ctrl-C.
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

_FROM_PKG = re.compile(r"^(\s*)from pyconc import (\w+)", re.M)
_FROM_SUB = re.compile(r"^(\s*)from pyconc\.(\w+) import", re.M)
_IMPORT_SUB = re.compile(r"^(\s*)import pyconc\.(\w+) as", re.M)


def programs():
    """The tour's programs, in order."""
    return sorted(PROGRAMS.glob("t*.py"))


def to_stdlib(source):
    """The same program with its pyconc imports changed back to the stdlib's."""
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


@dataclass
class Run:
    stdout: str
    stderr: str
    returncode: int
    wall: float      # seconds from start to exit
    cpu: float       # user + system seconds of the process
    stopped: bool    # True if it was still running at the limit and was stopped


def run_program(path, variant="pyconc", limit=None, env=None):
    """Runs one program as a separate interpreter. variant: "pyconc" or "stdlib".
    limit: seconds after which the program is stopped (SIGINT, then SIGKILL); None for the
    default (FOREVER_LIMIT for runs-forever programs, else HARD_LIMIT)."""
    path = Path(path)
    if limit is None:
        limit = FOREVER_LIMIT if runs_forever(path) else HARD_LIMIT
    with tempfile.TemporaryDirectory(prefix="pyconc-tour-") as tmp:
        script = path
        if variant == "stdlib":
            script = Path(tmp) / path.name
            script.write_text(to_stdlib(path.read_text(encoding="utf-8")), encoding="utf-8")
        elif variant != "pyconc":
            raise ValueError(f"unknown variant {variant!r}")
        stdin = _prepare(path, Path(tmp))
        out_path, err_path = Path(tmp) / "out", Path(tmp) / "err"
        run_env = dict(os.environ if env is None else env, PYTHONIOENCODING="utf-8",
                       PYTHONUNBUFFERED="1")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen([sys.executable, str(script)], stdout=out, stderr=err,
                                    stdin=stdin, cwd=tmp, env=run_env)
            stopped = False
            status = rusage = None
            deadline = start + limit
            while True:
                pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                now = time.perf_counter()
                if now >= deadline:
                    stopped = True
                    proc.send_signal(signal.SIGKILL)
                    _, status, rusage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.002)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        return Run(out_path.read_text("utf-8", "replace"), err_path.read_text("utf-8", "replace"),
                   proc.returncode, wall, rusage.ru_utime + rusage.ru_stime, stopped)


def _title(path):
    first = Path(path).read_text(encoding="utf-8").splitlines()[0]
    return first.lstrip("# ").strip()


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="python -m pyconc tour",
                                     description="Run the tutorial programs on pyconc and on "
                                                 "the stdlib, with their timings.")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each variant; the best wall time is shown (default 1)")
    parser.add_argument("--lines", type=int, default=6,
                        help="lines of each program's output to show (default 6)")
    parser.add_argument("names", nargs="*", help="only programs whose file name contains these")
    args = parser.parse_args(argv)

    chosen = [p for p in programs() if not args.names or any(n in p.name for n in args.names)]
    rows = []
    for path in chosen:
        print(f"== {path.name}: {_title(path)}")
        best = {}
        for variant in ("pyconc", "stdlib"):
            for _ in range(max(1, args.repeat)):
                r = run_program(path, variant)
                if variant not in best or r.wall < best[variant].wall:
                    best[variant] = r
        shown = best["pyconc"].stdout.splitlines()
        for line in shown[:args.lines]:
            print("   | " + line)
        if len(shown) > args.lines:
            print(f"   | ... ({len(shown) - args.lines} more lines)")
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
        print(f"   pyconc {p.wall:6.3f} s wall {p.cpu:6.3f} s cpu | stdlib {s.wall:6.3f} s wall "
              f"{s.cpu:6.3f} s cpu {note}")
        rows.append((path.name, p, s))
    print()
    print(f"{'program':32} {'pyconc wall':>11} {'stdlib wall':>11} {'pyconc cpu':>10} "
          f"{'stdlib cpu':>10}  cpu ratio")
    for name, p, s in rows:
        ratio = s.cpu / p.cpu if p.cpu > 0 else float("nan")
        mark = " (stopped)" if p.stopped else ""
        print(f"{name:32} {p.wall:10.3f}s {s.wall:10.3f}s {p.cpu:9.3f}s {s.cpu:9.3f}s  "
              f"{ratio:5.2f}x{mark}")
    print("\nWall times of these programs are mostly their own sleeps; the cpu column shows the "
          "work the concurrency primitives cost (ratio = stdlib cpu / pyconc cpu).")
    failed = [name for name, p, s in rows if p.returncode != 0 and not p.stopped]
    return 1 if failed else 0
