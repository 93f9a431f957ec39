"""A faster style of the generated NumPy module: same interface, fewer temporaries.

The readable module (:mod:`derive.emit.readable`) writes each equation as one NumPy
expression, so every operator allocates a fresh array; at the notes'
regression size (H x B = 50 x 8317) each is 3.3 MB, allocated, page-faulted
and freed again at every step. This style writes the same statements as a
sequence of ufunc calls with ``out=``: the result goes straight into its
stored array (``z[t]``, ``dL_dz[t]``) and an inner result that needs its own
room goes into a scratch buffer allocated once, before the time loop.

``tanh`` is ``np.tanh`` where NumPy runs its SIMD float64 ``tanh`` (CPUs
with AVX-512: 0.33 ms for the 415,850 entries of one regression ``h_t``,
against 0.73 ms through ``exp``). Elsewhere NumPy's float64 ``tanh`` is a
scalar loop, about 3x slower than its vectorised ``exp``, and a large real
array goes through ``tanh a = 1 - 2 / (1 + exp(2a))``: an absolute error
below 1e-15 (``exp`` overflowing to ``inf`` gives exactly 1), so a relative
error that grows as ``|a|`` shrinks (2e-12 for ``|a|`` near 1, 1e-3 near
1e-8). Complex arrays (complex-step checks) and small arrays always use
``np.tanh``.

Work that does not need the time loop leaves it (small problems are
dominated by Python's cost per statement): a step equation nothing in the
loop reads (the output layer, softmax, per-step losses) is computed after the
forward loop for every step at once, on the stacked ``(T, m, n)`` arrays; a
step adjoint term that reads no adjoint computed in the loop (``dL/do_t =
y_t - onehot(c_t)``, ``W_hy.T @ dL/do_t``) is computed before the backward
loop; and a parameter gradient summed over steps is one stacked product after
it (``sum_t dL/dz_t @ h_{t-1}.T`` as ``_tsum_dot``). Inside the loops, what
reads nothing the loop computes is taken out too: the input part of a loop
equation (``W_xh @ x_t + b_h`` of ``z_t``, where its stack is small at the
model's default sizes) and the adjoint-free factor of a loop adjoint (``1 -
h_t**2`` of ``dL/dz_t``), each computed for every step before its loop. An
adjoint read only at its own step inside the loop keeps one buffer for every
step. Anything the stacked printer cannot write stays in the loop as before.

At one column a step (the character model at B = 1) a call's cost is NumPy's
cost per call, not arithmetic: a step's product is ``np.dot``, which costs
less a call than ``np.matmul`` (:mod:`derive.emit.in_place`); a product for
every step at once of one column is one product of the steps' columns
(``_stacked_matmul``), and a parameter's sum over steps of one-column
products one product with the steps as its inner axis, no copy
(``_tsum_dot``); the size of a pooled array is ``math.prod``, not
``np.prod``; a parameter's gradient that is one such sum is assigned by it,
not added to zeros. Together these took the character model's gradient at
B = 1 from 536 us to 347 us, at B = 32 from 3.99 ms to 3.65 ms and at the
regression size from 69.0 ms to 56.4 ms (interleaved in one process, one BLAS
thread; bench/README.md).

Arrays of 128 kB or more that live for one call (the ``(T + 1, ...)`` stacks,
scratch buffers) come from a pool kept between calls (``BUFFER_BYTES``, at most
256 MiB; ``release_buffers()`` empties it): glibc maps such arrays fresh from
the system and hands them back on free, and faulting their pages in again at
every call took 40 % of the character model's gradient at B = 32. Nothing
returned to the caller is pooled. A stack its function assigns at every step
before reading it (``_stack``) is zero-filled at its step 0 only. When the
loss is a sum or mean over a batch's columns (:mod:`derive.emit.batch_split`),
``threads=N`` splits the columns over N threads (:mod:`derive.emit.threads`).

The statements are generated from the same matrix derivation as the
readable module, node by node: ``+ - * /``, ``@``, ``** n``, negation,
``tanh``, ``exp``, ``log`` and ``sigmoid`` are written in place; anything
else (softmax, sums, picks, ...) is printed exactly as the readable module
prints it. Every statement keeps its equation as a comment above it.

The writer comes in parts: the in-place statements and their scratch buffers
(:mod:`derive.emit.in_place`), the forward pass (:mod:`derive.emit.fast_forward`),
the backward pass (:mod:`derive.emit.fast_backward`), the all-steps-at-once
printer (:mod:`derive.emit.stacked_printer`) and the helpers' source text
(:mod:`derive.emit.module_helpers`).
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

from ..calculus.matrix import MatrixDerivation
from ..model.model import Model
from .batch_split import NotSplittable, batch_split
from .fast_backward import FastBackwardSection
from .fast_forward import FastForwardSection
from .in_place import SPEED_HELPERS, InPlaceStatements, Scratch
from .module_helpers import FAST_HELPERS, HELPERS
from .readable import ModuleWriter, generate_module
from .readable_interface import docstring_text, regenerate_command
from .stacked_printer import FastPrinter
from .threads import PART_GRADIENT, PART_LOSS, batch_doc_lines, batch_entry_points


class FastModuleWriter(FastForwardSection, FastBackwardSection, InPlaceStatements, ModuleWriter):
    """The readable module's writer with statements written as in-place ufunc calls."""

    forward_call = "_forward(params, data, keep=True)"  # every step of every value, for forward()

    def __init__(self, model: Model, derivation: MatrixDerivation):
        super().__init__(model, derivation)
        self.p = FastPrinter(model)
        self.scratch = Scratch()
        try:
            self.split = batch_split(model)
        except NotSplittable:
            self.split = None
        if self.split is not None:
            self.loss_name, self.gradient_name = PART_LOSS, PART_GRADIENT

    def header(self):
        """The readable module's docstring, with how ``threads=N`` splits the batch when it can."""
        super().header()
        if self.split is not None:
            self.lines[-2:-2] = batch_doc_lines(self.split)  # before the closing quotes

    def compose(self) -> str:
        """The readable module's text turned fast: helpers, pooled stacks, imports and threaded entry points."""
        text = super().compose()
        text = text.replace(HELPERS, HELPERS + FAST_HELPERS + SPEED_HELPERS, 1)
        # every (T + 1)-step stack comes from the pool of arrays kept between calls
        text = re.sub(r"(\w+) = np\.zeros\((\(T \+ 1, [^()]*\)), dtype=dtype\)",
                      lambda m: f"{m[1]} = {'_stack' if m[1] in self.written_stacks else '_zeros'}({m[2]}, dtype)",
                      text)
        for name in (self.loss_name, self.gradient_name, "forward"):
            text = text.replace(f"\ndef {name}(", f"\n@_pooled\ndef {name}(", 1)
        imports = "import collections\nimport functools\nimport importlib\nimport math\nimport threading\n"
        if self.split is not None:
            imports += "from concurrent.futures import ThreadPoolExecutor\n"
        text = text.replace("import numpy as np\n", f"{imports}\nimport numpy as np\n", 1)
        if self.split is not None:
            text += "\n\n" + "\n".join(batch_entry_points(self.model, self.split, self.data_dims)) + "\n"
        return text.replace("generated by derive", "fast style, generated by derive", 1) \
                   .replace(docstring_text(regenerate_command(self.model)),
                            docstring_text(regenerate_command(self.model, "--style fast")), 1)


def generate_fast_module(model: Model, derivation: MatrixDerivation) -> str:
    """The fast-style NumPy module's source (same interface and tables as :func:`generate_module`).

    Where the fast writer cannot handle the model, the readable module; see
    :func:`fast_module_or_readable` for the reason.
    """
    return fast_module_or_readable(model, derivation)[0]


def fast_module_or_readable(model: Model, derivation: MatrixDerivation) -> Tuple[str, Optional[str]]:
    """The fast-style module's source and None, or the readable module's and why the fast one is not written.

    Returns
    -------
    (str, str or None)
        The source, and None when it is the fast style; otherwise the
        readable module (correct for every model) and the fast writer's
        reason, to be told to the user.
    """
    try:
        return FastModuleWriter(model, derivation).write(), None
    except Exception as err:  # a construct this style does not handle: the readable module is correct
        return generate_module(model, derivation), f"{type(err).__name__}: {err}"


__all__ = ["generate_fast_module", "fast_module_or_readable", "FastModuleWriter"]
