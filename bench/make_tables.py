"""Turns benchmark JSON (bench/results/*.json) into the README's performance tables.

    python bench/make_tables.py            # rewrite the block between the markers in README.md
    python bench/make_tables.py --print    # print the tables only

The README block is generated, never typed by hand."""
import argparse
import glob
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, os.pardir, "README.md")
BEGIN, END = "<!-- perf-table:begin -->", "<!-- perf-table:end -->"


def table(data):
    base, impl = data["baseline"], data["impl"]
    m = data["machine"]
    lines = [
        f"**{data['suite']}** — {impl} vs {base}, best of {data['repeat']}, "
        f"Python {m['python']}, {m.get('cpu', m['machine'])}, {m['cpus']} CPUs",
        "",
        f"| case | {base} ns/op | {impl} ns/op | speedup | target |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    targets = data.get("targets", {})
    for r in data["results"]:
        t = targets.get(r["case"])
        mark = "" if t is None else (f"≥ {t:g}x" + (" ✓" if r["speedup"] >= t else " ✗"))
        unit = f" {r['unit']}" if r.get("unit") else ""
        lines.append(f"| {r['case']} | {r['ns_per_op'][base]:,.1f}{unit} | "
                     f"{r['ns_per_op'][impl]:,.1f}{unit} | {r['speedup']:.2f}x | {mark} |")
    return "\n".join(lines)


def all_tables():
    files = sorted(glob.glob(os.path.join(HERE, "results", "*.json")))
    out = []
    for f in files:
        with open(f) as fh:
            out.append(table(json.load(fh)))
    return "\n\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--print", action="store_true")
    args = ap.parse_args()
    text = all_tables()
    if args.print:
        print(text)
        return
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block")
    readme = pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", readme)
    with open(README, "w", encoding="utf-8") as f:
        f.write(readme)
    print("README.md performance table updated")


if __name__ == "__main__":
    main()
