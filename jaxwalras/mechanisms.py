"""What the markup and rationing mechanisms share: the flat batch and the reserve policies.

The mechanisms themselves live in :mod:`jaxwalras.markup` (markup mechanism) and
:mod:`jaxwalras.rationing` (rationing mechanism); both follow Milgrom and Watt,
"Linear pricing mechanisms for markets without convexity", EC 2022.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import as_float_array
from .economy import MenuEconomy
from .rounding import worst_case_reserve

__all__ = ["flat_economy", "reserve_levels", "ADAPTIVE_LEVELS"]

#: fractions of the worst-case reserve ``L * delta`` that ``reserve="adaptive"`` tries, in
#: order (Milgrom and Watt suggest raising a small set-aside until it suffices)
ADAPTIVE_LEVELS = (0.0, 0.125, 0.25, 0.5, 1.0)


def flat_economy(economy: MenuEconomy) -> tuple[MenuEconomy, tuple[int, ...], int]:
    """``(economy with one flat batch axis and host leaves, original batch shape, B)``."""
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    batch = economy.batch_shape
    B = int(np.prod(batch, dtype=np.int64))
    return economy.to_numpy().reshape_batch((B,)), batch, B


def reserve_levels(reserve: Any, eco: MenuEconomy, batch: tuple[int, ...], B: int,
                   sellers_only: bool) -> list[np.ndarray]:
    """The ``(B, L)`` reserve levels a mechanism tries, in order.

    ``reserve`` is ``"adaptive"`` (:data:`ADAPTIVE_LEVELS` times the worst-case reserve),
    ``"none"``, ``"worst_case"`` (:func:`jaxwalras.worst_case_reserve`; over the sellers'
    menus only when ``sellers_only``) or an array broadcastable to ``batch + (L,)``.
    """
    L = eco.n_goods
    if isinstance(reserve, str):
        if reserve not in ("adaptive", "none", "worst_case"):
            raise ValueError(f"reserve: must be 'adaptive', 'none', 'worst_case' or an array "
                             f"broadcastable to batch_shape + (L,) = {batch + (L,)}, got {reserve!r}")
        if reserve == "none":
            return [np.zeros((B, L))]
        wc = np.broadcast_to(worst_case_reserve(eco, sellers_only=sellers_only), (B, L))
        if reserve == "worst_case":
            return [np.array(wc)]
        return [s * wc for s in ADAPTIVE_LEVELS]
    r = as_float_array(reserve, "reserve", nonnegative=True)
    if r.ndim == 0:
        r = r[None]
    if r.shape[-1] not in (1, L):
        raise ValueError(f"reserve: last axis must have size 1 or L={L}, got shape {r.shape}")
    try:
        r = np.broadcast_to(r, batch + (L,)).reshape(B, L)
    except ValueError:
        raise ValueError(f"reserve: shape {r.shape} does not broadcast to {batch + (L,)}") from None
    return [np.array(r)]
