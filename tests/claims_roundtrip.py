"""Write every truth and repair ``derive check`` prints back as a claim, and check those.

``python tests/claims_roundtrip.py FILE.claims ...`` prints, per file, each
printed truth and repair that does not get ``holds`` when written back as a
claim of its own (in the same model), and the totals.  The test
``tests/test_claims_roundtrip.py`` asserts that every one holds.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from derive.claims.read import read_claims
from derive.claims.verdicts import check_file
from derive.notation.lexer import strip_comment
from derive.notation.printer import show


@dataclass
class Printed:
    """One text the checker printed: a truth or a repair, as a claim line."""

    source: str
    line: int
    kind: str  # truth | repair
    claim: str
    verdict: str = ""
    explanation: str = ""


@dataclass
class RoundTrip:
    """The outcome over some files."""

    printed: list[Printed] = field(default_factory=list)
    results: dict[str, list] = field(default_factory=dict)
    withheld: list[str] = field(default_factory=list)
    as_terms: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Printed]:
        return [p for p in self.printed if p.verdict != "holds"]

    def summary(self) -> str:
        bad = self.failures
        errors = sum(1 for p in bad if p.verdict == "error")
        return (f"{len(self.printed)} printed truths and repairs "
                f"({sum(p.kind == 'truth' for p in self.printed)} truths, "
                f"{sum(p.kind == 'repair' for p in self.printed)} repairs): "
                f"{len(self.printed) - len(bad)} hold written back, {errors} do not parse or resolve, "
                f"{len(bad) - errors} do not hold; {len(self.withheld)} withheld; "
                f"{len(self.as_terms)} truths shown as derived terms (not claims)")


def printed_claims(path: str, results) -> list[Printed]:
    """Every truth and repair printed for a file's results, as claim lines."""
    out = []
    for r in results:
        c = r.claim
        if c.lhs is None:
            continue
        if r.truth:
            out.append(Printed(path, c.line, "truth", f"claim {r.truth}"))
        if r.repair:
            out.append(Printed(path, c.line, "repair", f"claim {show(c.lhs)} = {r.repair}"))
    return out


def withheld_texts(path: str, results) -> list[str]:
    """Truths and repairs the checker did not print because they did not prove as claims."""
    return [f"{path}:{r.claim.line}: {w}" for r in results for w in getattr(r, "withheld", [])]


def terms_texts(path: str, results) -> list[str]:
    """Truths shown as derived terms: the claims grammar cannot write them."""
    return [f"{path}:{r.claim.line}: {r.truth_terms}" for r in results
            if getattr(r, "truth_terms", None) and not getattr(r, "withheld", [])]


def _write_back(path: str, printed: list[Printed], folder: Path) -> Path:
    """A claims file with the original's model and sizes and the printed claims."""
    src = Path(path)
    keep = [raw for raw in src.read_text(encoding="utf-8-sig").splitlines()
            if not strip_comment(raw).strip().startswith("claim")]
    for model in src.parent.glob("*.rnn"):
        shutil.copy(model, folder / model.name)
    out = folder / src.name
    out.write_text("\n".join(keep + [p.claim for p in printed]) + "\n", encoding="utf-8")
    return out


def round_trip(paths, claim_seconds: float = 60.0, isolate: bool | None = None) -> RoundTrip:
    """Check each file, write its printed truths and repairs back as claims, and check those."""
    outcome = RoundTrip()
    for path in paths:
        notes = read_claims(str(path))
        results = check_file(notes, claim_seconds=claim_seconds, isolate=isolate)
        outcome.results[str(path)] = results
        outcome.withheld += withheld_texts(str(path), results)
        outcome.as_terms += terms_texts(str(path), results)
        printed = printed_claims(str(path), results)
        if not printed:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            back = _write_back(str(path), printed, Path(tmp))
            written = read_claims(str(back))
            checked = check_file(written, claim_seconds=claim_seconds, isolate=isolate)
            first = len(back.read_text().splitlines()) - len(printed) + 1
        by_line = {r.claim.line: r for r in checked}
        for k, p in enumerate(printed):
            r = by_line[first + k]
            p.verdict, p.explanation = r.verdict, r.explanation
        outcome.printed += printed
    return outcome


def main(argv: list[str]) -> int:
    outcome = round_trip(argv)
    for p in outcome.failures:
        print(f"{p.source}:{p.line}: {p.kind} -> {p.verdict}: {p.claim}")
        print(f"    {p.explanation[:300]}")
    for w in outcome.withheld:
        print(f"withheld: {w[:300]}")
    for w in outcome.as_terms:
        print(f"as derived terms: {w[:300]}")
    for path, results in outcome.results.items():
        counts = {}
        for r in results:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        print(f"{path}: {len(results)} claims, {counts}")
    print(outcome.summary())
    return 0 if not outcome.failures and not outcome.withheld else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
