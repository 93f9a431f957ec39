"""First and second runs of ``derive`` commands with the on-disk cache (issue 15: a second run under 1 s).

Every run is a fresh ``python -m derive`` process.  Each case gets a new,
empty cache folder in /tmp (``DERIVE_CACHE_DIR``): its first run computes
and stores, its second reads.  The cases are interleaved, a first run then
its second, case after case, ``--repeats`` rounds, so a change in the
machine's load falls on both.  The entries a second run read are counted
(a read touches its entry), and the two runs' standard outputs are compared
with their timings (``1.2 s``) masked.  The last table grades a class's
files (``derive check`` of several files, a forked process a file) twice.

Run from the repository root: ``python bench/cache_speed.py [--quick] [--repeats N]``
(``--quick`` leaves out the GRU's proof, a minute or more), or as the
``cache`` section of ``python -m bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import fmt_time, table  # noqa: E402

TIMES = re.compile(rb"\d+\.\d+ s\b")
OLD = 1_000_000  # an mtime long past: an entry touched after it was read

CASES = [
    ("show GRU (tests/data/gru.rnn), with the proof", ["show", "tests/data/gru.rnn"], False),
    ("show elman-softmax, with the proof", ["show", "elman-softmax"], True),
    ("report elman-regression -o report.tex", ["report", "elman-regression", "-o", "{tmp}/report.tex"], True),
    ("verify GRU (tests/data/gru.rnn)", ["verify", "tests/data/gru.rnn"], True),
] + [(f"check {p.relative_to(ROOT)}", ["check", str(p.relative_to(ROOT))], True)
     for p in sorted((ROOT / "examples").glob("*.claims"))]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _without_timings(out: bytes):
    """The output with its timings masked: ``1.2 s`` in text, every ``seconds`` key in JSON."""
    def drop(doc):
        if isinstance(doc, dict):
            return {k: drop(v) for k, v in doc.items() if "seconds" not in k}
        return [drop(v) for v in doc] if isinstance(doc, list) else doc
    try:
        return drop(json.loads(out))
    except ValueError:
        return TIMES.sub(b"_ s", out)


def _run(args: List[str], folder: Path) -> Dict:
    env = dict(os.environ, DERIVE_CACHE_DIR=str(folder), PYTHONPATH=str(ROOT))
    env.pop("DERIVE_NO_CACHE", None)
    argv = [a.replace("{tmp}", str(folder.parent)) for a in args]
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run([sys.executable, "-m", "derive"] + argv, cwd=ROOT, env=env, check=False,
                          capture_output=True, timeout=1800)
    return {"seconds": time.perf_counter() - start, "cpu": _children_cpu() - cpu, "status": proc.returncode,
            "out": _without_timings(proc.stdout), "undecided": _undecided(proc.stdout)}


def _undecided(out: bytes) -> int:
    """Claims left undecided in a JSON output (0 for text)."""
    def count(doc) -> int:
        if isinstance(doc, dict):
            return (doc.get("verdict") == "undecided") + sum(count(v) for v in doc.values())
        return sum(count(v) for v in doc) if isinstance(doc, list) else 0
    try:
        return count(json.loads(out))
    except ValueError:
        return 0


def _entries(folder: Path) -> List[Path]:
    return list(folder.glob("*.entry")) if folder.is_dir() else []


def first_and_second(args: List[str]) -> Dict:
    """One first run and one second run of ``derive ARGS`` in a new cache folder."""
    work = Path(tempfile.mkdtemp(prefix="derive-cache-bench-", dir="/tmp"))
    folder = work / "cache"
    try:
        first = _run(args, folder)
        stored = _entries(folder)
        for path in stored:
            os.utime(path, (OLD, OLD))
        second = _run(args, folder)
        read = sum(1 for path in stored if path.exists() and path.stat().st_mtime > 2 * OLD)
        return {"first": first["seconds"], "second": second["seconds"], "second_cpu": second["cpu"],
                "stored": len(stored), "read": read, "added": len(_entries(folder)) - len(stored),
                "same": first["out"] == second["out"] and first["status"] == second["status"],
                "status": first["status"], "undecided": (first["undecided"], second["undecided"])}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(quick: bool = False, repeats: int = 1) -> Dict:
    cases = [(name, args) for name, args, light in CASES if light or not quick]
    rounds: Dict[str, List[Dict]] = {name: [] for name, _ in cases}
    heavy = {name for name, _, light in CASES if not light}
    for round_ in range(repeats):
        for name, args in cases:
            if round_ and name in heavy:  # the GRU's proof takes minutes: one round
                continue
            print(f"cache: {name}", file=sys.stderr, flush=True)
            rounds[name].append(first_and_second(args))
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "data" / "student_claims").glob("*.claims"))
    files += sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.claims"))
    print(f"cache: grading {len(files)} files", file=sys.stderr, flush=True)
    grading = first_and_second(["check", *files, "--summary", "json"])
    grading["files"] = len(files)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"rounds": rounds, "grading": grading, "repeats": repeats, "quick": quick, "load": load}


def markdown(r: Dict) -> List[str]:
    lines = ["### The on-disk cache: first and second runs", "",
             "Each command run twice as a fresh process with a new cache folder in /tmp, the first run computing "
             "and storing, the second reading (rounds interleaved, a first run then its second, case after case; "
             "medians; the GRU's proof, minutes, in one round only). 'read' counts the entries the second run "
             "read of those the first stored (a report's or a verdict's own entry makes the proof and the exact "
             "point stored beside it unneeded); 'same output' compares the two standard outputs with their "
             "timings masked; 'second run, CPU' is the second process's user and system time, which the "
             "machine's load changes less than its wall time. Target: a second run under 1 s.", ""]
    rows = []
    for name, runs in r["rounds"].items():
        first = statistics.median(x["first"] for x in runs)
        second = statistics.median(x["second"] for x in runs)
        cpu = statistics.median(x["second_cpu"] for x in runs)
        rows.append([name, str(len(runs)), fmt_time(first), fmt_time(second), fmt_time(cpu), f"{first / second:.0f}x",
                     f"{min(x['read'] for x in runs)} of {max(x['stored'] for x in runs)}",
                     "yes" if all(x["same"] for x in runs) else "NO"])
    lines += table(["command", "rounds", "first run", "second run", "second run, CPU", "first / second", "read",
                    "same output"], rows)
    g = r["grading"]
    lines += ["", f"Grading a class: `derive check` of {g['files']} files (tests/data/student_claims and "
              f"examples, `--summary json`, a forked process a file, as many at once as cores): first run "
              f"{fmt_time(g['first'])}, second {fmt_time(g['second'])} (CPU {fmt_time(g['second_cpu'])}); "
              f"{g['read']} of {g['stored']} entries read, {g['added']} added by the second run; "
              f"claims undecided (a time limit, on this machine's load): {g['undecided'][0]} in the first run, "
              f"{g['undecided'][1]} in the second; "
              f"same summary: {'yes' if g['same'] else 'no'}."]
    if r.get("load"):
        lines += ["", "Load average at the end (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in r["load"]) + "."]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="leave out the GRU's proof (a minute or more)")
    ap.add_argument("--repeats", type=int, default=1, help="rounds of first and second runs (default 1)")
    args = ap.parse_args(argv)
    print("\n".join(markdown(run(args.quick, args.repeats))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
