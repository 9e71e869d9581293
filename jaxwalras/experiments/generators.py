"""Market generators of the experiment runner: ``generator(seed, **params) -> one market``.

Every built-in workload generator of the library is registered under a short name
(:data:`GENERATORS`); a study may also name any importable function as
``"package.module:function"`` or pass a Python callable.  A generator returns ONE market
(:class:`~jaxwalras.MultiUnitMarket`, :class:`~jaxwalras.MenuEconomy` or
:class:`~jaxwalras.SetFunctionMarket`; any object for user capabilities) drawn from the
integer ``seed``; the runner derives that seed from the grid point and the seed index
(:func:`jaxwalras.experiments.spec.market_seed`), so a market never depends on the batch
it is solved in, on the order of the grid or on the number of processes.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

import numpy as np

from ._resolve import import_callable

__all__ = ["Generator", "GENERATORS", "get_generator", "stack_markets",
           "single_good_market", "multiunit_market", "menu_economy", "fixed_cost_market",
           "cats_market"]


class Generator(NamedTuple):
    """A registered market generator.

    Attributes
    ----------
    name : str
        Registry name, or ``"module:qualname"`` for user functions.
    fn : callable
        ``fn(seed, **params) -> market``.
    params : dict or None
        Accepted parameters and their defaults (``None``: any keyword, for ``**kwargs``).
    description : str
        One line for ``jaxwalras experiment --list``.
    """
    name: str
    fn: Callable[..., Any]
    params: dict[str, Any] | None
    description: str


def single_good_market(seed: int, n_buyers: int = 1000, marginal_cost: float = 0.5) -> Any:
    """Table-1-type market: :func:`jaxwalras.examples.large_single_good_market` with the
    seller's capacity set to ``n_buyers`` units.

    The buyers are exactly those of ``large_single_good_market(seed, n_buyers)``.  The
    capacity ``n_buyers`` exceeds every possible demand (each ``q_n < 1``), so it never
    binds, and it depends on the grid point only: all markets of a grid point then share one
    shape and stack into a batch with no masked seller options, which the exact
    breakpoint scan of :func:`jaxwalras.markup_mechanism` requires.
    """
    from ..economy import MenuEconomy
    from ..examples import large_single_good_market
    eco = large_single_good_market(int(seed), int(n_buyers), marginal_cost=marginal_cost)
    units = np.arange(int(n_buyers) + 1, dtype=np.float64)
    return MenuEconomy(eco.buyer_bundles, eco.buyer_values, units[None, :, None],
                       float(marginal_cost) * units[None, :])


def multiunit_market(seed: int, n_buyers: int = 50, n_objects: int = 10,
                     max_value: int = 1000, max_demand: int = 5, max_supply: int = 10) -> Any:
    """Random multi-unit matching market: values uniform on ``0..max_value``, demands on
    ``1..max_demand``, supplies on ``1..max_supply`` (numpy, seeded by ``seed``)."""
    from ..multiunit import MultiUnitMarket
    for nm, val, lo in (("n_buyers", n_buyers, 1), ("n_objects", n_objects, 1),
                        ("max_value", max_value, 0), ("max_demand", max_demand, 1),
                        ("max_supply", max_supply, 1)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < lo:
            raise ValueError(f"{nm}: must be an integer >= {lo}, got {val!r}")
    rng = np.random.default_rng(int(seed))
    v = rng.integers(0, int(max_value) + 1, (int(n_buyers), int(n_objects)))
    d = rng.integers(1, int(max_demand) + 1, int(n_buyers))
    s = rng.integers(1, int(max_supply) + 1, int(n_objects))
    return MultiUnitMarket(v, d, s)


def menu_economy(seed: int, n_buyers: int = 20, n_sellers: int = 4, buyer_options: int = 4,
                 seller_options: int = 4, n_goods: int = 2, integer: bool = False,
                 buyers_per_seller: int | None = None) -> Any:
    """Random non-convex menu economy, :func:`jaxwalras.examples.random_menu_economy`;
    with ``buyers_per_seller`` the number of sellers is ``ceil(n_buyers /
    buyers_per_seller)`` (a replica economy: both sides grow with ``N``)."""
    from ..examples import random_menu_economy
    if buyers_per_seller is not None:
        if isinstance(buyers_per_seller, bool) or not isinstance(buyers_per_seller,
                                                                 (int, np.integer)) \
                or buyers_per_seller < 1:
            raise ValueError("buyers_per_seller: must be a positive integer, got "
                             f"{buyers_per_seller!r}")
        n_sellers = -(-int(n_buyers) // int(buyers_per_seller))
    return random_menu_economy(n_buyers, n_sellers, buyer_options, seller_options, n_goods,
                               seed=int(seed), integer=bool(integer))


def fixed_cost_market(seed: int, n_buyers: int = 12, n_sellers: int = 3, n_goods: int = 2,
                      buyer_options: int = 4, seller_options: int = 4) -> Any:
    """Economy with fixed costs and complementary bundles,
    :func:`jaxwalras.examples.fixed_cost_economy`."""
    from ..examples import fixed_cost_economy
    return fixed_cost_economy(int(seed), n_buyers, n_sellers, n_goods,
                              buyer_options=buyer_options, seller_options=seller_options)


def cats_market(seed: int, distribution: str = "regions", n_bidders: int = 5,
                m: int = 8) -> Any:
    """One CATS market (:mod:`jaxwalras.cats`): ``distribution`` in ``arbitrary``,
    ``regions``, ``paths``, ``scheduling``."""
    from .. import cats
    from .._validation import check_choice
    check_choice(distribution, "distribution", ("arbitrary", "regions", "paths", "scheduling"))
    return getattr(cats, distribution)(n_bidders, m, int(seed))


def _params_of(fn: Callable[..., Any], name: str) -> dict[str, Any] | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    ps = list(sig.parameters.values())
    if not ps or ps[0].kind not in (ps[0].POSITIONAL_ONLY, ps[0].POSITIONAL_OR_KEYWORD):
        raise ValueError(f"generator {name}: must take the integer seed as its first "
                         "positional argument, then the grid parameters as keywords")
    if any(p.kind == p.VAR_KEYWORD for p in ps):
        return None
    return {p.name: (None if p.default is p.empty else p.default) for p in ps[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _builtin(name: str, fn: Callable[..., Any], description: str) -> Generator:
    return Generator(name, fn, _params_of(fn, name), description)


#: name -> built-in generator
GENERATORS: dict[str, Generator] = {g.name: g for g in [
    _builtin("single-good", single_good_market,
             "Table-1-type markets: N all-or-nothing buyers (v, q ~ U[0,1]), one linear "
             "integer-production seller (Milgrom & Watt)"),
    _builtin("multiunit", multiunit_market,
             "random multi-unit matching markets (integer values, demands, supplies)"),
    _builtin("menu", menu_economy,
             "random non-convex menu economies (jw.examples.random_menu_economy)"),
    _builtin("fixed-cost", fixed_cost_market,
             "economies with fixed costs and complementary bundles "
             "(jw.examples.fixed_cost_economy)"),
    _builtin("cats", cats_market,
             "CATS combinatorial auctions (jw.cats: arbitrary, regions, paths, scheduling)"),
]}


def get_generator(spec: Any, field: str = "generator") -> Generator:
    """Resolve a built-in name, a ``"module:function"`` string or a callable.

    Raises
    ------
    ValueError
        Unknown name, or a ``module:function`` that cannot be imported.
    TypeError
        Neither a string nor a callable.
    """
    if callable(spec):
        name = f"{getattr(spec, '__module__', '?')}:{getattr(spec, '__qualname__', repr(spec))}"
        return Generator(name, spec, _params_of(spec, name), spec.__doc__ or "")
    if not isinstance(spec, str):
        raise TypeError(f"{field}: expected a generator name, 'module:function' or a "
                        f"callable, got {type(spec).__name__}")
    if spec in GENERATORS:
        return GENERATORS[spec]
    if ":" in spec:
        fn = import_callable(spec, field)
        return Generator(spec, fn, _params_of(fn, spec), fn.__doc__ or "")
    raise ValueError(f"{field}: unknown generator {spec!r}; built-in generators are "
                     f"{', '.join(sorted(GENERATORS))}, or give 'package.module:function'")


def stack_markets(markets: list[Any]) -> Any:
    """One batched market from single markets of one family (``None`` for other types)."""
    from ..economy import MenuEconomy
    from ..multiunit import MultiUnitMarket
    from ..setfunction import SetFunctionMarket
    for cls in (MultiUnitMarket, MenuEconomy, SetFunctionMarket):
        if all(isinstance(mk, cls) for mk in markets):
            shapes = [mk.batch_shape for mk in markets if mk.batch_shape]
            if shapes:
                raise ValueError("generator: must return ONE market (batch shape ()), got "
                                 f"batch shape {shapes[0]}")
            return cls.stack(markets)
    return None
