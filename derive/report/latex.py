"""LaTeX spelling of the notation: escaping, symbol names, and a printer.

:class:`LatexPrinter` subclasses :class:`derive.notation.printer.NotationPrinter` and
overrides only what LaTeX spells differently: ``W_hh`` is ``W_{hh}``,
``dL/dW_hh`` is ``\\frac{\\partial L}{\\partial W_{hh}}``, ``@`` is
juxtaposition, ``*`` is ``\\odot`` and ``.T`` is ``^\\top``.  With
``shapes=True`` every symbol is set over its shape (``\\underset{H\\times 1}{h_t}``),
as the hand notes write the dimensions beneath each term.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from typing import Dict, Optional

from ..notation.blocks import Linear, Place, Slice, Stack, dim_linear
from ..notation.expr import Adj, Binary, Call, Node, Num, Pick, Ref, SizeRef, Step, StepSum, Unary
from ..notation.printer import BINARY_PREC, PREC_POSTFIX, PREC_POWER, PREC_PREFIX, PREC_PRODUCT, NotationPrinter

TEXT_ESCAPES = {
    "\\": r"{\ttfamily\char92}", "{": r"{\ttfamily\char123}", "}": r"{\ttfamily\char125}",
    "_": r"{\ttfamily\char95}", "^": r"{\ttfamily\char94}", "&": r"\&", "%": r"\%",
    "$": r"{\ttfamily\char36}", "#": r"\#", "~": r"{\ttfamily\char126}",
    "<": r"{\ttfamily\char60}", ">": r"{\ttfamily\char62}", "|": r"{\ttfamily\char124}",
}
"""ASCII characters that are special in LaTeX text (or misprint in OT1 fonts).

They are taken from the typewriter font, whose OT1 layout is ASCII, so the
PDF shows (and copies as) the very character: ``h_t`` stays ``h_t``.
"""

UNICODE_TEXT = {
    "⋅": r"$\cdot$", "·": r"$\cdot$", "⊙": r"$\odot$", "×": r"$\times$", "∂": r"$\partial$",
    "Σ": r"$\Sigma$", "ᵀ": r"$^{\top}$", "−": "-", "’": "'", "‘": "`", "“": "``", "”": "''",
    "–": "--", "—": "---", "…": r"\dots{}", "ⱼ": r"$_j$", "ᵢ": r"$_i$", "√": r"$\surd$",
}
"""Non-ASCII characters the notes use, spelled for LaTeX text."""

UNICODE_ASCII = {
    "⋅": ".", "·": ".", "⊙": "*", "×": "x", "∂": "d", "Σ": "sum", "ᵀ": ".T", "−": "-",
    "’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "--", "…": "...",
}
"""The same characters folded to ASCII, for verbatim listings."""


def escape_text(text: str) -> str:
    """``text`` safe for LaTeX text mode (also inside ``\\texttt``).

    Every character special to TeX is escaped; the notation's Unicode
    operators become math symbols; accented letters become accent commands;
    any other non-ASCII character is shown as ``[U+XXXX]``.

    Parameters
    ----------
    text : str
        Arbitrary text (a path, a claim as written, a model name).

    Returns
    -------
    str
        LaTeX source that typesets ``text``.
    """
    out = []
    for ch in text:
        if ch in TEXT_ESCAPES:
            out.append(TEXT_ESCAPES[ch])
        elif ch == "\t":
            out.append(" ")
        elif ch.isascii() and (ch.isprintable() or ch in "\n "):
            out.append(ch)
        elif ch in UNICODE_TEXT:
            out.append(UNICODE_TEXT[ch])
        else:
            out.append(_accented(ch) or f"[U+{ord(ch):04X}]")
    return "".join(out)


_ACCENTS = {"\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0308": '"', "\u0303": "~",
            "\u0304": "=", "\u0327": "c", "\u030c": "v", "\u0306": "u", "\u030a": "r"}


def breakable(text: str) -> str:
    """:func:`escape_text`, with line breaks allowed after every ``/`` and ``_``: for paths and long names.

    A path such as ``tests/data/battery/elman_single_sequence_softmax.rnn`` in
    ``\\texttt`` has no space to break at and would run off the page.
    """
    out = escape_text(text).replace("/", r"/\allowbreak{}")
    return out.replace(TEXT_ESCAPES["_"], TEXT_ESCAPES["_"] + r"\allowbreak{}")


def _accented(ch: str) -> Optional[str]:
    """``é`` -> ``\\'{e}`` for a Latin letter with one accent, else None."""
    parts = unicodedata.normalize("NFD", ch)
    if len(parts) == 2 and parts[0].isascii() and parts[0].isalpha() and parts[1] in _ACCENTS:
        return "\\%s{%s}" % (_ACCENTS[parts[1]], parts[0])
    return None


def ascii_fold(text: str) -> str:
    """``text`` with the notation's Unicode folded to ASCII (others as ``<U+XXXX>``).

    For verbatim listings, which cannot take multibyte characters.
    """
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
        elif ch in UNICODE_ASCII:
            out.append(UNICODE_ASCII[ch])
        else:
            base = unicodedata.normalize("NFD", ch)[0]
            out.append(base if base.isascii() and base.isalpha() else f"<U+{ord(ch):04X}>")
    return "".join(out)


UNDERSCORE = r"\text{\ttfamily\char95}"
"""An underscore inside a name in math mode (the typewriter glyph, which copies as ``_``)."""

_IDENT_CHARS = re.compile(r"^[A-Za-z0-9]+$")


def _math_word(word: str, roman: bool = False) -> str:
    """A word of a symbol name in math mode: one letter stays italic, longer words are set upright or italic."""
    if not word:
        return ""
    if not _IDENT_CHARS.match(word):
        return r"\text{%s}" % escape_text(word)
    if len(word) == 1 or (word[0].isalpha() and word[1:].isdigit()):
        return word
    return (r"\mathrm{%s}" if roman else r"\mathit{%s}") % word


def _subscript_text(sub: str) -> str:
    """The part of a name after its first underscore, as subscript text."""
    pieces = sub.split("_")
    words = []
    for p in pieces:
        if not p:
            words.append("")
            continue
        # a short index (hh, xh, 2x) reads best italic; a word (true, in) upright
        roman = len(p) > 2 and p.isalpha()
        words.append(_math_word(p, roman=roman))
    return UNDERSCORE.join(words)


def name_math(name: str, step: str = "") -> str:
    """A user symbol name (``W_hh``, ``y_true``, ``b_``) in math mode.

    The first underscore starts the subscript (``W_{hh}``); later
    underscores are printed (``W_h_2x`` -> ``W_{h\\_2x}``); a trailing one
    too (``b_`` -> ``b\\_``).  ``step`` (already LaTeX) joins the subscript
    after a comma (``x2_in`` at ``t`` -> ``x2_{\\mathrm{in},t}``).

    Parameters
    ----------
    name : str
        The symbol as declared, without a ``_t`` step suffix.
    step : str, optional
        A step subscript in LaTeX (``t``, ``t-1``, ``T``).

    Returns
    -------
    str
        Math-mode LaTeX.
    """
    base, sep, sub = name.partition("_")
    base_tex = _math_word(base)
    if sep and not sub:
        base_tex += UNDERSCORE
    sub_tex = _subscript_text(sub) if sub else ""
    if step:
        sub_tex = f"{sub_tex},{step}" if sub_tex else step
    if not sub_tex:
        return base_tex
    if len(base) > 1:
        base_tex = "{%s}" % base_tex
    return f"{base_tex}_{{{sub_tex}}}"


def step_math(step: Step, var: str = "t") -> str:
    """A step as a LaTeX subscript: ``t``, ``t-1``, ``T``, ``T-1``, ``0`` (``k-1`` inside a range sum over k)."""
    if step.kind == "abs":
        return str(step.offset)
    base = var if step.kind == "rel" else ("t" if step.kind == "outer" else "T")
    if step.offset == 0:
        return base
    return f"{base}{'+' if step.offset > 0 else '-'}{abs(step.offset)}"


def linear_math(lin: Linear) -> str:
    """A size expression in math mode: ``4H``, ``F + H``, ``0``."""
    parts = [(c, ("" if abs(c) == 1 else str(abs(c))) + _math_word(n)) for n, c in lin.terms]
    if lin.const or not parts:
        parts.append((lin.const, str(abs(lin.const))))
    out = ("-" if parts[0][0] < 0 else "") + parts[0][1]
    return out + "".join((" - " if c < 0 else " + ") + word for c, word in parts[1:])


def dim_math(dim) -> str:
    """A dimension (a size name, a number, or a sum of sizes) in math mode."""
    if isinstance(dim, int):
        return str(dim)
    lin = dim_linear(dim)
    if lin.terms == ((dim, 1),) and not lin.const:
        return _math_word(dim)
    return f"({linear_math(lin)})" if len(lin.terms) + bool(lin.const) > 1 else linear_math(lin)


def shape_math(shape) -> str:
    """``H \\times 1``: a shape in math mode."""
    return f"{dim_math(shape[0])}\\times {dim_math(shape[1])}"


FUNCTION_TEX = {
    "tanh": r"\tanh", "exp": r"\exp", "log": r"\log", "sigmoid": r"\sigma",
    "relu": r"\operatorname{relu}", "step": r"\operatorname{step}",
    "softmax": r"\operatorname{softmax}", "onehot": r"\operatorname{onehot}",
    "sum": r"\operatorname{sum}", "mean": r"\operatorname{mean}",
    "rowsum": r"\operatorname{rowsum}", "colsum": r"\operatorname{colsum}",
}


class LatexPrinter(NotationPrinter):
    """Prints expression trees as LaTeX math.

    Parameters
    ----------
    model : Model, optional
        Needed for ``shapes`` (the shape of each symbol).
    shapes : bool
        Set every symbol over its shape, as the notes do.
    inline : bool
        Write derivatives as ``\\partial L/\\partial h_t`` (for text and tables)
        rather than as a fraction.
    """

    op_text = {"+": " + ", "-": " - ", "*": r" \odot ", "/": " / ", "@": r" \, ",
               "**": "^", "dot": r" \cdot "}

    def __init__(self, model=None, shapes: bool = False, inline: bool = False):
        super().__init__(model)
        self.shapes = shapes and model is not None
        self.inline = inline

    def paren(self, text: str) -> str:
        return rf"\left({text}\right)"

    def under(self, node: Node, text: str) -> str:
        """``text`` set over the shape of ``node`` when shapes are on."""
        if not self.shapes:
            return text
        try:
            shape = self.model.shape(node)
        except Exception:  # a claim's tree may not conform: print it bare
            return text
        return r"\underset{\scriptscriptstyle %s}{%s}" % (shape_math(shape), text)

    # -- leaves -----------------------------------------------------------
    def symbol(self, name: str, step) -> str:
        if step is None:
            return name_math(name)
        base = name[:-2] if name.endswith("_t") else name
        return name_math(base, step_math(step, self.var))

    def print_Num(self, node: Num) -> str:
        v: Fraction = node.value
        sign = "-" if v < 0 else ""
        v = abs(v)
        if v.denominator == 1:
            return f"{sign}{v.numerator}"
        return rf"{sign}\frac{{{v.numerator}}}{{{v.denominator}}}"

    def print_SizeRef(self, node: SizeRef) -> str:
        return dim_math(node.name)

    def print_Ref(self, node: Ref) -> str:
        text = self.symbol(node.name, node.step)
        if self.model is not None and node.name in self.model.symbols \
                and self.model.symbols[node.name].classes is not None:
            return text
        return self.under(node, text)

    def adjoint_bare(self, node: Adj) -> str:
        loss = self.symbol(node.loss, node.loss_step) if node.loss_step else name_math(node.loss)
        wrt = self.symbol(node.name, node.step)
        if self.inline:
            text = rf"\partial {loss}/\partial {wrt}"
        else:
            text = rf"\frac{{\partial {loss}}}{{\partial {wrt}}}"
        if node.use is not None:
            use = "t" if node.use.kind == "rel" and node.use.offset == 0 else f"t={step_math(node.use)}"
            text += rf"\,({use})"
        return text

    def print_Adj(self, node: Adj) -> str:
        return self.under(node, self.adjoint_bare(node))

    # -- operators ----------------------------------------------------------
    def sup_base(self, node: Node) -> str:
        """A base that takes a superscript: braced, parenthesised if it has one already."""
        needs = isinstance(node, (Binary, Call, Adj)) or (isinstance(node, Unary))
        needs = needs or (isinstance(node, Num) and (node.value < 0 or node.value.denominator != 1))
        if isinstance(node, Call) and node.fn in FUNCTION_TEX and node.fn not in ("sum", "mean"):
            needs = True
        text = self.print(node)
        if needs:
            return "{%s}" % self.paren(text)
        if self.shapes and isinstance(node, (Ref, Pick)):
            return "{%s}" % text  # an \\underset: brace it so the exponent is not set as a limit
        return text

    def print_Unary(self, node: Unary) -> str:
        if node.op == "neg":
            return "-" + self.wrap(node.x, PREC_PREFIX + 1)
        if self.shapes and isinstance(node.x, (Ref, Adj)):
            inner = LatexPrinter(self.model, shapes=False, inline=self.inline)
            return self.under(node, inner.sup_base(node.x) + r"^{\top}")
        return self.sup_base(node.x) + r"^{\top}"

    def print_Binary(self, node: Binary) -> str:
        p = BINARY_PREC[node.op]
        if node.op == "**":
            return self.sup_base(node.a) + "^{%s}" % self.print(node.b)
        if node.op == "/":
            return rf"\frac{{{self.print(node.a)}}}{{{self.print(node.b)}}}"
        left = self.wrap(node.a, p)
        right = self.wrap(node.b, p + 1)
        return left + self.op_text[node.op] + right

    def print_Pick(self, node: Pick) -> str:
        inner = LatexPrinter(self.model, shapes=False, inline=self.inline)
        text = f"{inner.wrap(node.x, PREC_POSTFIX)}[{inner.print(node.cls)}]"
        return self.under(node, text)

    def print_Stack(self, node: Stack) -> str:
        return r"\begin{bmatrix} %s \end{bmatrix}" % r" \\[3pt] ".join(self.print(a) for a in node.args)

    def print_Slice(self, node: Slice) -> str:
        span = f"{linear_math(node.lo)}:{linear_math(node.hi)}"
        text = self.sup_base(node.args[0])
        return text + (f"[{span}]" if node.axis == 0 else rf"[:,\,{span}]")

    def print_Place(self, node: Place) -> str:
        side = "rows" if node.axis == 0 else "columns"
        return r"\operatorname{place}^{%s\ %s\ \mathrm{of}\ %s}\left(%s\right)" % (
            side, f"{linear_math(node.lo)}:{linear_math(node.hi)}", linear_math(node.total), self.print(node.args[0]))

    def print_StepSum(self, node: StepSum) -> str:
        lo, hi = (step_math(b) for b in (node.lo, node.hi))
        return rf"\sum_{{{node.var}={lo}}}^{{{hi}}} {self.summand(node)}"

    def print_Call(self, node: Call) -> str:
        if node.fn == "sum_t":
            return r"\sum_{t=1}^{T} " + self.wrap(node.args[0], PREC_PRODUCT)
        if node.fn == "ones_like":
            return self.under(node, r"\mathbf{1}")
        if node.fn == "onehot":
            inner = LatexPrinter(self.model, shapes=False, inline=self.inline)
            return self.under(node, r"\operatorname{onehot}\left(%s\right)" % inner.print(node.args[0]))
        fn = FUNCTION_TEX.get(node.fn, r"\operatorname{%s}" % escape_text(node.fn))
        args = ", ".join(self.print(a) for a in node.args)
        return rf"{fn}\left({args}\right)"


def sizes_math(sizes: Dict[str, int]) -> str:
    """``H=4,\\ F=3``."""
    return r",\ ".join(f"{name_math(k)}={v}" for k, v in sizes.items())


def fmt_sci(x: float, digits: int = 2) -> str:
    """``3.5\\times 10^{-8}`` (math mode), ``0`` for zero."""
    if x == 0:
        return "0"
    if x != x:
        return r"\text{nan}"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    exp = int(exponent)
    if exp == 0:
        return mantissa
    if mantissa in ("1", "1.0", "1." + "0" * (digits - 1)):
        return r"10^{%d}" % exp
    return r"%s\times 10^{%d}" % (mantissa, exp)


DISPLAY_WIDTH = 80
"""Width units (:func:`math_width`) a display line may take before a sum is broken over lines.

The text is 487pt wide; the GRU's ``dL/dh_0`` on one line, 91 units, took
501pt (5.5pt a unit). 80 units leave about 45pt for an equation number and
for the estimate's error."""


def math_width(tex: str) -> int:
    """A rough width of LaTeX math, in units of about one glyph (5pt), for breaking long displays.

    Commands count as one glyph, fractions ``\\partial L/\\partial X`` as
    their denominator, sub- and superscripts as full glyphs (an over-estimate),
    and a binary operator or relation as three (its spacing).
    """
    s = re.sub(r"\\frac\{\\partial L\}\{\\partial ", r"\\frac{}{d", tex)
    s = re.sub(r"\\(left|right|mathrel|mathit|mathrm|mathbf|operatorname|scriptscriptstyle|"
               r"scriptstyle|displaystyle|textstyle)(?![a-zA-Z])", "", s)
    s = re.sub(r"\\[,;!]", "", s)
    s = re.sub(r"\\underset\{[^{}]*\}", "", s)
    s = re.sub(r"\\[a-zA-Z]+", "x", s)
    s = re.sub(r"[{}_^ ]", "", s)
    return len(re.sub(r"[-+=]", "ooo", s))


def latex(node: Node, model=None, shapes: bool = False, inline: bool = False) -> str:
    """LaTeX math for an expression tree (see :class:`LatexPrinter`)."""
    return LatexPrinter(model, shapes=shapes, inline=inline)(node)


__all__ = ["LatexPrinter", "latex", "escape_text", "breakable", "ascii_fold", "name_math", "step_math",
           "shape_math", "dim_math", "sizes_math", "fmt_sci", "PREC_POWER", "math_width", "DISPLAY_WIDTH"]
