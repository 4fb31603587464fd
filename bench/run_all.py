"""Runs every benchmark suite in every mode (idle, pinned to one CPU, loaded), one process per
suite and mode, then regenerates the README's tables.

    python bench/run_all.py [--suites threading,queue,...] [--modes idle,pinned,loaded]
                            [--repeat N] [--quick] [--no-tables]

Run it on an otherwise quiet machine: the loaded mode makes its own load."""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SUITES = ("threading", "queue", "multiprocessing", "greenlet", "imports", "gevent", "io", "selectors")
MODES = ("idle", "pinned", "loaded")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suites", default=",".join(SUITES))
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-tables", action="store_true")
    args = ap.parse_args()
    failed = []
    for suite in args.suites.split(","):
        for mode in args.modes.split(","):
            cmd = [sys.executable, os.path.join(HERE, f"bench_{suite}.py"), "--mode", mode]
            if args.repeat:
                cmd += ["--repeat", str(args.repeat)]
            if args.quick:
                cmd.append("--quick")
            print("==", " ".join(cmd[1:]), flush=True)
            if subprocess.call(cmd) != 0:
                failed.append((suite, mode))
    if not args.no_tables:
        subprocess.check_call([sys.executable, os.path.join(HERE, "make_tables.py")])
    if failed:
        sys.exit(f"failed: {failed}")


if __name__ == "__main__":
    main()
