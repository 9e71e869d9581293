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

from .typing import ArrayLike
from ._validation import as_float_array, broadcast_batch
from .economy import MenuArrays, MenuEconomy

__all__ = ["broadcast_inputs", "surpluses", "demand_gaps", "dual_objective", "dual_value",
           "Certificate", "certificate", "rel_gap", "value_scale", "quantity_scale",
           "agent_scales", "OutcomeCheck", "outcome_check", "CERT_RTOL", "SEARCH_RTOL",
           "rel_infeasibility", "weighted_bundles", "max_over_options", "welfare_scale",
           "own_scale"]

#: relative tolerance of every final certificate of a mechanism outcome: an agent's
#: shortfall from its best option is compared to its own scale (largest |value| or |cost|
#: plus largest payment at the prices), a good's balance to the quantities traded, the
#: budget to the payments
CERT_RTOL = 1e-9
#: the (tighter) relative tolerance the searches use, so that what they accept passes the
#: certificate
SEARCH_RTOL = 1e-11


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


def welfare_scale(A: MenuArrays, alpha: Any = 0.0) -> np.ndarray:
    """Per economy, ``sum_n max_k |V[n,k]| / (1+alpha) + sum_f max_k |C[f,k]|`` over real
    options (batch-shaped; ``1e-300`` where nothing has a value): the scale of the
    convexified welfare and of its dual, for absolute tolerances that neither loosen with
    the number of agents nor depend on the largest one."""
    vb = np.where(A.bm, np.abs(A.V), 0.0).max(-1).sum(-1) / (1.0 + np.asarray(alpha))
    vs = np.where(A.sm, np.abs(A.C), 0.0).max(-1).sum(-1)
    return np.maximum(vb + vs, 1e-300)


def rel_infeasibility(lam: np.ndarray, mu: np.ndarray, A: MenuArrays, reserve: np.ndarray
                      ) -> np.ndarray:
    """``max_l (sum X lam + R - sum Y mu)_l / (sum |X| lam + sum |Y| mu + |R|)_l`` (0 where a
    good is not traded): excess demand relative to the quantities of the good involved."""
    d, s = weighted_bundles(lam, A.X), weighted_bundles(mu, A.Y)
    ex = d + reserve - s
    sc = np.abs(d) + np.abs(s) + np.abs(reserve)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(ex > 0, ex / np.where(sc > 0, sc, 1.0), 0.0)
    return rel.max(-1)


def max_over_options(Z: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``max(0, max_k Z[..., k, :])`` over the options ``k`` where ``mask`` (``(..., K)``)
    is True: ``(..., A, L)`` from bundles ``(..., A, K, L)``.  One pass per option over
    contiguous slices, about three times faster than ``Z.max(-2)`` (numpy reduces a middle
    axis element by element); the same numbers."""
    out = np.zeros(Z.shape[:-2] + Z.shape[-1:], np.result_type(Z.dtype, np.float64))
    m = None if mask is None or bool(np.all(mask)) else np.asarray(mask)
    for k in range(Z.shape[-2]):
        zk = Z[..., k, :]
        np.maximum(out, zk if m is None else np.where(m[..., k, None], zk, 0.0), out=out)
    return out


def quantity_scale(A: MenuArrays) -> np.ndarray:
    """Per economy and good, ``sum_n max_k X[n,k,l] + sum_f max_k Y[f,k,l]`` (batch + (L,)):
    the most of good ``l`` the economy can move; the scale of its quantity comparisons."""
    qx = max_over_options(A.X, A.bm).sum(-2)
    qy = max_over_options(A.Y, A.sm).sum(-2)
    return qx + qy


def agent_scales(A: MenuArrays, p: np.ndarray, alpha: Any = 0.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Each agent's own money scale at seller prices ``p`` and markup ``alpha``.

    Buyer ``n``: ``max_k |V[n,k]| + max_k |(1+alpha) p.X[n,k]|`` (its values and the
    payments it could make); seller ``f``: ``max_k |C[f,k]| + max_k |p.Y[f,k]|``.  Returns
    ``(buyers (..., N), sellers (..., F))``; payoff comparisons of one agent are made
    relative to its scale, so they do not depend on the other agents or on the money unit.
    """
    X, V, bm, Y, C, sm = A
    a = np.asarray(alpha)[..., None, None]
    pay = np.abs((1.0 + a) * np.einsum("...nkl,...l->...nk", X, p))
    rec = np.abs(np.einsum("...fkl,...l->...fk", Y, p))
    return own_scale(V, bm, pay), own_scale(C, sm, rec)


def own_scale(values: np.ndarray, mask: np.ndarray, payments: np.ndarray) -> np.ndarray:
    """``max_k |values| + max_k |payments|`` over the real options (``mask``) of each
    agent, shape ``(..., A)``: the agent scale of :func:`agent_scales`, for callers that
    already hold the payments (e.g. read off surpluses)."""
    return (np.where(mask, np.abs(values), 0.0).max(-1)
            + np.where(mask, np.abs(payments), 0.0).max(-1))


class OutcomeCheck(NamedTuple):
    """Float64 certificate of a mechanism outcome (see :func:`outcome_check`)."""
    buyer_gap: np.ndarray      # (..., N) money shortfall from the best option (0 if weights)
    seller_gap: np.ndarray     # (..., F)
    buyers_ok: np.ndarray      # (...,) every buyer in its demand set (to rtol x own scale)
    sellers_ok: np.ndarray     # (...,) every seller in its supply set
    feasible: np.ndarray       # (...,) production covers consumption (+ set-aside), per good
    budget: np.ndarray         # (...,) (1+alpha) p.x - p.y
    budget_ok: np.ndarray      # (...,) no deficit beyond rtol x payments
    prices_ok: np.ndarray      # (...,) p >= 0 and alpha >= 0, finite
    x: np.ndarray              # (..., L) consumption
    y: np.ndarray              # (..., L) production


def outcome_check(A: MenuArrays, alpha: Any, p: np.ndarray, cb: Any, cs: np.ndarray, *,
                  set_aside: Any = 0.0, buyer_weights: Any = None,
                  rtol: float = CERT_RTOL) -> OutcomeCheck:
    """Check a pure outcome against the markup-outcome definition, in float64.

    Buyers hold options ``cb`` (or mixing weights ``buyer_weights``, for which no demand-set
    condition is checked: the rationing mechanism), sellers options ``cs``.  Conditions,
    each relative to the outcome's own scale (never to other economies of a batch):

    * buyer ``n`` in its demand set at ``(1+alpha) p``: shortfall ``<= rtol * s_n``, and
      seller ``f`` in its supply set at ``p``: shortfall ``<= rtol * s_f``, with the
      agent scales of :func:`agent_scales`;
    * production covers consumption plus the set-aside in every good ``l``:
      ``y_l - x_l - set_aside_l >= -rtol * (sum_n x_nl + sum_f y_fl + set_aside_l)``;
    * budget: ``(1+alpha) p.x - p.y >= -rtol * ((1+alpha) p.x + p.y)``;
    * ``p >= 0`` and ``alpha >= 0``, all finite.
    """
    X, V, bm, Y, C, sm = A
    a = np.asarray(alpha, np.float64)
    p = np.asarray(p, np.float64)
    beta = (1.0 + a)[..., None] * p
    sb, ss = agent_scales(A, p, a)
    u = np.where(bm, V - np.einsum("...nkl,...l->...nk", X, beta), -np.inf)
    w = np.where(sm, np.einsum("...fkl,...l->...fk", Y, p) - C, -np.inf)
    gs = w.max(-1) - np.take_along_axis(w, np.asarray(cs)[..., None], -1)[..., 0]
    ys = np.take_along_axis(Y, np.asarray(cs)[..., None, None], -2)[..., 0, :]
    if buyer_weights is None:
        gb = u.max(-1) - np.take_along_axis(u, np.asarray(cb)[..., None], -1)[..., 0]
        xs = np.take_along_axis(X, np.asarray(cb)[..., None, None], -2)[..., 0, :]
        buyers_ok = np.all(gb <= rtol * sb, -1)
    else:
        xs = np.einsum("...nk,...nkl->...nl", buyer_weights, X)
        gb = np.zeros(sb.shape)
        buyers_ok = np.ones(sb.shape[:-1], bool)
    x, y = xs.sum(-2), ys.sum(-2)
    r = np.broadcast_to(np.asarray(set_aside, np.float64), x.shape)
    feas = np.all(y - x - r >= -rtol * (np.abs(xs).sum(-2) + np.abs(ys).sum(-2) + np.abs(r)), -1)
    px, py = np.einsum("...l,...l->...", beta, x), np.einsum("...l,...l->...", p, y)
    budget = px - py
    with np.errstate(invalid="ignore"):
        budget_ok = budget >= -rtol * (np.abs(px) + np.abs(py))
        prices_ok = (np.all(np.isfinite(p) & (p >= 0), -1) & np.isfinite(a) & (a >= 0))
    return OutcomeCheck(gb, gs, buyers_ok, np.all(gs <= rtol * ss, -1), feas, budget,
                        budget_ok, prices_ok, x, y)


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


def primal_and_infeasibility(lam: np.ndarray, mu: np.ndarray, A: MenuArrays, alpha: Any,
                             reserve: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LP objective ``sum lam V / (1+alpha) - sum mu C`` of the weights and their
    infeasibility ``max_l (sum X lam + R - sum Y mu)_+`` (batch-shaped float64)."""
    X, V, bm, Y, C, sm = A
    a = np.asarray(alpha)
    primal = np.sum(lam * V, (-1, -2)) / (1.0 + a) - np.sum(mu * C, (-1, -2))
    excess_dem = weighted_bundles(lam, X) + reserve - weighted_bundles(mu, Y)
    return primal, np.maximum(excess_dem, 0.0).max(-1)


def weighted_bundles(w: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """``sum_{a,k} w[..., a, k] Z[..., a, k, :]`` (batch + (L,)): the goods the weights use."""
    return np.einsum("...ak,...akl->...l", w, Z)


def certificate(p: np.ndarray, lam: np.ndarray, mu: np.ndarray, A: MenuArrays, alpha: Any,
                reserve: np.ndarray) -> Certificate:
    """Dual value, primal value, gap, relative gap and infeasibility of ``(p, lam, mu)``."""
    a = np.asarray(alpha)
    dual = dual_value(p, A, a, reserve)
    primal, infeas = primal_and_infeasibility(lam, mu, A, a, reserve)
    gap = dual - primal
    return Certificate(dual, primal, gap, rel_gap(gap, dual, primal, A, a), infeas)


def demand_gaps(economy: MenuEconomy, prices: ArrayLike, markup: ArrayLike = 0.0
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


def dual_objective(economy: MenuEconomy, prices: ArrayLike, markup: ArrayLike = 0.0, reserve: ArrayLike = 0.0
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
