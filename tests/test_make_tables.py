"""bench/make_tables.py: a run of some suites rewrites their tables in the README block and keeps
the tables of suites it has no results for (bench/results is not committed)."""
import importlib.util
import json
import os
import re

import pytest

pytestmark = pytest.mark.timeout(60)

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("make_tables",
                                              os.path.join(HERE, "bench", "make_tables.py"))
make_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_tables)


def result(case, std_ns, pc_ns):
    return {"baseline": "stdlib", "impl": "pyconc", "repeat": 5, "targets": {case: 2.0},
            "machine": {"python": "3.11.7", "cpu": "CPU", "machine": "x86_64", "cpus": 2},
            "results": [{"case": case, "ns_per_op": {"stdlib": std_ns, "pyconc": pc_ns},
                         "speedup": std_ns / pc_ns}]}


def test_suites_without_results_keep_their_tables(tmp_path):
    for mode in ("idle", "pinned"):
        (tmp_path / f"selectors.{mode}.json").write_text(json.dumps(result("sel", 300.0, 100.0)))
    old = ("\n**queue** — pyconc vs stdlib, kept as it was\n\n| a | b |\n| q | 1 |\n\n"
           "**selectors** — pyconc vs stdlib, old\n\n| x |\n| stale |\n\n"
           "**threading** — pyconc vs stdlib, kept too\n\n| t | 2 |  \n")
    text = make_tables.all_tables(str(tmp_path), keep=old)
    assert re.findall(r"^\*\*(\w+)\*\* — ", text, re.M) == ["queue", "selectors", "threading"]
    assert "kept as it was\n\n| a | b |\n| q | 1 |" in text
    assert "| t | 2 |  " in text          # trailing markdown line breaks survive
    assert "stale" not in text and "| sel | 300.0 | 100.0 | 3.00x | 3.00x | ≥ 2x ✓ |" in text
    # without keep (the --print and --results forms), only the suites with results
    assert make_tables.all_tables(str(tmp_path)).startswith("**selectors**")
