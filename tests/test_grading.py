"""Grading a class with ``derive check PATH... --summary``: every file gets a result, whatever it holds.

The class is generated in ``tmp_path`` from the project's own files: the
corrected seed 000 notes (every claim holds), the same with the tour's slip
put in, the tour's notes, a malformed copy, and hostile files (bytes that are
not UTF-8, a file over 4 MB, model paths out of the folder or to nothing, an
empty file, a link, a pipe, code in a claim).  It is graded once (a
module fixture); the formats, exit statuses and limits are checked on it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from derive.claims import grading
from derive.claims.command import run_check
from derive.claims.grading import FileGrade, GradeOptions, batch_exit_status, grade_submissions
from derive.claims.grading_files import MAX_FILE_BYTES, collect_submissions
from derive.claims.grading_progress import Progress
from derive.claims.grading_summary import CSV_COLUMNS, csv_summary, json_summary, slips, table_summary
from derive.cli import main

ROOT = Path(__file__).resolve().parent.parent
CORRECTED = ROOT / "examples" / "seed000_batch_matmul_corrected.claims"
TOUR = ROOT / "examples" / "tour"
STUDENT = ROOT / "tests" / "data" / "student_claims"
TANH_SLIP = ("(1 - h_t**2)", "(1 - h_t)**2")
"""The tour's slip, put into a correct claim."""


def corrected_subset() -> tuple[list[str], list[str]]:
    """The corrected seed 000 notes' model lines, and its claims dL/dy and dL/dh_{t-1} (both hold)."""
    lines = CORRECTED.read_text(encoding="utf-8").splitlines()
    head = [ln for ln in lines if not ln.startswith("claim")]
    claims = [ln for ln in lines if ln.startswith(("claim dL/dy =", "claim dL/dh_{t-1} = W_hh.T"))]
    assert len(claims) == 2 and TANH_SLIP[0] in claims[1]
    return head, claims


def write_class(root: Path) -> Path:
    """The class folder: one submission per student folder, plus files a folder walk must skip."""
    cls = root / "class"
    head, claims = corrected_subset()

    def put(name: str, text: str | bytes) -> Path:
        path = cls / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    put("alice/notes.claims", "\n".join(head + claims) + "\n")
    put("bob/notes.claims", "\n".join(head + [claims[0], claims[1].replace(*TANH_SLIP)]) + "\n")
    tour = [ln for ln in (TOUR / "notes.claims").read_text(encoding="utf-8").splitlines()
            if not ln.startswith("claim") or ln.startswith("claim dL/dz_t")]
    put("carol/notes.claims", "\n".join(tour) + "\n")
    put("carol/char_rnn.rnn", (TOUR / "char_rnn.rnn").read_text(encoding="utf-8"))
    marker = root / "PWNED"
    put("dave/notes.claims", "\n".join(head + [claims[0], claims[1].replace("@ (", "@ (("),
                                             f"claim dL/dy = __import__('os').system('touch {marker}')"]) + "\n")
    put("erin/notes.claims", b"model elman-regression\nclaim dL/dy = \xff\xfe y\n")
    put("frank/notes.claims", "model elman-regression\n" + "# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    (root / "outside.rnn").write_text((STUDENT / "gru.rnn").read_text(encoding="utf-8"), encoding="utf-8")
    put("grace/notes.claims", "model ../../outside.rnn\nclaim dL/do = y - onehot(c)\n")
    put("heidi/notes.claims", "model missing.rnn\nclaim dL/dy = y - y_true\n")
    put("ivan/notes.claims", "")
    (root / "secret.claims").write_text("\n".join(head + claims) + "\n", encoding="utf-8")
    (cls / "judy").mkdir()
    (cls / "judy" / "notes.claims").symlink_to(root / "secret.claims")
    (cls / "mallory").mkdir()
    os.mkfifo(cls / "mallory" / "notes.claims")
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "notes.claims").write_text("\n".join(head + claims) + "\n", encoding="utf-8")
    (cls / "zed").symlink_to(root / "elsewhere")
    put("alice/notes.txt", "not a claims file")
    put("alice/.backup/notes.claims", "hidden: not picked")
    return cls


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    cls = write_class(root)
    subs = collect_submissions([str(cls)])
    return SimpleNamespace(root=root, cls=cls, subs=subs, grades=grade_submissions(subs, GradeOptions(), jobs=2))


def by_student(grades) -> dict[str, FileGrade]:
    return {Path(g.file).parent.name: g for g in grades}


def test_a_folder_gives_its_claims_files_sorted_at_any_depth(graded):
    subs, cls = graded.subs, graded.cls
    students = [Path(s.path).parent.name for s in subs]
    assert students == sorted(students) == ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
                                            "ivan", "judy", "mallory"]
    assert all(s.path.endswith(".claims") for s in subs)
    refused = {Path(s.path).parent.name: s.refusal for s in subs if s.refusal}
    assert set(refused) == {"frank", "judy", "mallory"}
    assert "symbolic link" in refused["judy"] and "regular file" in refused["mallory"]
    assert f"{MAX_FILE_BYTES:,}" in refused["frank"]
    again = collect_submissions([str(cls / "bob" / "notes.claims"), str(cls)])
    assert len(again) == len(subs) and again[0].path.endswith("bob/notes.claims")
    (cls.parent / "nothing").mkdir(exist_ok=True)
    empty = collect_submissions([str(cls.parent / "nothing")])
    assert len(empty) == 1 and "no .claims file" in empty[0].refusal


def test_every_file_gets_its_status(graded):
    root, subs, grades = graded.root, graded.subs, graded.grades
    assert [g.file for g in grades] == [s.path for s in subs]
    got = {name: g.status for name, g in by_student(grades).items()}
    assert got == {"alice": "ok", "bob": "ok", "carol": "ok", "dave": "ok",
                   "erin": "input_error", "frank": "input_error", "grace": "input_error", "heidi": "input_error",
                   "ivan": "input_error", "judy": "input_error", "mallory": "input_error"}
    messages = {name: g.message for name, g in by_student(grades).items()}
    assert "not UTF-8" in messages["erin"]
    assert "leads out of the claims file's folder" in messages["grace"]
    assert "no such model file" in messages["heidi"] and "missing.rnn" in messages["heidi"]
    assert "no model" in messages["ivan"]
    assert not (root / "PWNED").exists()


def test_known_files_get_their_verdicts(graded):
    grades = by_student(graded.grades)
    assert [c["verdict"] for c in grades["alice"].claims] == ["holds", "holds"]
    assert (grades["alice"].holds, grades["alice"].total, grades["alice"].score) == (2, 2, 1.0)
    slip = grades["bob"].claims[1]
    assert slip["verdict"] == "wrong" and slip["derivative"] == "dL/dh_{t-1}"
    assert slip["repair_edit"].startswith("1 - h_t**2 for (1 - h_t)**2")
    assert (grades["bob"].holds, grades["bob"].total) == (1, 2)
    assert [c["verdict"] for c in grades["carol"].claims] == ["wrong"]
    assert [c["verdict"] for c in grades["dave"].claims] == ["holds", "error", "error"]
    assert grades["bob"].exit_status == 1 and grades["alice"].exit_status == 0


def test_the_common_slips_are_counted_across_files(graded):
    doc = json_summary(graded.grades)
    edit = [r for r in doc["repairs"] if r["kind"] == "(1 - h)**2 written for 1 - h**2"]
    assert edit and edit[0]["count"] == 2 and edit[0]["files"] == 2  # bob's dL/dh_{t-1}, carol's dL/dz_t
    wrong = {(s["derivative"], s["verdict"]): s["count"] for s in slips(graded.grades)}
    assert wrong[("dL/dh_{t-1}", "wrong")] == 1 and wrong[("dL/dz_t", "wrong")] == 1
    assert wrong[(None, "error")] == 2  # dave's unreadable lines
    assert ("dL/dy", "holds") not in wrong


def test_json_and_csv_parse_with_numbers_as_numbers(graded):
    grades = graded.grades
    doc = json.loads(json.dumps(json_summary(grades, GradeOptions().limits())))
    assert doc["totals"]["files"] == 11 and doc["totals"]["ok"] == 4 and doc["totals"]["input_error"] == 7
    assert doc["totals"]["exit_status"] == 2 and doc["limits"]["seconds_per_file"] == 600
    bob = next(f for f in doc["files"] if f["file"].endswith("bob/notes.claims"))
    assert (bob["holds"], bob["claims"], bob["score"]) == (1, 2, 0.5)
    erin = next(f for f in doc["files"] if f["file"].endswith("erin/notes.claims"))
    assert erin["claims"] is None and erin["score"] is None and erin["results"] is None
    rows = list(csv.DictReader(io.StringIO(csv_summary(grades))))
    assert tuple(rows[0]) == CSV_COLUMNS
    files = [r for r in rows if r["record"] == "file"]
    assert [r["file"] for r in files] == [g.file for g in grades]
    bob_row = next(r for r in files if r["file"].endswith("bob/notes.claims"))
    assert (int(bob_row["holds"]), int(bob_row["claims"]), float(bob_row["score"])) == (1, 2, 0.5)
    claim_rows = [r for r in rows if r["record"] == "claim"]
    assert len(claim_rows) == sum(g.total or 0 for g in grades)
    assert all(int(r["line"]) >= 1 for r in claim_rows)
    assert {r["record"] for r in rows} == {"class", "file", "claim", "slip", "repair"}


def test_the_table_lists_every_file_and_the_slips(graded):
    grades = graded.grades
    text = table_summary(grades)
    for g in grades:
        assert g.file in text
    assert text.startswith("11 files: 4 ok, 7 input error; ")
    assert "most common slips" in text and "(1 - h)**2 written for 1 - h**2" in text
    assert "not UTF-8" in text


def test_the_exit_status_is_the_worst_files():
    def grade(code, status="ok"):
        return FileGrade("f.claims", status, exit_status=code, claims=[])
    assert batch_exit_status([grade(0), grade(0)]) == 0
    assert batch_exit_status([grade(0), grade(1)]) == 1
    assert batch_exit_status([grade(1), grade(2, "input_error")]) == 2
    assert batch_exit_status([grade(2, "timed_out"), grade(3, "internal_error"), grade(1)]) == 3


def test_the_command_prints_csv_and_exits_2_on_bad_input(tmp_path, capsys):
    cls = write_class(tmp_path)
    paths = [str(cls / name / "notes.claims") for name in ("erin", "heidi", "ivan")]
    assert main(["check", *paths, "--summary", "csv", "--jobs", "2"]) == 2
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert [r["status"] for r in rows if r["record"] == "file"] == ["input_error"] * 3
    assert "\r" not in captured.err and "\x1b" not in captured.err  # not a terminal: plain lines
    assert "derive check: [3/3]" in captured.err
    assert main(["check", paths[0], "--json", "--summary", "csv"]) == 2
    assert main(["check", str(tmp_path / "nowhere"), paths[0], "--summary", "json"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_one_file_without_summary_prints_as_before(graded, capsys):
    bob = str(graded.cls / "bob" / "notes.claims")
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", bob]) == run_check(bob, False, out, err) == 1
    captured = capsys.readouterr()
    assert captured.out == out.getvalue() and captured.err == err.getvalue()
    assert "derive check: grading" not in captured.err


def test_a_stuck_file_is_killed_at_its_limit_and_the_others_go_on(tmp_path, monkeypatch):
    cls = write_class(tmp_path)
    stuck, empty = str(cls / "alice" / "notes.claims"), str(cls / "ivan" / "notes.claims")
    real = grading.grade_one

    def grade_one(path, options, started=None, on_phase=None):
        if path == stuck:
            on_phase("reading the file")
            time.sleep(600)
        return real(path, options, started, on_phase)

    monkeypatch.setattr(grading, "grade_one", grade_one)  # the forked processes inherit it
    monkeypatch.setattr(grading, "KILL_GRACE", 0.5)
    began = time.monotonic()
    grades = grade_submissions(collect_submissions([stuck, empty]), GradeOptions(seconds=1.0), jobs=2)
    assert time.monotonic() - began < 20
    assert grades[0].status == "timed_out" and "1 s per file" in grades[0].message
    assert "reading the file" in grades[0].message and grades[0].exit_status == 2
    assert grades[1].status == "input_error"


def test_a_crash_or_a_dead_process_is_an_internal_error(tmp_path, monkeypatch, capsys):
    cls = write_class(tmp_path)
    crash, dead = str(cls / "alice" / "notes.claims"), str(cls / "bob" / "notes.claims")

    def grade_one(path, options, started=None, on_phase=None):
        if path == dead:
            os._exit(7)
        raise RuntimeError("a bug")

    monkeypatch.setattr(grading, "grade_one", grade_one)
    assert main(["check", crash, dead, "--summary", "json", "--jobs", "2"]) == 3
    doc = json.loads(capsys.readouterr().out)
    first, second = doc["files"]
    assert first["status"] == second["status"] == "internal_error"
    assert "RuntimeError: a bug" in first["message"] and "exit status 7" in second["message"]


def test_the_bar_is_drawn_only_on_a_terminal():
    grade = FileGrade("a.claims", "ok", claims=[{"verdict": "holds"}], exit_status=0)
    plain, bar = io.StringIO(), io.StringIO()
    for stream, terminal in ((plain, False), (bar, True)):
        progress = Progress(stream, 2, 2, terminal=terminal)
        progress.start()
        progress.graded(grade)
        progress.close()
    assert "\r" not in plain.getvalue() and "\x1b" not in plain.getvalue()
    assert "derive check: [1/2] a.claims: ok, 1 of 1 claims hold" in plain.getvalue()
    assert "\r[" in bar.getvalue() and "1/2 files" in bar.getvalue()


def test_no_cell_is_a_formula_and_no_escape_reaches_the_terminal():
    claim = {"line": 2, "column": 1, "text": "=HYPERLINK(\"http://x\")", "verdict": "error", "explanation": "",
             "truth": None, "repair": None, "repair_edit": None, "limit": None, "internal_error": False,
             "derivative": None}
    grade = FileGrade("class/\x1b]0;title\x07.claims", "ok", claims=[claim], exit_status=1)
    rows = list(csv.DictReader(io.StringIO(csv_summary([grade]))))
    assert next(r for r in rows if r["record"] == "claim")["text"] == "'" + claim["text"]
    table = table_summary([grade])
    assert "\x1b" not in table and "\x07" not in table and "class/?]0;title?.claims" in table
    plain = io.StringIO()
    Progress(plain, 1, 1, terminal=False).graded(grade)
    assert "\x1b" not in plain.getvalue()


def test_a_class_of_notes_is_graded_against_a_model(tmp_path, capsys):
    notes = Path(__file__).parent / "data" / "notes" / "seed002.txt"
    (tmp_path / "alice.txt").write_text(notes.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "bob.md").write_text("Thus, dL/dW_hy = sum_t (y_t - one_hot(c_t)) h_t^T\n"
                                     "dL/dz_t = dL/dh_t * (1 - h_t)^2\n", encoding="utf-8")
    (tmp_path / "carol.txt").write_text("nothing derived here\n", encoding="utf-8")
    (tmp_path / "ignored.claims").write_text("claim dL/dL = 1\n", encoding="utf-8")
    status = main(["check", str(tmp_path), "--model", "elman-softmax", "--summary", "json"])
    doc = json.loads(capsys.readouterr().out)
    files = {Path(f["file"]).name: f for f in doc["files"]}
    assert status == 2 and set(files) == {"alice.txt", "bob.md", "carol.txt"}
    assert files["carol.txt"]["status"] == "input_error"
    bob = files["bob.md"]["results"]
    assert [(c["line"], c["verdict"]) for c in bob] == [(1, "holds"), (2, "wrong")]
    assert bob[1]["repair_kinds"] == ["(1 - h)**2 written for 1 - h**2"]
    alice = files["alice.txt"]["results"]
    assert [c["line"] for c in alice] == sorted(c["line"] for c in alice)
    assert sum(c["verdict"] == "holds" for c in alice) == 4
    unread = [c for c in alice if c["verdict"] == "error"]
    assert len(unread) == 4 and all(c["explanation"] for c in unread)  # the per-entry lines it cannot read
