"""Type aliases of jaxwalras' public signatures.

``ArrayLike``
    Anything :func:`numpy.asarray` or :func:`jax.numpy.asarray` accepts: a JAX or NumPy
    array, a Python or NumPy scalar, a (nested) list or tuple of numbers.
``PathLike``
    A file name: ``str`` or :class:`os.PathLike`.
``Options``
    Keyword options passed through to an inner solver, ``{name: value}``.
``KeyLike``
    A seed: a Python ``int`` or a :func:`jax.random.key` / ``PRNGKey`` array.
``DevicesLike``
    The devices of a batched call (:func:`jaxwalras.resolve_devices`): ``None``, a count,
    a platform name, a ``jax.Device``, or a sequence of devices or device ids.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence, Union

import jax
import numpy.typing as npt

try:                                  # Python >= 3.10
    from typing import TypeAlias
except ImportError:  # pragma: no cover
    from typing_extensions import TypeAlias

__all__ = ["ArrayLike", "PathLike", "Options", "KeyLike", "DevicesLike"]

ArrayLike: TypeAlias = Union[jax.Array, npt.ArrayLike]
PathLike: TypeAlias = Union[str, "os.PathLike[str]"]
Options: TypeAlias = Mapping[str, Any]
KeyLike: TypeAlias = Union[int, jax.Array]
DevicesLike: TypeAlias = Union[None, int, str, jax.Device, Sequence[Union[jax.Device, int]]]
