"""The on-disk cache (derive/cache.py): same answers with and without it, hits counted, damage ignored.

tests/conftest.py turns the cache off for the rest of the suite; here each
test turns it on in a folder of its own.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
from pathlib import Path

import pytest

from derive import cache
from derive.calculus.cache_keys import model_text
from derive.cli import main
from derive.model.build import load_text

ROOT = Path(__file__).resolve().parent.parent

SMALL = """# a small Elman layer
size H = 2, F = 2, T = 3, B = 2
param  W_hh : H x H
param  W_xh : H x F
input  x_t  : F x B
target d_t  : H x B
state  h_t  : H x B = 0

z_t = W_hh @ h_{t-1} + W_xh @ x_t
h_t = tanh(z_t)
L   = sum_t sum((h_t - d_t)**2) / 2
"""

RESPACED = """size H = 2,   F = 2, T = 3, B = 2

# the same model, other comments and spacing
param W_hh : H x H
param W_xh : H x F     # input weights
input x_t : F x B
target d_t : H x B
state h_t : H x B = 0
z_t = W_hh@h_{t-1} + W_xh @ x_t
h_t = tanh( z_t )

L = sum_t sum((h_t - d_t)**2)/2
"""

TIMES = re.compile(r"\d+\.\d+ s\b")


@pytest.fixture
def on(tmp_path, monkeypatch):
    """The cache on, in a fresh folder; the counters and switches reset."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("DERIVE_CACHE_DIR", str(folder))
    monkeypatch.delenv("DERIVE_NO_CACHE", raising=False)
    monkeypatch.delenv("DERIVE_CACHE_MAX_MB", raising=False)
    monkeypatch.setattr(cache, "STATE", cache._State())
    from derive.verify import run
    monkeypatch.setattr(run, "_EXACT_POINTS", {})  # the process's own memo would hide the disk
    return folder


def entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*" + cache.SUFFIX))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# -- keys -----------------------------------------------------------------------------------------

def test_comments_and_spacing_share_a_key_an_equation_does_not():
    a, b = load_text(SMALL, "a.rnn", "a"), load_text(RESPACED, "elsewhere/b.rnn", "b")
    assert model_text(a) == model_text(b)
    changed = load_text(SMALL.replace("h_t = tanh(z_t)", "h_t = sigmoid(z_t)"), "a.rnn", "a")
    assert model_text(changed) != model_text(a)
    resized = load_text(SMALL.replace("H = 2,", "H = 3,"), "a.rnn", "a")
    assert model_text(resized) != model_text(a)
    assert cache.make_key("prove", model_text(a), 0) == cache.make_key("prove", model_text(b), 0)
    assert cache.make_key("prove", model_text(a), 0) != cache.make_key("prove", model_text(a), 1)


def test_the_key_changes_with_the_package_source(monkeypatch):
    before = cache.make_key("prove", "x")
    monkeypatch.setattr(cache.STATE, "fingerprint", "another derive")
    assert cache.make_key("prove", "x") != before


def test_one_proof_entry_serves_texts_that_differ_only_in_comments(on):
    from derive.calculus.matrix import derive_matrix
    from derive.calculus.prove import prove
    first = prove(derive_matrix(load_text(SMALL, "a.rnn", "a")))
    second = prove(derive_matrix(load_text(RESPACED, "b.rnn", "b")))
    assert (cache.STATE.misses, cache.STATE.hits) == (1, 1)
    assert second.holds and [p.sizes for p in second.sizes] == [p.sizes for p in first.sizes]
    prove(derive_matrix(load_text(SMALL.replace("tanh(z_t)", "sigmoid(z_t)"), "a.rnn", "a")))
    assert (cache.STATE.misses, cache.STATE.hits) == (2, 1)
    assert len(entries(on)) == 2


def test_default_folder_follows_the_platform(monkeypatch, tmp_path):
    monkeypatch.setattr(cache.Path, "home", classmethod(lambda cls: tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert cache.default_dir() == Path("/xdg/derive")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    assert cache.default_dir() == tmp_path / ".cache" / "derive"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert cache.default_dir() == tmp_path / "Library" / "Caches" / "derive"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert cache.default_dir() == tmp_path / "Local" / "derive" / "Cache"


# -- switches -------------------------------------------------------------------------------------

def test_stored_once_then_read(on):
    calls = []
    for _ in range(3):
        assert cache.cached("k", ("a", 1), lambda: calls.append(1) or {"v": [1, 2]}) == {"v": [1, 2]}
    assert len(calls) == 1 and (cache.STATE.misses, cache.STATE.hits) == (1, 2)
    assert os.stat(on).st_mode & 0o777 == 0o700


def test_the_environment_and_the_switch_turn_it_off(on, monkeypatch):
    calls = []
    monkeypatch.setenv("DERIVE_NO_CACHE", "1")
    cache.cached("k", (), lambda: calls.append(1))
    monkeypatch.setenv("DERIVE_NO_CACHE", "0")
    with cache.using(False):
        cache.cached("k", (), lambda: calls.append(1))
    assert len(calls) == 2 and not on.exists()
    cache.cached("k", (), lambda: calls.append(1))
    cache.cached("k", (), lambda: calls.append(1))
    assert len(calls) == 3 and cache.STATE.hits == 1


def test_keep_refuses_to_store(on):
    calls = []
    for _ in range(2):
        cache.cached("k", (), lambda: calls.append(1) or "undecided", keep=lambda value: value != "undecided")
    assert entries(on) == [] and cache.STATE.stores == 0 and len(calls) == 2


# -- damage ---------------------------------------------------------------------------------------

def _damaged(folder: Path, how: str) -> None:
    (path,) = entries(folder)
    data = path.read_bytes()
    if how == "corrupt":
        path.write_bytes(data[:-20] + b"\x00" * 20)
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"not a cache entry at all\n\x80\x04")
    elif how == "stale":  # written by another derive: the header names another fingerprint
        head, payload = data[len(cache.MAGIC):].split(b"\n", 1)
        key, _, digest = head.split(b" ")
        path.write_bytes(cache.MAGIC + key + b" " + b"0" * 64 + b" " + digest + b"\n" + payload)
    elif how == "folder":
        path.unlink()
        path.mkdir()


@pytest.mark.parametrize("how", ["corrupt", "truncated", "empty", "garbage", "stale", "folder"])
def test_a_damaged_entry_is_recomputed(on, how, capsys):
    calls = []
    cache.cached("k", (1,), lambda: calls.append(1) or [1.5, "x"])
    _damaged(on, how)
    assert cache.cached("k", (1,), lambda: calls.append(1) or [1.5, "x"]) == [1.5, "x"]
    assert len(calls) == 2 and cache.STATE.hits == 0
    if how != "folder":  # a sound entry replaced it
        assert cache.cached("k", (1,), lambda: calls.append(1)) == [1.5, "x"] and len(calls) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads unreadable files")
def test_an_unreadable_entry_is_recomputed(on):
    calls = []
    cache.cached("k", (), lambda: calls.append(1) or 7)
    entries(on)[0].chmod(0)
    assert cache.cached("k", (), lambda: calls.append(1) or 7) == 7 and len(calls) == 2


def test_an_unwritable_folder_means_no_cache_and_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    monkeypatch.setenv("DERIVE_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.delenv("DERIVE_NO_CACHE", raising=False)
    monkeypatch.setattr(cache, "STATE", cache._State())
    values = [cache.cached("k", (n,), lambda n=n: n * 2) for n in range(4)]
    assert values == [0, 2, 4, 6]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "going on without a cache" in err and "Traceback" not in err


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_folder_others_may_write_is_not_read(on, capsys):
    cache.cached("k", (), lambda: 1)
    on.chmod(0o777)
    calls = []
    assert cache.cached("k", (), lambda: calls.append(1) or 1) == 1 and calls == [1]
    assert "not the user's own" in capsys.readouterr().err


def test_pruning_deletes_the_least_recently_used(on, monkeypatch):
    for n in range(6):
        cache.cached("k", (n,), lambda: b"x" * 10_000)
        for path in entries(on):  # make the order of use unambiguous
            os.utime(path, (path.stat().st_mtime - 10, path.stat().st_mtime - 10))
    cache.cached("k", (0,), lambda: pytest.fail("entry 0 should be stored"))  # touched: the newest now
    size = entries(on)[0].stat().st_size
    assert cache.prune(on, cap=6 * size) == 0  # at the cap: nothing to do
    assert cache.prune(on, cap=5 * size) == 3  # over it: down to 3/4 of it (3.75 entries), so 3 stay
    left = {p.name for p in entries(on)}
    assert cache.make_key("k", 0) + cache.SUFFIX in left and len(left) == 3
    monkeypatch.setenv("DERIVE_CACHE_MAX_MB", "0.02")  # about 20 kB: two entries
    cache.cached("k", (99,), lambda: b"y" * 10_000)
    assert len(entries(on)) <= 2


def _writer(folder: str, n: int) -> None:
    os.environ["DERIVE_CACHE_DIR"] = folder
    for _ in range(n):
        cache.store(cache.make_key("shared"), list(range(50_000)))


def test_concurrent_writers_leave_sound_entries(on):
    on.mkdir(mode=0o700)
    mp = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    procs = [mp.Process(target=_writer, args=(str(on), 15)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    found, value = cache.load(cache.make_key("shared"))
    assert found and value == list(range(50_000))
    assert [p.name for p in on.iterdir()] == [cache.make_key("shared") + cache.SUFFIX]  # no part left


# -- the commands: the same output, the second run reads -----------------------------------------

def _stamp_old(folder: Path) -> None:
    for path in entries(folder):
        os.utime(path, (1_000_000, 1_000_000))


def _hits(folder: Path) -> int:
    """Entries read since :func:`_stamp_old` (a read touches its entry), counted across processes."""
    return sum(1 for path in entries(folder) if path.stat().st_mtime > 2_000_000)


def test_show_reads_the_proof_and_prints_the_same(on, tmp_path, capsys):
    model = tmp_path / "small.rnn"
    model.write_text(SMALL)
    status, plain, _ = run_cli(capsys, "show", str(model), "--no-cache")
    assert status == 0 and not on.exists()
    first = run_cli(capsys, "show", str(model))
    _stamp_old(on)
    status, second, err = run_cli(capsys, "show", str(model))
    assert status == 0 and _hits(on) == 1 and "read from the cache" in err
    assert TIMES.sub("_ s", plain) == TIMES.sub("_ s", first[1]) == TIMES.sub("_ s", second)
    assert second == first[1]  # the proof's seconds are the first run's


def test_code_is_the_same_with_and_without(on, capsys):
    plain = run_cli(capsys, "code", "elman-softmax")[1]
    with cache.using(True):
        assert run_cli(capsys, "code", "elman-softmax")[1] == plain


def _without_timings(doc):
    if isinstance(doc, dict):
        return {k: _without_timings(v) for k, v in doc.items() if k != "seconds"}
    if isinstance(doc, list):
        return [_without_timings(v) for v in doc]
    return doc


def test_verify_json_is_the_same_and_read_the_second_time(on, capsys):
    args = ["verify", "elman-softmax", "--size", "H=3,F=2,O=2,T=3", "--json"]
    status, plain, _ = run_cli(capsys, *args, "--no-cache")
    assert status == 0 and not on.exists()
    from derive.verify import run
    run._EXACT_POINTS.clear()  # the process's memo of the first run
    run_cli(capsys, *args)
    stored = len(entries(on))
    assert stored == 2  # the verdict and the exact point
    _stamp_old(on)
    status, second, _ = run_cli(capsys, *args)
    assert status == 0 and _hits(on) == 1 and len(entries(on)) == stored
    assert _without_timings(json.loads(second)) == _without_timings(json.loads(plain))


def test_check_json_is_the_same_and_each_claim_is_read(on, capsys):
    notes = str(ROOT / "examples" / "seed001_bptt_two_steps.claims")
    status, plain, _ = run_cli(capsys, "check", notes, "--json", "--no-cache")
    assert not on.exists()
    assert run_cli(capsys, "check", notes, "--json")[0] == status
    decided = [c for c in json.loads(plain)["claims"] if c["verdict"] not in ("undecided", "error")]
    assert len(entries(on)) == len(decided) > 0
    _stamp_old(on)
    again, second, _ = run_cli(capsys, "check", notes, "--json")
    assert again == status and _hits(on) == len(decided)
    assert _without_timings(json.loads(second)) == _without_timings(json.loads(plain))


def test_the_api_takes_cache_false(on, tmp_path):
    from derive import derive
    path = tmp_path / "api_small.rnn"
    path.write_text(SMALL)
    derive(path, proof=True, cache=False)
    assert not on.exists()
    a = derive(path, proof=True)
    b = derive(path, proof=True)
    assert (cache.STATE.misses, cache.STATE.hits) == (1, 1) and a.text == b.text and b.proof.holds


def test_a_killed_writers_temporary_file_is_cleared(on):
    cache.cached("k", (), lambda: 1)
    orphan = on / ".tmp-abc.entry.part"
    orphan.write_bytes(b"half an entry")
    fresh = on / ".tmp-def.entry.part"  # another process may be writing this one now
    fresh.write_bytes(b"being written")
    os.utime(orphan, (1_000_000, 1_000_000))
    cache.prune(on)
    assert not orphan.exists() and fresh.exists()
    assert cache.cached("k", (), lambda: pytest.fail("the entry is sound")) == 1


def test_grading_with_an_unusable_folder_says_so_once(tmp_path):
    import subprocess
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    env = dict(os.environ, DERIVE_CACHE_DIR=str(blocker / "cache"), PYTHONPATH=str(ROOT))
    env.pop("DERIVE_NO_CACHE", None)
    files = [str(ROOT / "examples" / name) for name in ("seed000_batch_matmul_corrected.claims",
                                                        "seed001_bptt_two_steps_corrected.claims")]
    proc = subprocess.run([sys.executable, "-m", "derive", "check", *files, "--summary", "csv"], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stderr.count("going on without a cache") == 1 and "Traceback" not in proc.stderr
    assert not blocker.is_dir()


def test_a_report_pdf_is_compiled_once(on, tmp_path):
    from derive.report.run import compile_cached, tex_engine
    engine = tex_engine()
    if engine is None:
        pytest.skip("no TeX engine")
    tex = "\\documentclass{article}\\begin{document}cached\\end{document}\n"
    compile_cached(tex, str(tmp_path / "a.pdf"), engine, None)
    compile_cached(tex, str(tmp_path / "b.pdf"), engine, None)
    assert (cache.STATE.misses, cache.STATE.hits) == (1, 1)
    assert (tmp_path / "b.pdf").read_bytes() == (tmp_path / "a.pdf").read_bytes()
    assert (tmp_path / "b.pdf").read_bytes().startswith(b"%PDF")


def test_a_report_is_read_the_second_time_and_is_the_same(on, tmp_path, capsys):
    model = tmp_path / "small.rnn"
    model.write_text(SMALL)
    outputs = [tmp_path / f"r{k}.tex" for k in range(3)]
    assert run_cli(capsys, "report", str(model), "-o", str(outputs[0]), "--no-cache")[0] == 0
    assert not on.exists()
    assert run_cli(capsys, "report", str(model), "-o", str(outputs[1]))[0] == 0
    _stamp_old(on)
    status, _, err = run_cli(capsys, "report", str(model), "-o", str(outputs[2]))
    assert status == 0 and "the report was read from the cache" in err and _hits(on) == 1
    assert outputs[0].read_text() == outputs[1].read_text() == outputs[2].read_text()
    model.write_text(SMALL.replace("# a small Elman layer", "# a small Elman layer, renamed"))
    run_cli(capsys, "report", str(model), "-o", str(outputs[2]))
    assert "renamed" in outputs[2].read_text()  # the report shows the comment: a new entry


def test_a_verdict_the_time_shaped_is_not_stored():
    from derive.claims.checker import reusable
    from derive.claims.repair_search import REPAIR_SECONDS
    from derive.claims.result import Result
    assert reusable(Result(None, "wrong", "it does not hold"))
    assert not reusable(Result(None, "undecided", "the time limit was reached", limit="claim_seconds"))
    assert not reusable(Result(None, "undecided", "derive failed", internal="Traceback ..."))
    cut = f"tried 40 readings; the search stopped early: the repair search's {REPAIR_SECONDS:g} s ran out"
    assert not reusable(Result(None, "wrong", "it does not hold", repair_search=cut, repair_timed_out=True))
    assert reusable(Result(None, "wrong", "", repair_search="tried 40 readings; none holds"))


def test_a_repair_search_stopped_by_its_time_says_so_to_the_cache(tmp_path, monkeypatch):
    from derive.claims import repair_search
    from derive.claims.checker import reusable
    from derive.claims.read import read_claims
    from derive.claims.verdicts import check_file
    monkeypatch.setattr(repair_search, "REPAIR_SECONDS", 0.0)  # the search's time is up before it starts
    path = tmp_path / "slip.claims"
    path.write_text("model elman-softmax\nclaim dL/dW_hh = sum_t dL/dh_t @ h_t.T\n", encoding="utf-8")
    [result] = check_file(read_claims(str(path)), isolate=False)
    assert result.verdict == "wrong" and result.repair is None
    assert result.repair_timed_out and "ran out" in result.repair_search and not reusable(result)


def test_a_claim_written_at_other_columns_is_not_given_the_first_ones_columns(on, tmp_path, capsys):
    # found in review: the key held the claim's text but not where it stands, and a verdict's words
    # name columns ("⋅ at column 24"), so a second file with more spaces before the claim read 24 for 29
    for name, gap in (("near.claims", " "), ("far.claims", "      ")):
        (tmp_path / name).write_text(f"model elman-regression\nsize T = 2\nclaim{gap}dL/dh_2 = W_hy.T ⋅ dL/dy\n",
                                     encoding="utf-8")
    _, near, _ = run_cli(capsys, "check", str(tmp_path / "near.claims"))
    _, far, _ = run_cli(capsys, "check", str(tmp_path / "far.claims"))
    assert "⋅ at column 24 as @" in near and "⋅ at column 29 as @" in far
    assert len(entries(on)) == 2  # one verdict each: the second file did not read the first one's
    _stamp_old(on)
    _, again, _ = run_cli(capsys, "check", str(tmp_path / "far.claims"))
    assert again == far and _hits(on) == 1
