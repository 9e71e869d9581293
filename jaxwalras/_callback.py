"""The host boundary of the library's JAX callbacks: floats cross it as raw bits.

Under ``jax.jit`` a ``jax.pure_callback`` runs in another thread, where a scoped
``jax.enable_x64`` is not active, and JAX would cast float64 arguments and results to
float32 there.  Floats therefore cross the boundary bit-cast to uint32 words (trailing
axis: 2 words for float64, 1 for float32) and are rebuilt exactly on the other side.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["to_wire", "from_wire_host", "to_wire_host", "from_wire"]


def to_wire(x: Any) -> jax.Array:
    """A float array as uint32 words (trailing axis of ``itemsize / 4``); others unchanged."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x
    if x.dtype.itemsize < 4:            # float16 / bfloat16: exactly representable in float32
        x = x.astype(jnp.float32)
    if x.dtype.itemsize == 4:
        return jax.lax.bitcast_convert_type(x, jnp.uint32)[..., None]
    return jax.lax.bitcast_convert_type(x, jnp.uint32)


def from_wire_host(u: np.ndarray, is_float: bool) -> np.ndarray:
    """Host side of :func:`to_wire` (float64 or float32 numpy array)."""
    u = np.ascontiguousarray(np.asarray(u))
    if not is_float:
        return u
    return u.view(np.float64 if u.shape[-1] == 2 else np.float32)[..., 0]


def to_wire_host(x: np.ndarray, dtype: Any) -> np.ndarray:
    """A host float array as uint32 words for a result of ``dtype`` (see :func:`to_wire`)."""
    x = np.ascontiguousarray(np.asarray(x, dtype))
    return x.view(np.uint32).reshape(x.shape + (np.dtype(dtype).itemsize // 4,))


def from_wire(u: jax.Array, dtype: Any) -> jax.Array:
    """Device side of :func:`to_wire_host`."""
    if np.dtype(dtype).itemsize == 4:
        return jax.lax.bitcast_convert_type(u[..., 0], dtype)
    return jax.lax.bitcast_convert_type(u, dtype)
