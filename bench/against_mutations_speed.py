"""Time naming the slip (``derive/against/mutations.py``) on the 10-step, H=50, B=1000 case.

For each slip a hand-written buggy backward pass of ``elman-regression`` (and
two of the GRU in ``tests/data/gru.rnn``) gives the "user's" gradients; the
script times derive's own gradients, the user's pass and the search for the
slip (cold: no mutant module written before), and prints what it named.
Run from the repository root: ``python bench/against_mutations_speed.py [--budget S] [--blas-threads N]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from derive.against import mutations
from derive.calculus.matrix import derive_matrix
from derive.emit.loader import import_source
from derive.emit.readable import generate_module
from derive.model.build import load_model
from derive.numeric import random_params
from derive.verify.run import concrete_shape, random_data

SIZES = {"H": 50, "B": 1000, "T": 10}


def regression_pass(p, data, slip):
    """elman-regression's BPTT by hand (as derive/numeric/bptt.py), with one slip."""
    x, hs = data["x"], [data["h_0"]]
    for t in range(x.shape[0]):
        hs.append(np.tanh(p["W_hh"] @ hs[-1] + p["W_xh"] @ x[t] + p["b_h"]))
    dy = p["W_hy"] @ hs[-1] + p["b_y"] - data["y_true"]
    dy = dy / dy.shape[1] if slip in ("mean over the batch", "both") else dy
    g = {"W_hy": dy @ hs[-1].T, "b_y": dy.sum(axis=1, keepdims=True)}
    g.update({k: np.zeros_like(p[k]) for k in ("W_hh", "W_xh", "b_h")})
    dz_next = np.zeros_like(hs[0])
    T = x.shape[0]
    for t in range(T, 0, -1):
        dh = (p["W_hy"].T @ dy if t == T else 0) + (0 if slip == "no recurrent term" else p["W_hh"].T @ dz_next)
        dz = dh * ((1 - hs[t]) ** 2 if slip in ("(1 - h)**2", "both") else 1 - hs[t] ** 2)
        g["W_hh"] += dz @ (hs[t] if slip == "h_t in dW_hh" else hs[t - 1]).T
        g["W_xh"] += dz @ x[t - 1].T
        g["b_h"] += dz.sum(axis=1, keepdims=True)
        dz_next = dz
    g["h_0"] = np.zeros_like(hs[0]) if slip == "h_0 zero" else p["W_hh"].T @ dz_next
    return g


def gru_shared_slip(p, data):
    """The GRU's BPTT by hand with ``(1 - n)**2`` in the one shared ``da_n`` (five terms of the derivation)."""
    sig = lambda a: 1 / (1 + np.exp(-a))
    x, hs, gates = data["x"], [data["h_0"]], [None]
    for t in range(x.shape[0]):
        h = hs[-1]
        u = sig(p["W_u"] @ x[t] + p["U_u"] @ h + p["b_u"])
        r = sig(p["W_r"] @ x[t] + p["U_r"] @ h + p["b_r"])
        n = np.tanh(p["W_n"] @ x[t] + p["U_n"] @ (r * h) + p["b_n"])
        hs.append((1 - u) * n + u * h)
        gates.append((u, r, n))
    o = p["W_y"] @ hs[-1] + p["b_y"]
    y = np.exp(o - o.max(axis=0)) / np.exp(o - o.max(axis=0)).sum(axis=0)
    B = y.shape[1]
    y[np.asarray(data["c"]).reshape(B), np.arange(B)] -= 1
    do = y / B
    g = {k: np.zeros_like(v) for k, v in p.items()}
    g["W_y"], g["b_y"] = do @ hs[-1].T, do.sum(axis=1, keepdims=True)
    dh = p["W_y"].T @ do
    for t in range(x.shape[0], 0, -1):
        (u, r, n), h_prev = gates[t], hs[t - 1]
        da_n = dh * (1 - u) * (1 - n) ** 2
        drh = p["U_n"].T @ da_n
        da_r, da_u = drh * h_prev * r * (1 - r), dh * (h_prev - n) * u * (1 - u)
        for gate, da, inner in (("n", da_n, r * h_prev), ("r", da_r, h_prev), ("u", da_u, h_prev)):
            g["W_" + gate] += da @ x[t - 1].T
            g["U_" + gate] += da @ inner.T
            g["b_" + gate] += da.sum(axis=1, keepdims=True)
        dh = dh * u + drh * r + p["U_r"].T @ da_r + p["U_u"].T @ da_u
    g["h_0"] = dh
    return g


def gru_pass(module, params, data):
    """The GRU's gradients with dL/dU_u transposed (a transpose too many)."""
    _, g = module.loss_and_gradients(params, data, wrt_initial_state=True)
    g = dict(g)
    g["U_u"] = g["U_u"].T
    return g


def case(name):
    model = load_model(name)
    derivation = derive_matrix(model)
    module = import_source(generate_module(model, derivation))
    sizes = dict(module.DEFAULT_SIZES)
    sizes.update(SIZES)
    params = random_params({k: concrete_shape(v, sizes) for k, v in module.PARAM_SHAPES.items()}, 0)
    return model, derivation, module, params, random_data(model, module, sizes, 0)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def report(label, model, derivation, module, params, data, user, seconds_user, budget):
    mutations._TEXTS.clear()  # cold: every mutant's module written afresh
    _, seconds_ref = timed(lambda: module.loss_and_gradients(params, data, wrt_initial_state=True))
    naming, seconds_naming = timed(lambda: mutations.name_the_slip(model, derivation, params, data, user,
                                                                    seconds=budget))
    named = "; ".join(m.description for m in naming.matches) or "nothing"
    total = seconds_user + seconds_ref + seconds_naming
    print(f"{label}: derive {seconds_ref:.2f} s, yours {seconds_user:.2f} s, naming {seconds_naming:.2f} s "
          f"({naming.tried} mutants{', ' + naming.stopped if naming.stopped else ''}), total {total:.2f} s")
    print(f"    named: {named}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=6.0, help="the search's time budget in seconds")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads for derive's and the user's passes (the search always uses 1)")
    args = parser.parse_args()
    with threadpool_limits(args.blas_threads):
        return run(args)


def run(args) -> int:
    print(f"sizes {SIZES}, budget {args.budget:g} s")
    model, derivation, module, params, data = case("elman-regression")
    for slip in ("(1 - h)**2", "no recurrent term", "h_t in dW_hh", "mean over the batch", "h_0 zero", "both"):
        user, seconds_user = timed(lambda slip=slip: regression_pass(params, data, slip))
        report(f"elman-regression, {slip}", model, derivation, module, params, data, user, seconds_user, args.budget)
    model, derivation, module, params, data = case("tests/data/gru.rnn")
    user, seconds_user = timed(lambda: gru_pass(module, params, data))
    report("gru, dL/dU_u transposed", model, derivation, module, params, data, user, seconds_user, args.budget)
    user, seconds_user = timed(lambda: gru_shared_slip(params, data))
    report("gru, (1 - n)**2 in the shared da_n", model, derivation, module, params, data, user, seconds_user,
           args.budget)
    return 0


if __name__ == "__main__":
    sys.exit(main())
