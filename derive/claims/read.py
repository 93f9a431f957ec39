"""Claims files: a model (named, a path, or inline) and ``claim dL/dX = ...`` lines.

:func:`read_claims` parses and resolves a file (the command that checks it:
:mod:`derive.claims.command`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import InputError, SourceText
from ..model.build import Resolver, build_model, builtin_names, load_model
from ..model.model import Model
from ..model.sizes import check_sizes
from ..notation import parse as _parse
from ..notation.expr import Adj, Call, Iverson, Node, Pick, Ref, SizeRef, Step, StepSum, walk
from ..notation.lexer import strip_comment, tokenize
from ..notation.parse import LineParser, Statement, parse_statements

MODEL_KINDS = ("param", "input", "target", "state", "equation")

MAX_CLAIMS = 500
"""Default cap on the claims of one file (``--max-claims``)."""

MAX_MODEL_BYTES = 4_000_000
"""A file named by ``model PATH`` larger than this is not read (no model is that long)."""

MAX_LINE = getattr(_parse, "MAX_LINE", 10_000)
"""Most characters of a claim line (its comment aside), as for every statement."""


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
    lhs: Adj | None
    rhs: Node | None
    source_line: str = ""
    error: InputError | None = None
    """Set when the line does not parse or resolve; ``lhs`` and ``rhs`` are then None."""
    fixed_T: bool = False
    """Check at the file's T whatever the claim names (notes whose loss is at a fixed step, ``L2``)."""


@dataclass
class ClaimsFile:
    """A parsed hand derivation."""

    path: str
    model: Model
    claims: list[Claim]
    pinned: dict[str, int] = field(default_factory=dict)

    @property
    def readable(self) -> list[Claim]:
        """The claims that parsed and resolved (every claim but the bad lines)."""
        return [c for c in self.claims if c.error is None]


class ClaimLineErrors(InputError):
    """No claim of a file could be read: every bad claim line, each with its caret.

    The first error gives the position; :meth:`format` shows them all.
    """

    def __init__(self, errors: list[InputError]):
        first = errors[0]
        super().__init__(first.message, first.path, first.line, first.column, first.line_text)
        self.errors = list(errors)

    def format(self) -> str:
        """Every error, as a compiler would print them."""
        return "\n".join(InputError.format(e) for e in self.errors)


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


def _model_file(target: str, src: SourceText, pos, base: Path, allow_model_path: bool) -> Path:
    """The file a ``model PATH`` line names, after the folder rules of ``derive check``.

    A relative path is taken in the claims file's folder ``base``.  Unless
    ``allow_model_path``, an absolute path and a path that leads out of that
    folder (``..``, a symbolic link) are refused.
    """
    given = Path(target)
    if given.is_absolute() and not allow_model_path:
        raise src.error(f"model path '{target}' is absolute: a claims file may name a model file only "
                        "inside its own folder, by a relative path (--allow-model-path lifts this)", pos)
    full = given if given.is_absolute() else base / given
    if not allow_model_path:
        try:
            inside = full.resolve().is_relative_to(base.resolve())
        except (OSError, RuntimeError, ValueError):  # a loop of links, a NUL byte
            inside = False
        if not inside:
            raise src.error(f"model path '{target}' leads out of the claims file's folder "
                            "(through '..' or a symbolic link); a claims file may name a model file "
                            "only inside its own folder (--allow-model-path lifts this)", pos)
    try:
        is_file = full.is_file()
        size = full.stat().st_size if is_file else 0
    except (OSError, ValueError):
        is_file, size = False, 0
    if not is_file:
        raise src.error(f"no such model file or built-in model '{target}' (a path is taken in the "
                        f"claims file's folder; built-in: {', '.join(builtin_names())})", pos)
    if size > MAX_MODEL_BYTES:
        raise src.error(f"'{target}' is not a model file (it is larger than {MAX_MODEL_BYTES:,} bytes)", pos)
    return full


def _model_of(statements: list[Statement], src: SourceText, base: Path,
              allow_model_path: bool = False) -> Model:
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
    if target in builtin_names():  # a built-in name always means the built-in model
        model = load_model(target)
    else:
        full = _model_file(target, src, st.name_pos, base, allow_model_path)
        # an absolute path never reads as a built-in name
        shown = str(full) if str(full) not in builtin_names() else str(full.resolve())
        try:
            model = load_model(shown)
        except InputError:
            # never quote a line of a file that is not a model file: it may be anything
            raise src.error(f"'{target}' is not a model file (it does not read as one; "
                            "its text is not shown)", st.name_pos) from None
    for size in [s for s in statements if s.kind == "size"]:
        for name, value, pos in size.sizes:
            if name not in model.sizes:
                raise src.error(f"unknown size '{name}' (the model's sizes: "
                                f"{', '.join(model.sizes)})", pos)
            model.sizes[name] = value
    check_sizes(model, {k: v for k, v in model.sizes.items() if v is not None})
    return model


def _claim_body(raw: str) -> str:
    """A claim line as shown in verdicts: without ``claim`` and without its comment."""
    body = raw.strip()
    if body.startswith("claim"):
        body = body[len("claim"):].strip()
    return body.split("#", 1)[0].strip()


def _split_claim_lines(src: SourceText, max_claims: int):
    """Parse every ``claim`` line on its own; ``(statements or errors, other lines' source)``.

    A claim line that does not parse becomes an :class:`InputError` in the
    list (in file order) instead of stopping the file.  The returned source
    has the claim lines blanked, so the other lines parse as before.

    Raises
    ------
    InputError
        At the first claim line past ``max_claims``.
    """
    parsed: list[tuple[int, str, object]] = []  # (line, raw, Statement or InputError)
    others = list(src.lines)
    for lineno, raw in enumerate(src.lines, start=1):
        line = strip_comment(raw)
        words = line.split(None, 1)
        if not words or words[0] != "claim":
            continue
        column = line.index("claim") + 1
        if len(parsed) >= max_claims:
            raise src.error(f"more than {max_claims} claim{'s' if max_claims != 1 else ''} in one file "
                            "(the limit of --max-claims); "
                            "split the file or raise the limit", (lineno, column))
        try:
            if len(line) > MAX_LINE:
                raise src.error(f"line too long: {len(line):,} characters (at most {MAX_LINE:,}); "
                                "split it into named quantities", (lineno, MAX_LINE + 1))
            tokens = tokenize(line, lineno, src, claims=True)
            if tokens[1].kind == "OP" and tokens[1].text == "=":
                continue  # an equation for a quantity named 'claim': the model's business
            statement = LineParser(tokens, lineno, src).statement(tokens[0], raw)
        except InputError as err:
            statement = err
        parsed.append((lineno, raw, statement))
        others[lineno - 1] = ""
    rest = SourceText(src.text, src.path)
    rest.lines = others
    return parsed, rest


def read_claim_line(src: SourceText, lineno: int, resolver: ClaimResolver) -> Claim:
    """Parse and resolve the ``claim`` line ``lineno`` of ``src`` (notes mode builds such lines).

    Raises
    ------
    InputError
        When the line does not parse or resolve.
    """
    raw = src.lines[lineno - 1]
    line = strip_comment(raw)
    if len(line) > MAX_LINE:
        raise src.error(f"line too long: {len(line):,} characters (at most {MAX_LINE:,})", (lineno, MAX_LINE + 1))
    tokens = tokenize(line, lineno, src, claims=True)
    st = LineParser(tokens, lineno, src).statement(tokens[0], raw)
    return Claim(st.pos[0], st.pos[1], _claim_body(raw), resolver.derivative(st.lhs), resolver.tree(st.expr),
                 raw)


def read_claims(path: str, allow_model_path: bool = False, max_claims: int = MAX_CLAIMS) -> ClaimsFile:
    """Parse and resolve a claims file.

    A claim line that does not parse or resolve is kept as a :class:`Claim`
    with its ``error`` set; the other claims are read as usual.

    Parameters
    ----------
    path : str
        The claims file.
    allow_model_path : bool
        Let ``model PATH`` name an absolute path or a path out of the claims
        file's folder.
    max_claims : int
        The most ``claim`` lines the file may hold.

    Returns
    -------
    ClaimsFile
        The model and every claim, in file order.

    Raises
    ------
    InputError
        When the file cannot be read, a line other than a claim does not
        parse or resolve (the model, a size, a declaration), the file holds
        no claim or more than ``max_claims``, or no claim can be read
        (:class:`ClaimLineErrors`, with every claim's error).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such file '{path}'", path)
    try:
        text = p.read_text(encoding="utf-8-sig")  # a byte-order mark is not text
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason} at byte {err.start})", path) from None
    src = SourceText(text, path)
    if len(text) > getattr(_parse, "MAX_TEXT", len(text)):
        parse_statements(src, claims=True)  # refuses an oversized file before any line is read
    parsed, rest = _split_claim_lines(src, max_claims)
    statements = parse_statements(rest, claims=True)
    model = _model_of(statements, src, p.parent, allow_model_path)
    resolver = ClaimResolver(src, model)
    claims = []
    for lineno, raw, st in parsed:
        body = _claim_body(raw)
        if isinstance(st, InputError):
            column = strip_comment(raw).index("claim") + 1
            claims.append(Claim(lineno, column, body, None, None, raw.rstrip("\n"), error=st))
            continue
        line, col = st.pos
        try:
            lhs = resolver.derivative(st.lhs)
            rhs = resolver.tree(st.expr)
        except InputError as err:
            claims.append(Claim(line, col, body, None, None, st.text.rstrip("\n"), error=err))
            continue
        claims.append(Claim(line, col, body, lhs, rhs, st.text.rstrip("\n")))
    if not claims:
        raise InputError("no claims: write lines such as 'claim dL/dW_hy = sum_t dL/do_t @ h_t.T'", path)
    readable = [c for c in claims if c.error is None]
    if not readable:
        raise ClaimLineErrors([c.error for c in claims])
    pinned = {}
    if model.has_steps and "T" in model.sizes and any(uses_fixed_step(c) for c in readable):
        pinned["T"] = model.sizes["T"]
    return ClaimsFile(path, model, claims, pinned)


def uses_fixed_step(claim: Claim) -> bool:
    """Whether a claim names a fixed step (``h_2``, ``(t = 2)``, ``L_2``, ``sum_{t=1}^{2}``) so T matters."""
    if claim.fixed_T:
        return True
    nodes = [claim.lhs] + list(walk(claim.rhs))
    for n in nodes:
        steps = []
        if isinstance(n, (Ref, Adj)):
            steps.append(n.step)
        if isinstance(n, Adj):
            steps += [n.loss_step, n.use]
        if isinstance(n, Iverson):
            steps.append(n.bound)
        if isinstance(n, StepSum):  # sum_{t=1}^{2}: a sum up to a fixed step means the file's T
            steps.append(n.hi)
        if any(s is not None and s.kind == "abs" for s in steps):
            return True
    return False
