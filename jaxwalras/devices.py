"""Which devices the batched kernels run on, and how a batch is laid out over them.

Every batched entry point of the library cuts its markets into chunks of a few bucketed
sizes (:mod:`jaxwalras._batching`) and places each chunk with its leading (market) axis
split evenly over the devices, as one ``jax.Array`` with a
:class:`jax.sharding.NamedSharding` on a one-axis :class:`jax.sharding.Mesh`. The jitted
kernels then run on all of them at once (JAX partitions the computation along the
market axis, since every market is computed independently), and the host exact steps
(max flows, HiGHS LPs, float64 certificates) run on the gathered results. A market's
answer never depends on the devices: they split the batch, never a market.

By default the devices are all local devices of JAX's default backend
(``jax.local_devices()``). ``devices=`` on an entry point, or the context manager
:func:`use_devices`, restricts them.
"""
from __future__ import annotations

import contextlib
import contextvars
import numbers
from typing import Any, Iterator

import jax
import numpy as np

from .typing import DevicesLike
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._validation import format_value

__all__ = ["resolve_devices", "use_devices", "current_devices", "put_batch", "batch_sharding"]

_ACTIVE: contextvars.ContextVar[tuple | None] = contextvars.ContextVar(
    "jaxwalras_devices", default=None)

#: axis name of the device mesh (one axis: the markets)
AXIS = "markets"


def _describe(devices: Any) -> str:
    return format_value(devices) if not isinstance(devices, (list, tuple)) else \
        "[" + ", ".join(format_value(d) for d in devices) + "]"


def _is_device(x: Any) -> bool:
    return hasattr(x, "platform") and hasattr(x, "id") and hasattr(x, "process_index")


def resolve_devices(devices: DevicesLike = None) -> tuple:
    """The devices a batched call runs on, as a tuple of local ``jax.Device`` of one
    platform.

    Parameters
    ----------
    devices : None, int, str, jax.Device or sequence of them
        ``None``: the devices set by :func:`use_devices`, else all local devices of the
        default backend. An ``int`` ``k``: the first ``k`` of those. A ``str``: all local
        devices of that platform (``"cpu"``, ``"gpu"``, ``"tpu"``). A ``jax.Device`` or a
        sequence of devices or of integer device ids (of the default backend's local
        devices).

    Returns
    -------
    tuple of jax.Device
        Non-empty, without repeats, all of one platform.

    Raises
    ------
    TypeError, ValueError
        Devices that name no device (an empty sequence, ``0``, an unknown platform or
        id, a device of another process) or that mix platforms; the message gives the
        value as passed and the devices there are.

    Examples
    --------
    >>> import jax, jaxwalras as jw
    >>> jw.resolve_devices() == tuple(jax.local_devices())
    True
    >>> jw.resolve_devices(1) == (jax.local_devices()[0],)
    True
    """
    if devices is None:
        active = _ACTIVE.get()
        return active if active is not None else tuple(jax.local_devices())
    local = tuple(jax.local_devices())
    have = ", ".join(str(d) for d in local)
    if isinstance(devices, (bool, np.bool_)):
        raise TypeError(f"devices: expected None, a device count, a platform name, a "
                        f"jax.Device or a sequence of them, got {devices!r}")
    if isinstance(devices, numbers.Integral):
        k = int(devices)
        if not 1 <= k <= len(local):
            raise ValueError(f"devices: a count must be between 1 and the {len(local)} "
                             f"local device(s) ({have}), got {k}")
        return local[:k]
    if isinstance(devices, str):
        try:
            found = tuple(jax.local_devices(backend=devices))
        except RuntimeError:
            found = ()
        if not found:
            raise ValueError(f"devices: no local device of platform {devices!r}; this "
                             f"process has {have}")
        return found
    if _is_device(devices):
        devices = [devices]
    if not isinstance(devices, (list, tuple)) and hasattr(devices, "__iter__"):
        devices = list(devices)
    if not isinstance(devices, (list, tuple)):
        raise TypeError(f"devices: expected None, a device count, a platform name, a "
                        f"jax.Device or a sequence of them, got {_describe(devices)} "
                        f"({type(devices).__name__})")
    if len(devices) == 0:
        raise ValueError(f"devices: an empty sequence names no device; this process has "
                         f"{have}")
    out = []
    for k, d in enumerate(devices):
        if _is_device(d):
            if d.process_index != jax.process_index():
                raise ValueError(f"devices[{k}]: {d} belongs to process {d.process_index}, "
                                 f"not to this one ({jax.process_index()}); pass local "
                                 f"devices only")
            out.append(d)
        elif isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_)):
            match = [x for x in local if x.id == int(d)]
            if not match:
                raise ValueError(f"devices[{k}]: no local device with id {int(d)}; this "
                                 f"process has {have}")
            out.append(match[0])
        else:
            raise TypeError(f"devices[{k}]: expected a jax.Device or an integer device "
                            f"id, got {format_value(d)} ({type(d).__name__})")
    platforms = sorted({d.platform for d in out})
    if len(platforms) > 1:
        raise ValueError(f"devices: {_describe(out)} mixes platforms {platforms}; one "
                         f"batched call runs on devices of one platform")
    if len(set(out)) != len(out):
        raise ValueError(f"devices: {_describe(out)} lists a device twice")
    return tuple(out)


@contextlib.contextmanager
def use_devices(devices: DevicesLike) -> Iterator[tuple]:
    """Run the library's batched kernels on ``devices`` inside the ``with`` block.

    Parameters
    ----------
    devices : int, str, jax.Device or sequence of them
        As for :func:`resolve_devices`; entry points' own ``devices=`` takes precedence.

    Yields
    ------
    tuple of jax.Device

    Examples
    --------
    >>> import jax, jaxwalras as jw
    >>> with jw.use_devices(1) as devs:
    ...     len(devs), jw.resolve_devices() == devs
    (1, True)
    """
    devs = resolve_devices(devices)
    token = _ACTIVE.set(devs)
    try:
        yield devs
    finally:
        _ACTIVE.reset(token)


def current_devices() -> tuple:
    """The devices batched calls use now (:func:`resolve_devices` of ``None``)."""
    return resolve_devices(None)


def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.asarray(devices, dtype=object), (AXIS,))


_SHARDINGS: dict[tuple, NamedSharding] = {}


def batch_sharding(devices: tuple) -> NamedSharding:
    """The sharding that splits the leading axis of an array evenly over ``devices``."""
    key = tuple(devices)
    if key not in _SHARDINGS:
        _SHARDINGS[key] = NamedSharding(_mesh(key), PartitionSpec(AXIS))
    return _SHARDINGS[key]


def put_batch(x: Any, devices: tuple | None = None) -> jax.Array:
    """``x`` on ``devices`` with its leading axis split evenly over them (on one device:
    simply placed there). The leading axis must be a multiple of the device count, as the
    chunk sizes of :mod:`jaxwalras._batching` are."""
    devs = resolve_devices(devices) if devices is None or not isinstance(devices, tuple) \
        else devices
    if len(devs) == 1:
        return jax.device_put(x, devs[0])
    lead = np.shape(x)[0]
    if lead % len(devs):
        raise ValueError(f"a batch of {lead} rows cannot be split evenly over "
                         f"{len(devs)} devices (internal: chunk sizes are multiples of "
                         f"the device count)")
    return jax.device_put(x, batch_sharding(devs))
