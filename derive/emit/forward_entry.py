"""The generated module's public ``forward(params, data)``: every value of the forward pass, by the model's names.

Both styles write it from :func:`forward_keys`. A per-step value is returned
stacked over the steps 1..T on axis 0 (``v['h'][t - 1]`` is ``h_t``, as the
per-step data arrays are given); a state's last step also on its own
(``h_T``, the ``h_0`` of the next chunk); a global value with its declared
shape; the loss as the scalar ``loss()`` returns. Every array is a copy: the
fast style's stacks come from a pool that the next call reuses. The input is
checked by ``_forward``, so ``forward`` refuses exactly what ``loss`` refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from ..model.model import Model
from ..notation.expr import Binary, Call, Node, Pick, Ref, walk
from .numpy_printer import variable

MONOTONE = {"log", "exp", "softmax", "sigmoid", "tanh"}
"""Column-wise functions that keep the order of a column's entries: the argmax of f(o) is o's."""


@dataclass(frozen=True)
class ForwardKey:
    """One entry of the dict ``forward`` returns.

    ``what`` is ``"steps"`` (a per-step value, every step), ``"last"`` (a
    state's last step), ``"value"`` (a global value) or ``"loss"``; ``dims``
    are the returned array's dims, by size name.
    """

    key: str
    name: str
    what: str
    dims: Tuple


def forward_keys(model: Model) -> List[ForwardKey]:
    """The entries of ``forward``'s dict, in the order of the equations, then the last states.

    A per-step value is keyed by its name without ``_t`` (``h``) unless a global
    value or a last state has that name (``L_t`` beside ``L`` keeps its ``_t``).
    """
    last = [ForwardKey(f"{s.base}_T", s.name, "last", tuple(s.shape)) for s in model.states]
    taken = {s.name for s in model.symbols.values() if not s.per_step} | {k.key for k in last}
    out: List[ForwardKey] = []
    for eq in model.equations:
        sym = model.symbols[eq.name]
        if eq.name == model.loss:
            out.append(ForwardKey(eq.name, eq.name, "loss", ()))
        elif sym.per_step:
            key = sym.base if sym.base not in taken else sym.name
            while key in taken:
                key += "_"
            taken.add(key)
            out.append(ForwardKey(key, eq.name, "steps", ("T",) + tuple(sym.shape)))
        else:
            out.append(ForwardKey(eq.name, eq.name, "value", tuple(sym.shape)))
    return out + last


def _ranked(node: Node) -> Optional[Ref]:
    """The value whose column order ``node`` keeps (``log(y_t)`` -> ``y_t``), or None."""
    while isinstance(node, Call) and node.fn in MONOTONE and len(node.args) == 1:
        node = node.args[0]
    return node if isinstance(node, Ref) else None


def prediction(model: Model) -> Optional[Tuple[str, str]]:
    """(value key, class data key) of the value whose column argmax predicts a class target.

    Found where the loss reads a class target: ``y_t[c_t]`` or ``onehot(c_t) * log(y_t)``.
    None when no equation reads one in a form whose prediction is plain.
    """
    keys = {k.name: k for k in forward_keys(model) if k.what in ("steps", "value")}
    for eq in model.equations:
        for node in walk(eq.expr):
            pairs = []
            if isinstance(node, Pick):
                pairs.append((node.x, node.cls))
            elif isinstance(node, Binary) and node.op == "*":
                for one, other in ((node.a, node.b), (node.b, node.a)):
                    if isinstance(one, Call) and one.fn == "onehot":
                        pairs.append((other, one.args[0]))
            for scores, cls in pairs:
                ref = _ranked(scores)
                if ref is None or ref.name not in keys or not isinstance(cls, Ref):
                    continue
                per_step = model.symbols[cls.name].per_step
                if per_step != model.symbols[ref.name].per_step:
                    continue
                if per_step and not (ref.step.kind == "rel" and ref.step.offset == 0
                                     and cls.step.kind == "rel" and cls.step.offset == 0):
                    continue
                return keys[ref.name].key, model.symbols[cls.name].base
    return None


def _dims_text(dims) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def forward_doc_lines(model: Model) -> List[str]:
    """The module docstring's paragraph on ``forward``: its keys with their shapes, and an example."""
    keys = forward_keys(model)
    phases = {eq.name: eq.phase for eq in model.equations}
    width = max(len(repr(k.key)) for k in keys)
    dims_width = max(len(_dims_text(k.dims)) for k in keys)
    lines = ["",
             "forward(params, data) checks its input as loss() does and returns a dict of",
             "new arrays (a later call leaves them alone), by the model's names; a",
             "per-step value is stacked over the steps t = 1..T on axis 0 ([t - 1] holds",
             "step t, as in the per-step data arrays):"]
    for k in keys:
        what = {"steps": f"{model.display(k.name)}, t = 1..T",
                "last": f"the last state, data[{k.key[:-2] + '_0'!r}] of the next chunk",
                "value": f"{k.name}, computed {'before' if phases[k.name] == 'pre' else 'after'} the steps",
                "loss": "the loss, as loss() returns it (a scalar)"}[k.what]
        lines.append(f"    {k.key!r:<{width}}  {_dims_text(k.dims):<{dims_width}}  {what}")
    guess = prediction(model)
    if guess is not None:
        value, target = guess
        dims = next(k.dims for k in keys if k.key == value)
        shape = _dims_text(dims[:-2] + dims[-1:])
        lines += ["For example, the accuracy of the predicted classes:",
                  "    >>> v = forward(params, data)",
                  f"    >>> guess = v[{value!r}].argmax(axis=-2)  # {shape}: each column's likeliest class",
                  f"    >>> accuracy = np.mean(guess == np.reshape(data[{target!r}], guess.shape))"]
    elif model.states:
        lines += ["For example, to carry the state over to the next chunk of a long sequence:",
                  "    >>> v = forward(params, data)"]
        lines += [f"    >>> next_data[{s.base + '_0'!r}] = v[{s.base + '_T'!r}]" for s in model.states]
    return lines


class ForwardSection:
    """The public ``forward``: ``_forward``'s values copied out under the model's names.

    A part of :class:`derive.emit.readable.ModuleWriter`, which provides ``emit``
    and ``model``; ``forward_call`` is how ``forward`` runs ``_forward``.
    """

    model: Model
    forward_call = "_forward(params, data)"

    def forward_entry(self):
        """``forward(params, data)``: the dict of :func:`forward_keys`."""
        model = self.model
        self.emit("def forward(params, data):")
        self.emit('"""Every value of the forward pass by its name in the model, the last states and the loss.', 1)
        self.emit("", 1)
        self.emit("The input is checked as loss() checks it; the keys and their shapes are listed in", 1)
        self.emit("the module's docstring. Every array returned is new: a later call leaves it alone.", 1)
        self.emit('"""', 1)
        self.emit(f"v = {self.forward_call}", 1)
        self.emit("return {", 1)
        for k in forward_keys(model):
            var = variable(model, k.name)
            value = {"steps": f"v[{var!r}][1:].copy()", "last": f"v[{var!r}][-1].copy()",
                     "value": f"np.array(v[{var!r}])",
                     "loss": f"np.asarray(v[{var!r}]).reshape(())[()]"}[k.what]
            self.emit(f"{k.key!r}: {value},", 2)
        self.emit("}", 1)
        self.emit()
        self.emit()
