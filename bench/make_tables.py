"""Turns benchmark JSON (bench/results/<suite>.<mode>.json) into the README's performance tables.

    python bench/make_tables.py            # rewrite the block between the markers in README.md
                                           # (suites without results keep their table)
    python bench/make_tables.py --print    # print the tables only
    python bench/make_tables.py --results bench/results/3.14   # another run's tables, printed

One table per suite: the idle run's ns/op on both sides, then the speedup in each mode that was
run (idle, pinned to one CPU, loaded), then the target. A target holds (✓) when every mode meets
it; in a mode that names a case as an exception (a hand-off between CPUs, which one CPU cannot
make faster), that mode only has to be ≥ 1x, and the cell is marked †. The README block is
generated, never typed by hand."""
import argparse
import glob
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, os.pardir, "README.md")
BEGIN, END = "<!-- perf-table:begin -->", "<!-- perf-table:end -->"
MODES = ("idle", "pinned", "loaded")


def load_suites(results=None):
    """suite -> {mode: data}, from results (default bench/results)"""
    suites = {}
    for f in sorted(glob.glob(os.path.join(results or os.path.join(HERE, "results"),
                                           "*.json"))):
        name = os.path.basename(f)[:-len(".json")]
        if "." not in name:
            continue  # a result file of the old, single-mode format
        suite, mode = name.rsplit(".", 1)
        if mode not in MODES:
            continue
        with open(f) as fh:
            suites.setdefault(suite, {})[mode] = json.load(fh)
    return suites


def imports_table(runs):
    modes = [m for m in MODES if m in runs]
    first = runs[modes[0]]
    m = first["machine"]
    limit = first["limit_ms"]
    lines = [
        f"**imports** — a fresh interpreter's `from pyconc import X` against `import X`, the "
        f"import statement alone, best of {first['repeat']}, Python {m['python']}; ms from the "
        f"{modes[0]} run, then pyconc's extra cost per mode",
        "",
        "| module | stdlib ms | pyconc ms | " + " | ".join(f"extra ({mode})" for mode in modes) +
        " | target |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in modes) + " | ---: |",
    ]
    by_mode = {mode: {r["case"]: r for r in runs[mode]["results"]} for mode in modes}
    for r in first["results"]:
        extras = [by_mode[mode][r["case"]]["extra_ms"] for mode in modes if r["case"] in by_mode[mode]]
        ok = all(e <= limit for e in extras)
        lines.append(f"| {r['case']} | {r['stdlib_ms']:.2f} | {r['pyconc_ms']:.2f} | " +
                     " | ".join(f"{e:+.2f} ms" for e in extras) +
                     f" | ≤ +{limit:g} ms {'✓' if ok else '✗'} |")
    return "\n".join(lines)


def multi_table(suite, runs):
    """A suite of kind "multi" (bench_gevent.py, bench_io.py): several implementations per
    case. One column per implementation with the value from the first mode's run and, after
    it, the ratio implementation / pyconc (every value is lower-is-better, so a ratio above 1
    is pyconc ahead); the target column holds when every mode meets it."""
    modes = [m for m in MODES if m in runs]
    first = runs[modes[0]]
    m = first["machine"]
    impls = [i for i in first["impls"]
             if any(i in r["ns_per_op"] for r in first["results"])]
    extra = [i for r in first["results"] for i in r["ns_per_op"] if i not in impls]
    impls += list(dict.fromkeys(extra))
    targets = first.get("targets", {})
    versions = ", ".join(f"{k} {v}" for k, v in sorted(first.get("versions", {}).items()) if v)
    lines = [
        f"**{suite}** — pyconc against {', '.join(i for i in impls if i != 'pyconc')}, best of "
        f"{first['repeat']}, Python {m['python']}, {m.get('cpu', m['machine'])}, {m['cpus']} "
        f"CPUs{'; ' + versions if versions else ''}; values from the {modes[0]} run (lower is "
        f"better), ratio = that implementation / pyconc; targets checked in "
        f"{', '.join(modes)}",
        "",
        "| case | unit | " + " | ".join(impls) + " | target |",
        "| --- | --- | " + " | ".join("---:" for _ in impls) + " | --- |",
    ]
    by_mode = {mode: {r["case"]: r for r in runs[mode]["results"]} for mode in modes}

    def fmt(v):
        return f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"
    for r in first["results"]:
        vals = r["ns_per_op"]
        ours = vals.get("pyconc")
        cells = []
        for i in impls:
            v = vals.get(i)
            if v is None:
                cells.append("—")
            elif i == "pyconc" or not ours:
                cells.append(fmt(v))
            else:
                cells.append(f"{fmt(v)} ({v / ours:.2f}x)")
        checks = []
        for base, need in targets.get(r["case"], []):
            ok = True
            for mode in modes:
                row = by_mode[mode].get(r["case"])
                if row is None or base not in row["ns_per_op"] or \
                        not row["ns_per_op"].get("pyconc"):
                    ok = None
                    break
                ok = ok and row["ns_per_op"][base] / row["ns_per_op"]["pyconc"] >= need
            mark = "?" if ok is None else ("✓" if ok else "✗")
            checks.append(f"≥ {need:g}x {base} {mark}")
        unit = r.get("unit", "ns/op")
        lines.append(f"| {r['case']} | {unit} | " + " | ".join(cells) + " | " +
                     ", ".join(checks) + " |")
    missing = first.get("missing")
    if missing:
        lines.append("")
        lines.extend(f"{i} not run: {why}  " for i, why in missing.items())
    return "\n".join(lines)


def table(suite, runs):
    modes = [m for m in MODES if m in runs]
    first = runs[modes[0]]
    if first.get("kind") == "imports":
        return imports_table(runs)
    if first.get("kind") == "multi":
        return multi_table(suite, runs)
    base, impl = first["baseline"], first["impl"]
    m = first["machine"]
    targets = first.get("targets", {})
    exceptions = first.get("exceptions", {})
    lines = [
        f"**{suite}** — {impl} vs {base}, best of {first['repeat']}, "
        f"Python {m['python']}, {m.get('cpu', m['machine'])}, {m['cpus']} CPUs; "
        f"ns/op from the {modes[0]} run",
        "",
        f"| case | {base} ns/op | {impl} ns/op | " + " | ".join(modes) + " | target |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in modes) + " | ---: |",
    ]
    by_mode = {mode: {r["case"]: r for r in runs[mode]["results"]} for mode in modes}
    notes = []
    rows = list(first["results"])   # then the cases measured only in later modes, from there
    for mode in modes[1:]:
        rows += [r for r in runs[mode]["results"] if r["case"] not in {x["case"] for x in rows}]
    for r in rows:
        case = r["case"]
        unit = f" {r['unit']}" if r.get("unit") else ""
        cells = []
        ok = True
        t = targets.get(case)
        for mode in modes:
            row = by_mode[mode].get(case)
            if row is None:
                cells.append("—")
                continue
            exc = exceptions.get(mode, {}).get(case)
            need = 1.0 if (exc or t is None) else t
            ok = ok and row["speedup"] >= need
            mark = "" if row["speedup"] >= need else " ✗"
            if exc:
                mark += " †"
                notes.append(f"† {case}, {mode}: {exc} (measured {row['speedup']:.2f}x; "
                             f"must be ≥ 1x there)")
            cells.append(f"{row['speedup']:.2f}x{mark}")
        target = "" if t is None else f"≥ {t:g}x" + (" ✓" if ok else " ✗")
        if r.get("statistic"):
            stat = r["statistic"]
            if not any(stat in n for n in notes):
                notes.append(f"‡ {case}: the {stat} short runs of each side, not the best "
                             f"(scheduler-bound: see SCHEDULER_BOUND in bench/common.py)")
            case += " ‡"
        only = [mode for mode in modes if r["case"] in by_mode[mode]]
        if only != modes:
            notes.append(f"¶ {case}: measured in the {', '.join(only)} mode only, ns/op from "
                         f"there (the case's spec says why)")
            case += " ¶"
        if r.get("samples"):
            note = ("§ one thread's CPU work: the best of many samples of ~0.5 ms each (a "
                    "scheduler slice), not of 5 long runs (see CPU_BOUND in bench/common.py)")
            if note not in notes:
                notes.append(note)
            case += " §"
        lines.append(f"| {case} | {r['ns_per_op'][base]:,.1f}{unit} | "
                     f"{r['ns_per_op'][impl]:,.1f}{unit} | " + " | ".join(cells) +
                     f" | {target} |")
    if notes:
        lines.append("")
        lines.extend(f"{n}  " for n in notes)
    return "\n".join(lines)


def all_tables(results=None, keep=None):
    """The tables of every suite with results; with keep (the README block's current text), the
    tables of suites without results here are kept from it (a run of some suites only, e.g.
    `run_all.py --suites selectors` on a machine whose bench/results holds nothing else)."""
    tables = {s: table(s, runs) for s, runs in load_suites(results).items()}
    for chunk in re.split(r"\n\n(?=\*\*\w+\*\* — )", (keep or "").strip("\n")):
        m = re.match(r"\*\*(\w+)\*\* — ", chunk)
        if m and m.group(1) not in tables:
            tables[m.group(1)] = chunk
    return "\n\n".join(tables[s] for s in sorted(tables))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--print", action="store_true")
    ap.add_argument("--results", default=None,
                    help="a results directory other than bench/results (implies --print), e.g. "
                         "bench/results/3.14 from .ci/versions' benchmark mode")
    args = ap.parse_args()
    if args.print or args.results:
        print(all_tables(args.results))
        return
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    pattern = re.compile(re.escape(BEGIN) + "(.*?)" + re.escape(END), re.S)
    found = pattern.search(readme)
    if not found:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block")
    text = all_tables(None, keep=found.group(1))
    readme = pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", readme)
    with open(README, "w", encoding="utf-8") as f:
        f.write(readme)
    print("README.md performance table updated")


if __name__ == "__main__":
    main()
