"""Host (numpy, float64) arithmetic of menu economies: surpluses, demand and supply sets,
the dual of the convexified economy, and the certificates every exact step ends with.

Everything here works on :class:`~jaxwalras.economy.MenuArrays` (float64 / bool numpy) with
any leading batch axes, and is the one place where these formulas are written on the host:

* buyer ``n``'s surplus from option ``k`` at seller prices ``p`` and markup ``alpha`` is
  ``V[n,k] - (1+alpha) p.X[n,k]`` (money), seller ``f``'s profit ``p.Y[f,k] - C[f,k]``;
* the dual of the convexified LP is
  ``g(p) = sum_n max_k (V/(1+alpha) - p.X) + sum_f max_k (p.Y - C) - p.R``
  (Milgrom and Watt, 2022), an upper bound on the convexified welfare for every ``p >= 0``;
  a primal solution whose objective equals ``g(p)`` is optimal and ``p`` are its prices.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._validation import as_float_array, broadcast_batch
from .economy import MenuArrays, MenuEconomy

__all__ = ["broadcast_inputs", "surpluses", "demand_gaps", "dual_objective", "dual_value",
           "Certificate", "certificate", "rel_gap", "value_scale"]


def broadcast_inputs(economy: MenuEconomy, markup: Any = 0.0, reserve: Any = 0.0
                     ) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """Validate ``markup`` / ``reserve`` and broadcast them against the economy's batch.

    ``markup`` broadcasts to the batch shape, ``reserve`` to ``batch_shape + (L,)`` (a
    scalar means the same reserve for every good).  Returns ``(batch, markup (batch),
    reserve (batch + (L,)))`` as float64 numpy arrays.

    Raises
    ------
    TypeError
        ``economy`` is not a :class:`~jaxwalras.MenuEconomy`.
    ValueError
        ``markup <= -1``, non-finite entries, or shapes that do not broadcast.
    """
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    L = economy.n_goods
    a = as_float_array(markup, "markup")
    if a.size and a.min() <= -1.0:
        raise ValueError(f"markup: must be > -1 (buyers pay (1+markup) p), found {a.min()}")
    r = as_float_array(reserve, "reserve")
    if r.ndim == 0:
        r = r[None]
    if r.shape[-1] not in (1, L):
        raise ValueError(f"reserve: last axis must have size 1 or L={L} (one reserve per "
                         f"good), got shape {r.shape}")
    batch = broadcast_batch({"economy": economy.batch_shape, "markup": a.shape,
                             "reserve": r.shape[:-1]})
    return batch, np.broadcast_to(a, batch).copy(), np.broadcast_to(r, batch + (L,)).copy()


def surpluses(p: np.ndarray, A: MenuArrays, alpha: Any = 0.0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Buyers' money surpluses at buyer prices ``(1+alpha) p`` and sellers' profits at ``p``.

    Returns ``(u (..., N, Kb), w (..., F, Ks))`` with ``-inf`` on masked options.
    """
    X, V, bm, Y, C, sm = A
    a = np.asarray(alpha)[..., None, None]
    u = V - (1.0 + a) * np.einsum("...nkl,...l->...nk", X, p)
    w = np.einsum("...fkl,...l->...fk", Y, p) - C
    return np.where(bm, u, -np.inf), np.where(sm, w, -np.inf)


def dual_value(p: np.ndarray, A: MenuArrays, alpha: Any, reserve: np.ndarray) -> np.ndarray:
    """The dual ``g(p)`` of the convexified LP (float64, batch-shaped)."""
    u, w = surpluses(p, A, alpha)
    a = np.asarray(alpha)
    return u.max(-1).sum(-1) / (1.0 + a) + w.max(-1).sum(-1) - np.sum(p * reserve, -1)


def value_scale(A: MenuArrays, alpha: Any = None) -> np.ndarray:
    """Per-economy money scale ``max(max |V| / (1+alpha), max |C|)`` (``alpha=None``:
    ``max(max |V|, max |C|)``), batch-shaped; ``1e-300`` where the economy has no value."""
    vb = np.abs(A.V).max((-1, -2))
    if alpha is not None:
        vb = vb / (1.0 + np.asarray(alpha))
    return np.maximum(np.maximum(vb, np.abs(A.C).max((-1, -2))), 1e-300)


class Certificate(NamedTuple):
    """Optimality certificate of a convexified solution (all batch-shaped float64)."""
    dual: np.ndarray            # g(p)
    primal: np.ndarray          # LP objective of the weights
    gap: np.ndarray             # dual - primal (>= 0 for feasible weights)
    rel_gap: np.ndarray         # gap / max(|dual|, |primal|, value scale)
    infeasibility: np.ndarray   # max_l (sum X lam + R - sum Y mu)_+


def rel_gap(gap: np.ndarray, dual: np.ndarray, primal: np.ndarray, A: MenuArrays,
            alpha: Any) -> np.ndarray:
    """``gap`` relative to ``max(|dual|, |primal|, value scale)``."""
    return gap / np.maximum(np.maximum(np.abs(dual), np.abs(primal)), value_scale(A, alpha))


def certificate(p: np.ndarray, lam: np.ndarray, mu: np.ndarray, A: MenuArrays, alpha: Any,
                reserve: np.ndarray) -> Certificate:
    """Dual value, primal value, gap, relative gap and infeasibility of ``(p, lam, mu)``."""
    X, V, bm, Y, C, sm = A
    a = np.asarray(alpha)
    dual = dual_value(p, A, a, reserve)
    primal = np.sum(lam * V, (-1, -2)) / (1.0 + a) - np.sum(mu * C, (-1, -2))
    excess_dem = (np.einsum("...nk,...nkl->...l", lam, X) + reserve
                  - np.einsum("...fk,...fkl->...l", mu, Y))
    infeas = np.maximum(excess_dem, 0.0).max(-1)
    gap = dual - primal
    return Certificate(dual, primal, gap, rel_gap(gap, dual, primal, A, a), infeas)


def demand_gaps(economy: MenuEconomy, prices: Any, markup: Any = 0.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Shortfall of every option from the agent's best choice (host, float64).

    Parameters
    ----------
    economy : MenuEconomy
        Any batch shape.
    prices : array_like, shape (..., L)
        Seller prices ``p``; broadcast against the economy's batch.
    markup : array_like, optional
        Buyers face ``(1+markup) p``.

    Returns
    -------
    buyer_gaps : ndarray, shape (..., N, Kb)
        ``max_j (V[n,j] - (1+markup) p.X[n,j]) - (V[n,k] - (1+markup) p.X[n,k])``, money.
    seller_gaps : ndarray, shape (..., F, Ks)
        ``max_j (p.Y[f,j] - C[f,j]) - (p.Y[f,k] - C[f,k])``.

    An option is in the agent's demand (supply) set iff its gap is 0; masked options get
    ``+inf``.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> bg, sg = jw.demand_gaps(jw.examples.milgrom_watt_table1(), [0.5])
    >>> float(bg[0, 0]), float(sg[0, 3])
    (0.1316, 0.0)
    """
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    p = as_float_array(prices, "prices", min_ndim=1)
    if p.shape[-1] != economy.n_goods:
        raise ValueError(f"prices: last axis must be L={economy.n_goods}, got shape {p.shape}")
    batch, a, _ = broadcast_inputs(economy, markup, 0.0)
    batch = broadcast_batch({"economy/markup": batch, "prices": p.shape[:-1]})
    a = np.broadcast_to(a, batch)
    p = np.broadcast_to(p, batch + (economy.n_goods,))
    A = economy.host_arrays(batch)
    u, w = surpluses(p, A, a)
    bg = u.max(-1, keepdims=True) - u
    sg = w.max(-1, keepdims=True) - w
    return np.where(A.bm, bg, np.inf), np.where(A.sm, sg, np.inf)


def dual_objective(economy: MenuEconomy, prices: Any, markup: Any = 0.0, reserve: Any = 0.0
                   ) -> np.ndarray:
    """The dual ``g(p)`` of the convexified LP (host, float64).

    ``g(p) = sum_n max_k (V[n,k]/(1+markup) - p.X[n,k]) + sum_f max_k (p.Y[f,k] - C[f,k])
    - p.reserve``: by weak duality an upper bound on the convexified welfare for every
    ``p >= 0``, minimised by the equilibrium prices (Milgrom and Watt, 2022).

    Parameters
    ----------
    economy : MenuEconomy
    prices : array_like, shape (..., L)
    markup, reserve : array_like, optional
        As in :func:`jaxwalras.convexified_equilibrium`.

    Returns
    -------
    ndarray, shape (...)

    Examples
    --------
    >>> import jaxwalras as jw
    >>> eco = jw.examples.milgrom_watt_table1()
    >>> round(float(jw.dual_objective(eco, [0.5])), 4)
    0.8891
    """
    batch, a, r = broadcast_inputs(economy, markup, reserve)
    p = as_float_array(prices, "prices", min_ndim=1)
    if p.shape[-1] != economy.n_goods:
        raise ValueError(f"prices: last axis must be L={economy.n_goods}, got shape {p.shape}")
    batch = broadcast_batch({"economy/markup/reserve": batch, "prices": p.shape[:-1]})
    A = economy.host_arrays(batch)
    return dual_value(np.broadcast_to(p, batch + r.shape[-1:]), A, np.broadcast_to(a, batch),
                      np.broadcast_to(r, batch + r.shape[-1:]))
