"""Claims files: a model (named, a path, or inline) and ``claim dL/dX = ...`` lines.

:func:`read_claims` parses and resolves a file; :func:`run_check` is what
``derive check`` calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from .build import Resolver, build_model, load_model
from .errors import InputError, SourceText
from .expr import Adj, Call, Node, Pick, Ref, SizeRef, Step, walk
from .model import Model
from .parse import Statement, parse_statements

MODEL_KINDS = ("param", "input", "target", "state", "equation")


@dataclass
class Claim:
    """One ``claim`` line, resolved against the model.

    ``lhs`` is the derivative claimed (an :class:`Adj` with resolved names,
    ``loss`` the loss symbol such as ``L`` or ``L_t``); ``rhs`` the claimed
    value, which may still hold ``dot`` products (the notes' ``⋅``).
    """

    line: int
    column: int
    text: str
    lhs: Adj
    rhs: Node
    source_line: str = ""


@dataclass
class ClaimsFile:
    """A parsed hand derivation."""

    path: str
    model: Model
    claims: list[Claim]
    pinned: dict[str, int] = field(default_factory=dict)


class ClaimResolver:
    """Resolves the raw names of claim trees (symbols, steps, derivatives)."""

    def __init__(self, src: SourceText, model: Model):
        self.src = src
        self.model = model
        self.names = Resolver(src, model.sizes, model.symbols)

    def symbol(self, raw: str, step: Step | None, pos, allow_size: bool = True):
        """(name, step) or a SizeRef for a raw name as written in a claim."""
        symbols = self.model.symbols
        if step is None and raw not in symbols and not (allow_size and raw in self.model.sizes):
            per = self.names.per_step(raw)
            if per is not None:  # the notes' bare ``c`` for ``c_t``
                return per, Step("rel", 0)
        got = self.names.name(raw, step, pos, allow_size=allow_size)
        if isinstance(got[0], SizeRef):
            return got[0]
        name, step = got
        sym = symbols[name]
        if step is not None and step.kind == "abs":
            T = self.model.sizes.get("T")
            if step.offset == 0 and sym.kind != "state":
                raise self.src.error(f"{sym.base}_0: steps run from 1 to T; only a state has a value "
                                     "at step 0", pos)
            if T is not None and step.offset > T:
                raise self.src.error(f"{sym.base}_{step.offset} is past the last step T = {T}", pos)
        return name, step

    def tree(self, node: Node) -> Node:
        """Resolve every name in a claim's right side."""
        if isinstance(node, Ref):
            got = self.symbol(node.name, node.step, node.pos)
            if isinstance(got, SizeRef):
                return got
            return Ref(got[0], got[1], pos=node.pos)
        if isinstance(node, Adj):
            return self.derivative(node)
        if isinstance(node, (Pick, Call)) and self._takes_class(node):
            arg = node.cls if isinstance(node, Pick) else node.args[0]
            if not isinstance(arg, Ref):
                raise self.src.error("expected a class target here (c_t)", arg.pos or node.pos)
            resolved = self.tree(arg)
            if isinstance(node, Pick):
                return replace(node, x=self.tree(node.x), cls=resolved)
            return replace(node, args=(resolved,))
        kids = node.children()
        if not kids:
            return node
        return node.rebuild(tuple(self.tree(k) for k in kids))

    @staticmethod
    def _takes_class(node) -> bool:
        return isinstance(node, Pick) or (isinstance(node, Call) and node.fn == "onehot")

    def derivative(self, node: Adj) -> Adj:
        """Resolve ``dLOSS/dX`` with its step of use."""
        got = self.symbol(node.name, node.step, node.pos, allow_size=False)
        name, step = got
        sym = self.model.symbols[name]
        if sym.classes is not None:
            raise self.src.error(f"{name} holds class numbers: it has no derivative", node.pos)
        loss_name, loss_step = self.symbol(node.loss, node.loss_step, node.pos, allow_size=False)
        lsym = self.model.symbols[loss_name]
        if lsym.shape != (1, 1):
            raise self.src.error(f"d{node.loss}/d...: {lsym.name} is not a scalar loss "
                                 f"(its shape is {lsym.shape[0]} x {lsym.shape[1]})", node.pos)
        if node.use is not None and sym.per_step:
            raise self.src.error(f"(t) restricts a shared weight to its use at one step; "
                                 f"{self.model.display(name, step)} is already per step", node.pos)
        if node.use is not None and node.use.kind == "abs":
            T = self.model.sizes.get("T")
            if node.use.offset < 1 or (T is not None and node.use.offset > T):
                raise self.src.error(f"step of use t = {node.use.offset} is outside 1..T", node.pos)
        return Adj(name, step, loss=loss_name, loss_step=loss_step, use=node.use, pos=node.pos)


def _model_of(statements: list[Statement], src: SourceText, base: Path) -> Model:
    named = [st for st in statements if st.kind == "model"]
    inline = [st for st in statements if st.kind in MODEL_KINDS]
    if len(named) > 1:
        raise src.error("a claims file names one model", named[1].pos)
    if named and inline:
        raise src.error("this file names a model with 'model'; it cannot also declare one inline",
                        inline[0].pos)
    if not named:
        if not inline:
            raise InputError("no model: start with 'model NAME' (a built-in name or a path) "
                             "or write the model inline", src.path)
        return build_model([st for st in statements if st.kind != "claim"], src, Path(src.path).stem)
    st = named[0]
    target = st.name
    candidate = base / target
    try:
        model = load_model(str(candidate) if candidate.is_file() else target)
    except InputError as err:
        if err.line:  # an error inside the model file itself
            raise
        raise src.error(err.message, st.name_pos) from None
    for size in [s for s in statements if s.kind == "size"]:
        for name, value, pos in size.sizes:
            if name not in model.sizes:
                raise src.error(f"unknown size '{name}' (the model's sizes: "
                                f"{', '.join(model.sizes)})", pos)
            model.sizes[name] = value
    return model


def read_claims(path: str) -> ClaimsFile:
    """Parse and resolve a claims file.

    Raises
    ------
    InputError
        When the file cannot be read or a line does not parse or resolve.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such file '{path}'", path)
    try:
        text = p.read_text(encoding="utf-8-sig")  # a byte-order mark is not text
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason} at byte {err.start})", path) from None
    src = SourceText(text, path)
    statements = parse_statements(src, claims=True)
    model = _model_of(statements, src, p.parent)
    resolver = ClaimResolver(src, model)
    claims = []
    for st in statements:
        if st.kind != "claim":
            continue
        lhs = resolver.derivative(st.lhs)
        rhs = resolver.tree(st.expr)
        line, col = st.pos
        body = st.text.strip()
        if body.startswith("claim"):
            body = body[len("claim"):].strip()
        body = body.split("#", 1)[0].strip()
        claims.append(Claim(line, col, body, lhs, rhs, st.text.rstrip("\n")))
    if not claims:
        raise InputError("no claims: write lines such as 'claim dL/dW_hy = sum_t dL/do_t @ h_t.T'", path)
    pinned = {}
    if model.has_steps and "T" in model.sizes and any(_uses_fixed_step(c) for c in claims):
        pinned["T"] = model.sizes["T"]
    return ClaimsFile(path, model, claims, pinned)


def _uses_fixed_step(claim: Claim) -> bool:
    """Whether a claim names a fixed step (``h_2``, ``(t = 2)``, ``L_2``) so T matters."""
    nodes = [claim.lhs] + list(walk(claim.rhs))
    for n in nodes:
        steps = []
        if isinstance(n, (Ref, Adj)):
            steps.append(n.step)
        if isinstance(n, Adj):
            steps += [n.loss_step, n.use]
        if any(s is not None and s.kind == "abs" for s in steps):
            return True
    return False


def run_check(path: str, as_json: bool, out: TextIO, err: TextIO) -> int:
    """Check every claim of a notes file; print the listing (or JSON) to out; return 0/1/2.

    Parameters
    ----------
    path : str
        The claims file.
    as_json : bool
        Print one JSON document instead of the listing.
    out, err : text streams
        Results go to ``out``; input errors and progress to ``err``.

    Returns
    -------
    int
        0 when every claim holds, 1 when any does not, 2 on bad input.
    """
    from .check_report import json_document, listing
    from .verdicts import check_file

    try:
        notes = read_claims(path)
    except InputError as error:
        print(error.format(), file=err)
        return 2
    results = check_file(notes, progress=err)
    if as_json:
        json.dump(json_document(notes, results), out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(listing(notes, results))
    return 0 if all(r.verdict == "holds" for r in results) else 1
