"""Fuzzing the front end and the command line against the contract of issue 12.

For any input file ``derive`` exits 0, 1, 2 (bad input: file, line, column
and a caret) or 3 (an internal error, one line): never a traceback, a hang,
unbounded memory or a half-written output.

``python -m bench.fuzz --inputs 100000 --cli 1000 [--seed N] [--out DIR]``

* Inputs are generated from the repository's own model and claims files by
  mutation (characters, tokens, lines; unicode, NUL, BOM, CRLF, tabs, long
  numbers, deep nesting, huge sums, keywords as names, odd steps) and from the
  notation's grammar (random models, mostly shape-correct, and claims; with row
  stacks ``[x_t; h_{t-1}]``, row and column slices, sums of sizes
  ``4*H x (F + H)`` and fused gate matrices, and slips in them: bad bounds,
  strides, empty stacks).
  Case ``i`` of seed ``s`` depends on nothing else, so a run repeats exactly.
* ``--inputs`` cases go through the front end in process
  (:func:`derive.model.build.load_text`, :func:`derive.claims.read.read_claims`); every
  accepted model also through :func:`derive.calculus.matrix.derive_matrix`,
  :func:`derive.emit.readable.generate_module` and ``compile`` of the module text,
  and, when every size is small, one run of the module on random data (at the
  model's sizes and at the proof's first sizes, as ``derive verify`` runs it).
  They run in one worker process under a memory limit, watched by this one: a
  case that takes longer than ``--case-timeout`` is a hang, and the worker is
  restarted after it.
* ``--cli`` cases run end to end as child processes (``show F --no-proof``,
  ``code F -o F.py``, ``verify F --entries 3``, ``check F.claims``), each with
  a time limit and ``RLIMIT_AS`` of ``--memory`` GiB.

Every failure is classified by a signature (the exception and the function it
came from, or the exit status and the last line of stderr), the first input of
each signature is minimized, and the reproducer is written under ``--out``.

The generator and the contract check are shared with ``tests/test_fuzz.py``,
which runs a few thousand cases under hypothesis.
"""

from __future__ import annotations

import argparse
import json
import keyword
import math
import os
import random
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent


def _texts(patterns: Sequence[str]) -> List[Tuple[str, str]]:
    return [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8"))
            for pattern in patterns for p in sorted(ROOT.glob(pattern))]


SEED_MODELS = _texts(["derive/model/builtin/*.rnn", "tests/data/*.rnn", "tests/data/battery/*.rnn", "bench/models/*.rnn"])
"""(path, text) of every model file of the repository: the mutation seeds."""

SEED_CLAIMS = _texts(["examples/*.claims", "tests/data/*.claims"])
"""(path, text) of every claims file of the repository."""

BUILTINS = {Path(p).stem: t for p, t in SEED_MODELS if p.startswith("derive/model/builtin/")}


# -- choices -----------------------------------------------------------------------------------
class Chooser:
    """The random choices of the generator; subclasses draw them (hypothesis, or ``random``)."""

    def int(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def pick(self, options):
        options = list(options)
        return options[self.int(0, len(options) - 1)]

    def coin(self, percent: int) -> bool:
        """True with probability ``percent`` / 100."""
        return self.int(0, 99) < percent

    def weighted(self, pairs):
        """One of ``(weight, value)`` pairs, chosen in proportion to its weight."""
        total = sum(w for w, _ in pairs)
        k = self.int(0, total - 1)
        for w, value in pairs:
            if k < w:
                return value
            k -= w
        raise AssertionError


class RandomChooser(Chooser):
    """Choices from ``random.Random(seed)``."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def int(self, lo, hi):
        return self.rng.randint(lo, hi)


class DrawChooser(Chooser):
    """Choices drawn by hypothesis (``st.composite``'s ``draw``), so a failing case shrinks."""

    def __init__(self, draw):
        self.draw = draw

    def int(self, lo, hi):
        from hypothesis import strategies as st  # a test extra: only the tests draw this way
        return self.draw(st.integers(lo, hi))


# -- pools of hostile pieces -------------------------------------------------------------------
FUNCTION_NAMES = ["tanh", "sigmoid", "relu", "exp", "log", "softmax", "onehot", "sum", "mean", "squared",
                  "transpose", "rowsum", "colsum", "ones_like", "step", "sum_t", "max", "min", "diag"]
KEYWORDS = ["size", "param", "input", "target", "state", "model", "claim", "class", "x", "×", "sum_t", "Σ_t",
            "t", "T", "L", "L_t", "d", "dL", "frobnicate", "eval", "exec", "__import__", "open", "np", "self",
            "grads", "params", "data", "dtype", "sizes", "v", "out", "print"] + FUNCTION_NAMES
PYTHON_WORDS = keyword.kwlist + ["None", "True", "__class__", "__builtins__", "__dict__", "locals", "range"]
OPERATORS = ["+", "-", "*", "/", "@", "**", "^", "⊙", "⋅", "·", "ᵀ", ".T", "×", "(", ")", "[", "]", ",", "=", ":",
             "#", "{", "}", "_", "−", "∂", "Σ", "∑", "²", "³", "⁻¹", "√", "∘", ".", "'", '"', "\\", "$", ";", "!",
             ">", "<", ">=", "<=", "[:,", ", :]"]
NUMBERS = ["0", "1", "2", "3", "0.5", "00", "007", "1.", ".5", "1e", "1e+", "1e300", "1e-300", "1e308", "2e308",
           "1e99999999", "1e-99999999", "9" * 30, "9" * 31, "1" + "0" * 29, "9" * 5000, "100000000", "100000001",
           "4294967296", "18446744073709551617", "0.000000000000000000000000000001", "1.5e3", "1E2", "٣", "²",
           "１", "0x10", "1_000", "-1", "+2"]
SPECIAL_CHARS = ["\x00", "\ufeff", "\r", "\r\n", "\t", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029",
                 "\u200b", "\u0301", "\U0001F600", "ａ", "Ａ", "ℎ", "𝑊", "ı", "ſ", "K", "İ", "ß", "\x7f",
                 "\x1b[31m", "\udce9", "\udcff", "\ud800", "⁰", "¹", "²", "³", "⁹", "ᵀ", "⋅", "·", "⊙", "−", "×",
                 "∂", "Σ", "Σ_t", "∑", " ", "\\", "\u00a0", "\u3000", "٣", "१", "𝟐", "½"]
STEP_FORMS = ["_t", "_T", "_0", "_1", "_2", "_99", "_{t-1}", "_{t+1}", "_{t-2}", "_{T}", "_{T-1}", "_{T-5}",
              "_{T+1}", "_{0}", "_{99}", "_{-1}", "_{t-0}", "_{t+0}", "_{ t - 1 }", "_{²}", "_{१}", "_{}",
              "_{t", "_{T-99999999999}", "_{" + "9" * 40 + "}", "_9999999999999999999999999999999",
              "_{t--1}", "_{t-1}ᵀ", "_{t-1}.T", "_{{t}}", "_{t}}", "_{T-0}", "_{t-3}", "_{x}", "_{\t}"]
UNICODE_RANGES = [(0x0, 0x7F), (0x80, 0x24F), (0x370, 0x3FF), (0x2000, 0x22FF), (0x1D00, 0x1DBF),
                  (0xD800, 0xDFFF), (0xE000, 0xF8FF), (0xFE00, 0xFFFF), (0x10000, 0x10FFFF)]

_TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*(?:_\{[^}\n]*\})?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\*\*|\.T|.",
                    re.DOTALL)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def tokens_of(text: str) -> List[str]:
    """The text cut into names, numbers, operators and runs of white space (joined back, the same text)."""
    return _TOKEN.findall(text)


def names_in(text: str) -> List[str]:
    """Every identifier of the text, in order of first appearance."""
    return list(dict.fromkeys(_NAME.findall(text)))


# -- mutations ---------------------------------------------------------------------------------
def random_char(c: Chooser) -> str:
    if c.coin(50):
        return c.pick(SPECIAL_CHARS)
    lo, hi = c.pick(UNICODE_RANGES)
    return chr(c.int(lo, hi))


def random_token(c: Chooser, text: str) -> str:
    pool = c.weighted([(4, "names"), (3, "keywords"), (2, "python"), (3, "operators"), (2, "numbers"),
                       (2, "steps"), (1, "chars")])
    if pool == "names":
        names = names_in(text) or ["h"]
        return c.pick(names)
    if pool == "keywords":
        return c.pick(KEYWORDS)
    if pool == "python":
        return c.pick(PYTHON_WORDS)
    if pool == "operators":
        return c.pick(OPERATORS)
    if pool == "numbers":
        return c.pick(NUMBERS)
    if pool == "steps":
        return c.pick(step_bases(text)) + c.pick(STEP_FORMS)
    return random_char(c)


def step_bases(text: str) -> List[str]:
    """Base names of the per-step symbols of a text (``h`` of ``h_t``), and a few others."""
    bases = [n[:-2] for n in names_in(text) if n.endswith("_t") and len(n) > 2]
    return bases or ["h", "x", "L"]


def _lines(text: str) -> List[str]:
    return text.splitlines(keepends=True) or [""]


def m_char(c: Chooser, text: str) -> str:
    """Insert, delete or replace a few characters."""
    i = c.int(0, len(text))
    what = c.pick(["insert", "delete", "replace"])
    if what == "insert" or not text:
        return text[:i] + random_char(c) + text[i:]
    j = min(len(text), i + c.int(1, 4))
    return text[:i] + ("" if what == "delete" else random_char(c)) + text[j:]


def m_token(c: Chooser, text: str) -> str:
    """Insert, delete, replace, duplicate or swap tokens."""
    toks = tokens_of(text)
    if not toks:
        return random_token(c, text)
    i = c.int(0, len(toks) - 1)
    what = c.pick(["insert", "delete", "replace", "replace", "duplicate", "swap"])
    if what == "insert":
        toks.insert(i, c.pick(["", " "]) + random_token(c, text) + c.pick(["", " "]))
    elif what == "delete":
        del toks[i]
    elif what == "replace":
        toks[i] = random_token(c, text)
    elif what == "duplicate":
        toks.insert(i, toks[i])
    else:
        j = c.int(0, len(toks) - 1)
        toks[i], toks[j] = toks[j], toks[i]
    return "".join(toks)


def m_line(c: Chooser, text: str) -> str:
    """Delete, duplicate, swap or move a line, or insert one from the grammar."""
    lines = _lines(text)
    i = c.int(0, len(lines) - 1)
    what = c.pick(["delete", "duplicate", "swap", "move", "insert", "insert"])
    if what == "delete":
        del lines[i]
    elif what == "duplicate":
        lines.insert(i, lines[i])
    elif what == "swap":
        j = c.int(0, len(lines) - 1)
        lines[i], lines[j] = lines[j], lines[i]
    elif what == "move":
        line = lines.pop(i)
        lines.insert(c.int(0, len(lines)), line)
    else:
        lines.insert(i, grammar_line(c, text) + "\n")
    return "".join(lines)


def grammar_line(c: Chooser, text: str) -> str:
    """One statement made of the text's own names: a declaration, an equation, a size or a claim."""
    names = names_in(text) or ["h_t", "W"]
    name = c.pick(names)
    dims = [n for n in names if len(n) <= 3 and n[0].isupper()] or ["H", "1"]
    kind = c.pick(["size", "param", "input", "target", "state", "equation", "equation", "claim", "model"])
    if kind == "size":
        return f"size {c.pick(dims + KEYWORDS[:6])} = {c.pick(NUMBERS)}"
    if kind in ("param", "input", "target", "state"):
        shape = f"{c.pick(dims)} {c.pick(['x', '×', 'x', 'X', '*'])} {c.pick(dims + ['1', 'B'])}"
        if kind == "target" and c.coin(30):
            shape = f"class {c.pick(dims)}"
        init = c.pick(["", "", " = 0", " = 1", " = 0.0"]) if kind == "state" else ""
        return f"{kind} {c.pick([name, name + '_t', c.pick(PYTHON_WORDS)])} : {shape}{init}"
    if kind == "claim":
        return f"claim {derivative_text(c, names)} = {loose_expr(c, names, 2)}"
    if kind == "model":
        return f"model {c.pick(['elman-softmax', 'elman-regression', 'no-such-model', '../x.rnn', '.', '/'])}"
    return f"{c.pick([name, name + '_t', 'L', 'L_t'])} = {loose_expr(c, names, c.int(0, 3))}"


def with_step(c: Chooser, name: str) -> str:
    if name.endswith("_t") and c.coin(50):
        return name[:-2] + c.pick(STEP_FORMS[:14])
    return name


def loose_expr(c: Chooser, names: List[str], depth: int) -> str:
    """A random expression over ``names``, not necessarily shape-correct."""
    if depth <= 0 or c.coin(25):
        return c.weighted([(8, lambda: with_step(c, c.pick(names))), (2, lambda: c.pick(NUMBERS[:8])),
                           (1, lambda: derivative_text(c, names))])()
    kind = c.pick(["binary", "binary", "binary", "call", "neg", "paren", "postfix", "sum_t", "power", "pick",
                   "stack", "slice"])
    a = loose_expr(c, names, depth - 1)
    if kind == "stack":
        parts = [a] + [loose_expr(c, names, depth - 1) for _ in range(c.weighted([(6, 1), (2, 2), (1, 0)]))]
        return "[" + c.pick(["; ", ";", " ; ", ", "]).join(parts) + c.pick(["", "", "", ";"]) + "]"
    if kind == "slice":
        return f"({a})[{loose_bounds(c, names)}]"
    if kind == "binary":
        return f"{a} {c.pick(['+', '-', '*', '@', '/', '⊙', '⋅', '·'])} {loose_expr(c, names, depth - 1)}"
    if kind == "call":
        return f"{c.pick(FUNCTION_NAMES)}({a})"
    if kind == "neg":
        return f"-{a}"
    if kind == "paren":
        return f"({a})"
    if kind == "postfix":
        return f"({a}){c.pick(['.T', 'ᵀ', '²'])}"
    if kind == "sum_t":
        return f"{c.pick(['sum_t', 'Σ_t'])} {a}"
    if kind == "power":
        return f"({a}){c.pick(['**', '^'])}{c.pick(['2', '3', '0.5', '-1', '(1/2)', 'T', '2**2'])}"
    return f"({a})[{c.pick(names)}]"


SLICE_BOUNDS = ["0:H", "H:2*H", "2*H:3*H", "3*H:4*H", "0:F", "F:F + H", "0:1", "H:0", "H:H", "0:H - F", "0:5H",
                "0:5*H", "4*H:5*H", "-1:H", "0:H:2", ":H", "H:", ":", ":, 0:H", ":, H:2*H", "0:H, :", "0:H, 0:1",
                "0:10**30*H", "0:1000000000000000000000000000000*H", "0:H*H", "0:T", "0:t", "0:x_t", "0.5:H",
                "(0):(H)", "0\t:\tH", "0：H", "０:H", "0:H]["]


def loose_bounds(c: Chooser, names: List[str]) -> str:
    """The inside of a slice, ``0:H`` or something near it."""
    if c.coin(80):
        return c.pick(SLICE_BOUNDS)
    lo, hi = c.pick(names + ["0", "1"]), c.pick(names + ["H", "2*H"])
    return c.pick([f"{lo}:{hi}", f":, {lo}:{hi}", f"{lo}:{hi}, :", f"{lo}:{hi}:{lo}"])


def derivative_text(c: Chooser, names: List[str]) -> str:
    d = c.pick(["d", "d", "∂"])
    loss = c.pick(["L", "L", "L_t", "L_2", "L_T", "L_{t-1}", c.pick(names)])
    use = c.weighted([(6, ""), (2, " (t)"), (1, " (t = 2)"), (1, " (t = T)"), (1, " (t = 0)"), (1, " (t = 99)"),
                      (1, " (t = x)"), (1, " (t")])
    return f"{d}{loss}/{d}{with_step(c, c.pick(names))}{use}"


def _rhs_span(c: Chooser, text: str) -> Optional[Tuple[int, int]]:
    """(start, end) of the right side of a random '=' line, if any."""
    spans = []
    pos = 0
    for line in _lines(text):
        body = line.split("#", 1)[0].rstrip("\r\n")
        k = body.find("=")
        if k >= 0 and body[k + 1:].strip():
            spans.append((pos + k + 1, pos + len(body)))
        pos += len(line)
    return c.pick(spans) if spans else None


def m_nest(c: Chooser, text: str) -> str:
    """Wrap a right side in many parentheses, calls, signs, transposes or powers."""
    span = _rhs_span(c, text)
    if span is None:
        return text
    a, b = span
    inner = text[a:b].strip()
    n = c.pick([59, 60, 61, 119, 120, 121, 200, 1000, 5000, 30000])
    shape = c.pick(["parens", "calls", "signs", "postfix", "power", "sum_t", "picks", "brackets"])
    if shape == "parens":
        new = "(" * n + inner + ")" * n
    elif shape == "calls":
        fn = c.pick(["tanh", "sigmoid", "exp", "transpose", "sum", "relu"])
        new = f"{fn}(" * n + inner + ")" * n
    elif shape == "signs":
        new = c.pick(["-", "- ", "+", "−"]) * n + f"({inner})"
    elif shape == "postfix":
        new = f"({inner})" + c.pick([".T", "ᵀ", "²", "[c]", "[c_t]"]) * n
    elif shape == "power":
        new = f"({inner})" + c.pick(["**2", "^2", "**1", "**-1", "**0.5"]) * n
    elif shape == "sum_t":
        new = c.pick(["sum_t ", "Σ_t ", "sum_t("]) * n + inner + (")" * n if c.coin(50) else "")
    elif shape == "picks":
        new = inner + "[" * n + "c" + "]" * n
    else:
        new = "[" * n + inner + "]" * n
    return text[:a] + " " + new + text[b:]


def m_chain(c: Chooser, text: str) -> str:
    """A right side made a huge sum or product, or one with a giant name or number."""
    span = _rhs_span(c, text)
    if span is None:
        return text
    a, b = span
    inner = text[a:b].strip()
    n = c.pick([118, 119, 120, 121, 122, 500, 5000, 50000])
    n = min(n, max(1, 1_000_000 // (len(inner) + 10)))  # a case stays a few megabytes at most
    what = c.pick(["sum", "product", "mixed", "longname", "longnumber", "sum_t"])
    if what == "sum":
        new = " + ".join([f"({inner})"] * n)
    elif what == "product":
        new = c.pick([" * ", " @ ", " / ", "⊙", "**"]).join([f"({inner})"] * n)
    elif what == "mixed":
        new = "".join(f"{c.pick(['+', '-', '*', '/'])}({inner})" for _ in range(min(n, 300)))[1:]
    elif what == "longname":
        new = inner + " + " + "a" * n * 10
    elif what == "longnumber":
        new = inner + " * " + c.pick(["9", "0", "1"]) * n + c.pick(["", ".5", "e3", "e-400"])
    else:
        new = " + ".join(["sum_t " + inner] * min(n, 300))
    return text[:a] + " " + new + text[b:]


def m_step(c: Chooser, text: str) -> str:
    """A name replaced by a per-step name at an odd step (h_99, h_{T-5}, h_0 where it has no value)."""
    toks = tokens_of(text)
    where = [i for i, t in enumerate(toks) if _NAME.fullmatch(t.split("_{")[0] or "-")]
    if not where:
        return text
    i = c.pick(where)
    toks[i] = c.pick(step_bases(text)) + c.pick(STEP_FORMS)
    return "".join(toks)


def m_rename(c: Chooser, text: str) -> str:
    """Every use of one name renamed to a keyword, a Python word or another name of the file."""
    names = names_in(text)
    if not names:
        return text
    old = c.pick(names)
    new = c.pick(KEYWORDS + PYTHON_WORDS + names + ["_", "a" * 300, "h_t_t", "t_t", "T_t", "L_t_t"])
    if old.endswith("_t") and c.coin(60):
        old, new = old[:-2], new.removesuffix("_t")
    return re.sub(rf"\b{re.escape(old)}\b", new.replace("\\", r"\\"), text)


def m_number(c: Chooser, text: str) -> str:
    """A number replaced by a long, tiny, huge or odd one."""
    toks = tokens_of(text)
    where = [i for i, t in enumerate(toks) if t[:1].isdigit()]
    if not where:
        return text
    toks[c.pick(where)] = c.pick(NUMBERS)
    return "".join(toks)


def m_whole(c: Chooser, text: str) -> str:
    """A change to the whole text: line ends, a byte-order mark, tabs, NULs, case, order, truncation."""
    what = c.pick(["crlf", "cr", "bom", "bom_mid", "tabs", "no_final_newline", "nul", "upper", "lower",
                   "reverse", "truncate", "empty", "only_comments", "double", "form_feed", "ls"])
    if what == "crlf":
        return text.replace("\n", "\r\n")
    if what == "cr":
        return text.replace("\n", "\r")
    if what == "bom":
        return "\ufeff" + text
    if what == "bom_mid":
        i = c.int(0, len(text))
        return text[:i] + "\ufeff" + text[i:]
    if what == "tabs":
        return text.replace(" ", "\t")
    if what == "no_final_newline":
        return text.rstrip("\n")
    if what == "nul":
        i = c.int(0, len(text))
        return text[:i] + "\x00" * c.int(1, 3) + text[i:]
    if what == "upper":
        return text.upper()
    if what == "lower":
        return text.lower()
    if what == "reverse":
        return "".join(reversed(_lines(text)))
    if what == "truncate":
        return text[:c.int(0, len(text))]
    if what == "empty":
        return c.pick(["", "\n", " ", "\ufeff", "#", "\x00", "\r\n\r\n"])
    if what == "only_comments":
        return "".join("# " + line for line in _lines(text))
    if what == "double":
        return text + text
    if what == "form_feed":
        return text.replace("\n", c.pick(["\x0c", "\x0b", "\x85", "\u2028", "\x1c"]) + "\n", 1)
    return text.replace("\n", "\u2028")


def m_many_lines(c: Chooser, text: str) -> str:
    """Thousands of lines: a chain of equations, repeated declarations, blank lines or comments."""
    n = c.pick([100, 1000, 3000, 10000])
    what = c.pick(["chain", "step_chain", "decls", "blank", "comments", "sizes"])
    if what == "chain":
        extra = "q0 = 1\n" + "".join(f"q{k} = q{k - 1} * 2\n" for k in range(1, n))
    elif what == "step_chain":
        base = c.pick(step_bases(text))
        extra = f"a0_t = {base}_t\n" + "".join(f"a{k}_t = tanh(a{k - 1}_t)\n" for k in range(1, n))
    elif what == "decls":
        extra = "".join(f"param P{k} : H x H\n" for k in range(n))
    elif what == "blank":
        extra = "\n" * n
    elif what == "comments":
        extra = "#\n" * n
    else:
        extra = "".join(f"size S{k} = {k + 1}\n" for k in range(n))
    lines = _lines(text)
    i = c.int(0, len(lines))
    return "".join(lines[:i]) + extra + "".join(lines[i:])


MUTATIONS: List[Tuple[int, Callable[[Chooser, str], str]]] = [
    (10, m_char), (14, m_token), (8, m_line), (3, m_nest), (3, m_chain), (6, m_step), (4, m_rename),
    (3, m_number), (3, m_whole), (1, m_many_lines),
]


def mutate(c: Chooser, text: str, count: int) -> str:
    """``text`` after ``count`` random mutations."""
    for _ in range(count):
        text = c.weighted(MUTATIONS)(c, text)
        if len(text) > 2_000_000:  # keep a case in memory bounds of its own
            text = text[:2_000_000]
    return text


# -- models from the grammar -------------------------------------------------------------------
SIZE_POOL = ["H", "F", "O", "G", "V", "E", "Hid", "np", "dtype", "sizes", "lambda", "K_2", "x1", "N"]
STATE_POOL = ["h", "c", "s", "h1", "h2", "yield", "lambda", "state", "g", "np", "h_"]
ACTIVATIONS = ["tanh", "sigmoid", "relu", "tanh", "tanh"]


class ModelGen:
    """The text of one random model, shape-correct unless it chooses a slip (about one in ten)."""

    def __init__(self, c: Chooser):
        self.c = c
        names = list(SIZE_POOL)
        picked = []
        for _ in range(3):
            n = c.pick([x for x in names if x not in picked])
            picked.append(n)
        self.hid, self.feat, self.out = picked if c.coin(40) else ("H", "F", "O")
        self.values = {d: c.weighted([(30, c.int(1, 5)), (2, 1), (1, c.pick([0, 50, 100, 10 ** 8, 10 ** 8 + 1,
                                                                             10 ** 30]))])
                       for d in (self.hid, self.feat, self.out)}
        self.batch = c.pick(["B", "B", 1]) if "B" not in picked else "B"
        if self.batch == "B":
            self.values["B"] = c.int(1, 4)
        self.T = c.weighted([(20, c.int(1, 5)), (1, c.pick([0, 40, 1000]))])
        self.with_T = c.coin(95)
        self.row = c.coin(20)
        self.params: Dict[str, tuple] = {}
        self.data: Dict[str, tuple] = {}  # name -> (kind, shape)
        self.cls: Optional[str] = None
        self.states: Dict[str, tuple] = {}
        self.step_q: Dict[str, tuple] = {}
        self.glob_q: Dict[str, tuple] = {}
        self.defined_now: List[str] = []
        self.lines: List[str] = []
        self.sums: Dict[str, tuple] = {}  # a dimension written as a sum -> the rows of its stack's operands

    def dims(self):
        return [self.hid, self.feat, self.out, 1] + ([self.batch] if self.batch != 1 else [])

    def bshape(self, feat):
        return (self.batch, feat) if self.row else (feat, self.batch)

    def slip(self) -> bool:
        return self.c.coin(2)

    @staticmethod
    def plain(d) -> str:
        """A dimension as a term of a sum or a slice bound: the generator's sums without parentheses."""
        return str(d).replace("(", "").replace(")", "")

    def around(self, d) -> Tuple[str, str, str]:
        """A dimension holding ``d`` (``k*d`` or a sum) and the bounds of ``d`` in it."""
        c = self.c
        if isinstance(d, str) and not re.search(r"[(*+ ]", d) and c.coin(40):
            k = c.int(2, 4)
            j = c.int(0, k - 1)
            whole = f"{k}*{d}"
            self.sums[whole] = (d,) * k
            return whole, "0" if j == 0 else d if j == 1 else f"{j}*{d}", d if j == 0 else f"{j + 1}*{d}"
        other = c.pick(self.dims())
        first = c.coin(50)
        parts = (d, other) if first else (other, d)
        whole = f"({self.plain(parts[0])} + {self.plain(parts[1])})"
        self.sums[whole] = parts
        if first:
            return whole, "0", self.plain(d)
        return whole, self.plain(other), f"{self.plain(other)} + {self.plain(d)}"

    def bad_bounds(self, lo: str, hi: str, whole: str) -> str:
        """Slice bounds that are wrong in one of the ways people get them wrong."""
        w = self.plain(whole)
        return self.c.pick([f"{hi}:{lo}", f"{lo}:{lo}", f"{lo}:{hi}:2", f"{lo}:", f":{hi}", f"{lo} - 1:{hi}",
                            f"{lo}:{hi} + 1", f"{lo}:{w} + 1", f"{w}:{w} + {hi}", f"{lo}:{hi} - {w}",
                            f"{lo}:{hi}*{hi}", f"{lo}:{hi}, {lo}:{hi}", f"{lo}:10**30*{hi}"])

    def op(self, ascii_op: str) -> str:
        c = self.c
        spellings = {"*": ["*", "*", "⊙"], "**": ["**", "**", "^"], ".T": [".T", ".T", "ᵀ"],
                     "sum_t": ["sum_t", "sum_t", "Σ_t"]}
        return c.pick(spellings.get(ascii_op, [ascii_op]))

    # atoms readable in a context: "step" (a per-step equation), "sum" (inside sum_t), "global"
    def atoms(self, ctx: str) -> List[Tuple[str, tuple]]:
        c = self.c
        out = list(self.params.items())
        for name, (kind, shape) in self.data.items():
            if not name.endswith("_t"):
                out.append((name, shape))
            elif ctx == "global":
                out.append((name[:-2] + c.pick(["_T", "_1", "_{T-1}" if self.T >= 2 else "_T"]), shape))
            else:
                out.append((name, shape))
        for name, shape in self.states.items():
            base = name[:-2]
            if ctx == "step":
                out.append((base + "_{t-1}", shape))
                out.append((base + "_{t-1}", shape))
                if name in self.defined_now:
                    out.append((name, shape))
                if c.coin(10):
                    out.append((base + "_0", shape))
            elif ctx == "sum":
                out.append((name, shape))
                out.append((base + "_{t-1}", shape))
            else:
                out.append((base + c.pick(["_T", "_T", "_0", "_1", "_{T-1}" if self.T >= 2 else "_T"]), shape))
        for name, shape in self.step_q.items():
            if (ctx == "step" and name in self.defined_now) or ctx == "sum":
                out.append((name, shape))
            elif ctx == "global":
                out.append((name[:-2] + c.pick(["_T", "_1"]), shape))
        if ctx != "step":
            out += list(self.glob_q.items())
        return out

    def new_param(self, shape) -> str:
        c = self.c
        name = f"W{len(self.params)}" if 1 not in shape else f"b{len(self.params)}"
        if c.coin(8):
            odd = c.pick(PYTHON_WORDS[:10] + ["np", "v", "grads", "sum", "data", "t", "dL_dW0", "params"])
            if odd not in self.params and odd not in self.values and odd not in self.data:
                name = odd
        self.params[name] = shape
        return name

    def new_data(self, shape, ctx) -> str:
        per_step = ctx != "global" and self.c.coin(85)
        name = f"x{len(self.data)}" + ("_t" if per_step else "")
        self.data[name] = (self.c.pick(["input", "input", "target"]), shape)
        return name

    def leaf(self, shape, ctx) -> str:
        c = self.c
        if shape == (1, 1) and c.coin(20):
            return c.pick([str(c.int(1, 3)), "0.5", "2", c.pick(list(self.values)), "T" if self.with_T else "1"])
        same = [t for t, s in self.atoms(ctx) if s == shape]
        flipped = [t for t, s in self.atoms(ctx) if (s[1], s[0]) == shape and s != shape]
        if same and c.coin(80):
            return c.pick(same)
        if flipped and c.coin(50):
            return c.pick(flipped) + self.op(".T")
        if self.batch in shape and self.batch != 1:
            return self.new_data(shape, ctx)
        return self.new_param(shape)

    def paren(self, text: str) -> str:
        return text if re.fullmatch(r"[\w{}\-.ᵀ]*(\(.*\))?", text) and " " not in text else f"({text})"

    def expr(self, shape, ctx: str, depth: int) -> str:
        c = self.c
        if self.slip():
            shape = (c.pick(self.dims()), c.pick(self.dims()))
        if depth <= 0 or c.coin(25):
            return self.leaf(shape, ctx)
        kinds = ["add", "add", "mul", "matmul", "matmul", "matmul", "fn", "fn", "neg", "transpose", "power",
                 "divide", "maxmin", "mask", "diag"]
        if shape == (1, 1):
            kinds += ["reduce", "reduce"] + (["sum_t", "sum_t"] if ctx == "global" else [])
        if shape[1] == 1:
            kinds.append("rowsum")
        if shape[0] == 1:
            kinds.append("colsum")
        if self.cls and shape == (1, self.batch) and not self.row:
            kinds += ["pick", "pick"]
        kinds += ["slice", "slice"]
        if shape[0] in self.sums:
            kinds += ["stack"] * 4
        if self.cls and shape == (self.out, self.batch) and not self.row and ctx != "step" or (
                self.cls and ctx == "step" and self.cls.endswith("_t") and shape == (self.out, self.batch)):
            kinds.append("onehot")
        kind = c.pick(kinds)
        d = depth - 1
        p = self.paren
        if kind == "add":
            small = c.pick([shape, shape, (shape[0], 1), (1, shape[1]), (1, 1)])
            a, b = self.expr(shape, ctx, d), self.expr(small, ctx, d)
            if c.coin(50):
                a, b = b, a
            return f"{a} {c.pick(['+', '-'])} {p(b)}"
        if kind == "mul":
            small = c.pick([shape, (shape[0], 1), (1, 1)])
            return f"{p(self.expr(shape, ctx, d))} {self.op('*')} {p(self.expr(small, ctx, d))}"
        if kind == "stack":
            parts = [self.expr((r, shape[1]), ctx, d) for r in self.sums[shape[0]]]
            if self.slip():
                parts = c.pick([parts[:1], parts + [""], [""] + parts, parts[::-1], [], parts + parts[:1]])
            return "[" + c.pick(["; ", "; ", ";", " ;\t"]).join(parts) + "]"
        if kind == "slice":
            axis = c.pick([0, 0, 1]) if not self.row else c.pick([0, 1, 1])
            whole, lo, hi = self.around(shape[axis])
            inner = self.expr((whole, shape[1]) if axis == 0 else (shape[0], whole), ctx, d)
            bounds = self.bad_bounds(lo, hi, whole) if self.slip() else f"{lo}:{hi}"
            return f"{p(inner)}[{bounds}{c.pick(['', ', :'])}]" if axis == 0 else f"{p(inner)}[:, {bounds}]"
        if kind == "matmul":
            k = c.pick(self.dims())
            if c.coin(25):
                k = self.around(k)[0]
            return f"{p(self.expr((shape[0], k), ctx, d))} @ {p(self.expr((k, shape[1]), ctx, d))}"
        if kind == "fn":
            fn = c.pick(ACTIVATIONS + ["exp", "log", "softmax", "squared", "ones_like", "transpose"])
            if fn == "transpose":
                return f"transpose({self.expr((shape[1], shape[0]), ctx, d)})"
            if fn == "log":
                return f"log({c.pick(['sigmoid', 'exp', 'softmax'])}({self.expr(shape, ctx, d)}))"
            return f"{fn}({self.expr(shape, ctx, d)})"
        if kind == "maxmin":  # rewritten while parsing into relu (derive/notation/sugar.py)
            a = c.pick(["0", self.expr(shape, ctx, d)])
            return f"{c.pick(['max', 'min'])}({a}, {self.expr(shape, ctx, d)})"
        if kind == "mask":
            op = c.pick([">", "<", ">=", "<="])
            return f"{p(self.expr(shape, ctx, d))} * ({self.expr(shape, ctx, d)} {op} {c.pick(['0', '0.5'])})"
        if kind == "diag":
            if c.coin(50):
                return f"diag({self.expr((shape[0], 1), ctx, d)}) @ {p(self.expr(shape, ctx, d))}"
            return f"{p(self.expr(shape, ctx, d))} @ diag({self.expr((shape[1], 1), ctx, d)})"
        if kind == "neg":
            return f"-{p(self.expr(shape, ctx, d))}"
        if kind == "transpose":
            return f"{p(self.expr((shape[1], shape[0]), ctx, d))}{self.op('.T')}"
        if kind == "power":
            e = c.pick(["2", "2", "3", "0.5", "(1/2)", "-1", "0", "1", "² ", "³ "])
            base = p(self.expr(shape, ctx, d))
            if e.endswith(" "):
                return base + e.strip()
            if e in ("0.5", "(1/2)", "-1"):
                base = f"sigmoid({self.expr(shape, ctx, d)})"
            return f"{base}{self.op('**')}{e}"
        if kind == "divide":
            return f"{p(self.expr(shape, ctx, d))} / {c.pick(['2', 'T', str(c.int(1, 9)), p(self.leaf((1, 1), ctx))])}"
        if kind == "reduce":
            inner = c.pick([self.bshape(self.hid), self.bshape(self.out), (self.hid, 1), (self.hid, self.feat)])
            return f"{c.pick(['sum', 'sum', 'mean'])}({self.expr(inner, ctx, d)})"
        if kind == "sum_t":
            return f"{self.op('sum_t')} {p(self.expr(shape, 'sum', d))}"
        if kind == "rowsum":
            return f"rowsum({self.expr((shape[0], c.pick(self.dims())), ctx, d)})"
        if kind == "colsum":
            return f"colsum({self.expr((c.pick(self.dims()), shape[1]), ctx, d)})"
        if kind == "pick":
            return f"log(softmax({self.expr((self.out, self.batch), ctx, d)})[{self.cls}])"
        return f"onehot({self.cls})"

    def fused(self, s: str, x: str, prev: str, eqs: List[str]):
        """``s_t`` as the gates of one fused matrix over ``[x; s_{t-1}]`` (or ``x @ Wx + s_{t-1} @ Wh`` by rows)."""
        c, hid = self.c, self.hid
        k = c.int(2, 4)
        whole = c.pick([f"{k}*{hid}", f"{k}{hid}", f"{hid}*{k}"])
        self.sums[whole] = (hid,) * k
        a = f"a{len(eqs)}_t"
        if self.row:
            fused = f"{x} @ {self.new_param((self.feat, whole))} + {prev} @ {self.new_param((hid, whole))}"
        else:
            xh = c.pick([f"({self.feat} + {hid})", f"({hid} + {self.feat})"])
            self.sums[xh] = (self.feat, hid) if xh.startswith(f"({self.feat}") else (hid, self.feat)
            pair = f"[{x}; {prev}]" if self.sums[xh][0] == self.feat else f"[{prev}; {x}]"
            fused = f"{self.new_param((whole, xh))} @ {pair}"
        if c.coin(50):
            fused += f" + {self.new_param((whole, 1) if not self.row else (1, whole))}"
        eqs.append(f"{a} = {fused}")
        self.step_q[a] = self.bshape(whole)
        self.defined_now.append(a)

        def gate(j):
            lo, hi = "0" if j == 0 else hid if j == 1 else f"{j}*{hid}", hid if j == 0 else f"{j + 1}*{hid}"
            bounds = self.bad_bounds(lo, hi, whole) if self.slip() else f"{lo}:{hi}"
            return f"{a}[:, {bounds}]" if self.row else f"{a}[{bounds}{c.pick(['', ', :'])}]"
        gates = [f"{c.pick(ACTIVATIONS)}({gate(j)})" for j in range(k)]
        eqs.append(f"{s}_t = {gates[0]} * {prev} + " + f" {self.op('*')} ".join(gates[1:]))

    def shape_text(self, shape) -> str:
        c = self.c
        return f"{shape[0]} {c.pick(['x', 'x', 'x', '×'])} {shape[1]}"

    def text(self) -> str:
        c = self.c
        T = self.T
        n_states = c.weighted([(1, 0), (6, 1), (2, 2)])
        pool = [s for s in STATE_POOL]
        states = []
        for _ in range(n_states):
            s = c.pick([x for x in pool if x not in states])
            states.append(s)
            self.states[s + "_t"] = self.bshape(self.hid)
        x = "x_t"
        self.data[x] = ("input", self.bshape(self.feat))
        eqs: List[str] = []
        self.defined_now = []
        for s in states:
            prev = f"{s}_{{t-1}}"
            rec = f"{prev} @ {self.new_param((self.hid, self.hid))}" if self.row else \
                f"{self.new_param((self.hid, self.hid))} @ {prev}"
            inp = f"{x} @ {self.new_param((self.feat, self.hid))}" if self.row else \
                f"{self.new_param((self.hid, self.feat))} @ {x}"
            rest = self.expr(self.bshape(self.hid), "step", c.int(0, 2)) if c.coin(40) else inp
            act = c.pick(ACTIVATIONS)
            if c.coin(30):
                self.fused(s, x, prev, eqs)
            elif c.coin(30):
                z = f"z{len(eqs)}_t"
                eqs.append(f"{z} = {rec} + {rest}")
                self.step_q[z] = self.bshape(self.hid)
                self.defined_now.append(z)
                eqs.append(f"{s}_t = {act}({z})")
            else:
                eqs.append(f"{s}_t = {act}({rec} + {rest})")
            self.defined_now.append(s + "_t")
        loss_kind = c.pick(["regression", "class", "per_step", "random", "upstream"])
        if loss_kind == "class" and not self.row:
            per_step = c.coin(50)
            self.cls = "c_t" if per_step else "c"
            if per_step:
                o = self.expr((self.out, self.batch), "step", c.int(1, 3))
                eqs += [f"o_t = {o}", "y_t = softmax(o_t)", f"L_t = -sum(log(y_t[{self.cls}]))",
                        f"L = {self.op('sum_t')} L_t" + (" / B" if self.batch == "B" and c.coin(50) else "")]
            else:
                o = self.expr((self.out, self.batch), "global", c.int(1, 3))
                eqs += [f"y = softmax({o})", f"L = -sum(log(y[{self.cls}]))" +
                        (" / B" if self.batch == "B" else "")]
        elif loss_kind == "per_step":
            self.data["d_t"] = ("target", self.bshape(self.out))
            p = self.expr(self.bshape(self.out), "step", c.int(1, 3))
            eqs += [f"p_t = {p}", f"L = {self.op('sum_t')} sum((p_t - d_t){self.op('**')}2) / 2"]
        elif loss_kind == "random":
            eqs.append(f"L = {self.expr((1, 1), 'global', c.int(1, 4))}")
        elif loss_kind == "upstream" and states:
            self.data["g_t"] = ("target", self.bshape(self.hid))
            eqs.append(f"L = {self.op('sum_t')} sum({states[0]}_t * g_t)")
        else:
            self.data["y_true"] = ("target", self.bshape(self.out))
            y = self.expr(self.bshape(self.out), "global", c.int(1, 3))
            eqs += [f"y = {y}", "L = sum((y - y_true)**2) / 2"]
        if self.slip():
            eqs.insert(c.int(0, len(eqs)), grammar_line(c, "\n".join(eqs)))
        sizes = [(d, v) for d, v in self.values.items() if isinstance(d, str)]
        if self.with_T:
            sizes.append(("T", T))
        if c.coin(20):
            sizes = sizes[::-1]
        size_lines = ["size " + ", ".join(f"{d} = {v}" for d, v in sizes)]
        if c.coin(15) and len(sizes) > 1:
            size_lines = [f"size {d} = {v}" for d, v in sizes]
        decls = [f"param {n} : {self.shape_text(s)}" for n, s in self.params.items()]
        decls += [f"{k} {n} : {self.shape_text(s)}" for n, (k, s) in self.data.items()]
        if self.cls:
            decls.append(f"target {self.cls} : class {self.out}" + (f" x {self.batch}" if self.batch != 1 else ""))
        decls += [f"state {n} : {self.shape_text(s)}" + c.pick([" = 0", " = 0", ""]) for n, s in self.states.items()]
        if c.coin(15):
            decls = decls[::-1]
        header = ["# a model from the grammar"] if c.coin(30) else []
        body = header + size_lines + ([""] if c.coin(50) else []) + decls + [""] + eqs
        if c.coin(10):
            body = size_lines + eqs + decls  # declarations after the equations
        spaced = []
        for line in body:
            if c.coin(10):
                line = re.sub(r" ([=:@+*-]) ", lambda m: c.pick(["", " ", "  ", "\t"]) + m.group(1) +
                              c.pick(["", " ", "  "]), line)
            spaced.append(line)
        return "\n".join(spaced) + "\n"


def grammar_model(c: Chooser) -> str:
    """The text of a random model from the notation's grammar."""
    return ModelGen(c).text()


def grammar_claims(c: Chooser) -> str:
    """The text of a random claims file: a built-in model, an inline one or a missing one, and claims."""
    source = c.weighted([(6, "builtin"), (3, "inline"), (1, "odd")])
    if source == "builtin":
        name = c.pick(sorted(BUILTINS))
        head, names = f"model {name}\n", names_in(BUILTINS[name])
    elif source == "inline":
        model = grammar_model(c)
        head, names = model, names_in(model)
    else:
        head = "model " + c.pick(["no-such", "../../etc/hostname", ".", "elman-softmax elman-regression",
                                  "elman-softmax\nmodel elman-regression", "ELMAN-SOFTMAX", "\x00", "~", "-h"]) + "\n"
        names = ["h_t", "W_hh", "L"]
    names = [n for n in names if n not in KEYWORDS[:7] and n not in ("x", "class")] or ["L"]
    lines = [head]
    if c.coin(15):
        lines.append(f"size T = {c.pick(['2', '3', '1', '0', '99', '9' * 12])}\n")
    for _ in range(c.int(1, 4)):
        lines.append(f"claim {derivative_text(c, names)} = {loose_expr(c, names, c.int(0, 3))}\n")
    return "".join(lines)


# -- cases ------------------------------------------------------------------------------------
@dataclass
class Case:
    """One fuzz input: ``kind`` is ``model`` or ``claims``; ``origin`` says how it was made."""

    kind: str
    origin: str
    text: str


def generate_case(c: Chooser, kind: Optional[str] = None, source: Optional[str] = None) -> Case:
    """A fuzz input.

    Parameters
    ----------
    c : Chooser
        The source of random choices.
    kind : {"model", "claims"}, optional
        Force the kind of file.
    source : {"mutation", "grammar"}, optional
        Force how it is made: a mutation of a repository file, or the grammar
        (then mutated a little, one time in three).

    Returns
    -------
    Case
    """
    kind = kind or c.weighted([(7, "model"), (3, "claims")])
    source = source or c.weighted([(6, "mutation"), (4, "grammar")])
    if source == "mutation":
        seeds = SEED_MODELS if kind == "model" else SEED_CLAIMS
        path, text = c.pick(seeds)
        count = c.weighted([(6, 1), (4, 2), (2, 3), (1, c.int(4, 12))])
        return Case(kind, f"mutation x{count} of {path}", mutate(c, text, count))
    text = grammar_model(c) if kind == "model" else grammar_claims(c)
    count = c.weighted([(2, 0), (1, c.int(1, 2))])
    return Case(kind, f"grammar {kind}" + (f", mutation x{count}" if count else ""), mutate(c, text, count))


def case_for(seed: int, index: int, kind: Optional[str] = None) -> Case:
    """Case ``index`` of the run with ``seed`` (depends on nothing else)."""
    return generate_case(RandomChooser(f"{seed}:{index}:{kind}"), kind=kind)


# -- the contract, in process -------------------------------------------------------------------
KNOWN_UNPOSITIONED = (
    # derive/claims/read.py raises these without a line (a claims file that does not say which model,
    # or has no claim, or is not UTF-8): reported, outside the front end's files.
    "no claims:", "no model:", "not UTF-8 text",
)


def to_bytes(text: str) -> bytes:
    """The file bytes of ``text``: lone surrogates U+DC80..U+DCFF become the raw bytes they stand for."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def text_lines(text: str) -> List[str]:
    """The lines of a text as an editor numbers them (ends: LF, CRLF, CR)."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def error_problem(err, text: str, path: str) -> Optional[str]:
    """What is wrong with an :class:`InputError` for ``text`` read from ``path``, or None.

    The error must point into the text (line and column from 1, on a line of it
    and at most one past its end) when the text has any statement, its
    ``format()`` must begin with ``path:line:column: error:`` and show the line
    with a caret under the column.
    """
    shown = err.format()
    if not err.message or not err.message.strip():
        return "an empty message"
    if err.path != path:  # an error in another file (a model a claims file names)
        return None if err.line >= 1 or not err.line else "a negative line"
    lines = text_lines(text)
    if not err.line:
        if not text.strip() or any(err.message.startswith(k) for k in KNOWN_UNPOSITIONED):
            return None
        return f"no line or column: {err.message}"
    if err.line < 1 or err.column < 1:
        return f"line {err.line}, column {err.column}"
    if err.line > len(lines):
        return f"line {err.line} of a text of {len(lines)} lines"
    line = lines[err.line - 1]
    if err.column > len(line) + 1:
        return f"column {err.column} past the end of line {err.line} ({len(line)} characters)"
    if err.line_text != line:
        return f"line_text {err.line_text!r} is not line {err.line} {line!r}"
    rows = shown.split("\n")
    if not rows[0].startswith(f"{path}:{err.line}:{err.column}: error: "):
        return f"first line {rows[0]!r}"
    if len(rows) < 3 or not rows[2].startswith("    ") or not rows[2].rstrip().endswith("^"):
        return "no caret line"
    caret = rows[2].index("^") - 4
    shown_text = rows[1][4:]
    if err.column <= len(line):  # the caret must stand under the character the column names
        want = line[err.column - 1]
        under = shown_text[caret] if caret < len(shown_text) else ""
        if under != want and not (under in " ?" and not (want.isprintable() and want != " ")):
            return f"the caret is under {under!r}, column {err.column} is {want!r}"
    elif caret != len(shown_text):
        return f"the caret of column {err.column} (the end of the line) is not past the shown line"
    if len(rows[1]) > 4 + 200 or len(rows[2]) > 4 + 200:
        return "a shown line of more than 200 characters"
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _signature(err: BaseException) -> str:
    """The exception type and the innermost function of the project it came from."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "/derive/" in f.filename] or frames[-1:]
    where = ""
    if ours:
        f = ours[-1]
        where = f" in {Path(f.filename).parent.name}/{Path(f.filename).name}:{f.name}"
        where = re.sub(r"/?<derive generated module [^>]*>", "generated module", where)  # one name a case
    return f"{type(err).__name__}{where}"


@dataclass
class Outcome:
    """What the front end (and for a model, the derivation) made of a case."""

    status: str  # accepted, refused, crash, bad-error, backend-crash, backend-refused
    signature: str = ""
    detail: str = ""
    value: object = field(default=None, repr=False)


def front_end(case: Case, folder: str) -> Outcome:
    """Run the front end on a case in this process and classify what happened.

    A model goes to :func:`derive.model.build.load_text` (or, when its text is not
    valid UTF-8, to :func:`derive.model.build.load_model` on a file in ``folder``);
    a claims file is written to ``folder`` and read with
    :func:`derive.claims.read.read_claims`.

    Returns
    -------
    Outcome
        ``accepted`` (``value`` the model or claims file), ``refused`` (a good
        InputError), ``bad-error`` (an InputError breaking the contract) or
        ``crash`` (any other exception).
    """
    from derive.model.build import load_model, load_text
    from derive.claims.read import read_claims
    from derive.errors import InputError

    data = to_bytes(case.text)
    suffix = ".rnn" if case.kind == "model" else ".claims"
    path = os.path.join(folder, "case" + suffix)
    in_memory = case.kind == "model" and _is_utf8(case.text)
    if in_memory:
        readable = case.text
    else:  # what a reader of the file sees: the bytes decoded, a byte-order mark dropped
        readable = data.decode("utf-8", "replace")
        readable = readable.removeprefix("\ufeff")
    try:
        if in_memory:
            value = load_text(case.text, path, "case")
        elif case.kind == "model":
            with open(path, "wb") as f:
                f.write(data)
            value = load_model(path)
        else:
            with open(path, "wb") as f:
                f.write(data)
            value = read_claims(path)
            for claim in value.claims:  # a claim line that does not read is kept with its error
                err = getattr(claim, "error", None)
                problem = err is not None and error_problem(err, readable, path)
                if problem:
                    return Outcome("bad-error", "bad InputError: " + _normalize(problem), err.format())
    except InputError as err:
        problem = error_problem(err, readable, path)
        if problem:
            return Outcome("bad-error", "bad InputError: " + _normalize(problem), err.format())
        return Outcome("refused", detail=err.message)
    except Exception as err:  # noqa: BLE001 - any exception but InputError breaks the contract
        return Outcome("crash", _signature(err), "".join(traceback.format_exception(err)))
    return Outcome("accepted", value=value)


RUN_SIZE_LIMIT = 50
"""The generated module is run once when every size is at most this (at the model's and the proof's sizes)."""

RUN_ENTRY_LIMIT = 200_000
"""... and its parameters and data hold at most this many numbers."""


def run_module(model, source: str) -> None:
    """Run the generated module on random data at the model's sizes and at the proof's first sizes.

    ``derive verify`` runs the module at both (the exact comparison at the
    proof's sizes), so a module that fails on arrays of the declared shapes
    fails there too. Sizes above :data:`RUN_SIZE_LIMIT` are skipped.
    """
    from derive.calculus.prove import default_proof_sizes
    from derive.emit.loader import import_source
    from derive.model.sizes import sizes_for
    from derive.numeric import random_params
    from derive.verify.run import concrete_shape, random_data

    module = import_source(source, "derive_fuzz_generated")
    for sizes in (sizes_for(model, {}), default_proof_sizes(model)[0]):
        shapes = [concrete_shape(s.shape, sizes) for s in model.params]
        shapes += [concrete_shape(dims, sizes) for dims in module.DATA_SHAPES.values()]
        if max(sizes.values(), default=1) > RUN_SIZE_LIMIT or sum(math.prod(s) for s in shapes) > RUN_ENTRY_LIMIT:
            continue
        params = random_params({s.name: concrete_shape(s.shape, sizes) for s in model.params}, 0)
        with np_errors_ignored():
            module.loss_and_gradients(params, random_data(model, module, sizes, 0))


def np_errors_ignored():
    """Overflow in a random model's exp is not a failure of the module."""
    import numpy as np
    return np.errstate(all="ignore")


def back_end(model, run: bool = True) -> Outcome:
    """Derive an accepted model, generate its module, compile the text and (``run``) run it once small."""
    from derive.emit.readable import generate_module
    from derive.errors import InputError
    from derive.calculus.matrix import derive_matrix

    try:
        derivation = derive_matrix(model)
        source = generate_module(model, derivation)
        compile(source, "<generated>", "exec")
        if run:
            run_module(model, source)
    except InputError as err:
        return Outcome("backend-refused", detail=err.format())
    except Exception as err:  # noqa: BLE001 - any exception is a failure to report
        return Outcome("backend-crash", "backend " + _signature(err), "".join(traceback.format_exception(err)))
    return Outcome("accepted")


def _normalize(text: str) -> str:
    """A message with its particulars (quoted parts, numbers) blanked, for grouping."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"|\{[^}]*\}", "'…'", text)
    return re.sub(r"\d+", "N", text)[:120]


def contract_problem(case: Case, folder: str) -> Optional[str]:
    """None when the front end keeps the contract on ``case``, else what broke it (for tests)."""
    outcome = front_end(case, folder)
    if outcome.status in ("crash", "bad-error"):
        return f"{outcome.signature}\n{outcome.detail}"
    return None


# -- the worker (in-process fuzzing, one process, watched by the parent) ------------------------
def _limit_memory(gib: float):
    import resource
    limit = int(gib * 2 ** 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def worker(seed: int, start: int, stop: int, backend: bool) -> int:
    """Run cases ``start`` .. ``stop - 1`` and print one JSON line per case to stdout."""
    import warnings
    warnings.simplefilter("ignore")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    folder = tempfile.mkdtemp(prefix="derive-fuzz-")
    out = sys.stdout
    try:
        for i in range(start, stop):
            print(json.dumps({"i": i, "begin": True}), file=out, flush=True)
            case = case_for(seed, i)
            t0 = time.perf_counter()
            outcome = front_end(case, folder)
            t1 = time.perf_counter()
            record = {"i": i, "kind": case.kind, "origin": case.origin, "status": outcome.status,
                      "front_ms": round(1000 * (t1 - t0), 3)}
            if outcome.status == "accepted" and case.kind == "model" and backend:
                back = back_end(outcome.value)
                record["back_ms"] = round(1000 * (time.perf_counter() - t1), 3)
                record["back"] = back.status
                if back.status != "accepted":
                    outcome = back
                    record["status"] = back.status
            if outcome.status in ("crash", "bad-error", "backend-crash"):
                record.update(signature=outcome.signature, detail=outcome.detail[-4000:])
            print(json.dumps(record), file=out, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def probe(payload: dict) -> dict:
    """Classify one given case (for the minimizer, in a child of its own)."""
    folder = tempfile.mkdtemp(prefix="derive-fuzz-")
    try:
        case = Case(payload["kind"], "probe", payload["text"])
        outcome = front_end(case, folder)
        if outcome.status == "accepted" and case.kind == "model" and payload.get("backend"):
            back = back_end(outcome.value)
            if back.status != "accepted":
                outcome = back
        return {"status": outcome.status, "signature": outcome.signature, "detail": outcome.detail[-4000:]}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _python(args: List[str]) -> List[str]:
    return [sys.executable, "-m", "bench.fuzz"] + args


def _child_env() -> dict:
    env = dict(os.environ)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def probe_in_child(kind: str, text: str, backend: bool, timeout: float, memory: float) -> dict:
    """:func:`probe` in a child process with a time and memory limit; a hang is status ``hang``."""
    payload = json.dumps({"kind": kind, "text": text, "backend": backend})
    try:
        done = subprocess.run(_python(["--probe"]), input=payload.encode("utf-8", "surrogatepass"),
                              capture_output=True, check=False, timeout=timeout, cwd=ROOT, env=_child_env(),
                              preexec_fn=lambda: _limit_memory(memory))
    except subprocess.TimeoutExpired:
        return {"status": "hang", "signature": "hang (front end or derivation)", "detail": ""}
    try:
        return json.loads(done.stdout.decode("utf-8", "surrogatepass").strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"status": "died", "signature": f"worker died (status {done.returncode})",
                "detail": done.stderr.decode("utf-8", "replace")[-4000:]}


# -- minimizing ---------------------------------------------------------------------------------
def minimize(text: str, still_fails: Callable[[str], bool], budget: int, seconds: float = 600.0) -> str:
    """A shorter text on which ``still_fails`` holds: delta debugging on lines, then on characters.

    At most ``budget`` calls of ``still_fails`` and about ``seconds`` seconds.
    """
    calls = 0
    deadline = time.monotonic() + seconds
    for unit in ("line", "char"):
        parts = text.splitlines(keepends=True) if unit == "line" else list(text)
        n = 2
        while len(parts) >= 2 and calls < budget and time.monotonic() < deadline:
            chunk = -(-len(parts) // n)
            reduced = False
            for start in range(0, len(parts), chunk):
                candidate = parts[:start] + parts[start + chunk:]
                calls += 1
                if still_fails("".join(candidate)):
                    parts, n, reduced = candidate, max(n - 1, 2), True
                    break
                if calls >= budget or time.monotonic() > deadline:
                    break
            if not reduced:
                if n >= len(parts):
                    break
                n = min(len(parts), 2 * n)
        text = "".join(parts)
    return text


# -- the command line, end to end -----------------------------------------------------------------
CLI_COMMANDS = ("show", "code", "verify", "check")


@dataclass
class CliResult:
    """One run of the command line on a case."""

    command: List[str]
    status: str  # ok, internal, traceback, timeout, signal, exit, module-raised, mismatch, half-written,
    # leftover, unpositioned
    returncode: Optional[int]
    seconds: float
    stderr: str = ""
    signature: str = ""


def cli_args(command: str, path: str) -> List[str]:
    if command == "show":
        return ["show", path, "--no-proof"]
    if command == "code":
        return ["code", path, "-o", path + ".py"]
    if command == "verify":
        return ["verify", path, "--entries", "3"]
    return ["check", path]


_POSITIONED = re.compile(r"^\S.*?:(\d+):(\d+): error: .*\n    .*\n    *\^", re.MULTILINE)


def run_cli(command: str, case: Case, folder: Path, timeout: float, memory: float) -> CliResult:
    """Run ``python -m derive COMMAND FILE`` on the case in ``folder`` and classify the result."""
    folder.mkdir(parents=True, exist_ok=True)
    name = "case.rnn" if case.kind == "model" else "case.claims"
    path = folder / name
    path.write_bytes(to_bytes(case.text))
    args = [sys.executable, "-m", "derive"] + cli_args(command, name)
    if command == "check":
        timeout += 25 * case.text.count("claim")
    t0 = time.perf_counter()
    try:
        done = subprocess.run(args, capture_output=True, check=False, timeout=timeout, cwd=folder, env=_child_env(),
                              preexec_fn=lambda: _limit_memory(memory))
    except subprocess.TimeoutExpired as err:
        stderr = (err.stderr or b"").decode("utf-8", "replace")
        return CliResult(args[3:], "timeout", None, time.perf_counter() - t0, stderr[-3000:], f"timeout in {command}")
    seconds = time.perf_counter() - t0
    stderr = done.stderr.decode("utf-8", "replace")
    rc = done.returncode
    result = CliResult(args[3:], "ok", rc, seconds, stderr[-3000:])
    left = sorted(p.name for p in folder.iterdir() if p.name != name and not (
        command == "code" and rc == 0 and p.name == name + ".py"))
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if "Traceback (most recent call last)" in stderr:
        result.status, result.signature = "traceback", f"traceback in {command}: {_normalize(last)}"
    elif rc < 0:
        result.status, result.signature = "signal", f"killed by signal {-rc} in {command}"
    elif rc == 3:
        m = re.search(r"internal error.*?: (\w+): (.*?)(?: \(run with --debug|$)", stderr)
        what = f"{m.group(1)}: {_normalize(m.group(2))}" if m else _normalize(last)
        result.status, result.signature = "internal", f"exit 3 in {command}: {what}"
    elif rc not in (0, 1, 2):
        result.status, result.signature = "exit", f"exit {rc} in {command}: {_normalize(last)}"
    elif "the module raised" in done.stdout.decode("utf-8", "replace"):  # before a plain mismatch
        # verify turns any exception of the module under test into a MISMATCH (exit 1): derive's own
        # bugs (a module that does not run, an exception in a check) hide there
        m = re.search(r"the module raised (\w+): (.*)", done.stdout.decode("utf-8", "replace"))
        result.status, result.signature = "module-raised", f"exit {rc} in {command}: the module raised " + (
            f"{m.group(1)}: {_normalize(m.group(2))}" if m else "?")
    elif command == "verify" and rc == 1:
        # every model derive accepts should get a gradient that agrees with every check
        said = done.stdout.decode("utf-8", "replace").strip().splitlines() or [""]
        result.status, result.signature = "mismatch", f"verify: {_normalize(said[-1])}"
    elif command == "code" and rc != 0 and (folder / (name + ".py")).exists():
        result.status, result.signature = "half-written", "code wrote its output and failed"
    elif left:
        result.status, result.signature = "leftover", f"{command} left files: {', '.join(left)[:80]}"
    elif rc == 2 and not _POSITIONED.search(stderr) and case.text.lstrip("\ufeff").strip():
        message = re.sub(r"^.*?error: ", "", stderr.strip().splitlines()[0] if stderr.strip() else "")
        if not any(message.startswith(k) for k in KNOWN_UNPOSITIONED):
            result.status, result.signature = "unpositioned", f"exit 2 without a position in {command}: " + \
                _normalize(message)
    return result


# -- the run ------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:80] or "x"


class Report:
    """Failures grouped by signature, each with its first input minimized and written out."""

    def __init__(self, out: Path):
        self.out = out
        self.counts: Counter = Counter()
        self.first: Dict[str, dict] = {}

    def add(self, stage: str, signature: str, case: Case, detail: str, extra: dict) -> bool:
        """Record one failure; True when its signature is new."""
        key = f"{stage}: {signature}"
        self.counts[key] += 1
        if key in self.first:
            return False
        folder = self.out / stage / _slug(signature)
        folder.mkdir(parents=True, exist_ok=True)
        suffix = ".rnn" if case.kind == "model" else ".claims"
        (folder / ("original" + suffix)).write_bytes(to_bytes(case.text))
        self.first[key] = {"stage": stage, "signature": signature, "origin": case.origin, "kind": case.kind,
                           "folder": str(folder), "detail": detail[-4000:], **extra}
        self._write_info(key)
        return True

    def reproduced(self, key: str, text: str):
        info = self.first[key]
        suffix = ".rnn" if info["kind"] == "model" else ".claims"
        Path(info["folder"], "repro" + suffix).write_bytes(to_bytes(text))
        info["repro"] = text if len(text) <= 2000 else text[:2000] + f"... ({len(text)} characters)"
        self._write_info(key)

    def _write_info(self, key: str):
        info = self.first[key]
        Path(info["folder"], "info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False,
                                                                default=str) + "\n", encoding="utf-8",
                                                     errors="surrogateescape")


def run_front_end(args, report: Report, log) -> dict:
    """Cases ``0 .. args.inputs - 1`` through a watched worker; returns the figures."""
    stats = Counter()
    kinds = Counter()
    front_ms = back_ms = 0.0
    i = 0
    t0 = time.perf_counter()
    last_print = t0
    while i < args.inputs:
        proc = subprocess.Popen(_python(["--worker", "--seed", str(args.seed), "--start", str(i),
                                         "--stop", str(args.inputs)] + ([] if args.no_backend else ["--backend"])),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=_child_env(),
                                preexec_fn=lambda: _limit_memory(args.memory))  # noqa: PLW1509 - no threads
        current = None
        buffer = b""
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], args.case_timeout)
            if not ready:  # the case did not finish in time
                proc.kill()
                proc.wait()
                bad = current if current is not None else i
                case = case_for(args.seed, bad)
                stats["hang"] += 1
                kinds[case.kind] += 1
                if report.add("front-end", "hang (front end or derivation)", case, "", {"index": bad}):
                    log(f"  case {bad}: HANG ({case.origin})")
                    _minimize_front(report, "front-end: hang (front end or derivation)", case, args, hang=True)
                i = bad + 1
                break
            chunk = os.read(proc.stdout.fileno(), 1 << 20)
            if not chunk:  # the worker ended or died
                proc.wait()
                if current is not None and proc.returncode != 0:
                    case = case_for(args.seed, current)
                    stats["died"] += 1
                    err = proc.stderr.read().decode("utf-8", "replace")
                    sig = f"worker died (status {proc.returncode})"
                    if report.add("front-end", sig, case, err, {"index": current}):
                        log(f"  case {current}: {sig}")
                    i = current + 1
                else:
                    i = args.inputs
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                rec = json.loads(line)
                if rec.get("begin"):
                    current = rec["i"]
                    continue
                current = None
                i = rec["i"] + 1
                stats[rec["status"]] += 1
                kinds[rec["kind"]] += 1
                front_ms += rec["front_ms"]
                back_ms += rec.get("back_ms", 0.0)
                if rec.get("back"):
                    stats["derived"] += 1
                if rec["status"] in ("crash", "bad-error", "backend-crash"):
                    case = case_for(args.seed, rec["i"])
                    if report.add("front-end" if rec["status"] != "backend-crash" else "backend",
                                  rec["signature"], case, rec["detail"], {"index": rec["i"]}):
                        log(f"  case {rec['i']}: {rec['status']}: {rec['signature']} ({case.origin})")
                        key = ("front-end: " if rec["status"] != "backend-crash" else "backend: ") + rec["signature"]
                        _minimize_front(report, key, case, args, hang=False)
            now = time.perf_counter()
            if now - last_print > 30:
                last_print = now
                done = sum(kinds.values())
                log(f"  {done} inputs, {done / (now - t0):.0f}/s, {dict(stats)}")
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seconds = time.perf_counter() - t0
    return {"inputs": sum(kinds.values()), "seconds": seconds, "outcomes": dict(stats), "kinds": dict(kinds),
            "front_end_ms": front_ms, "backend_ms": back_ms}


def _minimize_front(report: Report, key: str, case: Case, args, hang: bool):
    """Minimize the first input of a front-end or backend signature, in a child process."""
    info = report.first[key]
    backend = info["stage"] == "backend"
    if hang:
        def still(text):
            return probe_in_child(case.kind, text, backend, args.case_timeout, args.memory)["status"] == "hang"
        small = minimize(case.text, still, budget=40, seconds=300)
    else:
        payload = json.dumps({"kind": case.kind, "text": case.text, "backend": backend,
                              "signature": info["signature"]})
        try:
            done = subprocess.run(_python(["--minimize"]), input=payload.encode("utf-8", "surrogatepass"),
                                  capture_output=True, check=False, timeout=300, cwd=ROOT, env=_child_env(),
                                  preexec_fn=lambda: _limit_memory(args.memory))
            small = json.loads(done.stdout.decode("utf-8", "surrogatepass").strip().splitlines()[-1])["text"]
        except (subprocess.TimeoutExpired, IndexError, ValueError):
            small = case.text
    report.reproduced(key, small)


def minimize_child(payload: dict) -> dict:
    """Minimize in this process, keeping the same status and signature."""
    folder = tempfile.mkdtemp(prefix="derive-fuzz-")
    want = payload["signature"]

    def still(text):
        case = Case(payload["kind"], "min", text)
        outcome = front_end(case, folder)
        if outcome.status == "accepted" and payload.get("backend") and case.kind == "model":
            outcome = back_end(outcome.value)
        return outcome.signature == want

    try:
        return {"text": minimize(payload["text"], still, budget=3000, seconds=240)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_command_line(args, report: Report, log) -> dict:
    """``args.cli`` cases end to end through ``python -m derive``; returns the figures."""
    stats = Counter()
    by_command: Dict[str, Counter] = {c: Counter() for c in CLI_COMMANDS}
    t0 = time.perf_counter()
    last_print = t0
    root = Path(tempfile.mkdtemp(prefix="derive-fuzz-cli-"))
    try:
        for j in range(args.cli):
            command = CLI_COMMANDS[j % len(CLI_COMMANDS)]
            # three in five from the grammar: most of those get past the front end to the later stages
            case = generate_case(RandomChooser(f"{args.seed}:cli:{j}"),
                                 kind="claims" if command == "check" else "model",
                                 source="grammar" if j % 5 < 3 else "mutation")
            folder = root / f"c{j}"
            result = run_cli(command, case, folder, args.cli_timeout, args.memory)
            stats[result.status] += 1
            by_command[command][result.returncode if result.returncode is not None else result.status] += 1
            if result.status not in ("ok",):
                key = f"cli: {result.signature}"
                if report.add("cli", result.signature, case, result.stderr,
                              {"index": j, "command": "python -m derive " + " ".join(result.command),
                               "returncode": result.returncode, "seconds": round(result.seconds, 2)}):
                    log(f"  cli {j}: {result.signature} ({case.origin})")
                    budget = 0 if result.status == "timeout" else 40

                    def still(text, command=command, want=result.signature, k=j, case=case):
                        scratch = root / f"min{k}"
                        shutil.rmtree(scratch, ignore_errors=True)
                        got = run_cli(command, Case(case.kind, "min", text), scratch, args.cli_timeout,
                                      args.memory)
                        return got.signature == want

                    report.reproduced(key, minimize(case.text, still, budget, seconds=600) if budget
                                      else case.text)
            shutil.rmtree(folder, ignore_errors=True)
            now = time.perf_counter()
            if now - last_print > 60:
                last_print = now
                log(f"  cli {j + 1}/{args.cli}, {(j + 1) / (now - t0):.2f}/s, {dict(stats)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"runs": sum(stats.values()), "seconds": time.perf_counter() - t0, "outcomes": dict(stats),
            "exit_statuses": {c: {str(k): v for k, v in n.items()} for c, n in by_command.items()}}


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=100_000, help="cases through the front end in process")
    ap.add_argument("--cli", type=int, default=1000, help="cases end to end through the command line")
    ap.add_argument("--seed", type=int, default=12, help="the run's seed (default 12)")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "derive-fuzz-failures"),
                    help="folder for the reproducers (default: derive-fuzz-failures in the temp folder)")
    ap.add_argument("--case-timeout", type=float, default=30.0, help="seconds before an in-process case is a hang")
    ap.add_argument("--cli-timeout", type=float, default=60.0, help="seconds before a command is stopped")
    ap.add_argument("--memory", type=float, default=2.0, help="GiB of address space per child")
    ap.add_argument("--no-backend", action="store_true", help="skip derive_matrix and code generation")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--backend", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--minimize", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--stop", type=int, default=0, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    """Entry point of ``python -m bench.fuzz``; returns 0 when no failure was found."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        return worker(args.seed, args.start, args.stop, args.backend)
    if args.probe or args.minimize:
        payload = json.loads(sys.stdin.buffer.read().decode("utf-8", "surrogatepass"))
        result = probe(payload) if args.probe else minimize_child(payload)
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    report = Report(out)

    def log(line):
        print(line, flush=True)

    log(f"derive fuzz: seed {args.seed}; repeat with: python -m bench.fuzz --seed {args.seed} "
        f"--inputs {args.inputs} --cli {args.cli}")
    started = time.perf_counter()
    front = run_front_end(args, report, log) if args.inputs else {}
    if front:
        log(f"front end: {front['inputs']} inputs in {front['seconds']:.0f} s "
            f"({front['inputs'] / max(front['seconds'], 1e-9):.0f}/s; front end {front['front_end_ms'] / 1000:.0f} s, "
            f"derivation and code {front['backend_ms'] / 1000:.0f} s): {front['outcomes']}")
    cli = run_command_line(args, report, log) if args.cli else {}
    if cli:
        log(f"command line: {cli['runs']} runs in {cli['seconds']:.0f} s "
            f"({cli['runs'] / max(cli['seconds'], 1e-9):.2f}/s): {cli['outcomes']}")
        for command, counts in cli["exit_statuses"].items():
            log(f"  {command}: exit statuses {counts}")
    log(f"failures by signature ({sum(report.counts.values())} in all, {len(report.counts)} signatures):")
    for key, n in report.counts.most_common():
        info = report.first[key]
        log(f"  {n:6d}  {key}")
        log(f"          reproducer: {info['folder']}")
    summary = {"seed": args.seed, "seconds": time.perf_counter() - started, "front_end": front, "cli": cli,
               "failures": {k: {"count": n, **{x: report.first[k].get(x) for x in ("folder", "origin", "repro")}}
                            for k, n in report.counts.most_common()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n",
                                      encoding="utf-8", errors="surrogateescape")
    return 1 if report.counts else 0


if __name__ == "__main__":
    raise SystemExit(main())
