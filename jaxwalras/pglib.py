"""Real generator fleets: single-hour menu economies from PGLib-UC unit-commitment cases.

The IEEE PES Power Grid Library's unit-commitment cases (PGLib-UC; Knueven, Ostrowski and
Watson, 2020) describe real fleets: thermal units with minimum and maximum outputs,
piecewise-linear production costs whose first point includes the no-load cost, start-up
costs, ramp limits and minimum up/down times; renewable units with hourly minimum and
maximum output; and an hourly load.  :func:`load_pglib_uc` turns each hour of a case into
a one-good :class:`~jaxwalras.MenuEconomy` (the good is energy in MWh, money in the case's
cost unit times ``cost_unit``), which is what the convexified equilibrium (its price is
the *convex-hull price* of the hour), the markup and rationing mechanisms and the welfare
bound of Milgrom and Watt (2022) work on.

Model of one hour
-----------------
* **Thermal unit** ``g`` (not must-run): off (option 0: nothing, cost 0) or on at an
  output level ``q`` of a grid on ``[P_min, P_max]`` at the piecewise-linear cost ``C(q)``
  through the case's ``piecewise_production`` points (so ``C(P_min)`` is the no-load plus
  minimum-output cost).  The grid holds every breakpoint of the cost curve and splits each
  linear segment into ``levels_per_segment`` equal steps.  The jump from 0 to ``P_min``
  at cost ``C(P_min)`` is the non-convexity.
* **Must-run unit** (``must_run = 1``): always on.  Its minimum output is taken off the
  load and its cost ``C(P_min)`` is a constant left out of the economy; its menu offers the
  increments above ``P_min`` (``q - P_min`` at ``C(q) - C(P_min)``), option 0 being
  ``P_min`` itself.
* **Renewable unit** ``w`` in hour ``t``: its minimum output ``P_min(t)`` is must-take
  (taken off the load); the rest up to ``P_max(t)`` is offered at zero cost on a grid of
  ``levels_per_segment`` steps.  Units that can never offer anything in the chosen hours
  are left out.
* **Demand**: the *net load* ``D'(t) = D(t) - sum_w P_min,w(t) - sum_{must-run} P_min,g``,
  valued at ``voll`` per MWh (value of lost load).  ``demand="voll"``: one buyer who may
  consume ``D'(t) j / n_blocks`` for ``j = 0..n_blocks`` (linear value: a divisible load);
  ``demand="blocks"``: ``n_blocks`` buyers, each an all-or-nothing block of
  ``D'(t) / n_blocks``.

What a single-period model ignores: start-up costs and their dependence on the time a unit
has been off, ramp-up/down limits, minimum up and down times, the initial state
(``unit_on_t0``, ``power_output_t0``) and the spinning-reserve requirement; every hour is
cleared on its own.  The economy is the *net* market: the must-take and must-run energy
and its payments are outside it.

References
----------
B. Knueven, J. Ostrowski and J.-P. Watson, "On mixed-integer programming formulations for
the unit commitment problem", INFORMS Journal on Computing, 2020 (the PGLib-UC cases and
their format).  P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without
convexity", EC 2022.  P. R. Gribik, W. W. Hogan and S. L. Pope, "Market-clearing
electricity prices and energy uplift", 2007 (convex-hull prices and uplift).
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Sequence

import numpy as np

from ._validation import check_choice
from .economy import MenuEconomy

__all__ = ["load_pglib_uc"]


def _num(x: Any, where: str, *, nonnegative: bool = False) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"{where}: must be a number, got {x!r}")
    try:
        v = float(x)
    except OverflowError:
        raise ValueError(f"{where}: {x!r} is too large for a float") from None
    if not math.isfinite(v):
        raise ValueError(f"{where}: must be a finite number, got {x!r}")
    if nonnegative and v < 0:
        raise ValueError(f"{where}: must be non-negative, got {x!r}")
    return v


def _series(d: dict, key: str, where: str, T: int) -> np.ndarray:
    v = d.get(key)
    if not isinstance(v, list) or len(v) != T:
        raise ValueError(f"{where}.{key}: must be a list of time_periods={T} numbers, got "
                         f"{type(v).__name__}" + (f" of length {len(v)}" if isinstance(v, list) else ""))
    return np.array([_num(x, f"{where}.{key}[{t}]", nonnegative=True) for t, x in enumerate(v)])


def _read(path: Any) -> dict:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except TypeError:
        raise TypeError(f"path: expected a file path, got {type(path).__name__}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file (byte {exc.start}); a PGLib-UC case "
                         "is JSON") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}); a PGLib-UC case is JSON") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: not a PGLib-UC case: the top level must be an object, got "
                         f"{type(d).__name__}")
    for key in ("time_periods", "demand", "thermal_generators"):
        if key not in d:
            raise ValueError(f"{path}: not a PGLib-UC case: missing field '{key}'")
    return d


def _thermal_levels(name: str, g: Any, m: int, cost_unit: float):
    """Grid levels and costs of one thermal unit: ``(levels, costs, must_run, pmin,
    cost at pmin)``."""
    where = f"thermal_generators[{name!r}]"
    if not isinstance(g, dict):
        raise ValueError(f"{where}: must be an object, got {type(g).__name__}")
    for key in ("power_output_minimum", "power_output_maximum", "piecewise_production"):
        if key not in g:
            raise ValueError(f"{where}: missing field '{key}'")
    pmin = _num(g["power_output_minimum"], f"{where}.power_output_minimum", nonnegative=True)
    pmax = _num(g["power_output_maximum"], f"{where}.power_output_maximum", nonnegative=True)
    if pmax < pmin:
        raise ValueError(f"{where}.power_output_maximum: {pmax!r} is below "
                         f"power_output_minimum {pmin!r}")
    mr = g.get("must_run", 0)
    if mr not in (0, 1, True, False):
        raise ValueError(f"{where}.must_run: must be 0 or 1, got {mr!r}")
    pw = g["piecewise_production"]
    if not isinstance(pw, list) or not pw:
        raise ValueError(f"{where}.piecewise_production: must be a non-empty list of "
                         "{'mw', 'cost'} points")
    mw_list: list[float] = []
    cost_list: list[float] = []
    for i, pt in enumerate(pw):
        w = f"{where}.piecewise_production[{i}]"
        if not isinstance(pt, dict) or "mw" not in pt or "cost" not in pt:
            raise ValueError(f"{w}: must be an object with 'mw' and 'cost'")
        mw_list.append(_num(pt["mw"], f"{w}.mw", nonnegative=True))
        cost_list.append(_num(pt["cost"], f"{w}.cost") * cost_unit)
    mw, cost = np.array(mw_list), np.array(cost_list)
    if np.any(np.diff(mw) < 0):
        i = int(np.argmax(np.diff(mw) < 0)) + 1
        raise ValueError(f"{where}.piecewise_production[{i}].mw: {mw[i]!r} is below the "
                         f"previous point's {mw[i - 1]!r}; the points must be in increasing "
                         "output order")
    tol = 1e-9 * max(pmax, 1e-300)
    if abs(mw[0] - pmin) > tol or abs(mw[-1] - pmax) > tol:
        raise ValueError(f"{where}.piecewise_production: the points must run from "
                         f"power_output_minimum {pmin!r} to power_output_maximum {pmax!r}, "
                         f"got {mw[0]!r} .. {mw[-1]!r}")
    levels, costs = [mw[0]], [cost[0]]
    for i in range(len(mw) - 1):
        if mw[i + 1] <= mw[i]:
            continue
        for j in range(1, m + 1):
            levels.append(mw[i] + (mw[i + 1] - mw[i]) * j / m if j < m else mw[i + 1])
            costs.append((cost[i] * (m - j) + cost[i + 1] * j) / m if j < m else cost[i + 1])
    return np.array(levels), np.array(costs), bool(mr), pmin, cost[0]


def load_pglib_uc(path: str | os.PathLike, hours: Any = None, *, demand: str = "voll",
                  voll: float = 10_000.0, n_blocks: int = 10, levels_per_segment: int = 1,
                  cost_unit: float = 1.0) -> MenuEconomy:
    """Single-hour one-good menu economies from a PGLib-UC case (one per hour).

    Parameters
    ----------
    path : str or os.PathLike
        A PGLib-UC JSON case (format: the case repository's ``MODEL.tex``).  The library
        ships one, :func:`jaxwalras.examples.pglib_case_path`.
    hours : int, sequence of int or None
        Hours (0-based) to build: ``None`` (all ``time_periods``), one hour (an unbatched
        economy) or a sequence (batch axis in that order).
    demand : {"voll", "blocks"}
        ``"voll"``: one buyer who may take the net load in ``n_blocks`` equal steps at
        ``voll`` per MWh; ``"blocks"``: ``n_blocks`` all-or-nothing buyers of equal size
        at ``voll`` per MWh.  See the module docstring.
    voll : float
        Value of lost load per MWh, in the money unit of the economy (the case's cost unit
        times ``cost_unit``), ``> 0``.
    n_blocks : int
        Demand steps or blocks, ``>= 1``.
    levels_per_segment : int
        Output levels per linear segment of a thermal cost curve (and per renewable
        range), ``>= 1``; every breakpoint is always a level.
    cost_unit : float
        Multiplies every cost of the file (``> 0``): e.g. ``1000`` for the ``ca`` cases,
        whose costs are in thousands of dollars, to get dollars.

    Returns
    -------
    MenuEconomy
        One good (energy, MWh); batch shape ``(len(hours),)`` (``()`` for one hour).
        Sellers are the thermal units (in file order) then the renewable units that can
        offer energy in some chosen hour; ``seller_names`` / ``buyer_names`` hold their
        names.  Quantities are in MW (one hour), values and costs in the money unit.

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        Not a PGLib-UC case (not UTF-8, not JSON, a missing field), a non-finite or
        negative number, cost points not running from the minimum to the maximum output,
        an hour out of range, a non-positive net load (the message names the field, the
        generator or the hour), or a bad option.
    TypeError
        ``hours`` is not an integer or a sequence of integers.

    Notes
    -----
    Each hour is a separate single-period market; start-up costs, ramp limits, minimum
    up/down times, the initial state and the reserve requirement are ignored (see the
    module docstring for the model).

    References
    ----------
    B. Knueven, J. Ostrowski and J.-P. Watson, INFORMS Journal on Computing, 2020.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> eco = jw.load_pglib_uc(jw.examples.pglib_case_path(), hours=[0, 12])
    >>> eco.batch_shape, eco.n_sellers, eco.seller_names[0]
    ((2,), 102, '115_STEAM_1')
    """
    check_choice(demand, "demand", ("voll", "blocks"))
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) or n_blocks < 1:
        raise ValueError(f"n_blocks: must be an integer >= 1, got {n_blocks!r}")
    if (isinstance(levels_per_segment, bool) or not isinstance(levels_per_segment, (int, np.integer))
            or levels_per_segment < 1):
        raise ValueError(f"levels_per_segment: must be an integer >= 1, got {levels_per_segment!r}")
    for nm, val in (("voll", voll), ("cost_unit", cost_unit)):
        if isinstance(val, bool) or not isinstance(val, (int, float, np.floating, np.integer)) \
                or not (math.isfinite(val) and val > 0):
            raise ValueError(f"{nm}: must be a positive finite number, got {val!r}")
    m, nb = int(levels_per_segment), int(n_blocks)
    d = _read(path)
    T = d["time_periods"]
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"{path}: time_periods: must be a positive integer, got {T!r}")
    load = _series(d, "demand", f"{path}", T)
    single = False
    if hours is None:
        hrs = np.arange(T)
    else:
        if isinstance(hours, (int, np.integer)) and not isinstance(hours, bool):
            hrs, single = np.array([int(hours)]), True
        else:
            try:
                hrs = np.array(list(hours))
            except TypeError:
                raise TypeError(f"hours: expected None, an integer or a sequence of integers, "
                                f"got {hours!r}") from None
            if hrs.size == 0 or hrs.dtype.kind not in "iu":
                raise TypeError(f"hours: expected a non-empty sequence of integers, got {hours!r}")
        bad = (hrs < 0) | (hrs >= T)
        if bad.any():
            raise ValueError(f"hours: {int(hrs[bad][0])} is out of range; the case has "
                             f"time_periods={T} (hours 0..{T - 1})")
    th = d["thermal_generators"]
    rn = d.get("renewable_generators", {})
    if not isinstance(th, dict) or not th:
        raise ValueError(f"{path}: thermal_generators: must be a non-empty object of units")
    if not isinstance(rn, dict):
        raise ValueError(f"{path}: renewable_generators: must be an object of units")
    H = hrs.size
    names, menus = [], []          # menus: per seller, (levels (H, K), costs (H, K))
    fixed_out = 0.0
    for name, g in th.items():
        lv, cs, must, pmin, c0 = _thermal_levels(name, g, m, float(cost_unit))
        if must:
            fixed_out += pmin
            q, c = lv[1:] - pmin, cs[1:] - c0
        else:
            keep = ~((lv == 0) & (cs >= 0))
            q, c = lv[keep], cs[keep]
        names.append(str(name))
        menus.append((np.broadcast_to(q, (H, q.size)), np.broadcast_to(c, (H, c.size))))
    must_take = np.zeros(H)
    for name, w in rn.items():
        where = f"renewable_generators[{name!r}]"
        if not isinstance(w, dict):
            raise ValueError(f"{where}: must be an object, got {type(w).__name__}")
        lo = _series(w, "power_output_minimum", where, T)[hrs]
        hi = _series(w, "power_output_maximum", where, T)[hrs]
        if np.any(hi < lo):
            t = int(hrs[np.argmax(hi < lo)])
            raise ValueError(f"{where}.power_output_maximum[{t}]: below power_output_minimum[{t}]")
        must_take += lo
        if np.all(hi == lo):
            continue
        steps = np.arange(1, m + 1) / m
        q = (hi - lo)[:, None] * steps[None, :]
        q = np.where(q > 0, q, np.nan)            # hours without headroom: no option
        names.append(str(name))
        menus.append((q, np.zeros_like(q)))
    net = load[hrs] - must_take - fixed_out
    if np.any(net <= 0):
        i = int(np.argmax(net <= 0))
        raise ValueError(f"demand[{int(hrs[i])}]: the net load is {net[i]!r} MW (demand "
                         f"{load[hrs[i]]!r} minus renewable minimum output {must_take[i]!r} "
                         f"minus must-run minimum output {fixed_out!r}); a one-hour market "
                         "needs a positive net load")
    K = max(q.shape[1] for q, _ in menus)
    F = len(menus)
    qs = np.full((H, F, K), np.nan)
    cs = np.zeros((H, F, K))
    for f, (q, c) in enumerate(menus):
        qs[:, f, :q.shape[1]] = q
        cs[:, f, :c.shape[1]] = c
    frac = np.arange(1, nb + 1) / nb
    if demand == "voll":
        qb = net[:, None, None] * frac[None, None, :]
        bnames = ["load"]
    else:
        qb = np.broadcast_to((net / nb)[:, None, None], (H, nb, 1))
        bnames = [f"block_{i + 1}" for i in range(nb)]
    eco = MenuEconomy.single_good(qb, float(voll) * qb, qs, cs, buyer_names=bnames,
                                  seller_names=names)
    return eco[0] if single else eco
