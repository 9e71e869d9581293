"""Shared input validation: every public constructor funnels user arrays through here so
that bad input fails early, on the host, with a message naming the argument, the offending
value *as the user gave it* (``1e+300``, ``9223372036854775808``, not what a cast made of
it) and what is allowed."""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

__all__ = ["as_int_array", "as_float_array", "as_bool_array", "check_trailing_shape",
           "broadcast_batch", "warn_deprecated", "check_choice", "check_number",
           "check_integer", "format_value"]

_INT64_MAX = 2**63 - 1


def format_value(x: Any) -> str:
    """One offending value for an error message, as given: exact integers (huge ones
    abbreviated), ``repr`` of floats (``1e+300``, ``nan``), ``repr`` of anything else."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, (bool, np.bool_)):
        return repr(bool(x))
    if isinstance(x, numbers.Integral):
        s = str(int(x))
        return s if len(s) <= 40 else f"{s[:12]}...{s[-6:]} ({len(s.lstrip('-'))} digits)"
    if isinstance(x, float):
        return repr(x)
    r = repr(x)
    return r if len(r) <= 60 else r[:57] + "..."


def _given(x: Any, arr: np.ndarray, mask: np.ndarray) -> str:
    """The first element of ``x`` where ``mask`` (over ``arr``, the converted array) holds,
    formatted as the user gave it (a nested list keeps its Python ints exact)."""
    idx = tuple(np.argwhere(mask)[0]) if arr.ndim else ()
    if not isinstance(x, np.ndarray):
        try:
            orig = np.asarray(x, dtype=object)
            if orig.shape == arr.shape:
                return format_value(orig[idx])
        except Exception:  # noqa: BLE001 - fall back to the converted value
            pass
    return format_value(arr[idx])


def _to_numpy(x: Any, name: str, *, allow_bool: bool = True) -> np.ndarray:
    """``np.asarray(x)`` for numeric input; a TypeError naming the argument otherwise.

    Object arrays are accepted only when every element is a real number (Python ints too
    large for int64 arrive that way); they are returned as object arrays for the caller's
    exact checks."""
    try:
        arr = np.asarray(x)
    except Exception:  # ragged nested lists and the like
        raise TypeError(f"{name}: must be a rectangular array of numbers; got nested "
                        f"sequences of different lengths or an unconvertible object "
                        f"({format_value(x)})") from None
    if arr.dtype == object:
        flat = arr.ravel()
        for v in flat:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
                kind = ("a nested sequence (ragged input)"
                        if isinstance(v, (list, tuple, np.ndarray)) else type(v).__name__)
                raise TypeError(f"{name}: must be a rectangular array of numbers, found "
                                f"{format_value(v)} ({kind})")
        return arr
    if arr.dtype.kind == "b" and not allow_bool:
        raise TypeError(f"{name}: must hold numbers, got booleans (dtype bool); pass "
                        f"integers (e.g. arr.astype(int)) if 0/1 is meant")
    if arr.dtype.kind not in "biuf":
        what = {"U": "strings", "S": "bytes", "c": "complex numbers", "M": "datetimes",
                "m": "timedeltas", "V": "structured records"}.get(arr.dtype.kind,
                                                                   f"dtype {arr.dtype}")
        first = format_value(arr.ravel()[0]) if arr.size else ""
        raise TypeError(f"{name}: must be numeric (int or float), got {what}"
                        + (f" ({first})" if first else ""))
    return arr


def _object_to_int64(x: Any, arr: np.ndarray, name: str, nonnegative: bool,
                     limit: int) -> np.ndarray:
    """Exact checks of an object array of Python numbers, then int64."""
    vals = arr.ravel().tolist()
    for v in vals:
        if isinstance(v, float):
            if not math.isfinite(v):
                raise ValueError(f"{name}: contains {format_value(v)}; only finite integers "
                                 f"are allowed")
            if v != math.floor(v):
                raise TypeError(f"{name}: must hold integers, found the non-integer value "
                                f"{format_value(v)}")
    ints = [int(v) for v in vals]
    for v, iv in zip(vals, ints):
        if nonnegative and iv < 0:
            raise ValueError(f"{name}: must be non-negative, found {format_value(v)}")
    for v, iv in zip(vals, ints):
        if abs(iv) > limit:
            raise ValueError(f"{name}: values must not exceed {limit} in absolute value, "
                             f"found {format_value(v)}")
    return np.array(ints, np.int64).reshape(arr.shape)


def as_int_array(x: Any, name: str, *, min_ndim: int = 0, nonnegative: bool = True,
                 max_abs: int | None = 2**31 - 1, allow_bool: bool = False) -> np.ndarray:
    """Convert to an int64 numpy array, exactly or not at all.

    Floats are accepted only when integral and finite; Python ints of any size, unsigned
    and float input are range-checked *before* any cast, so nothing wraps around; booleans
    are refused unless ``allow_bool``.  Every error names ``name`` and the first offending
    value as given.
    """
    arr = _to_numpy(x, name, allow_bool=allow_bool)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name}: needs at least {min_ndim} dimension(s), got shape {arr.shape}")
    limit = _INT64_MAX if max_abs is None else min(int(max_abs), _INT64_MAX)
    if arr.dtype == object:
        return _object_to_int64(x, arr, name, nonnegative, limit)
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            raise ValueError(f"{name}: contains {_given(x, arr, ~finite)}; only finite "
                             f"integers are allowed")
        frac = arr != np.floor(arr)
        if frac.any():
            raise TypeError(f"{name}: must hold integers, found the non-integer value "
                            f"{_given(x, arr, frac)}")
    if nonnegative and arr.dtype.kind != "u" and arr.size:
        neg = arr < 0
        if neg.any():
            raise ValueError(f"{name}: must be non-negative, found {_given(x, arr, neg)}")
    if arr.size:
        if arr.dtype.kind == "u":
            over = arr > np.uint64(limit)
        elif arr.dtype.kind == "f":
            over = np.abs(arr) > float(limit)
            if limit >= 2**53:        # float(limit) rounds up: compare exactly
                over |= np.abs(arr) >= 2.0**63
        else:
            # abs(int64 min) wraps: compare the two signs separately
            over = (arr > limit) | (arr < -limit)
        if over.any():
            raise ValueError(f"{name}: values must not exceed {limit} in absolute value, "
                             f"found {_given(x, arr, over)}")
    return arr.astype(np.int64)


def as_float_array(x: Any, name: str, *, min_ndim: int = 0, nonnegative: bool = False,
                   dtype: Any = np.float64, max_abs: float | None = None,
                   allow_bool: bool = True) -> np.ndarray:
    """Convert to a finite float numpy array (``|x| <= max_abs`` if given).

    Python ints too large for a float and non-finite values are refused with the value
    as given; booleans are refused when ``allow_bool`` is False.
    """
    arr = _to_numpy(x, name, allow_bool=allow_bool)
    if arr.dtype == object:
        out = np.empty(arr.shape, np.float64)
        flat = out.reshape(-1)
        for k, v in enumerate(arr.ravel().tolist()):
            try:
                flat[k] = float(v)
            except OverflowError:
                raise ValueError(f"{name}: {format_value(v)} is too large for a float "
                                 f"(at most about 1.8e308)") from None
        arr = out
    if arr.ndim < min_ndim:
        raise ValueError(f"{name}: needs at least {min_ndim} dimension(s), got shape {arr.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        conv = arr.astype(dtype)
    finite = np.isfinite(conv)
    if not finite.all():
        bad = _given(x, arr, ~finite)
        extra = "" if not np.isfinite(arr[~finite]).all() else \
            f" (out of range for {np.dtype(dtype).name})"
        raise ValueError(f"{name}: contains {bad}{extra}; only finite numbers are allowed")
    if nonnegative and conv.size:
        neg = conv < 0
        if neg.any():
            raise ValueError(f"{name}: must be non-negative, found {_given(x, arr, neg)}")
    if max_abs is not None and conv.size:
        over = np.abs(conv) > max_abs
        if over.any():
            raise ValueError(f"{name}: values must not exceed {max_abs:g} in absolute value, "
                             f"found {_given(x, arr, over)}")
    return conv


def as_bool_array(x: Any, name: str) -> np.ndarray:
    arr = _to_numpy(x, name)
    if arr.dtype == object or (arr.dtype.kind != "b" and not np.all((arr == 0) | (arr == 1))):
        raise TypeError(f"{name}: must be boolean (or 0/1), got dtype {arr.dtype}")
    return arr.astype(bool)


def check_number(value: Any, name: str, *, lo: float | None = None,
                 hi: float | None = None, lo_open: bool = False,
                 hi_open: bool = False) -> float:
    """``float(value)`` if it is one finite real number in the stated range, else a
    TypeError / ValueError naming ``name``, the value as given and the range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.ndarray)):
        raise TypeError(f"{name}: must be a real number, got {format_value(value)} "
                        f"({type(value).__name__})")
    arr = np.asarray(value)
    if arr.ndim or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name}: must be one real number, got {format_value(value)}")
    v = float(arr)
    lo_s = "" if lo is None else (f"{'(' if lo_open else '['}{lo:g}")
    hi_s = "" if hi is None else (f"{hi:g}{')' if hi_open else ']'}")
    rng = (f"in {lo_s}, {hi_s}" if lo is not None and hi is not None else
           (f"{'>' if lo_open else '>='} {lo:g}" if lo is not None else
            (f"{'<' if hi_open else '<='} {hi:g}" if hi is not None else "finite")))
    bad = not math.isfinite(v)
    if lo is not None:
        bad |= v <= lo if lo_open else v < lo
    if hi is not None:
        bad |= v >= hi if hi_open else v > hi
    if bad:
        raise ValueError(f"{name}: must be a finite number {rng}, got {format_value(value)}")
    return v


def check_integer(value: Any, name: str, *, lo: int | None = None,
                  hi: int | None = None) -> int:
    """``int(value)`` if it is one integer (not a bool) with ``lo <= value <= hi``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral,)):
        raise TypeError(f"{name}: must be an integer, got {format_value(value)} "
                        f"({type(value).__name__})")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = (f"in [{lo}, {hi}]" if lo is not None and hi is not None else
               (f">= {lo}" if lo is not None else f"<= {hi}"))
        raise ValueError(f"{name}: must be an integer {rng}, got {format_value(value)}")
    return v


def check_trailing_shape(arr: np.ndarray, name: str, expected: Sequence[int | None],
                         names: Sequence[str]) -> None:
    """Check the last ``len(expected)`` axes of ``arr`` (``None`` = any size)."""
    k = len(expected)
    if arr.ndim < k:
        raise ValueError(f"{name}: expected trailing axes ({', '.join(names)}), "
                         f"got shape {arr.shape}")
    got = arr.shape[arr.ndim - k:]
    for g, e, nm in zip(got, expected, names):
        if e is not None and g != e:
            raise ValueError(f"{name}: axis '{nm}' has size {g}, expected {e} "
                             f"(full shape {arr.shape})")


def broadcast_batch(shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """Broadcast the leading batch shapes of several arguments, with a clear error."""
    try:
        return tuple(np.broadcast_shapes(*shapes.values()))
    except ValueError:
        desc = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise ValueError(f"leading batch axes do not match/broadcast: {desc}") from None


def warn_deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """One warning style for renamed public names (kept for one release)."""
    import warnings
    warnings.warn(f"{old} is deprecated and will be removed in the next release; use {new} "
                  "instead", FutureWarning, stacklevel=stacklevel)


def check_choice(value: Any, name: str, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed`` (strings), else a ValueError naming both."""
    if not isinstance(value, str) or value not in allowed:
        opts = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name}: must be one of {opts}, got {value!r}")
    return value
