"""Single slips injected into generated gradient code: every one must make ``derive verify`` fail.

Each mutation edits one line of the readable module's ``loss_and_gradients``
(the loss is left as generated, so every check measures the slip).
``python -m bench.mutations`` runs them all and prints the table recorded in
``docs/verify.md``; ``tests/test_verify_decision.py`` asserts each is caught.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Dict, List, Tuple

#: (model, text in the module, replacement, the slip)
MUTATIONS: List[Tuple[str, str, str, str]] = [
    ("elman-softmax", "        if t + 1 <= T:\n            dL_dh[t] += W_hh.T @ dL_dz[t + 1]\n", "",
     "drop the recurrent term of dL/dh_t"),
    ("elman-softmax", "dL_dh[t] += W_hh.T @ dL_dz[t + 1]", "dL_dh[t] += W_hh @ dL_dz[t + 1]",
     "drop the transpose of W_hh in the recurrence"),
    ("elman-softmax", "dL_dh[t] * (1 - h[t]**2)", "dL_dh[t] * (1 - h[t])**2",
     "(1 - h)**2 for 1 - h**2"),
    ("elman-softmax", "dL_dh[t] * (1 - h[t]**2)", "dL_dh[t] * (1 - h[t])",
     "1 - h for 1 - h**2"),
    ("elman-softmax", "dL_dW_hh += dL_dz[t] @ h[t - 1].T", "dL_dW_hh += dL_dz[t] @ h[t].T",
     "h_t for h_{t-1} in dL/dW_hh"),
    ("elman-softmax", "dL_dW_xh += dL_dz[t] @ x[t - 1].T", "dL_dW_xh += dL_dz[t] @ x[t - 2].T",
     "x_{t-1} for x_t in dL/dW_xh (data index off by one)"),
    ("elman-softmax", "dL_do[t] = y[t] - _onehot(c[t - 1], O)", "dL_do[t] = _onehot(c[t - 1], O) - y[t]",
     "sign of y - onehot(c)"),
    ("elman-softmax", "dL_dh[0] += W_hh.T @ dL_dz[1]", "dL_dh[0] += W_hh.T @ dL_dz[1] + W_hy.T @ dL_do[1]",
     "a step-0 read-out term in dL/dh_0"),
    ("elman-softmax", "dL_dh[0] += W_hh.T @ dL_dz[1]", "dL_dh[0] += W_hh.T @ dL_dh[1]",
     "dL/dh_1 for dL/dz_1 in dL/dh_0 (tanh derivative dropped at t = 0)"),
    ("elman-softmax", "for t in range(T, 0, -1):", "for t in range(T, 1, -1):",
     "backward loop stops before step 1"),
    ("elman-softmax", "        if t + 1 <= T:\n            dL_dh[t] += W_hh.T @ dL_dz[t + 1]\n",
     "        if t + 1 < T:\n            dL_dh[t] += W_hh.T @ dL_dz[t + 1]\n",
     "recurrent term missing at t = T - 1"),
    ("elman-regression", "dL_dy += y - y_true", "dL_dy += 2 * (y - y_true)",
     "factor 2 of the squared loss kept beside the 1/2"),
    ("elman-regression", "dL_db_h += dL_dz[t].sum(axis=1, keepdims=True)",
     "dL_db_h += dL_dz[t].mean(axis=1, keepdims=True)", "batch mean for the batch sum in dL/db_h"),
    ("elman-regression", "dL_db_y += dL_dy.sum(axis=1, keepdims=True)", "dL_db_y += dL_dy[:, :1]",
     "missing batch sum in dL/db_y (first column only)"),
    ("elman-regression", "        if t == T:\n            dL_dh[t] += W_hy.T @ dL_dy\n",
     "        dL_dh[t] += W_hy.T @ dL_dy\n", "read-out term at every step, not at t = T only"),
    ("elman-regression", "dL_dW_hy += dL_dy @ h[T].T", "dL_dW_hy += dL_dy @ h[T - 1].T",
     "h_{T-1} for h_T in dL/dW_hy"),
    ("gru.rnn", "dL_do += -(1 / B * (_onehot(c, O) - y))", "dL_do += -(_onehot(c, O) - y)",
     "missing 1/B of the batch mean"),
    ("gru.rnn", "dL_dn[t] = dL_dh[t] * (1 - u[t])", "dL_dn[t] = dL_dh[t] * u[t]",
     "u for 1 - u in the GRU's candidate path"),
    ("gru.rnn", "dL_db_u += (dL_du[t] * (u[t] * (1 - u[t]))).sum(axis=1, keepdims=True)",
     "dL_db_u += (dL_du[t] * (u[t] * (1 + u[t]))).sum(axis=1, keepdims=True)", "sigmoid derivative u(1 + u)"),
    ("gru.rnn", "dL_dh[0] += dL_dh[1] * u[1]\n", "", "dL/dh_0 without the gate's direct path"),
    ("lstm.rnn", "        if t + 1 <= T:\n            dL_dc[t] += dL_dc[t + 1] * f[t + 1]\n", "",
     "drop the cell's recurrent term"),
    ("lstm.rnn", "dL_df[t] = dL_dc[t] * c[t - 1]", "dL_df[t] = dL_dc[t] * c[t]", "c_t for c_{t-1} in dL/df_t"),
    ("lstm.rnn", "dL_dc[t] = dL_dh[t] * o[t] * (1 - np.tanh(c[t])**2)", "dL_dc[t] = dL_dh[t] * o[t]",
     "tanh derivative of the cell dropped"),
    ("state_loss.rnn", "dL_dh[0] += W_hh.T @ dL_dz[1]", "dL_dh[0] += W_hh.T @ dL_dz[1] + h[0] - d[-1]",
     "a step-0 loss term in dL/dh_0 (the wrapped d[-1])"),
    ("state_loss.rnn", "dL_dh[t] = h[t] - d[t - 1]", "dL_dh[t] = h[t] - d[t - 1] if t < T else 0 * h[t]",
     "the per-step loss term missing at t = T"),
]


@dataclass
class Caught:
    """What ``derive verify`` said of one mutated module."""

    model: str
    slip: str
    passed: bool
    evidence: List[str]
    verdicts: Dict[str, str]


def model_path(name: str) -> str:
    """A built-in's name as it is, a test model's file under tests/data."""
    return name if not name.endswith(".rnn") else f"tests/data/{name}"


def run_mutations(seed: int = 0) -> List[Caught]:
    """Verify every mutated module; the models' derivations are made once each."""
    from derive.model.build import load_model
    from derive.emit.readable import generate_module
    from derive.calculus.matrix import derive_matrix
    from derive.verify.run import verify

    out = []
    loaded = {}
    for name, old, new, slip in MUTATIONS:
        if name not in loaded:
            model = load_model(model_path(name))
            derivation = derive_matrix(model)
            loaded[name] = model, derivation, generate_module(model, derivation)
        model, derivation, source = loaded[name]
        if source.count(old) != 1:
            raise ValueError(f"{slip}: the text to mutate occurs {source.count(old)} times in {name}")
        sizes = {k: min(v, 12) for k, v in model.sizes.items()}  # the regression's B = 8317 is slow
        result = verify(model, derivation, sizes, seed=seed, entries=30,
                        source=source.replace(old, new))
        out.append(Caught(name, slip, result.passed, result.evidence, result.verdicts()))
    return out


def table(caught: List[Caught]) -> str:
    """The markdown table of the docs."""
    from derive.verify.rule import CHECK_NAMES
    lines = ["| model | slip | verify | checks that caught it |", "|---|---|---|---|"]
    for c in caught:
        found = [CHECK_NAMES[k] for k, v in c.verdicts.items() if v == "disagrees"] or c.evidence
        lines.append(f"| {c.model} | {c.slip} | {'passes (missed!)' if c.passed else 'MISMATCH'} | "
                     f"{', '.join(found)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    results = run_mutations()
    print(table(results))
    missed = [c.slip for c in results if c.passed]
    print(f"\n{len(results) - len(missed)} of {len(results)} slips caught", file=sys.stderr)
    sys.exit(1 if missed else 0)
