"""Time ``derive check`` on a 15-claim file (the corrected seed 002 notes).

Run from the repository root: ``python bench/check_speed.py``.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from derive.claims.command import run_check

FILES = ["examples/seed002_softmax_rnn_corrected.claims", "examples/seed002_softmax_rnn.claims",
         "examples/seed001_bptt_two_steps.claims", "examples/seed000_batch_matmul.claims"]


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    for name in FILES:
        text = (root / name).read_text(encoding="utf-8")
        claims = sum(1 for line in text.splitlines() if line.startswith("claim"))
        start = time.perf_counter()
        status = run_check(str(root / name), False, io.StringIO(), io.StringIO())
        seconds = time.perf_counter() - start
        print(f"{name}: {claims} claims, exit {status}, {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
