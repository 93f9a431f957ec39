"""Numerical derivatives of a scalar loss: central differences, complex step,
random directions.

Every function takes a loss ``loss(params, data) -> scalar`` and never
changes the caller's arrays. Wrap the loss in :class:`CountingLoss` to report
how many forward passes a check cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = np.finfo(np.float64).eps
"""float64 machine epsilon, 2**-52."""


class CountingLoss:
    """A loss function that counts its calls (forward passes).

    Parameters
    ----------
    loss : callable
        ``loss(params, data) -> scalar``.

    Attributes
    ----------
    calls : int
        Number of calls so far.

    Examples
    --------
    >>> counted = CountingLoss(lambda p, d: (p["w"] ** 2).sum())
    >>> _ = complex_step(counted, {"w": np.ones(3)}, {}, "w")
    >>> counted.calls
    3
    """

    def __init__(self, loss):
        self.loss = loss
        self.calls = 0

    def __call__(self, params, data):
        self.calls += 1
        return self.loss(params, data)

    def reset(self) -> int:
        """Set the count to zero and return the count it had."""
        calls, self.calls = self.calls, 0
        return calls


def _flat_indices(size: int, name: str, indices) -> np.ndarray:
    """Validated flat indices into an array of ``size`` entries (all when None)."""
    if indices is None:
        return np.arange(size)
    flat = np.asarray(indices, dtype=np.intp).reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= size):
        raise ValueError(f"indices into {name} must lie in [0, {size})")
    return flat


def central_difference_step(values) -> np.ndarray:
    """Default central-difference step for float64: ``eps**(1/3) * max(1, |p|)``.

    Parameters
    ----------
    values : array_like of float
        Parameter values ``p_i``.

    Returns
    -------
    numpy.ndarray
        Step ``h_i`` for each value.

    Notes
    -----
    The central difference ``(L(p + h) - L(p - h)) / (2h)`` has truncation
    error ``h**2 |L'''| / 6`` and rounding error about ``eps |L| / h`` (each
    loss value carries a relative rounding error ``~eps``, divided by
    ``2h``). The sum is smallest near ``h ~ eps**(1/3)`` (about ``6e-6``),
    where both are ``O(eps**(2/3))``, about ``4e-11`` relative for a loss and
    derivatives of order one. Scaling by ``max(1, |p_i|)`` keeps the step
    relative for large parameters, so that ``p_i + h_i`` differs from
    ``p_i`` in enough digits.
    """
    values = np.asarray(values, dtype=np.float64)
    return EPS ** (1 / 3) * np.maximum(1.0, np.abs(values))


def central_difference(loss, params, data, name, indices=None, step=None):
    """Central-difference estimates of ``dL/dparams[name]``.

    Parameters
    ----------
    loss : callable
        ``loss(params, data) -> scalar``.
    params : dict of str to numpy.ndarray
        Parameters; all are cast to float64 for the evaluation.
    data : dict
        Passed to ``loss`` unchanged.
    name : str
        The parameter to differentiate.
    indices : array_like of int, optional
        Flat (C-order) indices into ``params[name]``; all entries when None.
    step : float, optional
        A fixed step. By default ``h_i = eps**(1/3) * max(1, |p_i|)`` (see
        :func:`central_difference_step` for why).

    Returns
    -------
    numpy.ndarray
        float64 estimates, one per index (shaped like ``params[name]`` when
        ``indices`` is None).

    Notes
    -----
    Costs two forward passes per entry. The step actually used is
    ``(p_i + h_i) - p_i``, which is exactly representable, so the division
    adds no error of its own.
    """
    work = {key: np.array(value, dtype=np.float64) for key, value in params.items()}
    target = work[name].reshape(-1)  # a view: writes go into work[name]
    flat = _flat_indices(target.size, name, indices)
    steps = (
        central_difference_step(target[flat])
        if step is None
        else np.full(flat.shape, float(step))
    )
    out = np.empty(flat.shape, dtype=np.float64)
    for k, (i, h) in enumerate(zip(flat, steps)):
        p_i = target[i]
        h = (p_i + h) - p_i
        target[i] = p_i + h
        loss_plus = np.real(loss(work, data))
        target[i] = p_i - h
        loss_minus = np.real(loss(work, data))
        target[i] = p_i
        out[k] = (loss_plus - loss_minus) / (2 * h)
    return out.reshape(np.shape(params[name])) if indices is None else out


@dataclass(frozen=True)
class CentralEstimates:
    """Central-difference estimates of some entries of a gradient, with their error.

    Attributes
    ----------
    value : numpy.ndarray
        Richardson's combination ``(4 D(h) - D(2h)) / 3`` of the central
        differences at steps ``h`` and ``2h``, one per entry.
    error : numpy.ndarray
        An estimate of how far ``value`` may be from the derivative:
        ``|D(h) - D(2h)|`` (three times ``D(h)``'s own truncation error,
        and at least the rounding noise the two differences show) plus
        ``2 * noise / h``, with ``noise = 16 eps max |L|`` over the passes.
    step : numpy.ndarray
        The step ``h`` of each entry.
    smooth : numpy.ndarray of bool
        False where the loss took another branch (a ``relu`` or ``step``
        argument changed sign) at one of the four points than at the
        unperturbed one: the derivative is not defined by differences there.
    """

    value: np.ndarray
    error: np.ndarray
    step: np.ndarray
    smooth: np.ndarray


def central_difference_estimates(loss, params, data, name, indices=None, branches=None, settled=None):
    """Central differences at two steps per entry, with an error estimate and kink detection.

    Parameters
    ----------
    loss : callable
        ``loss(params, data) -> scalar``.
    params : dict of str to numpy.ndarray
        Parameters; all are cast to float64 for the evaluation.
    data : dict
        Passed to ``loss`` unchanged.
    name : str
        The parameter to differentiate.
    indices : array_like of int, optional
        Flat (C-order) indices into ``params[name]``; all entries when None.
    branches : callable, optional
        Called right after each loss evaluation, returns a hashable record of
        the branches it took (the signs of every ``relu`` argument, say).
        Without it every entry counts as smooth.
    settled : callable, optional
        ``settled(k, value, error) -> bool`` for the ``k``-th index, given
        ``D(h)`` and its rounding error ``2 * noise / h``: True keeps that
        estimate and skips the passes at ``2h`` (the caller already agrees
        with it), which halves the cost where nothing is in doubt.

    Returns
    -------
    CentralEstimates
        One value per index (flat).

    Notes
    -----
    Costs four forward passes per entry (two where ``settled`` says so) and
    one more per call. The step is
    chosen per entry, ``h_i = eps**(1/3) * max(1, |p_i|)`` (see
    :func:`central_difference_step`), and the difference of the estimates at
    ``h_i`` and ``2 h_i`` measures what that choice left: truncation where
    the loss curves, rounding where it is flat or large.
    """
    work = {key: np.array(value, dtype=np.float64) for key, value in params.items()}
    target = work[name].reshape(-1)
    flat = _flat_indices(target.size, name, indices)
    if branches:
        branches()  # forget what earlier calls recorded
    base = float(np.real(loss(work, data)))
    base_branches = branches() if branches else None
    steps = central_difference_step(target[flat])
    value = np.empty(flat.shape)
    error = np.empty(flat.shape)
    used = np.empty(flat.shape)
    smooth = np.ones(flat.shape, dtype=bool)
    for k, (i, h) in enumerate(zip(flat, steps)):
        p_i = target[i]
        h = (p_i + h) - p_i
        losses = []
        for offset in (h, -h, 2 * h, -2 * h):
            if len(losses) == 2:
                d1 = (losses[0] - losses[1]) / (2 * h)
                rounding = 2 * 16 * EPS * max(abs(base), *(abs(x) for x in losses)) / h
                if settled is not None and smooth[k] and settled(k, d1, rounding):
                    value[k], error[k] = d1, rounding
                    break
            target[i] = p_i + offset
            losses.append(float(np.real(loss(work, data))))
            if branches and branches() != base_branches:
                smooth[k] = False
        target[i] = p_i
        used[k] = h
        if len(losses) == 4:
            d2 = (losses[2] - losses[3]) / (4 * h)
            noise = 16 * EPS * max(abs(base), *(abs(x) for x in losses))
            value[k] = (4 * d1 - d2) / 3
            error[k] = abs(d1 - d2) + 2 * noise / h
    return CentralEstimates(value, error, used, smooth)


def complex_step(loss, params, data, name, indices=None, step=1e-30):
    """Complex-step estimates ``Im L(p + i h e_i) / h`` of ``dL/dparams[name]``.

    Parameters
    ----------
    loss : callable
        ``loss(params, data) -> scalar``; must be complex-analytic in the
        parameters (no ``abs``, comparisons or ``conj`` except on real parts).
    params : dict of str to numpy.ndarray
        Parameters; all are converted to complex128.
    data : dict
        Passed to ``loss`` unchanged.
    name : str
        The parameter to differentiate.
    indices : array_like of int, optional
        Flat (C-order) indices into ``params[name]``; all entries when None.
    step : float, optional
        Imaginary step ``h``, 1e-30 by default. There is no subtraction, so
        the estimate has no cancellation error and a tiny step makes the
        truncation error ``O(h**2)`` vanish: the result is exact to rounding.

    Returns
    -------
    numpy.ndarray
        float64 estimates, one per index (shaped like ``params[name]`` when
        ``indices`` is None).

    Notes
    -----
    Costs one forward pass per entry.
    """
    work = {key: np.array(value, dtype=np.complex128) for key, value in params.items()}
    target = work[name].reshape(-1)
    flat = _flat_indices(target.size, name, indices)
    out = np.empty(flat.shape, dtype=np.float64)
    for k, i in enumerate(flat):
        p_i = target[i]
        target[i] = p_i + 1j * step
        out[k] = np.imag(loss(work, data)) / step
        target[i] = p_i
    return out.reshape(np.shape(params[name])) if indices is None else out


@dataclass(frozen=True)
class DirectionCheck:
    """One random-direction check of a gradient.

    Attributes
    ----------
    index : int
        Direction number, from 0.
    complex_step : float
        ``Im L(p + i h v) / h``, the directional derivative along ``v``.
    gradient : float
        ``sum over params of <gradients[name], v[name]>``.
    abs_error : float
        ``|gradient - complex_step|``.
    rel_error : float
        ``abs_error / max(|complex_step|, 1e-300)``.
    """

    index: int
    complex_step: float
    gradient: float
    abs_error: float
    rel_error: float


def random_directions(params, n_directions=4, seed=0):
    """Unit random directions over all parameters.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        Gives the names, order and shapes.
    n_directions : int, optional
        How many directions.
    seed : int, optional
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    list of dict of str to numpy.ndarray
        Each a dict of standard-normal float64 arrays, one per parameter
        (drawn in the order of ``params``), scaled to total norm one.
    """
    rng = np.random.default_rng(seed)
    directions = []
    for _ in range(n_directions):
        v = {name: rng.standard_normal(np.shape(value)) for name, value in params.items()}
        norm = np.sqrt(sum(float(np.sum(a * a)) for a in v.values()))
        directions.append({name: a / norm for name, a in v.items()})
    return directions


def random_direction_check(
    loss, gradients, params, data, n_directions=4, seed=0, step=1e-30
):
    """Check a whole gradient along random directions by complex step.

    For each unit direction ``v`` (see :func:`random_directions`), compare
    the directional derivative ``Im L(p + i h v) / h`` (one complex forward
    pass) with ``sum over params of <gradients[name], v[name]>``. The cost
    is ``n_directions`` forward passes whatever the number of parameters; a
    wrong entry shows up unless ``v`` is orthogonal to the error, which has
    probability zero.

    Parameters
    ----------
    loss : callable
        ``loss(params, data) -> scalar``, complex-analytic in the parameters.
    gradients : dict of str to numpy.ndarray
        The gradient under test, one array per parameter, shaped like it.
    params : dict of str to numpy.ndarray
        Where to check; converted to complex128 for the passes.
    data : dict
        Passed to ``loss`` unchanged.
    n_directions : int, optional
        Number of directions (forward passes).
    seed : int, optional
        Seed of ``numpy.random.default_rng`` for the directions.
    step : float, optional
        Imaginary step ``h``.

    Returns
    -------
    list of DirectionCheck
        One record per direction.

    Raises
    ------
    ValueError
        When ``gradients`` lacks a parameter or has a wrongly shaped entry.
    """
    for name, value in params.items():
        if name not in gradients:
            raise ValueError(f"gradients has no entry {name!r}")
        if np.shape(gradients[name]) != np.shape(value):
            raise ValueError(
                f"gradients[{name!r}] has shape {np.shape(gradients[name])}, "
                f"expected {np.shape(value)}"
            )
    records = []
    for k, v in enumerate(random_directions(params, n_directions, seed)):
        shifted = {
            name: np.asarray(value, dtype=np.complex128) + 1j * step * v[name]
            for name, value in params.items()
        }
        by_complex_step = float(np.imag(loss(shifted, data)) / step)
        by_gradient = float(
            sum(np.sum(np.real(gradients[name]) * v[name]) for name in params)
        )
        abs_error = abs(by_gradient - by_complex_step)
        records.append(
            DirectionCheck(
                index=k,
                complex_step=by_complex_step,
                gradient=by_gradient,
                abs_error=abs_error,
                rel_error=abs_error / max(abs(by_complex_step), 1e-300),
            )
        )
    return records
