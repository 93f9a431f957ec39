"""How long ``derive against`` takes on a 10-step, H = 50, B = 1000 elman-regression case (the target: under 10 s).

Two runs, each timed end to end (the derivation, the generated module, the user's code, the comparison): the
correct implementation of tests/data/against/elman_regression.py, and the same with the recurrent term dropped
(a wrong gradient, so the T sweep and the slip-naming search run too).
``python bench/against_speed.py`` prints the figures recorded in docs/against.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from derive.against.command import Options, Reference, against_callable  # noqa: E402

SIZES = {"T": 10, "H": 50, "B": 1000}
BASE = os.path.join(ROOT, "tests", "data", "against", "elman_regression.py")


def timed(impl: str) -> tuple:
    start = time.perf_counter()
    ref = Reference("elman-regression")
    result = against_callable(Options("elman-regression", impl=impl, sizes=dict(SIZES)), ref)
    return time.perf_counter() - start, result


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        text = open(BASE, encoding="utf-8").read()
        buggy = os.path.join(folder, "no_recurrent.py")
        with open(buggy, "w", encoding="utf-8") as f:
            f.write(text.replace("dh = W_hh.T @ dz", "dh = 0.0 * dz"))
        print(f"derive against elman-regression at {', '.join(f'{k}={v}' for k, v in SIZES.items())}; "
              "naming the slip: included")
        worst = 0.0
        for label, impl in (("correct", BASE), ("recurrent term dropped", buggy)):
            seconds, result = timed(impl + ":loss_and_gradients")
            worst = max(worst, seconds)
            parts = ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items())
            print(f"{label:24s} exit {result.status}  total {seconds:.2f} s  ({parts})")
            if result.sweep is not None:
                print(f"{'':24s} steps: {result.sweep.summary()}")
            if result.naming is not None:
                for line in result.naming.sentences(result.wrong):
                    print(f"{'':24s} slip: {line}")
        print(f"slowest: {worst:.2f} s ({'under' if worst < 10 else 'OVER'} the 10 s target)")
        return 0 if worst < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
