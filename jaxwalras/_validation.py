"""Shared input validation: every public constructor funnels user arrays through here so
that bad input fails early, on the host, with a message naming the argument."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["as_int_array", "as_float_array", "as_bool_array", "check_trailing_shape",
           "broadcast_batch", "warn_deprecated", "check_choice"]


def _to_numpy(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: could not be converted to an array ({exc})") from None
    if arr.dtype == object:
        raise TypeError(f"{name}: must be a rectangular numeric array, got a ragged/object array")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: must be numeric (bool, int or float), got dtype {arr.dtype}")
    return arr


def as_int_array(x: Any, name: str, *, min_ndim: int = 0, nonnegative: bool = True,
                 max_abs: int | None = 2**31 - 1) -> np.ndarray:
    """Convert to an int64 numpy array; floats are accepted only when integral and finite."""
    arr = _to_numpy(x, name)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name}: needs at least {min_ndim} dimension(s), got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: contains NaN or infinity; only finite integers are allowed")
        if not np.all(arr == np.round(arr)):
            bad = arr[arr != np.round(arr)].ravel()[0]
            raise TypeError(f"{name}: must hold integers, found the non-integer value {bad!r}")
    out = arr.astype(np.int64)
    if nonnegative and out.size and out.min() < 0:
        raise ValueError(f"{name}: must be non-negative, found {out.min()}")
    if max_abs is not None and out.size and np.abs(out).max() > max_abs:
        raise ValueError(f"{name}: values must not exceed {max_abs} in absolute value, "
                         f"found {np.abs(out).max()}")
    return out


def as_float_array(x: Any, name: str, *, min_ndim: int = 0, nonnegative: bool = False,
                   dtype: Any = np.float64) -> np.ndarray:
    """Convert to a finite float numpy array."""
    arr = _to_numpy(x, name).astype(dtype)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name}: needs at least {min_ndim} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinity; only finite numbers are allowed")
    if nonnegative and arr.size and arr.min() < 0:
        raise ValueError(f"{name}: must be non-negative, found {arr.min()}")
    return arr


def as_bool_array(x: Any, name: str) -> np.ndarray:
    arr = _to_numpy(x, name)
    if arr.dtype.kind != "b" and not np.all((arr == 0) | (arr == 1)):
        raise TypeError(f"{name}: must be boolean (or 0/1), got dtype {arr.dtype}")
    return arr.astype(bool)


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
