"""First runs of the commands issue 15 sets targets for, cache off, each in a fresh process.

Every run is ``python -m derive ...`` in a new process with the on-disk cache
off (``DERIVE_NO_CACHE=1``), so each figure is what a new user waits for:
starting Python and importing SymPy included.  The commands: ``show`` (with
the proof), ``verify`` and ``report -o FILE.tex`` of ``elman-softmax``,
``elman-regression``, ``tests/data/gru.rnn`` and ``tests/data/lstm.rnn``, and
``check --json`` of every ``examples/*.claims`` (and ``examples/tour``).  The
cases run round-robin, ``--repeats`` rounds, so a change in the machine's
load falls on all of them; each figure is the median of its rounds.

A check's time a claim is given two ways: the process's wall time over its
claims (what a user waits for, divided), and the median of the per-claim
``seconds`` of the ``--json`` document over every claim of the example
files (the first claim of a file also unrolls the model).

Run from the repository root: ``python bench/first_run.py [--quick]
[--repeats N] [--seed S] [--only show,verify,report,check]`` (``--quick``:
one round, the GRU and LSTM left out), or as the ``first-run`` section of
``python -m bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import fmt_time, table  # noqa: E402

MODELS = [("elman-softmax", False), ("elman-regression", False), ("tests/data/gru.rnn", True),
          ("tests/data/lstm.rnn", True)]
"""The models timed, and whether each is a gated cell (left out by ``--quick``)."""

TARGETS = {("show", False): 2.0, ("show", True): 10.0, ("report", False): 2.0, ("report", True): 30.0,
           ("verify", "tests/data/gru.rnn"): 3.0}
"""Issue 15's targets in seconds: by (command, gated) or (command, model); none for the other verifies."""

CHECK_TARGET = 0.15
"""Issue 15's target for ``derive check``: the median time a claim, in seconds."""

COMMANDS = ("show", "verify", "report", "check")

TIMEOUT = 900.0
"""Seconds before a run is stopped (its figure is then a lower bound, marked '>')."""


def claims_files() -> List[str]:
    """The example claims files, relative to the repository root."""
    files = sorted((ROOT / "examples").glob("*.claims")) + sorted((ROOT / "examples" / "tour").glob("*.claims"))
    return [str(p.relative_to(ROOT)) for p in files]


def cases(quick: bool, seed: int, only: Optional[List[str]] = None) -> List[Dict]:
    """Every timed case: its command, its arguments and its target."""
    only = only or list(COMMANDS)
    out = []
    for model, gated in MODELS:
        if quick and gated:
            continue
        for command in ("show", "verify", "report"):
            if command not in only:
                continue
            args = [command, model, "--seed", str(seed)]
            if command == "report":
                args += ["-o", "{tmp}/report.tex"]
            target = TARGETS.get((command, model), TARGETS.get((command, gated)) if command != "verify" else None)
            out.append({"name": f"{command} {model}", "command": command, "args": args, "target": target})
    if "check" in only:
        for path in claims_files():
            out.append({"name": f"check {path}", "command": "check", "args": ["check", path, "--json"],
                        "target": None})
    return out


def run_once(args: List[str], folder: str) -> Dict:
    """One fresh ``python -m derive ARGS`` process with the cache off: its wall time, status and output."""
    env = dict(os.environ, DERIVE_NO_CACHE="1", PYTHONPATH=str(ROOT))
    argv = [a.replace("{tmp}", folder) for a in args]
    start, cpu = time.perf_counter(), _children_cpu()
    try:
        proc = subprocess.run([sys.executable, "-m", "derive"] + argv, cwd=ROOT, env=env, check=False,
                              capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"seconds": time.perf_counter() - start, "cpu": _children_cpu() - cpu, "status": None, "out": b""}
    return {"seconds": time.perf_counter() - start, "cpu": _children_cpu() - cpu, "status": proc.returncode,
            "out": proc.stdout}


def _children_cpu() -> float:
    """User and system time of the finished child processes (and theirs) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def claim_seconds(out: bytes) -> List[float]:
    """The per-claim ``seconds`` of a ``derive check --json`` document (none when it is not one)."""
    try:
        doc = json.loads(out)
    except ValueError:
        return []
    return [float(c["seconds"]) for c in doc.get("claims", []) if c.get("seconds") is not None]


def run(quick: bool = False, repeats: int = 3, seed: int = 0, only: Optional[List[str]] = None) -> Dict:
    """Time every case, ``repeats`` rounds, round-robin (one round with ``quick``)."""
    repeats = 1 if quick else max(1, repeats)
    todo = cases(quick, seed, only)
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    runs: Dict[str, List[Dict]] = {c["name"]: [] for c in todo}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="derive-first-run-") as folder:
        for round_ in range(repeats):
            for case in todo:
                print(f"first-run: round {round_ + 1}/{repeats}: {case['name']}", file=sys.stderr, flush=True)
                result = run_once(case["args"], folder)
                if case["command"] == "check":
                    result["claims"] = claim_seconds(result["out"])
                result.pop("out")
                runs[case["name"]].append(result)
    load_end = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cases": todo, "runs": runs, "repeats": repeats, "seed": seed, "quick": quick,
            "load": (load_start, load_end), "seconds": time.perf_counter() - started}


def _status(runs: List[Dict]) -> str:
    codes = sorted({"timeout" if r["status"] is None else str(r["status"]) for r in runs})
    return ", ".join(codes)


def _time_text(runs: List[Dict]) -> str:
    text = fmt_time(statistics.median(r["seconds"] for r in runs))
    return ("> " + text) if any(r["status"] is None for r in runs) else text


def _cpu_text(runs: List[Dict]) -> str:
    return fmt_time(statistics.median(r.get("cpu", 0.0) for r in runs))


def _meets(value: float, target: Optional[float]) -> str:
    if target is None:
        return ""
    return "yes" if value <= target else "no"


def markdown(r: Dict) -> List[str]:
    """The tables: commands against their targets, then ``derive check`` a claim."""
    load_start, load_end = r["load"]
    intro = (f"Each command a fresh `python -m derive` process with `DERIVE_NO_CACHE=1` (Python's start and "
             f"SymPy's import included), the cases round-robin, median of {r['repeats']} round"
             f"{'s' if r['repeats'] > 1 else ''}; seed {r['seed']} (`--seed` of show, verify and report); "
             f"`report` writes `.tex` (no pdflatex). Targets from issue 15; 'met' compares the wall time; "
             f"'CPU' is the user and system time of the process and its children (the proof's and the "
             f"report's worker processes), which other work on the machine changes less than the wall time; "
             f"'exit' lists the exit statuses seen (0: every check held). Produced by "
             f"`python bench/first_run.py`.")
    lines = ["### First runs, cache off", "", intro]
    if load_start:
        lines += ["", "Load average (1, 5, 15 min) at the start: " + ", ".join(f"{x:.2f}" for x in load_start)
                  + "; at the end: " + ", ".join(f"{x:.2f}" for x in load_end) + "."]
    lines.append("")
    rows = []
    for case in r["cases"]:
        if case["command"] == "check":
            continue
        runs = r["runs"][case["name"]]
        median = statistics.median(x["seconds"] for x in runs)
        target = case["target"]
        rows.append([f"`derive {case['name']}`", _time_text(runs), _cpu_text(runs),
                     "" if target is None else fmt_time(target), _meets(median, target), _status(runs)])
    if rows:
        lines += table(["command", "first run", "CPU", "target", "met", "exit"], rows)
    checks = [c for c in r["cases"] if c["command"] == "check"]
    if checks:
        rows, per_claim_all, wall_per_claim = [], [], []
        for case in checks:
            runs = r["runs"][case["name"]]
            counts = [len(x["claims"]) for x in runs if x["claims"]]
            n = max(counts) if counts else 0
            wall = statistics.median(x["seconds"] for x in runs)
            per_claim = [statistics.median(x["claims"][k] for x in runs if len(x["claims"]) == n) for k in range(n)]
            per_claim_all += per_claim
            if n:
                wall_per_claim.append(wall / n)
            rows.append([f"`derive {case['name']} --json`", str(n),
                         _time_text(runs), _cpu_text(runs), fmt_time(wall / n) if n else "",
                         fmt_time(statistics.median(per_claim)) if per_claim else "",
                         fmt_time(max(per_claim)) if per_claim else "", _status(runs)])
        lines += ["", table_note(CHECK_TARGET), ""]
        lines += table(["file", "claims", "process", "CPU", "process / claims", "median claim", "slowest claim",
                        "exit"], rows)
        if per_claim_all:
            med = statistics.median(per_claim_all)
            summary = (f"Over all {len(per_claim_all)} claims: median claim {fmt_time(med)} "
                       f"(target {fmt_time(CHECK_TARGET)}: {'met' if med <= CHECK_TARGET else 'not met'}); "
                       f"median of the files' process time over claims "
                       f"{fmt_time(statistics.median(wall_per_claim))}.")
            lines += ["", summary]
    lines += ["", f"Whole run: {r['seconds']:.0f} s."]
    return lines


def table_note(target: float) -> str:
    """What the check table's columns mean."""
    return (f"`derive check`, a claim: 'process' is the whole command's wall time, 'process / claims' that over "
            f"the file's claims; 'median claim' and 'slowest claim' are the per-claim `seconds` of the "
            f"`--json` document (the first claim of a file also unrolls the model at the check sizes). Target: "
            f"a median of {fmt_time(target)} a claim.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one round, the GRU and LSTM left out")
    ap.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--seed", type=int, default=0, help="--seed of show, verify and report (default 0)")
    ap.add_argument("--only", default=None, help="a comma-separated subset of show,verify,report,check")
    args = ap.parse_args(argv)
    only = None
    if args.only:
        only = [c.strip() for c in args.only.split(",") if c.strip()]
        bad = [c for c in only if c not in COMMANDS]
        if bad:
            ap.error(f"--only takes {','.join(COMMANDS)}, not {','.join(bad)}")
    print(f"seed {args.seed}", file=sys.stderr)
    print("\n".join(markdown(run(args.quick, args.repeats, args.seed, only))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
