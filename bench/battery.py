"""Run ``derive verify`` on every model of the battery at a list of seeds and print a table.

The battery is ``tests/data/battery/*.rnn``: one correct model a file, each with
a comment line at the top saying what it represents. Every run is a child
process (a crash or a hang of one model does not stop the others), which calls
the ``derive verify`` command line with ``--json`` and also keeps the text the
command would have printed, so the table can show its ``result:`` line::

    python bench/battery.py                          # seeds 0, 1, 2
    python bench/battery.py --seeds 0,1,2,3 --models 'relu*' --markdown out.md
    python bench/battery.py --tree /tmp/derive_old   # another checkout of the package

``--tree`` puts another copy of the package (``git archive COMMIT | tar -x -C DIR``)
first on the child's path, to compare two versions of ``derive verify`` on the
same battery. Models in ``--entries-all`` (default: the ReLU model with H=32)
get one more run per seed with ``--entries all``.

Exit status: 0 when every run finished with exit status 0 or 1 (a MISMATCH is a
result, not an error of this script), 1 when a run crashed or timed out.

Not a test: pytest does not collect it (``testpaths`` is ``tests``, and the
module sets ``__test__ = False`` for an explicit ``pytest bench/battery.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

__test__ = False

ROOT = Path(__file__).resolve().parent.parent
BATTERY_DIR = ROOT / "tests" / "data" / "battery"
DEFAULT_ENTRIES_ALL = ("relu_h32_regression",)

# The child: the command line of ``derive verify --json``, with the text report
# (its ``result:`` line) added to the JSON document under "_text".
CHILD = r"""
import sys
try:
    import derive.verify.rule as V
except ImportError:  # an older tree (--tree): the flat layout of before the stages
    try:
        import derive.verify_rule as V
    except ImportError:
        import derive.verify as V
from derive.cli import main
if hasattr(V, "VerifyResult") and hasattr(V, "format_result"):
    plain = V.VerifyResult.to_json
    def to_json(self, _plain=plain):
        out = _plain(self)
        try:
            out["_text"] = V.format_result(self)
        except Exception as err:  # the table is informative; the JSON is what counts
            out["_text"] = f"(format_result failed: {type(err).__name__}: {err})"
        return out
    V.VerifyResult.to_json = to_json
sys.exit(main(["verify"] + sys.argv[1:] + ["--json"]))
"""

CHECKS = ("hand", "complex", "central", "exact", "direction")
TITLES = {"hand": "hand BPTT", "complex": "complex step", "central": "central diff",
          "exact": "exact", "direction": "directions"}
DECISIVE = ("hand", "complex", "exact", "direction")


@dataclass
class Run:
    """One ``derive verify`` run of one model at one seed."""

    model: str
    seed: int
    entries: Optional[str]
    status: Optional[int] = None       # the child's exit status; None: timed out
    seconds: float = 0.0
    result_line: str = ""
    worst: Dict[str, float] = field(default_factory=dict)       # check -> largest relative error
    failed: Dict[str, List[str]] = field(default_factory=dict)  # check -> what failed
    verdicts: Dict[str, str] = field(default_factory=dict)      # check -> verdict (newer verify only)
    initial: Dict[str, float] = field(default_factory=dict)     # check -> largest relative error of dL/dh_0
    skipped: Dict[str, int] = field(default_factory=dict)       # check -> entries skipped (kinks; newer verify)
    error: str = ""                                              # stderr tail of a crash

    @property
    def crashed(self) -> bool:
        return self.status not in (0, 1)

    @property
    def kind(self) -> str:
        """ok, MISMATCH (central only) = a false alarm, MISMATCH (decisive), crash, timeout."""
        if self.status is None:
            return "timeout"
        if self.crashed:
            return "crash"
        if self.status == 0:
            return "ok"
        decisive = [c for c in self.failed if c in DECISIVE]
        return "MISMATCH (decisive)" if decisive or not self.failed else "MISMATCH (central only)"


def _result_line(doc: dict) -> str:
    text = doc.get("_text", "")
    for line in reversed(text.splitlines()):
        if line.startswith("result:"):
            return line
    if isinstance(doc.get("result"), str):
        return "result: " + doc["result"]
    return "result: all checks agree" if doc.get("passed") else "result: MISMATCH"


def initial_states(model: Path) -> List[str]:
    """``h_0`` for every ``state h_t`` line of a model file (the names verify gives dL/dh_0)."""
    out = []
    for line in model.read_text(encoding="utf-8").splitlines():
        words = line.split("#", 1)[0].replace(":", " : ").split()
        if len(words) >= 2 and words[0] == "state" and words[1].endswith("_t"):
            out.append(words[1][:-2] + "_0")
    return out


def _read(doc: dict, run: Run, initial: List[str]) -> None:
    """Fill ``run`` from the JSON document of one verify."""
    run.result_line = _result_line(doc)
    for row in doc.get("rows", []):
        check = row.get("check")
        rel = float(row.get("max_rel_error") or 0.0)
        run.worst[check] = max(run.worst.get(check, 0.0), rel)
        if row.get("parameter") in initial:
            run.initial[check] = max(run.initial.get(check, 0.0), rel)
        if not row.get("passed", True):
            run.failed.setdefault(check, []).append(
                f"{row.get('parameter')}{list(row.get('worst_index', []))} rel {rel:.1e}")
    for d in doc.get("directions", []):
        rel = float(d.get("rel_error") or 0.0)
        run.worst["direction"] = max(run.worst.get("direction", 0.0), rel)
        if not d.get("passed", True):
            run.failed.setdefault("direction", []).append(f"direction {d.get('direction')} rel {rel:.1e}")
    for check, info in (doc.get("checks") or {}).items():
        if isinstance(info, dict) and "verdict" in info:
            run.verdicts[check] = info["verdict"]
            if info.get("skipped"):
                run.skipped[check] = int(info["skipped"])
            if info["verdict"] not in ("agrees", "skipped") and check not in run.failed:
                run.failed[check] = [info["verdict"]]


def run_one(model: Path, seed: int, entries: Optional[str], python: str, tree: Optional[Path],
            timeout: float) -> Run:
    """``derive verify MODEL --seed SEED [--entries E] --json`` in a child process."""
    run = Run(model.stem, seed, entries)
    env = dict(os.environ)
    path = str(tree if tree is not None else ROOT)
    env["PYTHONPATH"] = path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    argv = [python, "-c", CHILD, str(model), "--seed", str(seed)]
    if entries is not None:
        argv += ["--entries", entries]
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, env=env,
                              timeout=timeout, cwd=path)
    except subprocess.TimeoutExpired:
        run.seconds = time.perf_counter() - start
        run.result_line = f"(no result: stopped after {timeout:.0f} s)"
        return run
    run.seconds = time.perf_counter() - start
    run.status = proc.returncode
    if proc.returncode in (0, 1):
        try:
            _read(json.loads(proc.stdout), run, initial_states(model))
        except (ValueError, TypeError) as err:
            run.status = -1
            # an uncaught exception also exits 1, the status of a MISMATCH: the JSON tells them apart
            run.error = f"no JSON output ({err}); stderr:\n{proc.stderr.strip()}"
    if run.crashed:
        run.error = run.error or proc.stderr.strip()
        last = run.error.splitlines()[-1] if run.error else "(no message)"
        run.result_line = f"(crash, exit {proc.returncode}: {last})"
    return run


def _cell(run: Run, check: str) -> str:
    if check not in run.worst:
        return ""
    mark = " FAIL" if check in run.failed else ""
    return f"{run.worst[check]:.1e}{mark}"


def _initial_cell(run: Run) -> str:
    """Worst relative error of dL/dh_0 against complex step / exact / central differences."""
    if not run.initial:
        return ""
    return " / ".join(f"{run.initial[c]:.0e}" if c in run.initial else "-" for c in ("complex", "exact", "central"))


def markdown(runs: List[Run], title: str) -> str:
    """The table of every run and a summary of what did not agree."""
    checks = [c for c in CHECKS if any(c in r.worst for r in runs)]
    lines = [f"## {title}", "",
             ("Worst relative error per check over every gradient the run compared "
             "(FAIL: some row of that check failed); `kind` separates a MISMATCH seen only by "
             "central differences (a false alarm: the checks exact to rounding agree) from one "
             "that a check exact to rounding saw. The dL/dh_0 column is empty when the version of "
             "verify does not check the initial state."), "",
             "| model | seed | entries | exit | result | " + " | ".join(TITLES[c] for c in checks)
             + " | dL/dh_0: cs / exact / cd | kind | s |",
             "|---|---|---|---|---|" + "---|" * len(checks) + "---|---|---|"]
    for r in runs:
        status = "timeout" if r.status is None else "1, no JSON" if r.status == -1 else str(r.status)
        cells = [r.model, str(r.seed), r.entries or "default", status,
                 r.result_line.replace("|", "\\|")] + [_cell(r, c) for c in checks] + [
                    _initial_cell(r), r.kind, f"{r.seconds:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    counts: Dict[str, int] = {}
    for r in runs:
        counts[r.kind] = counts.get(r.kind, 0) + 1
    lines.append("Summary: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
                 + f" (of {len(runs)} runs)")
    lines.append("")
    kinks = [r for r in runs if r.skipped]
    if kinks:
        lines.append("Entries skipped as not differentiable there (a kink between the points of a difference):")
        lines.append("")
        for r in kinks:
            entries = f" --entries {r.entries}" if r.entries else ""
            lines.append(f"- {r.model} seed {r.seed}{entries}: "
                         + ", ".join(f"{TITLES.get(c, c)} {n}" for c, n in r.skipped.items()))
        lines.append("")
    bad = [r for r in runs if r.kind != "ok"]
    if bad:
        lines.append("What did not agree:")
        lines.append("")
        for r in bad:
            what = "; ".join(f"{TITLES.get(c, c)}: {', '.join(v[:3])}{' ...' if len(v) > 3 else ''}"
                             for c, v in r.failed.items())
            entries = f" --entries {r.entries}" if r.entries else ""
            lines.append(f"- {r.model} seed {r.seed}{entries}: {r.kind}; {what or r.result_line}")
        lines.append("")
    crashes = [r for r in runs if r.crashed and r.error]
    for r in crashes:
        lines += [f"Traceback of {r.model} seed {r.seed}:", "", "```", r.error[-6000:], "```", ""]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--models", default="*", help="glob of model names in the battery (default: all)")
    p.add_argument("--battery", type=Path, default=BATTERY_DIR, help="directory of .rnn files")
    p.add_argument("--entries-all", default=",".join(DEFAULT_ENTRIES_ALL),
                   help="models that get one more run per seed with --entries all (comma-separated names)")
    p.add_argument("--tree", type=Path, default=None,
                   help="a directory holding another copy of the package derive")
    p.add_argument("--python", default=sys.executable, help="the interpreter of the child processes")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds before a run is stopped")
    p.add_argument("--title", default=None, help="heading of the table")
    p.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    p.add_argument("--json", type=Path, default=None, help="also write every run as JSON to this file")
    args = p.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    models = sorted(args.battery.resolve().glob(args.models + ".rnn"))
    if not models:
        print(f"battery: no model matches {args.models!r} in {args.battery}", file=sys.stderr)
        return 2
    entries_all = {m.strip() for m in args.entries_all.split(",") if m.strip()}
    plan = [(m, s, None) for m in models for s in seeds]
    plan += [(m, s, "all") for m in models if m.stem in entries_all for s in seeds]
    runs = []
    for k, (model, seed, entries) in enumerate(plan, start=1):
        run = run_one(model, seed, entries, args.python, args.tree, args.timeout)
        runs.append(run)
        print(f"battery: [{k}/{len(plan)}] {model.stem} seed {seed}{' --entries ' + entries if entries else ''}: "
              f"{run.kind} ({run.seconds:.1f} s)", file=sys.stderr, flush=True)
    title = args.title or f"derive verify on {len(models)} battery models, seeds {args.seeds}" + (
        f" (package from {args.tree})" if args.tree else "")
    text = markdown(runs, title)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in runs], indent=1, default=str) + "\n", encoding="utf-8")
    return 1 if any(r.crashed or r.status is None for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
