"""Shape checks and sizes for the Elman RNN inputs of the built-in models.

One job: read the sizes ``H, F, O, T, B`` off ``params`` and ``data`` and
raise a :class:`ValueError` naming the array and both shapes when they do not
agree, exactly as the generated modules do (see docs/generated-module.md).
"""

from __future__ import annotations

import numpy as np

PARAM_NAMES = ("W_hh", "W_xh", "b_h", "W_hy", "b_y")


def elman_param_shapes(H: int, F: int, O: int) -> dict[str, tuple[int, int]]:
    """Parameter shapes of the built-in Elman models.

    Parameters
    ----------
    H, F, O : int
        Hidden, input and output sizes.

    Returns
    -------
    dict of str to tuple of int
        ``{"W_hh": (H, H), "W_xh": (H, F), "b_h": (H, 1), "W_hy": (O, H),
        "b_y": (O, 1)}``, in that order.
    """
    return {
        "W_hh": (H, H),
        "W_xh": (H, F),
        "b_h": (H, 1),
        "W_hy": (O, H),
        "b_y": (O, 1),
    }


def require_shape(name: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``array`` has shape ``expected``.

    Parameters
    ----------
    name : str
        Name of the array, used in the message.
    array : numpy.ndarray
        The array to check.
    expected : tuple of int
        The shape it must have.

    Raises
    ------
    ValueError
        Naming the array, the expected and the actual shape.
    """
    actual = np.shape(array)
    if tuple(actual) != tuple(expected):
        raise ValueError(
            f"{name} has shape {tuple(actual)}, expected {tuple(expected)}"
        )


def elman_sizes(params: dict, data: dict) -> dict[str, int]:
    """Check the shared Elman arrays and return their sizes.

    Checks every parameter, ``data["x"]`` of shape ``(T, F, B)`` and the
    optional ``data["h_0"]`` of shape ``(H, B)``. Targets are checked by the
    model functions.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        ``W_hh (H, H)``, ``W_xh (H, F)``, ``b_h (H, 1)``, ``W_hy (O, H)``,
        ``b_y (O, 1)``.
    data : dict of str to numpy.ndarray
        At least ``x``.

    Returns
    -------
    dict of str to int
        ``{"H": H, "F": F, "O": O, "T": T, "B": B}``.

    Raises
    ------
    ValueError
        When an array is missing or has the wrong shape.
    """
    for name in PARAM_NAMES:
        if name not in params:
            raise ValueError(f"params has no entry {name!r}")
    if "x" not in data:
        raise ValueError("data has no entry 'x'")
    W_xh, W_hy, x = params["W_xh"], params["W_hy"], data["x"]
    if np.ndim(W_xh) != 2 or np.ndim(W_hy) != 2:
        bad = "W_xh" if np.ndim(W_xh) != 2 else "W_hy"
        raise ValueError(f"{bad} has shape {np.shape(params[bad])}, expected a matrix")
    H, F = np.shape(W_xh)
    O = np.shape(W_hy)[0]
    if np.ndim(x) != 3:
        raise ValueError(f"x has shape {np.shape(x)}, expected (T, F, B) = (T, {F}, B)")
    T, _, B = np.shape(x)
    for name, shape in elman_param_shapes(H, F, O).items():
        require_shape(name, params[name], shape)
    require_shape("x", x, (T, F, B))
    if T < 1:
        raise ValueError(f"x has shape {np.shape(x)}, expected at least one step")
    if data.get("h_0") is not None:
        require_shape("h_0", data["h_0"], (H, B))
    return {"H": H, "F": F, "O": O, "T": T, "B": B}


def class_indices(c: np.ndarray, T: int, B: int, n_classes: int) -> np.ndarray:
    """Integer class targets as a ``(T, B)`` array.

    Parameters
    ----------
    c : array_like of int
        Shape ``(T, B)``; ``(T,)`` and ``(T, 1)`` are accepted for ``B = 1``.
    T, B : int
        Number of steps and batch columns.
    n_classes : int
        Number of classes ``O``; every entry must lie in ``[0, O)``.

    Returns
    -------
    numpy.ndarray
        ``(T, B)`` integer array.

    Raises
    ------
    ValueError
        On a wrong shape, a non-integer dtype or a class out of range.
    """
    c = np.asarray(c)
    if not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"c has dtype {c.dtype}, expected integers")
    if B == 1 and c.shape == (T,):
        c = c.reshape(T, 1)
    require_shape("c", c, (T, B))
    if c.size and (c.min() < 0 or c.max() >= n_classes):
        raise ValueError(f"c has a class outside [0, {n_classes})")
    return c
