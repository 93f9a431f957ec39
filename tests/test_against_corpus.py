"""The corpus of buggy implementations (tests/data/against/corpus.json): every slip flagged and localised.

Each entry is one correct base with one edit. The test makes the buggy file, runs ``derive against`` on it
(the callable route for Python, the file route with its sweep cases for C++) and checks that exactly the
expected gradients are flagged, each from the expected sequence length on.
"""

import json
import os
import shutil
import subprocess

import pytest

from derive.against.command import Options, Reference, against_callable, against_files, write_case_dir
from derive.cli import parse_sizes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = json.load(open(os.path.join(ROOT, "tests", "data", "against", "corpus.json"), encoding="utf-8"))
BASES = CORPUS["bases"]
ENTRIES = CORPUS["entries"]
COMPILER = shutil.which("c++") or shutil.which("g++")
NO_COMPILER = "no C++ compiler (c++ or g++) on PATH: the C++ examples are not built"
_REFERENCES = {}
NAMING_SECONDS = 30.0
"""The naming search's budget here: generous, so that a loaded machine does not change what is named."""


def reference(model):
    if model not in _REFERENCES:
        _REFERENCES[model] = Reference(model)
    return _REFERENCES[model]


def variant(entry, folder):
    """The base with the entry's one edit, written into ``folder``; its path."""
    base = BASES[entry["base"]]
    text = open(os.path.join(ROOT, base["path"]), encoding="utf-8").read()
    assert text.count(entry["old"]) == 1, f"{entry['name']}: the edit's old text must occur once in the base"
    path = os.path.join(folder, entry["name"] + os.path.splitext(base["path"])[1])
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(entry["old"], entry["new"]))
    return path


def compile_cpp(source, folder):
    exe = os.path.join(folder, os.path.splitext(os.path.basename(source))[0])
    subprocess.run([COMPILER, "-O1", "-std=c++17", "-o", exe, source], check=True, timeout=300)
    return exe


def run_entry(entry, folder, name=False):
    """Run derive against on the entry's buggy implementation; the result."""
    base = BASES[entry["base"]]
    path = variant(entry, folder)
    options = Options(base["model"], sizes=parse_sizes(base["size"]), name=name, naming_seconds=NAMING_SECONDS)
    ref = reference(base["model"])
    if path.endswith(".py"):
        options.impl = path + ":loss_and_gradients"
        return against_callable(options, ref)
    exe = compile_cpp(path, folder)
    case = os.path.join(folder, "case")
    options.write_case, options.sweep_cases = case, True
    write_case_dir(options, ref)
    for d in [case] + sorted(os.path.join(case, "sweep", t) for t in os.listdir(os.path.join(case, "sweep"))):
        subprocess.run([exe, d], check=True, timeout=60)
    options.write_case, options.gradients = None, case
    return against_files(options, ref)


def test_corpus_is_large_enough():
    assert len(ENTRIES) >= 15 and sum(e["named"] for e in ENTRIES) >= 12
    assert sum(BASES[e["base"]]["path"].endswith(".cpp") for e in ENTRIES) >= 2
    assert any(BASES[e["base"]]["model"].endswith("gru.rnn") for e in ENTRIES)
    assert len({e["name"] for e in ENTRIES}) == len(ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_slip_is_flagged_and_localised(entry, tmp_path):
    if BASES[entry["base"]]["path"].endswith(".cpp") and COMPILER is None:
        pytest.skip(NO_COMPILER)
    result = run_entry(entry, str(tmp_path))
    assert result.status == 1
    assert sorted(result.wrong) == sorted(entry["wrong"]), "flagged other gradients than the slip touches"
    assert result.loss_agrees, "every slip of the corpus is in the backward pass"
    assert result.sweep is not None
    firsts = {name: result.sweep.first_wrong_of(name) for name in result.wrong}
    assert firsts == entry["wrong"], "the T sweep's first wrong length per gradient"
    for row in result.rows:
        if not row.passed:
            assert row.worst and row.worst[0]["abs_error"] == row.max_abs_error


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_slip_is_named(entry, tmp_path):
    if BASES[entry["base"]]["path"].endswith(".cpp") and COMPILER is None:
        pytest.skip(NO_COMPILER)
    if not entry["named"]:
        pytest.skip(entry["note"])
    result = run_entry(entry, str(tmp_path), name=True)
    naming = result.naming
    assert naming is not None
    words = [w.lower() for w in entry["slip_words"]]
    named = any(any(w in m["description"].lower() for w in words) or set(m["kinds"]) & set(entry["kinds"])
                for m in naming.matches)
    assert named, f"{entry['name']}: matches {naming.matches}, tried {naming.tried} ({naming.tried_kinds})"
