"""The ``derive`` command line: parses arguments, calls the library, sets the exit status."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Dict, List, Optional

from . import __version__
from .errors import InputError
from .files import write_atomically
from .limits import COMMAND_SECONDS, OutOfTime, time_limit

MEMORY_GIB = 2.0
"""Default of ``derive verify --memory``: the library's ``MEMORY_LIMIT`` in GiB (not imported, to keep start-up light)."""


def parse_sizes(text: Optional[str]) -> Dict[str, int]:
    """``H=8,T=5`` -> {"H": 8, "T": 5}."""
    out: Dict[str, int] = {}
    if not text:
        return out
    for k, part in enumerate(text.split(",")):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name.isidentifier() or not value.isdigit() or int(value) < 1:
            column = len(",".join(text.split(",")[:k])) + (1 if k else 0) + 1
            raise InputError(f"--size expects NAME=N pairs separated by commas (H=8,T=5), got {part!r}",
                             "--size", 1, column, text)
        out[name] = int(value)
    return out


def cmd_models(args) -> int:
    from .model.build import builtin_names, load_model
    for name in builtin_names():
        model = load_model(name)
        first = model.source.splitlines()[0].lstrip("# ").strip()
        print(f"{name:20s} {first}")
    return 0


def cmd_show(args) -> int:
    from .calculus.matrix import derive_matrix
    from .calculus.prove import prove
    from .calculus.show import format_show
    from .model.build import load_model
    model = load_model(args.model)
    derivation = derive_matrix(model)
    proof = None if args.no_proof else prove(
        derivation, seed=args.seed, progress=lambda line: print(f"derive show: {line}", file=sys.stderr, flush=True),
        symbolic=args.symbolic_proof)
    print(format_show(model, derivation, proof))
    return 0 if proof is None or proof.holds else 1


def cmd_code(args) -> int:
    from .calculus.matrix import derive_matrix
    from .emit.readable import generate_module
    from .model.build import load_model
    model = load_model(args.model)
    derivation = derive_matrix(model)
    if args.style == "fast":
        from .emit.fast import fast_module_or_readable
        source, reason = fast_module_or_readable(model, derivation)
        if reason is not None:
            print(f"derive code: the fast style does not handle this model ({reason}); this is the "
                  "readable module, with the same interface", file=sys.stderr)
    else:
        source = generate_module(model, derivation)
    if args.output:
        write_atomically(args.output, source)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(source)
    return 0


def cmd_verify(args) -> int:
    from .calculus.matrix import derive_matrix
    from .model.build import load_model
    from .model.sizes import sizes_for
    from .verify.rule import format_result
    from .verify.run import default_complex_entries, default_entries, verify
    model = load_model(args.model)
    sizes = sizes_for(model, parse_sizes(args.size))
    if args.entries is None:
        entries, complex_entries = default_entries(model, sizes), default_complex_entries(model, sizes)
    else:
        entries = complex_entries = None if args.entries == "all" else int(args.entries)
    print(f"derive verify: seed {args.seed}", file=sys.stderr)
    result = verify(model, derive_matrix(model), sizes, seed=args.seed, entries=entries,
                    complex_entries=complex_entries, memory_limit=int(args.memory * 2 ** 30))
    if args.json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        print(format_result(result))
    return 0 if result.passed else 1


def _positive(unit: str, most: float = float("inf")):
    """An argparse type: a number of ``unit`` above 0 and below ``most`` (infinity is refused)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0 < value < most or value == float("inf"):
            raise argparse.ArgumentTypeError(f"takes a number of {unit} above 0, not {text!r}")
        return value
    return parse


_positive_seconds = _positive("seconds")
_positive_gib = _positive("GiB", 2 ** 20)


def _add_seconds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=_positive_seconds, default=COMMAND_SECONDS, metavar="S",
                        help=f"time limit of the command (default {COMMAND_SECONDS:g}); past it, it stops "
                             "with status 2 and writes nothing")


def _add_no_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-cache", action="store_true",
                        help="compute the derivation and proof afresh: neither read nor write the on-disk "
                             "cache (docs/cache.md; DERIVE_NO_CACHE=1 does the same)")


def _add_memory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory", type=_positive_gib, default=MEMORY_GIB, metavar="GIB",
                        help=f"most memory one complex-step pass may take, as estimated from the sizes "
                             f"(default {MEMORY_GIB:g}); larger sizes are refused before any work")


def _positive_count(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"takes a whole number of at least 1, not {text!r}")
    return int(text)


def cmd_check(args) -> int:
    if args.summary is None and len(args.notes) == 1 and not os.path.isdir(args.notes[0]):
        from .claims.notes_command import is_notes, run_notes_check
        if is_notes(args.notes[0], args.model, args.as_notes):
            return run_notes_check(args.notes[0], args.json, sys.stdout, sys.stderr, model=args.model,
                                   allow_model_path=args.allow_model_path, claim_seconds=args.claim_seconds,
                                   seconds=args.seconds, max_claims=args.max_claims, debug=args.debug)
        from .claims.command import run_check
        return run_check(args.notes[0], args.json, sys.stdout, sys.stderr, allow_model_path=args.allow_model_path,
                         claim_seconds=args.claim_seconds, seconds=args.seconds, max_claims=args.max_claims,
                         debug=args.debug)
    if args.json and args.summary not in (None, "json"):
        print(f"derive: error: --json asks for --summary json, not --summary {args.summary}", file=sys.stderr)
        return 2
    from .cache import preflight
    preflight()  # an unusable cache folder is said once, not once a file
    from .claims.grading import GradeOptions
    from .claims.grading_command import run_grading
    options = GradeOptions(allow_model_path=args.allow_model_path, claim_seconds=args.claim_seconds,
                           seconds=args.seconds, max_claims=args.max_claims,
                           notes=bool(args.model or args.as_notes), model=args.model)
    return run_grading(args.notes, args.summary or ("json" if args.json else "table"), sys.stdout, sys.stderr,
                       options, jobs=args.jobs, debug=args.debug)


def cmd_against(args) -> int:
    from .against.command import Options, run_against
    routes = [x for x in (args.impl, args.write_case, args.gradients) if x is not None]
    if len(routes) != 1:
        print("derive: error: derive against takes one of IMPL, --write-case DIR or --gradients DIR",
              file=sys.stderr)
        return 2
    options = Options(args.model, impl=args.impl, write_case=args.write_case, gradients=args.gradients,
                      sizes=parse_sizes(args.size), seed=args.seed, mapping=args.mapping, rtol=args.rtol,
                      atol=args.atol, sweep=not args.no_sweep, name=not args.no_name, sweep_cases=args.sweep_cases,
                      naming_seconds=args.naming_seconds)
    return run_against(options, args.json, sys.stdout, sys.stderr)


def cmd_report(args) -> int:
    from .report.run import run_report
    entries = None if args.entries is None or args.entries == "all" else int(args.entries)
    return run_report(args.source, args.output, args.seed, sys.stdout, sys.stderr,
                      sizes=parse_sizes(args.size) or None, entries=entries,
                      allow_model_path=args.allow_model_path, memory_limit=int(args.memory * 2 ** 30),
                      against=args.against, mapping=args.mapping)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="derive", description="Derive, emit and verify RNN gradients.")
    p.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    p.add_argument("--version", action="version", version=f"derive {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the built-in models").set_defaults(fn=cmd_models)
    s = sub.add_parser("show", help="every derived gradient with shapes, and the proof")
    s.add_argument("model")
    s.add_argument("--seed", type=int, default=0, help="seed of the proof's class targets and witness")
    s.add_argument("--no-proof", action="store_true", help="skip the proof")
    s.add_argument("--symbolic-proof", action="store_true",
                   help="prove every entry with SymPy alone, without the randomized identity test (slower)")
    _add_seconds(s)
    _add_no_cache(s)
    s.set_defaults(fn=cmd_show)
    c = sub.add_parser("code", help="emit the NumPy module")
    c.add_argument("model")
    c.add_argument("-o", "--output")
    c.add_argument("--style", choices=("readable", "fast"), default="readable",
                   help="readable (default) or fast (in-place buffers, cheaper tanh)")
    _add_seconds(c)
    c.set_defaults(fn=cmd_code)
    v = sub.add_parser("verify", help="check the generated code numerically")
    v.add_argument("model")
    v.add_argument("--size", help="override sizes, e.g. H=8,T=5")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--entries", default=None,
                   help="entries per parameter for finite differences, or 'all' "
                        "(default 30; 5 when a forward pass computes over a million values)")
    v.add_argument("--json", action="store_true")
    _add_memory(v)
    _add_seconds(v)
    _add_no_cache(v)
    v.set_defaults(fn=cmd_verify)
    k = sub.add_parser("check", help="check a hand derivation claim by claim, or grade a class's files")
    k.add_argument("notes", nargs="+", metavar="PATH",
                   help="a claims file; several files, or folders (their *.claims files, at any depth), "
                        "are graded as a class (see docs/grading.md)")
    k.add_argument("--json", action="store_true")
    k.add_argument("--summary", choices=("table", "csv", "json"), default=None,
                   help="grade the files as a class and print this summary (default for several files "
                        "or a folder: table; json with --json)")
    k.add_argument("--jobs", type=_positive_count, default=None, metavar="N",
                   help=f"files checked at once when grading a class (default: the cores, {os.cpu_count()})")
    k.add_argument("--allow-model-path", action="store_true",
                   help="let 'model PATH' name an absolute path or a file outside the claims file's folder")
    k.add_argument("--claim-seconds", type=_positive_seconds, default=None, metavar="S",
                   help="time limit per claim, all its work included (default 20); "
                        "a claim past it is undecided")
    k.add_argument("--seconds", type=_positive_seconds, default=COMMAND_SECONDS, metavar="S",
                   help=f"time limit of the whole command, or of each file when grading a class "
                        f"(default {COMMAND_SECONDS:g}); claims left are undecided")
    k.add_argument("--max-claims", type=_positive_count, default=500, metavar="N",
                   help="most claims one file may hold (default 500); more is an input error")
    k.add_argument("--model", default=None, metavar="MODEL",
                   help="read PATH as notes written freely (dL2/dWhh = ..., Whh, h2, one_hot, ...) and check "
                        "them against MODEL, a built-in name or a model file in the notes' folder (see docs/check.md, "
                        "'Notes as written'); without it, notes name their model on a line 'model NAME'")
    k.add_argument("--notes", dest="as_notes", action="store_true",
                   help="read PATH as notes, not as a claims file (the default for a file not named *.claims "
                        "that has no line starting with 'claim')")
    _add_no_cache(k)
    k.set_defaults(fn=cmd_check)
    r = sub.add_parser("report", help="LaTeX derivation report (.tex or .pdf)")
    r.add_argument("source")
    r.add_argument("-o", "--output", required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--size", help="override sizes of the numeric evidence, e.g. B=64")
    r.add_argument("--entries", default=None,
                   help="finite-difference entries per parameter (default: 10, or 3 for large models)")
    _add_memory(r)
    r.add_argument("--allow-model-path", action="store_true",
                   help="a claims file's 'model PATH' may name an absolute path or a file outside its folder")
    r.add_argument("--against", metavar="IMPL_OR_DIR", default=None,
                   help="end the report with derive against's findings on your implementation: "
                        "impl.py:function (IMPORTED AND RUN) or a case directory your program answered")
    r.add_argument("--mapping", metavar="FILE", default=None, help="the mapping file of --against (docs/against.md)")
    _add_seconds(r)
    _add_no_cache(r)
    r.set_defaults(fn=cmd_report)
    a = sub.add_parser("against", help="check your own backward pass against the derivation",
                       description="Compare your implementation's loss and gradients with derive's, say which "
                                   "parameters and entries are wrong, from which sequence length, and name the "
                                   "slip. IMPL (path/to/impl.py:function or package.module:function) is IMPORTED "
                                   "AND RUN: it is your code, with your rights. The file route (--write-case, "
                                   "then --gradients) runs nothing. See docs/against.md.")
    a.add_argument("model")
    a.add_argument("impl", nargs="?", default=None,
                   help="your function: path/to/impl.py:function or package.module:function (this runs it)")
    a.add_argument("--write-case", metavar="DIR", help="write a case (parameters and data) to DIR for your program")
    a.add_argument("--gradients", metavar="DIR", help="compare the loss and gradients your program wrote in DIR")
    a.add_argument("--sweep-cases", action="store_true",
                   help="with --write-case: also write the case cut to T = 1, 2, ... in DIR/sweep/T1 ..., "
                        "for the T sweep of the file route")
    a.add_argument("--size", help="sizes of the case, e.g. H=8,T=5 (default: the model's)")
    a.add_argument("--seed", type=int, default=0, help="seed of the case's random parameters and data")
    a.add_argument("--mapping", metavar="FILE", help="your names, layout and stacked matrices (docs/against.md)")
    a.add_argument("--rtol", type=_positive("a relative tolerance", 1.0), default=1e-6,
                   help="relative tolerance of an entry (default 1e-6)")
    a.add_argument("--atol", type=_positive("an absolute tolerance", 1.0), default=1e-9,
                   help="absolute tolerance of an entry, times the largest gradient entry (default 1e-9)")
    a.add_argument("--no-sweep", action="store_true", help="skip the T sweep")
    a.add_argument("--no-name", action="store_true", help="skip naming the slip")
    a.add_argument("--naming-seconds", type=_positive_seconds, default=6.0, metavar="S",
                   help="time budget of the search for the slip (default 6)")
    a.add_argument("--json", action="store_true")
    _add_seconds(a)
    a.set_defaults(fn=cmd_against)
    return p


EXIT_INTERNAL = 3
"""Exit status of a bug in derive itself (0 and 1 are answers, 2 is bad input)."""


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``derive`` command; returns the exit status.

    0: every check agrees / every claim holds; 1: a mismatch or a claim that
    does not hold; 2: bad input (file, line, column and a caret), or work
    past a limit (``--seconds``, ``--memory``); 3: an
    internal error of derive (one line; the traceback with ``--debug``);
    130: interrupted.
    """
    args = build_parser().parse_args(argv)
    entries = getattr(args, "entries", None)
    if entries not in (None, "all") and (not str(entries).isdigit() or int(entries) < 1):
        print(f"derive: error: --entries takes a whole number of at least 1 or 'all', not {entries!r}",
              file=sys.stderr)
        return 2
    if getattr(args, "seed", 0) < 0:
        print(f"derive: error: --seed takes a whole number of at least 0, not {args.seed}", file=sys.stderr)
        return 2
    if hasattr(args, "no_cache"):
        from .cache import set_enabled
        set_enabled(False if args.no_cache else None)  # None: as DERIVE_NO_CACHE says
    seconds = None if args.command == "check" else args.__dict__.get("seconds")
    try:
        with time_limit(seconds):
            return args.fn(args)
    except OutOfTime as stop:
        print(f"derive: stopped: {stop} (--seconds); nothing was written", file=sys.stderr)
        sys.stderr.flush()
        if threading.active_count() > 1:  # a worker thread of verify would hold the exit until it is done
            os._exit(2)
        return 2
    except InputError as err:
        print(err.format(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("derive: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        if args.debug:
            raise
        where = f" {err.filename}" if err.filename else ""
        print(f"derive: error:{where}: {err.strerror or err}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug of derive's: say so in one line, not with a traceback
        if args.debug:
            raise
        print(f"derive: internal error, please report it with the command line and input: "
              f"{type(err).__name__}: {err} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
