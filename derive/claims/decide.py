"""The decision for one claim: screen readings in floats, prove the verdict symbolically."""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import sympy

from .terms import TermNamer, label_of
from ..calculus.entries import Mat
from ..notation.expr import Binary, Node, Unary
from ..model.model import ShapeError, shape_text
from ..notation.printer import show
from .repairs import describe_choices, edits, has_dot, readings

RANK = {"holds": 0, "layout": 1, "factor": 2, "partial": 3, "wrong": 4}
REPAIR_SECONDS = 8.0
MAX_REPAIR_TREES = 400


def _close(a: np.ndarray, b: np.ndarray, scale: float) -> bool:
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and np.allclose(
        a, b, rtol=1e-8, atol=1e-9 * scale)


def _scale(data) -> float:
    return max([1e-12] + [float(np.max(np.abs(tr))) for _, _, _, tr in data if tr.size])


def _additive_terms(node: Node, sign: int = 1) -> list[tuple[int, Node]]:
    if isinstance(node, Binary) and node.op in ("+", "-"):
        return _additive_terms(node.a, sign) + _additive_terms(node.b, sign if node.op == "+" else -sign)
    if isinstance(node, Unary) and node.op == "neg":
        return _additive_terms(node.x, -sign)
    return [(sign, node)]


def _fraction(c: float) -> Fraction | None:
    f = Fraction(c).limit_denominator(100000)
    return f if abs(float(f) - c) <= 1e-9 * max(1.0, abs(c)) else None


def _frac_text(f: Fraction) -> str:
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def name_factor(cs: list[float], combos: list[dict[str, int]]) -> str | None:
    """The constant ``c`` in notation (``2``, ``1/B``, ``1/(O*B)``), or None."""
    fr = [_fraction(c) for c in cs]
    if all(f is not None for f in fr) and len(set(fr)) == 1:
        return _frac_text(fr[0])
    names = [n for n in combos[0] if len({c[n] for c in combos}) > 1]
    for power in (-1, 1):
        for n in names:
            rs = [_fraction(c * combo[n] ** (-power)) for c, combo in zip(cs, combos)]
            if all(r is not None for r in rs) and len(set(rs)) == 1:
                r = rs[0]
                if power == -1:
                    return f"{_frac_text(r)}/{n}" if r != 1 else f"1/{n}"
                return f"{_frac_text(r)}*{n}" if r != 1 else n
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                rs = [_fraction(c * (combo[a] * combo[b]) ** (-power)) for c, combo in zip(cs, combos)]
                if all(r is not None for r in rs) and len(set(rs)) == 1:
                    r = rs[0]
                    prod = f"{a}*{b}"
                    return f"{_frac_text(r)}/({prod})" if power == -1 else f"{_frac_text(r)}*{prod}"
    return None


class Decider:
    """Decides one claim (see :mod:`derive.verdicts`)."""

    def __init__(self, checker, claim, deadline: float):
        self.c = checker
        self.claim = claim
        self.lhs = claim.lhs
        self.deadline = deadline
        self.namer = TermNamer(checker.derivation)
        self.combos = [ctx.sizes for ctx in checker.contexts]

    def tick(self, what: str):
        """Say what is being done; raise ``OutOfTime`` past the claim's deadline."""
        self.c.tick(what)

    # -- numeric classification --------------------------------------------
    def classify(self, tree: Node, data) -> tuple[str, dict]:
        scale = _scale(data)
        if all(_close(C, T, scale) for _, _, C, T in data):
            return "holds", {}
        if all(_close(C, T.T, scale) for _, _, C, T in data):
            return "layout", {}
        factor = self.factor(data, scale)
        if factor is not None:
            return "factor", factor
        part = self.partial(tree, data, scale)
        if part is not None:
            return "partial", part
        return "wrong", {}

    def factor(self, data, scale):
        cs = []
        for k in range(len(self.c.contexts)):
            rows = [(C, T) for kk, _, C, T in data if kk == k]
            if not rows:
                continue
            if any(C.shape != T.shape for C, T in rows):
                return None
            den = sum(float(np.sum(T * T)) for _, T in rows)
            if den <= 1e-24:
                return None
            c = sum(float(np.sum(C * T)) for C, T in rows) / den
            if abs(c) < 1e-9:
                return None
            if not all(_close(C, c * T, scale * max(1.0, abs(c))) for C, T in rows):
                return None
            cs.append((k, c))
        if len(cs) < len({k for k, _, _, _ in data}) or not cs or all(abs(c - 1) < 1e-7 for _, c in cs):
            return None
        fr = [_fraction(c) for _, c in cs]
        if any(f is None for f in fr):
            return None
        name = name_factor([c for _, c in cs], [self.combos[k] for k, _ in cs])
        return {"c": dict((k, f) for (k, _), f in zip(cs, fr)), "name": name}

    def _solve(self, values, data):
        """0/1 coefficients writing ``values`` as a sum of the truth's parts."""
        labels, rows_a, rows_b = [], [], []
        blocks = []
        for (k, t, _, T), V in zip(data, values):
            if V.shape != T.shape:
                return None
            groups = self.c.groups_float(k, self.lhs, t)
            blocks.append(({label_of(o, t): g for o, g in groups.items()}, V))
            for lab in blocks[-1][0]:
                if lab not in labels:
                    labels.append(lab)
        if not labels:
            return None
        for g, V in blocks:
            cols = [g[lab].ravel() if lab in g else np.zeros(V.size) for lab in labels]
            rows_a.append(np.stack(cols, axis=1))
            rows_b.append(V.ravel())
        A, b = np.vstack(rows_a), np.concatenate(rows_b)
        coef, *_ = np.linalg.lstsq(A, b, rcond=None)
        rounded = np.round(coef)
        if np.any(np.abs(coef - rounded) > 1e-6) or np.any((rounded != 0) & (rounded != 1)):
            return None
        scale = max(1e-12, float(np.max(np.abs(A))) if A.size else 1.0)
        if not np.allclose(A @ rounded, b, rtol=1e-8, atol=1e-9 * scale):
            return None
        return labels, [lab for lab, r in zip(labels, rounded) if r == 1]

    def partial(self, tree: Node, data, scale):
        solved = self._solve([C for _, _, C, _ in data], data)
        if solved is not None:
            labels, present = solved
            if present and len(present) < len(labels):
                return {"present": present, "labels": labels, "matched": tree, "extra": []}
            return None
        terms = _additive_terms(tree)
        if len(terms) < 2:
            return None
        matched, extra, present, labels = [], [], [], []
        for sign, term in terms:
            vals = self._term_values(term, data)
            got = None if vals is None else self._solve([sign * v for v in vals], data)
            if got is None or not got[1] or set(got[1]) & set(present):
                extra.append((sign, term))
            else:
                labels = got[0] if len(got[0]) > len(labels) else labels
                matched.append((sign, term))
                present += got[1]
        if not matched or not extra or len(set(present)) < len(labels):
            return None  # extra terms and missing ones: wrong (a repair may say which edit)
        node = _sum(matched)
        return {"present": present, "labels": labels, "matched": node, "extra": extra}

    def _term_values(self, term: Node, data):
        out = []
        for k, t, C, T in data:
            try:
                v = self.c.contexts[k].float_evaluator()(term, t)
            except Exception:
                return None
            if v.shape == (1, 1) and T.shape != (1, 1):
                v = np.broadcast_to(v, T.shape)
            out.append(v)
        return out

    # -- symbolic confirmation -----------------------------------------------
    def confirm(self, verdict: str, tree: Node, info: dict):
        """Prove the verdict entry by entry; (ok, entries, witness gap, sizes)."""
        entries, worst, sizes = 0, 0.0, []
        for k, ctx in enumerate(self.c.contexts):
            sev = ctx.symbolic_evaluator()
            prover = None
            steps = self.c.steps(self.claim, ctx)
            used = False
            learn = self.lhs if verdict == "holds" and self.lhs.use is None else None
            for t in steps:
                self.tick(f"proving at {_sizes(ctx.sizes)}, step {t}")
                try:
                    C = sev(info.get("matched", tree), t)
                except KeyError:
                    continue
                truth = self._target(verdict, ctx, k, t, info)
                if (C.rows, C.cols) == (1, 1) and (truth.rows, truth.cols) != (1, 1):
                    C = Mat.fill(truth.rows, truth.cols, lambda i, j: C[0, 0])
                prover = ctx.prover()
                for (i, j), value in C.entries():
                    self.tick(f"proving at {_sizes(ctx.sizes)}, step {t}")
                    target = truth[i, j]
                    a = sympy.N(value.xreplace(ctx.values), 50)
                    b = sympy.N(target.xreplace(ctx.values), 50)
                    gap = abs(float(a - b)) / max(1.0, abs(float(b)))
                    if not gap < 1e-30 or not prover.equal(value, target):
                        return False, entries, None, sizes
                    if learn is not None:
                        self.learn(ctx, prover, learn, t, i, j, value)
                    entries += 1
                    worst = max(worst, gap)
                used = True
            if used:
                sizes.append(dict(ctx.sizes))
        return True, entries, worst, sizes

    @staticmethod
    def learn(ctx, prover, lhs, t, i, j, value):
        """Keep a proved closed form of an adjoint symbol for later proofs."""
        if any(s in prover.adjoint_owner for s in value.free_symbols):
            return
        bar = ctx.adjoint_mat(lhs, t)[i, j]
        if bar.is_Symbol and bar in prover.adjoint_owner:
            ctx.lemmas.setdefault(bar, value)

    def _target(self, verdict, ctx, k, t, info) -> Mat:
        if verdict == "partial":
            groups = ctx.groups(self.lhs, t)
            present = set(info["present"])
            rows, cols = ctx.u.shape(self.lhs.name)
            chosen = [m for o, m in groups.items() if label_of(o, t) in present]
            return Mat.fill(rows, cols, lambda i, j: sympy.Add(*[m[i, j] for m in chosen]))
        truth = ctx.truth(self.lhs, t)
        if verdict == "layout":
            return Mat.fill(truth.cols, truth.rows, lambda i, j: truth[j, i])
        if verdict == "factor":
            f = info["c"][k]
            c = sympy.Rational(f.numerator, f.denominator)
            return truth.map(lambda e: c * e)
        return truth

    # -- the decision ----------------------------------------------------------
    def decide(self):
        from .verdicts import Result
        claim = self.claim
        self.tick("reading the shapes of the claim")
        target, good, errors = self.c.conforming(claim)
        self.tick("writing out the truth")
        truth = self.truth_text()
        if not good:
            return self.shape_verdict(target, errors, truth)
        candidates = []
        for order, (tree, choices, shape) in enumerate(good):
            self.tick("screening the readings of ⋅")
            data = self.c.evaluate(claim, tree)
            if not data:
                continue
            verdict, info = self.classify(tree, data)
            candidates.append((RANK[verdict], order, verdict, info, tree, choices, data))
        if not candidates:
            return Result(claim, "wrong", "the right side cannot be evaluated at any step where "
                          f"{show(self.lhs)} exists", truth=truth)
        candidates.sort(key=lambda c: (c[0], c[1]))
        _, _, verdict, info, tree, choices, data = candidates[0]
        holding = [c for c in candidates if c[2] == "holds"]
        ok, entries, gap, sizes = (False, 0, None, []) if verdict == "wrong" else \
            self.confirm(verdict, tree, info)
        if not ok and verdict != "wrong":
            return Result(claim, "undecided", "the floating-point screening says "
                          f"'{verdict}' but the symbolic proof did not close within its "
                          "simplification budget", reading=show(tree), truth=truth)
        self.tick(f"explaining the verdict '{verdict}'")
        res = Result(claim, verdict, "", reading=show(tree) if has_dot(claim.rhs) else None,
                     dot_choices=describe_choices(choices) if choices else None, truth=truth,
                     sizes_proved=sizes, witness_gap=gap, entries_proved=entries)
        getattr(self, "explain_" + verdict)(res, tree, info, data, holding)
        return res

    def truth_text(self) -> str:
        labels = []
        for k, ctx in enumerate(self.c.contexts[:1]):
            for t in self.c.steps(self.claim, ctx):
                labels += [label_of(o, t) for o in ctx.groups(self.lhs, t)]
        return self.namer.truth_text(self.lhs, labels)

    def proved_text(self, res) -> str:
        where = "; ".join(_sizes(s) for s in res.sizes_proved)
        steps = " at every step" if self.c.steps(self.claim, self.c.contexts[0]) != [None] else ""
        return (f"proved as a symbolic identity, entry by entry{steps}, at sizes {where} "
                f"({res.entries_proved} entries); 50-digit witness gap {res.witness_gap:.0e}")

    def reading_text(self, res, holding) -> str:
        if not res.dot_choices:
            return ""
        text = f" with {res.dot_choices}: {res.reading}"
        others = [show(c[4]) for c in holding if show(c[4]) != res.reading]
        if others:
            text += " (also with the reading " + "; ".join(others) + ")"
        return text

    def explain_holds(self, res, tree, info, data, holding):
        res.explanation = f"holds{self.reading_text(res, holding)}; {self.proved_text(res)}"

    def explain_layout(self, res, tree, info, data, holding):
        res.repair = show(Unary("T", tree))
        res.repair_edit = "transpose the right side"
        x = show(self.lhs)
        res.explanation = (f"holds up to layout{self.reading_text(res, holding)}: it is the transpose "
                           f"of {x} (numerator layout), but {x} is shaped like "
                           f"{self.c.model.display(self.lhs.name, self.lhs.step)} "
                           f"({shape_text(self.c.model.shape(self.lhs))}, denominator layout); "
                           f"{self.proved_text(res)}")

    def explain_factor(self, res, tree, info, data, holding):
        name = info["name"]
        res.factor = name
        fr = list(info["c"].values())
        shown = name or ", ".join(f"{_frac_text(f)} at {_sizes(self.combos[k])}" for k, f in info["c"].items())
        hint = ""
        if name and "/" in name and any(ch.isalpha() for ch in name.split("/")[1]):
            hint = " (a mean where the loss sums, or a sum where it means)"
        elif fr and all(f == -1 for f in fr):
            hint = " (a sign slip)"
        res.explanation = (f"holds up to a constant factor{self.reading_text(res, holding)}: the claim "
                           f"is {shown} times the truth{hint}; {self.proved_text(res)}")
        self.find_repair(res)
        if name and not res.repair:
            inverse = name[2:] if name.startswith("1/") else f"1/({name})"
            res.repair = f"{inverse} * ({show(tree)})"
            res.repair_edit = f"multiply by {inverse}"

    def explain_partial(self, res, tree, info, data, holding):
        labels, present = info["labels"], info["present"]
        missing = [lab for lab in labels if lab not in present]
        res.missing = self.namer.describe(self.lhs, missing)
        res.extra = [show(term) if sign > 0 else show(Unary("neg", term)) for sign, term in info["extra"]]
        text = f"holds for one part only{self.reading_text(res, holding)}: "
        text += f"it equals the part {' + '.join(self.namer.describe(self.lhs, present, missing=False))} of the truth"
        if res.missing:
            text += "; missing: " + "; ".join(res.missing)
        if res.extra:
            text += "; extra terms not in the truth: " + "; ".join(res.extra)
        res.explanation = text + f"; {self.proved_text(res)}"
        simple = all(not m.startswith("the contributions") for m in res.missing)
        if res.missing and simple and not res.extra:
            res.repair = show(info["matched"]) + "".join(f" + {m}" for m in res.missing)
            res.repair_edit = "add the missing term" + ("s" if len(res.missing) > 1 else "")
        elif res.extra and not res.missing:
            res.repair = show(info["matched"])
            res.repair_edit = "drop the extra term" + ("s" if len(res.extra) > 1 else "")
        elif res.missing and self.c.model.symbols[self.lhs.name].per_step is False \
                and not self.lhs.use and self.lhs.loss_step is None:
            self.find_repair(res)

    def explain_wrong(self, res, tree, info, data, holding):
        self.tick("computing a counterexample")
        res.counterexample = self.counterexample(tree, data)
        ce = res.counterexample
        text = "wrong"
        if res.dot_choices:
            text += f" under every reading of ⋅ (closest: {res.reading})"
        if ce:
            text += (f": at sizes {_sizes(ce['sizes'])}{_step_text(ce['step'])}, entry {ce['entry']}, "
                     f"the claim gives {ce['claim']} but the truth is {ce['truth']} "
                     "(at a random point)")
        text += f"; the truth: {res.truth}"
        near = {}
        self.find_repair(res, near)
        if res.repair:
            text += f"; one-edit repair ({res.repair_edit}): {res.repair}"
        else:
            text += "; no single edit repairs it"
            if "partial" in near:
                text += "; " + near["partial"]
        res.explanation = text

    def counterexample(self, tree, data) -> dict | None:
        best = None
        for k, t, C, T in data:
            D = C.T if C.shape != T.shape else C
            if D.shape != T.shape:
                continue
            diff = np.abs(D - T)
            idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
            if diff[idx] > 1e-9 * max(1.0, float(np.max(np.abs(T)))):
                best = (k, t, idx)
                break
        if best is None:
            return None
        k, t, (i, j) = best
        ctx = self.c.contexts[k]
        C = ctx.symbolic_evaluator()(tree, t)
        T = ctx.truth(self.lhs, t)
        if (C.rows, C.cols) == (1, 1):
            cv = C[0, 0]
        else:
            cv = C[i, j] if (C.rows, C.cols) == (T.rows, T.cols) else C[j, i]
        a = sympy.N(cv.xreplace(ctx.values), 50)
        b = sympy.N(T[i, j].xreplace(ctx.values), 50)
        return {"sizes": dict(ctx.sizes), "step": t, "entry": [int(i), int(j)],
                "claim": f"{float(a):.6g}", "truth": f"{float(b):.6g}", "seed": ctx.seed,
                "classes": {f"{ctx.model.symbols[n].base}_{s}": v for (n, s), v in sorted(ctx.u.classes.items())}}

    def near_partial(self, near: dict, tree, desc, choices):
        """Note an edit after which the claim holds for one part (screened, then proved)."""
        quick = self.c.evaluate(self.claim, tree, quick=True)
        if self.partial(tree, quick, _scale(quick)) is None:
            return
        data = self.c.evaluate(self.claim, tree)
        info = self.partial(tree, data, _scale(data))
        if info is None or info["extra"]:
            return
        if self.confirm("partial", tree, info)[0]:
            missing = [lab for lab in info["labels"] if lab not in info["present"]]
            near["partial"] = (f"after one edit ({desc}) it holds for one part only: {show(tree)} is "
                               f"the part {' + '.join(self.namer.describe(self.lhs, info['present'], False))}"
                               f"; still missing: {'; '.join(self.namer.describe(self.lhs, missing))}")

    def find_repair(self, res, near: dict | None = None):
        """The first single edit that makes the claim hold (proved), if any.

        With ``near``, also note the first edit after which it holds for one part.
        """
        start = time.monotonic()
        target = self.c.model.shape(self.lhs)
        seen = set()
        tried = 0
        for edited, desc in edits(self.claim.rhs):
            if time.monotonic() - start > REPAIR_SECONDS:
                return
            self.tick("looking for a one-edit repair")
            for tree, choices in readings(edited):
                if tree in seen:
                    continue
                seen.add(tree)
                try:
                    s = self.c.model.shape(tree)
                except ShapeError:
                    continue
                if s != target and s != (1, 1):
                    continue
                tried += 1
                if tried > MAX_REPAIR_TREES:
                    return
                quick = self.c.evaluate(self.claim, tree, quick=True)
                if not quick:
                    continue
                if not all(_close(C, T, _scale(quick)) for _, _, C, T in quick):
                    if near is not None and "partial" not in near:
                        self.near_partial(near, tree, desc, choices)
                    continue
                data = self.c.evaluate(self.claim, tree)
                if not all(_close(C, T, _scale(data)) for _, _, C, T in data):
                    continue
                try:
                    ok = self.confirm("holds", tree, {})[0]
                except Exception:
                    ok = False
                if ok:
                    res.repair = show(tree)
                    res.repair_edit = desc + (f", with {describe_choices(choices)}" if choices else "")
                    return

    def shape_verdict(self, target, errors, truth):
        from .verdicts import Result
        model = self.c.model
        claim = self.claim
        res = Result(claim, "shape", "", truth=truth)
        try:
            s = model.shape(claim.rhs)
            res.shape = {"claimed": shape_text(s), "expected": shape_text(target),
                         "line": claim.line, "column": claim.column}
            text = (f"shape error: the right side is {shape_text(s)} but {show(self.lhs)} is "
                    f"{shape_text(target)} (shaped like {model.display(self.lhs.name, self.lhs.step)})")
        except ShapeError as err:
            node = err.node
            pos = node.pos or (claim.line, claim.column)
            operands = {}
            for key, child in zip(("left", "right"), node.children()):
                try:
                    operands[key] = {"expr": show(child), "shape": shape_text(model.shape(child))}
                except ShapeError:
                    pass
            res.shape = {"message": str(err), "line": pos[0], "column": pos[1], "at": show(node),
                         "operands": operands, "expected": shape_text(target)}
            ops = "; ".join(f"{o['expr']} is {o['shape']}" for o in operands.values())
            text = f"shape error at column {pos[1]} in {show(node)}: {err}" + (f" ({ops})" if ops else "")
            if has_dot(claim.rhs):
                text += "; no reading of ⋅ (@, *, or @ with the operands swapped) conforms"
        self.find_repair(res)
        if res.repair:
            text += f"; one-edit repair ({res.repair_edit}): {res.repair}"
        res.explanation = text + f"; the truth: {truth}"
        return res


def _sum(terms) -> Node:
    out = None
    for sign, term in terms:
        if out is None:
            out = term if sign > 0 else Unary("neg", term)
        else:
            out = Binary("+" if sign > 0 else "-", out, term)
    return out


def _sizes(sizes) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items())


def _step_text(t) -> str:
    return "" if t is None else f", step t = {t}"
