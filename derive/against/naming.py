"""Naming the slip: the link to :mod:`derive.against.mutations`.

The mutated derivations are generated there; this module calls them only when
some gradient disagrees, and turns their answer into the sentences and JSON
of ``derive against``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np

from .mutations import name_the_slip


@dataclass
class NamingResult:
    """What the slip-naming search found: the matching mutations and what was tried."""

    matches: List[dict] = field(default_factory=list)  # {"description", "kinds"}
    tried: int = 0
    tried_kinds: List[str] = field(default_factory=list)
    stopped: str = ""
    compared: List[str] = field(default_factory=list)  # the gradients a match reproduces (not the inputs')

    def sentences(self, wrong: List[str]) -> List[str]:
        """The lines the listing prints under ``slip:``."""
        if self.matches:
            out = []
            for m in self.matches:
                states = m.get("initial_states", {})
                same = [w for w in wrong if w in self.compared and states.get(w, "the same") == "the same"]
                what = ", ".join(f"dL/d{w}" for w in same) or "gradients"
                text = (f"your {what} equal{'s' if len(same) == 1 else ''} the derivation with "
                        f"{m['description']} ({', '.join(m['kinds'])})")
                other = [s for s, v in states.items() if v == "different"]
                if other:
                    text += f"; your {', '.join('dL/d' + s for s in other)} is not that derivation's"
                unmatched = [s for s, v in states.items() if v == "not compared" and s in wrong]
                if unmatched:
                    text += f" ({', '.join('dL/d' + s for s in unmatched)} left out of the match)"
                out.append(text)
            return out
        kinds = ", ".join(self.tried_kinds) or "none"
        if self.stopped and not self.tried:  # nothing to search: the compared gradients are the derivation's
            return [f"no slip searched: {self.stopped} (" + ", ".join(f"dL/d{c}" for c in self.compared) + ")"]
        if self.stopped:  # a search that ran stops only at its time budget  # the search did not try everything: say what it tried, not that nothing would match
            return [f"none of the {self.tried} mutated derivations tried reproduces your gradients ({kinds}); "
                    f"the search stopped early: {self.stopped} (--naming-seconds gives it more time)"]
        return [f"no mutation of the derivation reproduces your gradients; tried {self.tried} ({kinds})"]

    def to_json(self) -> dict:
        return {"matches": self.matches, "tried": self.tried, "tried_kinds": self.tried_kinds,
                "stopped": self.stopped, "compared": self.compared}


def name_slip(model, derivation, params: Dict[str, np.ndarray], data: Dict[str, np.ndarray],
              user_gradients: Dict[str, np.ndarray], seconds: float, states: Sequence[str] = (),
              wrong: Sequence[str] = ()) -> NamingResult:
    """Search the mutated derivations for one that reproduces ``user_gradients`` (derive's names and layout).

    When some parameter's gradient is wrong, the search matches the parameters' gradients only, and each
    match says whether the user's ``dL/dh_0`` is also that derivation's: a user who drops the recurrent term
    of ``dL/dh_t`` often still computes ``dL/dh_0`` from ``dL/dz_1`` as the derivation does. When only
    initial states are wrong, they are matched too.

    Returns
    -------
    NamingResult
        The matches, and what was tried.
    """
    left_out = [s for s in states if s in user_gradients] if set(wrong) - set(states) else []
    given = {k: v for k, v in user_gradients.items() if k not in left_out}
    naming = name_the_slip(model, derivation, params, data, given, seconds=seconds)
    matches = []
    for m in naming.matches:
        entry = {"description": m.description, "kinds": list(m.kinds)}
        for s in left_out:
            theirs = m.gradients.get(s)
            yours = np.asarray(user_gradients[s], dtype=float)
            if theirs is None:  # the search computes only the gradients it was given
                entry.setdefault("initial_states", {})[s] = "not compared"
                continue
            same = np.shape(theirs) == yours.shape and bool(np.allclose(
                yours, theirs, rtol=1e-6, atol=1e-9 * max(float(np.max(np.abs(theirs), initial=0.0)), 1e-300)))
            entry.setdefault("initial_states", {})[s] = "the same" if same else "different"
        matches.append(entry)
    return NamingResult(matches, int(naming.tried), list(naming.tried_kinds), naming.stopped, list(given))
