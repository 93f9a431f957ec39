"""The result of one ``derive against`` comparison."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from .intermediates import AdjointCheck
from .localise import ParamRow, Sweep, loss_agrees
from .naming import NamingResult


@dataclass
class AgainstResult:
    """Everything one comparison found; ``to_json`` gives the ``--json`` document."""

    model: str
    source: str
    sizes: Dict[str, int]
    seed: int
    rtol: float
    atol: float
    loss: Optional[float]
    reference_loss: float
    rows: List[ParamRow]
    sweep: Optional[Sweep] = None
    naming: Optional[NamingResult] = None
    adjoints: Optional[AdjointCheck] = None
    notes: List[str] = field(default_factory=list)
    seconds: Dict[str, float] = field(default_factory=dict)
    entry_errors: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """Every entry's relative error by parameter (the report's heat map; not in the JSON)."""
    length_errors: Dict[int, Dict[str, float]] = field(default_factory=dict)
    """The largest relative error by parameter at each length the T sweep ran (the report's per-step plot)."""

    @property
    def wrong(self) -> List[str]:
        return [r.name for r in self.rows if not r.passed]

    @property
    def loss_agrees(self) -> Optional[bool]:
        return loss_agrees(self.loss, self.reference_loss, self.rtol)

    @property
    def passed(self) -> bool:
        return not self.wrong and self.loss_agrees is not False and \
            (self.adjoints is None or self.adjoints.first_wrong is None)

    @property
    def status(self) -> int:
        return 0 if self.passed else 1
