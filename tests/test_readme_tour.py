"""The README's tour, run as written: its files, its commands and what they print."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from derive.cli import main

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def tour_blocks() -> list[tuple[str, str, str]]:
    """(language, text, the prose before the block) for every code block of the tour, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = readme.split("<!-- tour:start -->", 1)[1].split("<!-- tour:end -->", 1)[0]
    blocks, at = [], 0
    for m in BLOCK.finditer(tour):
        blocks.append((m.group(1), m.group(2), tour[at:m.start()]))
        at = m.end()
    return blocks


def shown_lines_appear(shown: str, printed: str) -> None:
    """Every line shown (but ``...``) is a line printed, in the same order."""
    printed_lines = [line.rstrip() for line in printed.splitlines()]
    at = 0
    for line in shown.splitlines():
        if line.strip() == "...":
            continue
        assert line.rstrip() in printed_lines[at:], f"not printed (in this order): {line!r}\n{printed}"
        at = printed_lines.index(line.rstrip(), at) + 1


def test_the_tour_runs_as_written(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "examples" / "tour", tmp_path / "examples" / "tour")
    monkeypatch.chdir(tmp_path)
    blocks = tour_blocks()
    assert [lang for lang, _, _ in blocks].count("sh") == 4 and any(lang == "python" for lang, _, _ in blocks)
    printed = None
    for lang, text, before in blocks:
        if lang == "text" and printed is None:  # a file of the tour, named in the prose before it
            name = re.findall(r"`(examples/tour/[\w.]+)`", before)[-1]
            assert text == (ROOT / name).read_text(encoding="utf-8"), f"the README's {name} is not the file"
        elif lang == "text":
            shown_lines_appear(text, printed)
            printed = None
        elif lang == "sh":
            command, _, comment = text.strip().partition("#")
            argv = command.split()
            assert argv[0] == "derive"
            want = int(re.search(r"exit status (\d)", comment).group(1)) if comment else 0
            assert main(argv[1:]) == want, command
            captured = capsys.readouterr()
            printed = captured.out + captured.err
        elif lang == "python":
            (tmp_path / "train.py").write_text(text, encoding="utf-8")
            run = subprocess.run([sys.executable, "train.py"], capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, run.stderr
            printed = run.stdout
