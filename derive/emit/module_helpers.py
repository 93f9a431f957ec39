"""The helper functions of the generated modules, as source text pasted into each module.

:data:`HELPERS` go into every module (activations, one-hot columns and picks,
the input checks that ``_sizes`` calls); :data:`FAST_HELPERS` follow them in
the fast style (in-place ``tanh`` and ``sigmoid``, the pool of arrays kept
between calls, stacked all-steps-at-once forms). See :mod:`derive.emit.fast`.
"""

HELPERS = '''

def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _relu(a):
    return a * (a.real > 0)


def _step(a):
    return np.greater(np.real(a), 0).astype(float)  # a may be a Python number: (1 > 0) of two constants


def _softmax(a):
    e = np.exp(a - a.real.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _onehot(classes, n):
    out = np.zeros((n, classes.shape[0]))
    out[classes, np.arange(classes.shape[0])] = 1
    return out


def _place(block, lo, hi, total, axis):
    """``block`` in the span lo:hi of zeros ``total`` long along ``axis`` (the adjoint of a slice)."""
    shape = list(np.shape(block))
    shape[axis] = total
    out = np.zeros(shape, dtype=np.result_type(block, float))
    index = [slice(None)] * len(shape)
    index[axis] = slice(lo, hi)
    out[tuple(index)] = block
    return out


def _pick(a, classes):
    return a[classes, np.arange(a.shape[1])][None, :]


def _log_pick(p, classes, logits):
    """log p[c] in each column of p = softmax(logits); where p[c] underflows, from the logits (log-softmax)."""
    picked = _pick(p, classes)
    if (np.abs(picked) >= np.finfo(float).tiny).all():
        return np.log(picked)
    a = logits()
    a = a - a.real.max(axis=0, keepdims=True)
    return _pick(a - np.log(np.exp(a).sum(axis=0, keepdims=True)), classes)


CHECK_FINITE = True


def _fit(label, array, dims, sizes, sources=None):
    """Check an array against symbolic dims, learning the sizes it fixes; refuse inf and NaN.

    ``sources`` records which array fixed each size, so a mismatch names it."""
    if CHECK_FINITE and not np.isfinite(array).all():
        at = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(f"{label} holds {array[at]} at {at}: the loss and its gradients need finite "
                         "values (replace it, or set CHECK_FINITE = False to let it through)")
    if array.ndim != len(dims):
        raise ValueError(f"{label} has shape {array.shape}; expected {_expected(dims, sizes)}")
    known = dict(sizes)
    sources = {} if sources is None else sources
    for got, dim in zip(array.shape, dims):
        want = dim if isinstance(dim, int) else sizes.setdefault(dim, got)
        if not isinstance(dim, int):
            sources.setdefault(dim, label)
        if got != want:
            given = f", as {sources[dim]} gave it" if sources.get(dim, label) != label else ""
            raise ValueError(f"{label} has shape {array.shape}; expected {_expected(dims, sizes)}"
                             f" ({dim} = {want}{given}){_axes_hint(label, array.shape, dims, known)}")


def _expected(dims, sizes):
    """``(T, F, B) = (4, 3, B)``: the dims by name, then with every size known so far."""
    names = ", ".join(str(d) for d in dims)
    return f"({names}) = ({', '.join(str(sizes.get(d, d)) if isinstance(d, str) else str(d) for d in dims)})"


def _axes_hint(label, shape, dims, sizes):
    """How to reorder the axes of an array that fits with them reordered (batch first, say), or ''."""
    import itertools
    n = len(shape)
    batch_last = tuple(range(1, n)) + (0,)  # the usual slip: the batch (or the step) axis first
    for order in [batch_last] + [o for o in itertools.permutations(range(n)) if o != batch_last]:
        moved, bound = tuple(shape[i] for i in order), dict(sizes)
        if order != tuple(range(n)) and all(
                got == (dim if isinstance(dim, int) else bound.setdefault(dim, got))
                for got, dim in zip(moved, dims)):
            return f"; reordered, its axes fit: pass np.transpose({label}, {order}), of shape {moved}"
    return ""


def _sum_sizes(sizes, sums):
    """Sizes a sum of them gives (H from 4*H), and each sum checked against its sizes (4*H = 4 * H)."""
    for _ in range(len(sums) + 1):
        for dim, (coefs, const) in sums.items():
            unknown = [n for n in coefs if n not in sizes]
            if dim in sizes and len(unknown) == 1:
                rest = sizes[dim] - const - sum(c * sizes[n] for n, c in coefs.items() if n in sizes)
                sizes[unknown[0]] = rest // coefs[unknown[0]]
    for dim, (coefs, const) in sums.items():
        if dim in sizes and all(n in sizes for n in coefs):
            want = const + sum(c * sizes[n] for n, c in coefs.items())
            if sizes[dim] != want:
                known = ", ".join(f"{n} = {sizes[n]}" for n in coefs)
                raise ValueError(f"the arrays give {sizes[dim]} for the dimension {dim}, but {known} "
                                 f"make it {want}: {', '.join(k for k, v in PARAM_SHAPES.items() if dim in v)} "
                                 "has the wrong shape")


def _check_keys(params, data):
    """Refuse a key the model does not have (a misspelt h0 for h_0 would be ignored) and a missing one."""
    for what, given, known in (("params", params, PARAM_SHAPES), ("data", data, DATA_SHAPES)):
        unknown = sorted(set(given) - set(known), key=str)
        if unknown:
            raise ValueError(f"{what} has {', '.join(map(repr, unknown))}, which the model does not have "
                             f"(its {what}: {', '.join(map(repr, known))})")
        missing = [k for k in known if k not in given and k not in INITIAL_STATES]
        if missing:
            raise ValueError(f"{what} lacks {', '.join(map(repr, missing))} (shape "
                             f"{', '.join('(' + ', '.join(map(str, known[k])) + ')' for k in missing)}); "
                             "give every one of "
                             f"{', '.join(map(repr, known))}"
                             + (f" ({', '.join(map(repr, INITIAL_STATES))} may be left out: zeros)"
                                if what == "data" and INITIAL_STATES else ""))


def _check_classes(name, array, count):
    """Class numbers must be whole numbers in 0..count-1 (-1 would wrap around to the last class)."""
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"data[{name!r}] holds class numbers: whole numbers, not {array.dtype}; "
                         "give an integer array (.astype(int) when every entry is whole)")
    if array.size and (array.min() < 0 or array.max() >= count):
        raise ValueError(f"data[{name!r}] holds class numbers 0..{count - 1}; found {array.min()}..{array.max()}: "
                         "number the classes from 0 (class k picks row k)")
'''

FAST_HELPERS = '''

def _numpy_simd_tanh():
    """Whether NumPy's float64 tanh runs its AVX-512 SIMD loop on this CPU."""
    for where in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            return bool(importlib.import_module(where).__cpu_features__.get("AVX512_SKX"))
        except (ImportError, AttributeError):
            continue
    return False


_EXP_TANH = not _numpy_simd_tanh()  # np.tanh is then a scalar loop, slower than exp


def _tanh(a, out=None):
    """tanh(a) into out; through exp for large real arrays when np.tanh is not vectorised (abs. error < 1e-15)."""
    if out is None:
        out = np.empty_like(a)
    if not _EXP_TANH or a.dtype.kind != "f" or a.size < 1024:
        return np.tanh(a, out=out)
    np.multiply(a, 2.0, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)        # e = exp(2a); inf for large a gives tanh = 1 below
    out += 1.0
    np.divide(2.0, out, out=out)    # 2 / (1 + e)
    np.subtract(1.0, out, out=out)  # (e - 1) / (e + 1) = tanh a
    return np.copysign(out, a, out=out)  # tanh(-0.0) = -0.0


def _matmul(a, b, out):
    """a @ b into out; an outer product (one inner column) as a broadcast multiply, not a GEMM."""
    if a.shape[-1] == 1:
        return np.multiply(a, b, out=out)
    return np.matmul(a, b, out=out)


BUFFER_BYTES = 256 * 2**20  # arrays kept between calls, at most (0: keep none)
_MIN_POOLED_BYTES = 128 * 2**10  # smaller arrays come back from malloc without page faults
_free = collections.OrderedDict()  # (shape, dtype) -> arrays no call is using
_free_lock = threading.Lock()
_call = threading.local()  # .taken: the pooled arrays of the running call


def _pooled(function):
    """Run function with its own list of taken arrays; they go back to the pool when it returns.

    A fresh array of a few hundred kB or more is mapped from the system and its pages are
    faulted in at first touch, every call: on a 2-core VM that cost more than the arithmetic
    of the character model. Kept arrays are reused instead (zero-filled where asked).
    """
    @functools.wraps(function)
    def run(*args, **kwargs):
        outer = getattr(_call, "taken", None)
        _call.taken = []
        try:
            return function(*args, **kwargs)
        finally:
            taken, _call.taken = _call.taken, outer
            _give_back(taken)
    return run


def _give_back(arrays):
    with _free_lock:
        for array in arrays:
            _free.setdefault((array.shape, array.dtype.str), []).append(array)
        total = sum(a.nbytes for kept in _free.values() for a in kept)
        while _free and total > BUFFER_BYTES:
            for array in _free.popitem(last=False)[1]:
                total -= array.nbytes


def release_buffers():
    """Drop the arrays kept between calls."""
    with _free_lock:
        _free.clear()


def _empty(shape, dtype):
    """An array for this call: reused from the pool when one of this shape is free."""
    taken = getattr(_call, "taken", None)
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize  # np.prod costs more than a small call's arithmetic
    if taken is None or nbytes < _MIN_POOLED_BYTES:
        return np.empty(shape, dtype=dtype)
    with _free_lock:
        kept = _free.get((tuple(shape), np.dtype(dtype).str))
        array = kept.pop() if kept else None
    if array is None:
        array = np.empty(shape, dtype=dtype)
    taken.append(array)
    return array


def _zeros(shape, dtype):
    """A zero-filled array for this call (see _empty)."""
    array = _empty(shape, dtype)
    array.fill(0)
    return array


def _stack(shape, dtype):
    """A (T + 1, ...) stack for this call that its function writes at every step 1..T before
    reading it: only step 0 (an initial state, or never read) is zero-filled (see _empty)."""
    array = _empty(shape, dtype)
    array[0].fill(0)
    return array


def _one_buffer(shape, steps, dtype):
    """A (steps,) + shape array whose steps all share one buffer (zero stride over t)."""
    buf = _zeros(shape, dtype)
    return np.lib.stride_tricks.as_strided(buf, (steps,) + shape, (0,) + buf.strides)


def _softmax_s(a, out=None):
    """softmax of every column of every step of a stacked (T, n, B) array (into out when given)."""
    e = np.subtract(a, a.real.max(axis=-2, keepdims=True), out=out)
    np.exp(e, out=e)
    e /= e.sum(axis=-2, keepdims=True)
    return e


def _onehot_s(classes, n):
    """Stacked one-hot columns: classes (T, B) -> (T, n, B)."""
    out = np.zeros((classes.shape[0], n, classes.shape[1]))
    out[np.arange(classes.shape[0])[:, None], classes, np.arange(classes.shape[1])[None, :]] = 1
    return out


def _pick_s(a, classes):
    """Stacked pick: a (T, n, B), classes (T, B) -> (T, 1, B)."""
    return a[np.arange(a.shape[0])[:, None], classes, np.arange(a.shape[2])[None, :]][:, None, :]


def _log_pick_s(p, classes, logits):
    """_log_pick of every step of a stacked (T, n, B) p at once."""
    picked = _pick_s(p, classes)
    if (np.abs(picked) >= np.finfo(float).tiny).all():
        return np.log(picked)
    a = logits()
    a = a - a.real.max(axis=-2, keepdims=True)
    return _pick_s(a - np.log(np.exp(a).sum(axis=-2, keepdims=True)), classes)


def _tsum_matmul(a, b):
    """sum over t of a[t] @ b[t] for stacked a (T, m, k), b (T, k, n): no Python loop."""
    steps, m, k = a.shape
    n = b.shape[2]
    if k * (m + n) < m * n:  # thin products: one product over the stacked (t, k) axis
        flat_a = _empty((m, steps * k), a.dtype)
        flat_a.reshape(m, steps, k)[...] = a.transpose(1, 0, 2)
        flat_b = _empty((n, steps * k), b.dtype)
        flat_b.reshape(n, steps, k)[...] = b.transpose(2, 0, 1)
        return flat_a @ flat_b.T
    return np.matmul(a, b).sum(axis=0)  # T products, each (m, n): no copy of a or b


def _subtract_onehot_s(a, classes):
    """a[t] -= onehot(classes[t]) for every step, in place: a (T, n, B), classes (T, B)."""
    a[np.arange(a.shape[0])[:, None], classes, np.arange(a.shape[2])[None, :]] -= 1


def _sigmoid_into(a, out):
    """1 / (1 + exp(-a)) into out."""
    np.negative(a, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.divide(1.0, out, out=out)
'''
