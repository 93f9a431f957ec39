"""Section 6 of a model report: the figures, drawn from runs of the generated code."""

from __future__ import annotations

from typing import Dict

from .document import Doc
from .latex import escape_text, fmt_sci, name_math, sizes_math
from .sizes import small_sizes
from .typeset import Typesetter


def figures_section(doc: Doc, typeset: Typesetter, code: str, sizes: Dict[str, int], seed: int):
    """Write the section of figures: gradient norms over the steps, every entry's error, the step sweep.

    Parameters
    ----------
    doc : Doc
        The document being written.
    typeset : Typesetter
        The model, its derivation, and how they are typeset.
    code : str
        The generated module the figures run.
    sizes : dict
        Sizes of the numeric evidence (the figures cap them: :func:`~derive.report.sizes.small_sizes`).
    seed : int
        Seed of the parameters and the data.
    """
    import numpy as np

    from ..emit.loader import import_source
    from ..emit.readable import adjoint_variables
    from ..numeric import random_params
    from ..verify.run import concrete_shape, random_data
    from .figures import STEP_EXPONENTS, Axes, adjoint_norms, entry_errors, heat_map, line_plot, log_ticks, step_sweep
    model = typeset.model
    module = import_source(code)
    doc.add(r"\section{Figures}\label{sec:figures}", "")

    def draw(size_set):
        shapes = {s.name: concrete_shape(s.shape, size_set) for s in model.params}
        params = random_params(shapes, seed)
        data = random_data(model, module, size_set, seed)
        return params, data

    if model.states and model.has_steps:
        fig_sizes = dict(sizes)
        fig_sizes["T"] = max(sizes.get("T", 1), 20)
        params, data = draw(fig_sizes)
        norms = adjoint_norms(model, typeset.derivation, module, params, data)
        series = []
        lo, hi = 0, 0
        for name, points in norms.items():
            pts = [(float(t), float(np.log10(v))) for t, v in points if v > 0]
            if not pts:
                continue
            series.append((rf"$\|{typeset.adj(name)}\|$", pts))
            lo = min(lo, int(np.floor(min(p[1] for p in pts))))
            hi = max(hi, int(np.ceil(max(p[1] for p in pts))))
        if series:
            if hi == lo:
                hi = lo + 1
            T = fig_sizes["T"]
            ax = Axes(0, T, lo, hi)
            xt = [(float(t), str(t)) for t in range(0, T + 1, 5 if T > 10 else 1)]
            every = 1 if hi - lo <= 8 else 2
            pic = line_plot(series, ax, xt, log_ticks(lo, hi, every), r"step $t$", r"norm")
            plotted = [name for name in norms if any(v > 0 for _, v in norms[name])]
            arrays = adjoint_variables(model, typeset.derivation)
            many = len(plotted) > 1
            grads = " and ".join(f"${typeset.adj(n)}$" for n in plotted)
            tt = " and ".join(r"\texttt{%s}" % escape_text(arrays[n]) for n in plotted)
            doc.add(r"\begin{figure}[htbp]", r"\centering", pic,
                    rf"\caption{{\label{{fig:norms}}Frobenius norm of "
                    rf"{grads} over the steps "
                    rf"(log scale), at ${sizes_math(fig_sizes)}$, seed {seed}; $t = 0$ is the initial state. "
                    rf"The values are the {tt} "
                    rf"array{'s' if many else ''} the generated "
                    r"\texttt{loss{\ttfamily\char95}and{\ttfamily\char95}gradients} "
                    r"computes, captured as the function returns. A slope downwards towards $t = 0$ means "
                    r"vanishing gradients, upwards exploding ones.}", r"\end{figure}", "")
            doc.para(r"Figure~\ref{fig:norms} follows the recurrent term backwards: each step multiplies the "
                     r"gradient by the transposed recurrent weight and by the activation's derivative, so its "
                     r"norm changes roughly geometrically with the distance from the loss.")

    small = small_sizes(model, sizes)
    params, data = draw(small)
    _, grads = module.loss_and_gradients(params, data)
    errors = entry_errors(module, params, data, grads)
    grids = []
    for name, err in errors.items():
        grid = np.log10(np.maximum(np.asarray(err, dtype=float), 1e-17))
        grid = np.round(grid, 2)
        grids.append((rf"${name_math(name)}$", grid))
    worst = max(float(np.max(e)) for e in errors.values())
    doc.add(r"\begin{figure}[htbp]", r"\centering", heat_map(grids),
            rf"\caption{{\label{{fig:heat}}$\log_{{10}}$ of the relative error of every entry of the generated "
            rf"gradient against central differences (default step $\epsilon^{{1/3}}\max(1,|p|)$), at "
            rf"${sizes_math(small)}$, seed {seed}. One cell per entry, laid out as the matrix; the largest "
            rf"is ${fmt_sci(worst)}$.}}", r"\end{figure}", "")
    sweep = step_sweep(module, params, data, grads)
    if not sweep:
        doc.para("Every gradient is zero at these sizes, so there is no relative error to follow as the "
                 "finite-difference step shrinks.")
        doc.add(r"\clearpage", "")
        return
    series = []
    for name, (index, points) in sweep.items():
        series.append((rf"${name_math(name)}[{index[0]},{index[1]}]$", points))
    lo = int(np.floor(min(p[1] for _, pts in series for p in pts)))
    hi = max(0, int(np.ceil(max(p[1] for _, pts in series for p in pts))))
    ax = Axes(min(STEP_EXPONENTS), max(STEP_EXPONENTS), lo, hi)
    xt = log_ticks(int(min(STEP_EXPONENTS)), int(max(STEP_EXPONENTS)), 2)
    pic = line_plot(series, ax, xt, log_ticks(lo, hi, 2 if hi - lo > 8 else 1), r"step $h$",
                    "rel.\\ error", vline=(float(np.log10(np.finfo(float).eps ** (1 / 3))),
                                           r"$\epsilon^{1/3}$"))
    doc.add(r"\begin{figure}[htbp]", r"\centering", pic,
            rf"\caption{{\label{{fig:steps}}Relative error of the central difference $(L(p+h)-L(p-h))/2h$ "
            rf"against the complex-step derivative, as the step $h$ shrinks, at each parameter's largest "
            rf"gradient entry (${sizes_math(small)}$, seed {seed}). Truncation error falls as $h^2$ on the "
            rf"right; rounding error grows as $\epsilon/h$ on the left; the best step is near "
            rf"$\epsilon^{{1/3}} \approx 6\times 10^{{-6}}$.}}", r"\end{figure}", "")
    doc.add(r"\clearpage", "")
