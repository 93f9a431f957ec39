"""``python -m bench``: run every benchmark and print the tables.

A full run (neither ``--quick`` nor ``--only``) also rewrites the tables of
``bench/README.md``, between its ``<!-- bench:start -->`` and
``<!-- bench:end -->`` markers. Options: ``--quick`` (fewer repeats, a 10 s
limit for the sympy.diff baseline, a few minutes in all), ``--only SECTION``
(repeatable), ``--blas-threads N`` (sets OPENBLAS_NUM_THREADS /
OMP_NUM_THREADS before NumPy and PyTorch load, for every section but
``all-cores`` and ``busy-core``, which set their own per process), ``--out PATH`` (also write
the tables to PATH).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

SECTIONS = ("derivation", "speed", "all-cores", "busy-core", "verification", "memory", "cache", "first-run")


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run (fewer repeats, 10 s baseline limit)")
    ap.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections")
    ap.add_argument("--blas-threads", type=int, default=None, help="BLAS threads for NumPy (default: BLAS default)")
    ap.add_argument("--limit", type=float, default=120.0, help="seconds before the sympy.diff baseline is stopped")
    ap.add_argument("--out", default=None, help="also write the tables to this file")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.blas_threads is not None:
        if "numpy" in sys.modules:
            print("warning: NumPy is already loaded; --blas-threads may not take effect", file=sys.stderr)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.blas_threads)
        if args.blas_threads == 1:  # JAX's XLA CPU backend has its own thread pool
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                       " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    # every section times the work itself, never a cached answer; the cache section runs its own processes
    os.environ["DERIVE_NO_CACHE"] = "1"
    from bench import all_cores, busy_core, cache_speed, derivation_cost, gradient_speed, memory, verification_cost
    from bench import first_run
    from bench.common import machine_lines

    sections = args.only or list(SECTIONS)
    started = time.perf_counter()
    lines = [(f"Regenerate with `python -m bench{' --quick' if args.quick else ''}"
              f"{f' --blas-threads {args.blas_threads}' if args.blas_threads else ''}` "
              "(a full run rewrites this part of `bench/README.md`). Times are medians; ratios below 1 favour "
              "the first-named code."), ""]
    lines += machine_lines()
    body = []
    runners = {"derivation": (lambda: derivation_cost.run(args.quick, args.limit), derivation_cost.markdown),
               "speed": (lambda: gradient_speed.run(args.quick), gradient_speed.markdown),
               "all-cores": (lambda: all_cores.run(args.quick), all_cores.markdown),
               "busy-core": (lambda: busy_core.run(args.quick), busy_core.markdown),
               "verification": (lambda: verification_cost.run(args.quick), verification_cost.markdown),
               "memory": (lambda: memory.run(args.quick), memory.markdown),
               "cache": (lambda: cache_speed.run(args.quick), cache_speed.markdown),
               "first-run": (lambda: first_run.run(args.quick), first_run.markdown)}
    for name in sections:
        t0 = time.perf_counter()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        run, render = runners[name]
        body += [""] + render(run())
        print(f"bench: {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    lines.append(f"- whole run: {time.perf_counter() - started:.0f} s{' (--quick)' if args.quick else ''}")
    text = "\n".join(lines + body) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    if not args.quick and not args.only:
        update_readme(text)
    print(text)
    return 0


README = Path(__file__).parent / "README.md"
"""The benchmarks' README, whose tables a full run rewrites."""

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(table: str, readme: Path = README) -> None:
    """Put the tables between the benchmark markers of ``bench/README.md`` (a full run only).

    The text outside the markers (how to read the tables) is kept as it is.
    """
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        print(f"warning: {readme} has no benchmark markers; the tables were not written there", file=sys.stderr)
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{table}{README_END}{tail}", encoding="utf-8")
