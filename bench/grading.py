"""Grade a generated class of 200 submissions with ``--jobs 1`` and ``--jobs 2``, interleaved.

Run from the repository root: ``python -m bench.grading`` (``--count``,
``--repeats``, ``--seconds``, ``--seed``).  The class is written to a
temporary folder: correct files (the corrected examples, a random subset of
their claims), files with the students' slips (the examples and
``tests/data/student_claims``), correct files with one slip put in, files
mutated by ``bench/fuzz.py`` (mostly malformed), and hostile files (bytes
that are not UTF-8, a file over 4 MB, a pipe, links and model paths out of
the folder, a model that does not exist, an empty file, code in a claim, a
line of 10,001 characters, 600 claims, 5,000 parentheses).

Each run is one ``derive check CLASS --summary json --jobs N`` process.  The
bench checks that every file has a result in every run, exactly once, that
the runs agree on every verdict that no time limit decided, and that no
file's code ran; then it prints the times.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import machine_lines
from bench.fuzz import RandomChooser, mutate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
STUDENTS = ROOT / "tests" / "data" / "student_claims"

SLIPS = [("1 - h_t**2", "(1 - h_t)**2"), ("h_{t-1}.T", "h_{t-1}"), ("W_hh.T @", "W_hh @"), ("/ B", ""),
         ("y - y_true", "y_true - y"), ("sum_t ", ""), ("(1 - h_t**2)", "(1 - h_t)")]
"""(text, replacement): one slip put into a correct claim line."""


def _claims_and_rest(text: str) -> tuple[list[str], list[str]]:
    lines = text.splitlines()
    return [ln for ln in lines if ln.startswith("claim")], [ln for ln in lines if not ln.startswith("claim")]


def _subset(rng: random.Random, text: str, most: int = 6) -> str:
    """The file with a random subset of at most ``most`` of its claim lines, in order."""
    claims, rest = _claims_and_rest(text)
    keep = sorted(rng.sample(range(len(claims)), min(most, len(claims))))
    return "\n".join(rest + [claims[k] for k in keep]) + "\n"


def _with_slip(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    spots = [(i, a, b) for i, ln in enumerate(lines) if ln.startswith("claim") for a, b in SLIPS if a in ln]
    if spots:
        i, a, b = rng.choice(spots)
        lines[i] = lines[i].replace(a, b, 1)
    return "\n".join(lines) + "\n"


def _sources() -> dict[str, list[tuple[str, list[Path]]]]:
    """Texts to start from, with the model files each needs beside it."""
    def entry(path: Path) -> tuple[str, list[Path]]:
        needs = [p for p in path.parent.glob("*.rnn") if f"model {p.name}" in path.read_text(encoding="utf-8")]
        return path.read_text(encoding="utf-8"), needs

    corrected = sorted(EXAMPLES.glob("*_corrected.claims"))
    slipped = [p for p in sorted(EXAMPLES.glob("*.claims")) if p not in corrected]
    slipped += [EXAMPLES / "tour" / "notes.claims"] + sorted(STUDENTS.glob("*.claims"))
    return {"correct": [entry(p) for p in corrected], "slips": [entry(p) for p in slipped]}


def _hostile(k: int, folder: Path, root: Path) -> None:
    """Write the ``k``-th kind of hostile submission into ``folder``."""
    notes = folder / "notes.claims"
    good = "model elman-regression\nclaim dL/dy = y - y_true\n"
    kind = k % 14
    if kind == 0:
        notes.write_bytes(b"model elman-regression\nclaim dL/dy = \xff\xfe y\n")
    elif kind == 1:
        with notes.open("w", encoding="utf-8") as f:  # over 4 MB: refused before it is read
            f.write(good)
            f.write(("# " + "x" * 98 + "\n") * 42_000)
    elif kind == 2:
        os.mkfifo(notes)
    elif kind == 3:
        notes.symlink_to("/etc/passwd")
    elif kind == 4:
        notes.write_text("model ../outside.rnn\nclaim dL/dy = y\n", encoding="utf-8")
    elif kind == 5:
        notes.write_text("model /etc/passwd\nclaim dL/dy = y\n", encoding="utf-8")
    elif kind == 6:
        notes.write_text("model missing.rnn\nclaim dL/dy = y\n", encoding="utf-8")
    elif kind == 7:
        notes.write_text("", encoding="utf-8")
    elif kind == 8:
        marker = root / "PWNED"
        notes.write_text(f"model elman-regression\nclaim dL/dy = __import__('os').system('touch {marker}')\n"
                         f"claim dL/dy = eval(\"open('{marker}', 'w')\")\n", encoding="utf-8")
    elif kind == 9:
        notes.write_text(good + "claim dL/dy = " + "y + " * 2500 + "y\n", encoding="utf-8")
    elif kind == 10:
        notes.write_text("model elman-regression\n" + "claim dL/dy = y - y_true\n" * 600, encoding="utf-8")
    elif kind == 11:
        notes.write_text(good + "claim dL/dy = " + "(" * 5000 + "y" + ")" * 5000 + "\n", encoding="utf-8")
    elif kind == 12:
        (folder / "model.rnn").symlink_to("/etc/passwd")
        notes.write_text("model model.rnn\nclaim dL/dy = y\n", encoding="utf-8")
    else:
        notes.write_text("model elman-regression\nsize T = 100000000\nclaim dL/dh_3 = W_hh.T @ dL/dz_4\n"
                         "claim dL/dy = y - y_true\n\x1b[2J\x00\n", encoding="utf-8")


def write_class(root: Path, count: int, seed: int) -> dict[str, str]:
    """Write ``count`` submissions under ``root/class``; the kind of each file, by path."""
    rng = random.Random(seed)
    chooser = RandomChooser(seed)
    sources = _sources()
    (root / "outside.rnn").write_text((ROOT / "tests" / "data" / "gru.rnn").read_text(encoding="utf-8"),
                                      encoding="utf-8")
    kinds = {}
    plan = ["correct"] * 5 + ["slips"] * 6 + ["one slip"] * 4 + ["fuzzed"] * 2 + ["hostile"] * 3
    for n in range(count):
        folder = root / "class" / f"student{n:03d}"
        folder.mkdir(parents=True)
        kind = plan[n % len(plan)]
        if kind == "hostile":
            _hostile(n // len(plan) * 3 + plan[:n % len(plan)].count("hostile"), folder, root)
        else:
            text, needs = rng.choice(sources["slips" if kind == "slips" else "correct"])
            for model in needs:
                (folder / model.name).write_text(model.read_text(encoding="utf-8"), encoding="utf-8")
            text = _subset(rng, text)
            if kind == "one slip":
                text = _with_slip(rng, text)
            elif kind == "fuzzed":
                text = mutate(chooser, text, rng.randint(1, 3))
            (folder / "notes.claims").write_text(text, encoding="utf-8", errors="surrogateescape")
        kinds[str(folder / "notes.claims")] = kind
    return kinds


def grade(folder: Path, jobs: int, seconds: float, log: Path) -> tuple[float, float, dict, int]:
    """One ``derive check FOLDER --summary json --jobs N`` run: wall and CPU seconds, document, exit status."""
    command = [sys.executable, "-m", "derive", "check", str(folder), "--summary", "json", "--jobs", str(jobs),
               "--seconds", str(seconds)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("a", encoding="utf-8") as err:
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, json.loads(done.stdout), done.returncode


def settled(doc: dict) -> dict[tuple[str, int], str]:
    """Every verdict no time limit decided, by (file, line)."""
    return {(f["file"], c["line"]): c["verdict"] for f in doc["files"] for c in f["results"] or ()
            if f["status"] == "ok" and c["limit"] is None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--repeats", type=int, default=1, help="runs of each job count (order 1, 2, 2, 1, ...)")
    p.add_argument("--seconds", type=float, default=120.0, help="time limit per file")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print("\n".join(machine_lines()), flush=True)
    problems = []
    with tempfile.TemporaryDirectory(prefix="derive-grading-") as tmp:
        root = Path(tmp)
        kinds = write_class(root, args.count, args.seed)
        counts = {k: list(kinds.values()).count(k) for k in dict.fromkeys(kinds.values())}
        print(f"- class: {args.count} submissions: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        order = [j for r in range(args.repeats) for j in ((1, 2) if r % 2 == 0 else (2, 1))]
        times: dict[int, list[float]] = {1: [], 2: []}
        first = None
        for jobs in order:
            seconds, cpu, doc, status = grade(root / "class", jobs, args.seconds, root / "progress.log")
            times[jobs].append(seconds)
            files = [f["file"] for f in doc["files"]]
            lost = sorted(set(kinds) - set(files))
            if lost or len(files) != len(set(files)) or len(files) != len(kinds):
                problems.append(f"--jobs {jobs}: {len(lost)} files lost, {len(files)} results for {len(kinds)}")
            by_status = doc["totals"]
            print(f"- --jobs {jobs}: {seconds:.1f} s ({cpu:.1f} s of CPU), exit status {status}; files: " + ", ".join(
                f"{by_status[s]} {s}" for s in ("ok", "input_error", "timed_out", "internal_error")) +
                f"; {by_status['holds']} of {by_status['claims']} claims hold", flush=True)
            if first is None:
                first = settled(doc)
            else:
                now = settled(doc)
                differ = [k for k in set(first) & set(now) if first[k] != now[k]]
                if differ:
                    problems.append(f"--jobs {jobs}: {len(differ)} verdicts differ from the first run")
        if (root / "PWNED").exists():
            problems.append("a submission's code ran")
    for jobs, ts in times.items():
        print(f"- --jobs {jobs}: " + ", ".join(f"{t:.1f} s" for t in ts))
    if times[1] and times[2]:
        print(f"- time with --jobs 2 / with --jobs 1: {min(times[2]) / min(times[1]):.2f} (best runs)")
    print("- every file has exactly one result in every run; verdicts agree" if not problems
          else "\n".join(f"- PROBLEM: {x}" for x in problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
