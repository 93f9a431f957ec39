"""Reproducible random parameters and data for numerical checks."""

from __future__ import annotations

import numpy as np


def random_params(shapes, seed=0):
    """Random float64 parameters, entries ``N(0, 1) * 0.5 / sqrt(cols)``.

    Parameters
    ----------
    shapes : dict of str to tuple of int
        Name -> ``(rows, cols)``; drawn in the order of the dict.
    seed : int or numpy.random.Generator, optional
        Passed to ``numpy.random.default_rng``.

    Returns
    -------
    dict of str to numpy.ndarray
        One float64 array per name. The ``1/sqrt(cols)`` scale keeps
        ``W @ v`` of order one, so ``tanh`` does not saturate.
    """
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in shapes.items():
        shape = tuple(int(n) for n in shape)
        cols = shape[-1] if shape else 1
        params[name] = rng.standard_normal(shape) * (0.5 / np.sqrt(max(cols, 1)))
    return params


def random_inputs(shape, rng):
    """Standard-normal float64 array.

    Parameters
    ----------
    shape : tuple of int
        For example ``(T, F, B)`` for ``x`` or ``(H, B)`` for ``h_0``.
    rng : int or numpy.random.Generator
        Passed to ``numpy.random.default_rng``.

    Returns
    -------
    numpy.ndarray
    """
    return np.random.default_rng(rng).standard_normal(tuple(shape))


def random_classes(T, B, n_classes, rng):
    """Uniform random class indices.

    Parameters
    ----------
    T, B : int
        Steps and batch columns.
    n_classes : int
        Classes are drawn from ``0 .. n_classes - 1``.
    rng : int or numpy.random.Generator
        Passed to ``numpy.random.default_rng``.

    Returns
    -------
    numpy.ndarray
        ``(T, B)`` int64 array.
    """
    return np.random.default_rng(rng).integers(0, n_classes, size=(T, B), dtype=np.int64)
