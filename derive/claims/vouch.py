"""Every truth and repair is proved as a claim of its own before it is printed.

A text the checker would print as the truth or as a repair of a claim is
parsed back with the claims grammar, resolved in the claim's model, and
decided against the claim's derivative like any claim: screened in floating
point at every check size and step, then proved symbolically entry by entry
(:func:`derive.claims.confirm.confirm`).  A truth that does not parse or hold
is shown as derived terms instead (``Result.truth_terms``); a repair that
does not is not printed.
"""

from __future__ import annotations

from ..errors import InputError, SourceText
from ..model.model import ShapeError
from ..notation.expression_parser import ExpressionParser
from ..notation.lexer import tokenize
from ..notation.printer import show
from .confirm import confirm
from .holds import holds
from .numeric import truth_scale
from .read import Claim, ClaimResolver


def parse_rhs(model, text: str):
    """The right side of a claim as a resolved tree, or None when it does not parse or resolve."""
    src = SourceText(text, "<printed>")
    try:
        tokens = tokenize(text, 1, src, claims=True)
        parser = ExpressionParser(tokens, 1, src)
        tree = parser.expression()
        parser.expect_end()
        return ClaimResolver(src, model).tree(tree)
    except (InputError, KeyError, ValueError):
        return None


def proves(decider, rhs_text: str) -> bool:
    """Whether ``lhs = rhs_text`` holds as a claim of its own (proved; cached per file).

    Parameters
    ----------
    decider : Decider
        The decision of the claim whose derivative is meant
        (:class:`derive.claims.decide.Decider`).
    rhs_text : str
        The right side as it would be printed.
    """
    checker, lhs = decider.checker, decider.lhs
    cache = checker.__dict__.setdefault("vouched", {})
    key = (lhs, rhs_text)
    if key not in cache:
        decider.tick("proving the printed truth or repair as a claim")
        cache[key] = _proves(checker, decider.claim, lhs, rhs_text)
    return cache[key]


def _proves(checker, claim, lhs, rhs_text: str) -> bool:
    tree = parse_rhs(checker.model, rhs_text)
    if tree is None:
        return False
    try:
        shape = checker.model.shape(tree)
    except (ShapeError, KeyError, TypeError):
        return False
    if shape != checker.model.shape(lhs) and shape != (1, 1):
        return False
    written = Claim(claim.line, claim.column, f"{show(lhs)} = {rhs_text}", lhs, tree)
    data = checker.evaluate(written, tree)
    if not data or not holds(data, truth_scale(data)):
        return False
    return confirm(checker, written, "holds", tree, {})[0]


def truth_rhs(lhs, truth: str) -> str:
    """The right side of a printed truth ``dL/dX = ...``."""
    return truth.removeprefix(f"{show(lhs)} = ")


def vouch_repair(decider, res):
    """Keep the repair only when it holds as a claim (a proved one from the repair search is kept)."""
    if res.repair is None or getattr(res, "repair_proved", False):
        return
    if not proves(decider, res.repair):
        res.withheld.append(f"repair ({res.repair_edit}): {res.repair}")
        res.repair, res.repair_edit, res.repair_kinds = None, None, []
