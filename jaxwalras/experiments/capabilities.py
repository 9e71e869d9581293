"""What a study computes: capabilities ``fn(batch, **options) -> {column: values}``.

A capability runs one batch of markets (all from one grid point) through one of the
library's batched solvers and returns one value per market for each output column, always
including ``converged`` and ``status`` (:mod:`jaxwalras.status`).  Built-in capabilities
(:data:`CAPABILITIES`) wrap the public solvers; their options are the solver's keyword
options (plus ``check``/``lp_check`` where an independent check is available), so a spec's
``options`` table is passed straight to the solver.  A study may also pass any callable
``fn(batch, **options)`` (or ``"module:function"``).

Grid parameters that the generator does not take are routed to the capabilities that name
them as an option; that is how ``auction-rounds`` sweeps ``step`` and ``jumps``.
"""
from __future__ import annotations

import inspect
import re
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from ._resolve import import_callable

__all__ = ["Batch", "Capability", "CAPABILITIES", "get_capability"]


class Batch(NamedTuple):
    """The markets of one batch (one grid point, several seeds).

    Attributes
    ----------
    market : object
        The markets stacked along a leading batch axis (``None`` when the generator returns
        a type the library cannot stack).
    markets : list
        The single markets, in seed order.
    params : dict
        The grid point's parameters (generator and capability parameters alike).
    seeds : list of int
        The seed indices (the ``seed`` column).
    market_seeds : list of int
        The integer seeds the generator was called with.
    """
    market: Any
    markets: list
    params: dict
    seeds: list
    market_seeds: list


class Capability(NamedTuple):
    """A registered capability.

    Attributes
    ----------
    name : str
    fn : callable
        ``fn(batch, **options) -> {column: array (B,)}``.
    family : type or None
        The market type it needs (``None``: any).
    options : dict or None
        Named options and their defaults (``None``: any keyword).
    open_options : bool
        Whether options beyond ``options`` are passed on (the solver takes ``**kwargs``).
    description : str
    """
    name: str
    fn: Callable[..., Any]
    family: Any
    options: dict | None
    open_options: bool
    description: str


def _named_options(fn: Callable[..., Any], skip: int = 1) -> tuple[dict, bool]:
    ps = list(inspect.signature(fn).parameters.values())[skip:]
    named = {p.name: (None if p.default is p.empty else p.default) for p in ps
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named, any(p.kind == p.VAR_KEYWORD for p in ps)


def _per_good(cols: dict, name: str, values: Any) -> None:
    v = np.asarray(values, float)
    if v.shape[-1] == 1:
        cols[name] = v[..., 0]
    else:
        for l in range(v.shape[-1]):
            cols[f"{name}_{l}"] = v[..., l]


def _status(res: Any) -> dict:
    return {"converged": np.asarray(res.converged, bool), "status": np.asarray(res.status),
            "iterations": np.asarray(res.iterations)}


# --- multi-unit matching markets --------------------------------------------------------
def _walrasian(markets: list, prices: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    from ..checks import check_walrasian
    return np.array([check_walrasian(mk, prices[k], alloc[k]) == []
                     for k, mk in enumerate(markets)])


def auction(batch: Batch, *, check: bool = True, lp_check: bool = False,
            **options: Any) -> dict:
    """:func:`jaxwalras.buyer_optimal_equilibrium` on the batch.  Columns: ``raises``
    (price raises), ``max_flows``, ``max_price`` (``max_j p*_j``: the exact raise count of
    the unit-step auction from 0, Eickhoff et al. 2024), ``price_sum``, ``walrasian``
    (:func:`jaxwalras.check_walrasian`, with ``check``), ``lp_equal`` (prices equal
    :func:`jaxwalras.lp_min_walrasian_prices`, with ``lp_check``)."""
    from ..auction import buyer_optimal_equilibrium
    res = buyer_optimal_equilibrium(batch.market, **options)
    prices = np.asarray(res.prices)
    cols = {"raises": np.asarray(res.iterations), "max_flows": np.asarray(res.max_flows),
            "max_price": prices.max(-1, initial=0), "price_sum": prices.sum(-1)}
    conv = np.asarray(res.converged, bool)
    status = np.asarray(res.status)
    if check:
        cols["walrasian"] = _walrasian(batch.markets, prices, np.asarray(res.allocation))
    if lp_check:
        from ..lp import lp_min_walrasian_prices
        cols["lp_equal"] = np.array([np.array_equal(lp_min_walrasian_prices(mk), prices[k])
                                     for k, mk in enumerate(batch.markets)])
    cols.update(converged=conv, status=status, iterations=np.asarray(res.iterations))
    return cols


def _changed_market(mk: Any, seed: int, change: str, fraction: float) -> Any:
    from ..multiunit import MultiUnitMarket
    v, d, s = (np.array(a) for a in mk.host_arrays())
    rng = np.random.default_rng([int(seed), 1])
    if change in ("demand", "both"):
        pick = rng.random(d.shape) < fraction
        pick[rng.integers(d.size)] = True
        d = d + pick * rng.integers(1, 3, d.shape)
    if change in ("supply", "both"):
        can = s >= 2                      # supplies stay >= 1 (zero supply is priced 0)
        pick = can & (rng.random(s.shape) < fraction)
        if can.any() and not pick.any():
            pick[rng.choice(np.flatnonzero(can))] = True
        s = np.where(pick, s - rng.integers(1, np.maximum(s, 2)), s)
    return MultiUnitMarket(v, d, s)


def monotonicity(batch: Batch, *, change: str = "demand", fraction: float = 0.3,
                 check: bool = True, **options: Any) -> dict:
    """Buyer-optimal prices before and after demands rise (``change="demand"``), supplies
    fall (``"supply"``) or both, for a random ``fraction`` of buyers/objects (at least one;
    drawn from the market's seed): the new prices from scratch and warm-started from the
    old ones by :func:`jaxwalras.reoptimize`.  Columns: ``monotone`` (new >= old, Eickhoff
    et al. 2024, Thm. 14), ``warm_equals_cold``, ``walrasian`` (the warm result, by
    :func:`jaxwalras.check_walrasian`), raises and max flows cold and warm and the
    savings."""
    from .._validation import check_choice
    from ..auction import buyer_optimal_equilibrium, reoptimize
    from ..multiunit import MultiUnitMarket
    from ..status import Status
    check_choice(change, "change", ("demand", "supply", "both"))
    if not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"fraction: must be in [0, 1], got {fraction!r}")
    new = [_changed_market(mk, sd, change, float(fraction))
           for mk, sd in zip(batch.markets, batch.market_seeds)]
    new_b = MultiUnitMarket.stack(new)
    old = buyer_optimal_equilibrium(batch.market, **options)
    cold = buyer_optimal_equilibrium(new_b, **options)
    warm = reoptimize(batch.market, old.prices, new_b, **options)
    po, pc, pw = (np.asarray(r.prices) for r in (old, cold, warm))
    mono = (pc >= po).all(-1)
    same = (pw == pc).all(-1)
    cols = {"monotone": mono, "warm_equals_cold": same,
            "price_rise_max": (pc - po).max(-1, initial=0),
            "raises_old": np.asarray(old.iterations), "raises_cold": np.asarray(cold.iterations),
            "raises_warm": np.asarray(warm.iterations),
            "flows_cold": np.asarray(cold.max_flows), "flows_warm": np.asarray(warm.max_flows),
            "raise_savings": np.asarray(cold.iterations) - np.asarray(warm.iterations),
            "flow_savings": np.asarray(cold.max_flows) - np.asarray(warm.max_flows)}
    ok = np.asarray(old.converged) & np.asarray(cold.converged) & np.asarray(warm.converged)
    checks = mono & same
    if check:
        cols["walrasian"] = _walrasian(new, pw, np.asarray(warm.allocation))
        checks &= cols["walrasian"]
    first = np.where(np.asarray(old.status) != 0, old.status,
                     np.where(np.asarray(cold.status) != 0, cold.status, warm.status))
    status = np.where(~ok, first, np.where(checks, Status.OK, Status.NOT_CERTIFIED))
    cols.update(converged=status == Status.OK, status=status.astype(np.int64),
                iterations=np.asarray(warm.iterations))
    return cols


# --- menu economies ---------------------------------------------------------------------
def convexified(batch: Batch, **options: Any) -> dict:
    """:func:`jaxwalras.convexified_equilibrium`.  Columns: ``value`` (the convexified
    optimum, an upper bound on the efficient welfare), ``rel_gap``, ``price`` (one good) or
    ``price_l``."""
    from ..convexified import convexified_equilibrium
    ce = convexified_equilibrium(batch.market, **options)
    cols = {"value": np.asarray(ce.primal_value, float), "rel_gap": np.asarray(ce.rel_gap, float)}
    _per_good(cols, "price", ce.prices)
    cols.update(_status(ce))
    return cols


def markup(batch: Batch, **options: Any) -> dict:
    """:func:`jaxwalras.markup_mechanism`.  Columns: ``markup``, ``welfare``,
    ``welfare_bound`` (the bound-form certificate), ``budget_surplus``,
    ``certified_minimal``, ``excess_supply`` (summed over goods), ``price``/``price_l``."""
    from ..markup import markup_mechanism
    mk = markup_mechanism(batch.market, **options)
    cols = {"markup": np.asarray(mk.markup, float), "welfare": np.asarray(mk.welfare, float),
            "welfare_bound": np.asarray(mk.welfare_bound, float),
            "budget_surplus": np.asarray(mk.budget_surplus, float),
            "certified_minimal": np.asarray(mk.certified_minimal, bool),
            "excess_supply": np.asarray(mk.excess_supply, float).sum(-1)}
    _per_good(cols, "price", mk.prices)
    cols.update(_status(mk))
    return cols


def rationing(batch: Batch, **options: Any) -> dict:
    """:func:`jaxwalras.rationing_mechanism`.  Columns: ``welfare``, ``welfare_bound``,
    ``budget_surplus``, ``rationing_loss`` (summed buyers' losses),
    ``max_rationing_loss``, ``price``/``price_l``."""
    from ..rationing import rationing_mechanism
    ra = rationing_mechanism(batch.market, **options)
    losses = np.asarray(ra.buyer_losses, float)
    cols = {"welfare": np.asarray(ra.welfare, float),
            "welfare_bound": np.asarray(ra.welfare_bound, float),
            "budget_surplus": np.asarray(ra.budget_surplus, float),
            "rationing_loss": losses.sum(-1), "max_rationing_loss": losses.max(-1)}
    _per_good(cols, "price", ra.prices)
    cols.update(_status(ra))
    return cols


def efficient(batch: Batch, **options: Any) -> dict:
    """:func:`jaxwalras.efficient_allocation` (exact MILP, small economies).  Columns:
    ``welfare`` (NaN when none found), ``upper_bound``."""
    from ..welfare import efficient_allocation
    opt = efficient_allocation(batch.market, **options)
    cols = {"welfare": np.asarray(opt.welfare, float),
            "upper_bound": np.asarray(opt.upper_bound, float)}
    cols.update(_status(opt))
    return cols


# --- combinatorial markets --------------------------------------------------------------
def walrasian(batch: Batch, **options: Any) -> dict:
    """:func:`jaxwalras.walrasian_equilibrium`.  Columns: ``exists``, ``welfare`` (optimal),
    ``lp_value`` (configuration LP)."""
    from ..item_prices import walrasian_equilibrium
    we = walrasian_equilibrium(batch.market, **options)
    cols = {"exists": np.asarray(we.exists, bool), "welfare": np.asarray(we.welfare, float),
            "lp_value": np.asarray(we.lp_value, float)}
    cols.update(_status(we))
    return cols


def cwe(batch: Batch, **options: Any) -> dict:
    """:func:`jaxwalras.combinatorial_walrasian_equilibrium`.  Columns: ``welfare``,
    ``start_welfare`` (OPT by default), ``ratio`` = welfare / start_welfare (1 when both
    are 0), ``revenue``, ``max_regret``, ``tol`` (the largest buyer tolerance)."""
    from ..bundling import combinatorial_walrasian_equilibrium
    res = combinatorial_walrasian_equilibrium(batch.market, **options)
    w = np.asarray(res.welfare, float)
    w0 = np.asarray(res.start_welfare, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(w0 > 0, w / np.where(w0 > 0, w0, 1.0), np.where(w >= 0, 1.0, 0.0))
    cols = {"welfare": w, "start_welfare": w0, "ratio": ratio,
            "revenue": np.asarray(res.revenue, float),
            "max_regret": np.asarray(res.max_regret, float),
            "tol": np.asarray(res.tol, float).max(-1)}      # the largest per-buyer tolerance
    cols.update(_status(res))
    return cols


def optimal(batch: Batch, **options: Any) -> dict:
    """:func:`jaxwalras.optimal_allocation` (batched subset DP).  Column: ``welfare``."""
    from ..combinatorial import optimal_allocation
    oa = optimal_allocation(batch.market, **options)
    cols = {"welfare": np.asarray(oa.welfare, float)}
    cols.update(_status(oa))
    return cols


def _registry() -> dict[str, Capability]:
    from ..auction import buyer_optimal_equilibrium
    from ..bundling import combinatorial_walrasian_equilibrium
    from ..combinatorial import optimal_allocation
    from ..item_prices import walrasian_equilibrium
    from ..convexified import convexified_equilibrium
    from ..economy import MenuEconomy
    from ..markup import markup_mechanism
    from ..multiunit import MultiUnitMarket
    from ..rationing import rationing_mechanism
    from ..setfunction import SetFunctionMarket
    from ..welfare import efficient_allocation
    out = []
    table: list[tuple[str, Callable[..., Any], type, Callable[..., Any], dict[str, Any]]] = [
        ("auction", auction, MultiUnitMarket, buyer_optimal_equilibrium,
         {"check": True, "lp_check": False}),
        ("monotonicity", monotonicity, MultiUnitMarket, buyer_optimal_equilibrium,
         {"change": "demand", "fraction": 0.3, "check": True}),
        ("convexified", convexified, MenuEconomy, convexified_equilibrium, {}),
        ("markup", markup, MenuEconomy, markup_mechanism, {}),
        ("rationing", rationing, MenuEconomy, rationing_mechanism, {}),
        ("efficient", efficient, MenuEconomy, efficient_allocation, {}),
        ("walrasian", walrasian, SetFunctionMarket, walrasian_equilibrium, {}),
        ("cwe", cwe, SetFunctionMarket, combinatorial_walrasian_equilibrium, {}),
        ("optimal", optimal, SetFunctionMarket, optimal_allocation, {})]
    for name, fn, fam, solver, extra in table:
        named, open_ = _named_options(solver)
        for k in ("start", "allocation") if name == "monotonicity" else ("start",):
            named.pop(k, None)
        named.update(extra)
        doc = " ".join((fn.__doc__ or "").split())
        doc = re.sub(r":func:`(?:jaxwalras\.)?([^`]+)`", r"\1", doc).replace("``", "")
        doc = doc.rstrip(".")
        out.append(Capability(name, fn, fam, named, open_, doc))
    return {c.name: c for c in out}


#: name -> built-in :class:`Capability`
CAPABILITIES: dict[str, Capability] = _registry()


def get_capability(spec: Any, field: str = "compute") -> Capability:
    """Resolve a built-in name, a ``"module:function"`` string or a callable.

    Raises
    ------
    ValueError
        Unknown name or a ``module:function`` that cannot be imported.
    TypeError
        Neither a string nor a callable.
    """
    if callable(spec):
        named, open_ = _named_options(spec)
        name = f"{getattr(spec, '__module__', '?')}:{getattr(spec, '__qualname__', repr(spec))}"
        return Capability(name, spec, None, named, open_, spec.__doc__ or "")
    if not isinstance(spec, str):
        raise TypeError(f"{field}: expected a capability name, 'module:function' or a "
                        f"callable, got {type(spec).__name__}")
    if spec in CAPABILITIES:
        return CAPABILITIES[spec]
    if ":" in spec:
        fn = import_callable(spec, field)
        named, open_ = _named_options(fn)
        return Capability(spec, fn, None, named, open_, fn.__doc__ or "")
    raise ValueError(f"{field}: unknown capability {spec!r}; built-in capabilities are "
                     f"{', '.join(CAPABILITIES)}, or give 'package.module:function'")


def run_capability(cap: Capability, batch: Batch, options: dict, prefix: str) -> dict:
    """Run one capability and check its output: ``{prefix + column: list of B values}``."""
    B = len(batch.markets)
    if cap.family is not None and not isinstance(batch.market, cap.family):
        got = type(batch.markets[0]).__name__
        raise TypeError(f"compute: capability {cap.name!r} needs {cap.family.__name__} "
                        f"markets, the generator returned {got}")
    out = cap.fn(batch, **options)
    if not isinstance(out, dict):
        raise TypeError(f"compute: capability {cap.name!r} must return a dict of columns, "
                        f"got {type(out).__name__}")
    cols: dict[str, list] = {}
    for key, val in out.items():
        arr = np.asarray(val)
        if arr.shape != (B,):
            raise ValueError(f"compute: capability {cap.name!r} returned column {key!r} of "
                             f"shape {arr.shape}; expected one value per market ({B},)")
        cols[prefix + str(key)] = [_scalar(x) for x in arr]
    return cols


def _scalar(x: Any) -> Any:
    """A plain Python int/float/bool/str for one table cell."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, (bool, int, float, str)) or x is None:
        return x
    raise TypeError(f"compute: table cells must be numbers, booleans or strings, got "
                    f"{type(x).__name__}")
