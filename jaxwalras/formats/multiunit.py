"""JSON files of multi-unit matching markets (format ``jaxwalras.multiunit_market/1``).

One market::

    {"format": "jaxwalras.multiunit_market/1",        # optional
     "values":   [[4, 4], [5, 3]],                     # values[i][j]: buyer i, object j
     "demands":  [2, 1],
     "supplies": [1, 1],
     "buyers":   ["ann", "bob"],                       # optional names
     "objects":  ["left", "right"]}                    # optional names

or ``{"markets": [market, market, ...]}`` for a batch (markets of different sizes are padded
with zero-demand buyers and zero-supply objects, which change nothing).  All numbers are
non-negative integers (values at most ``2**24``, demands and supplies at most ``2**16``).
The written schema is ``jaxwalras/formats/schemas/multiunit_market.schema.json``; unknown
keys are errors.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..typing import PathLike

from ..multiunit import MAX_UNITS, MAX_VALUE, MultiUnitMarket
from ._common import FormatError, _describe, location, read_json, validate, write_json

__all__ = ["FORMAT", "load_multiunit_market", "save_multiunit_market",
           "multiunit_market_from_dict", "multiunit_market_to_dict"]

FORMAT = "jaxwalras.multiunit_market/1"
SCHEMA = "multiunit_market"


def _check_range(rows: Any, where: list, limit: int, path: Any, name: str) -> None:
    arr = np.asarray(rows, dtype=object)
    big: Any = (np.argwhere(np.vectorize(lambda x: x > limit, otypes=[bool])(arr))
                if arr.size else [])
    if len(big):
        idx = [int(i) for i in big[0]]
        raise FormatError(path, location(where + idx),
                          f"{name} must be at most {limit}, got {_describe(arr[tuple(idx)])}")


def _one(d: dict, where: list, path: Any) -> tuple[MultiUnitMarket, dict]:
    values, demands, supplies = d["values"], d["demands"], d["supplies"]
    n = len(values)
    m = len(values[0]) if n else len(supplies)
    for i, row in enumerate(values):
        if len(row) != m:
            raise FormatError(path, location(where + ["values", i]),
                              f"has {len(row)} entries, expected {m} (one per object; "
                              f"values must be rectangular)")
    if len(demands) != n:
        raise FormatError(path, location(where + ["demands"]),
                          f"has {len(demands)} entries, expected {n} (one per buyer)")
    if len(supplies) != m:
        raise FormatError(path, location(where + ["supplies"]),
                          f"has {len(supplies)} entries, expected {m} (one per object)")
    _check_range(values, where + ["values"], MAX_VALUE, path, "values")
    _check_range(demands, where + ["demands"], MAX_UNITS, path, "demands")
    _check_range(supplies, where + ["supplies"], MAX_UNITS, path, "supplies")
    names = {}
    for key, count in (("buyers", n), ("objects", m)):
        if key in d:
            if len(d[key]) != count:
                raise FormatError(path, location(where + [key]),
                                  f"has {len(d[key])} names, expected {count}")
            names[key] = list(d[key])
    v = np.asarray(values, np.int64).reshape(n, m)
    return MultiUnitMarket(v, np.asarray(demands, np.int64), np.asarray(supplies, np.int64)), names


def multiunit_market_from_dict(d: Any, *, path: Any = None, with_names: bool = False) -> Any:
    """Build a :class:`~jaxwalras.MultiUnitMarket` from the parsed JSON structure.

    Returns the market (a batch for ``{"markets": [...]}``), or ``(market, names)`` with
    ``with_names=True``: ``names`` is a dict ``{"buyers": [...], "objects": [...]}`` (keys
    present only where the file names them) for one market, or a list of such dicts.

    Raises
    ------
    FormatError
        Anything the schema or the market's own rules reject, with its location.
    """
    if not isinstance(d, dict):
        raise FormatError(path, "(top level)", "must be a JSON object (one market, or "
                          "{\"markets\": [...]})")
    if "markets" in d:
        validate(d, SCHEMA, "batch", path)
        parts = [_one(mk, ["markets", k], path) for k, mk in enumerate(d["markets"])]
        market = MultiUnitMarket.stack([p[0] for p in parts])
        names: Any = [p[1] for p in parts]
    else:
        validate(d, SCHEMA, "market", path)
        market, names = _one(d, [], path)
    return (market, names) if with_names else market


def load_multiunit_market(path: PathLike, *, with_names: bool = False) -> Any:
    """Read a multi-unit market file (format in the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
    with_names : bool
        Also return the buyers' and objects' names (see
        :func:`multiunit_market_from_dict`).

    Returns
    -------
    MultiUnitMarket or (MultiUnitMarket, names)

    Raises
    ------
    FormatError
        One line naming the file, the place in it and what is wrong.

    Examples
    --------
    >>> import json, os, tempfile, jaxwalras as jw
    >>> path = os.path.join(tempfile.mkdtemp(), "m.json")
    >>> with open(path, "w") as fh:
    ...     json.dump({"values": [[4, 4], [5, 3]], "demands": [2, 1], "supplies": [1, 1],
    ...                "objects": ["left", "right"]}, fh)
    >>> mkt, names = jw.load_multiunit_market(path, with_names=True)
    >>> jw.buyer_optimal_equilibrium(mkt).prices.tolist(), names
    ([4, 2], {'objects': ['left', 'right']})
    """
    return multiunit_market_from_dict(read_json(path), path=path, with_names=with_names)


def multiunit_market_to_dict(market: MultiUnitMarket, names: Any = None) -> dict:
    """The JSON structure of a market (``{"markets": [...]}`` for a 1-D batch)."""
    if not isinstance(market, MultiUnitMarket):
        raise TypeError(f"market: expected a jaxwalras.MultiUnitMarket, got {type(market).__name__}")
    v, d, s = market.host_arrays()

    def one(v, d, s, nm):
        out = {"values": v.tolist(), "demands": d.tolist(), "supplies": s.tolist()}
        for key in ("buyers", "objects"):
            if nm and key in nm:
                out[key] = list(nm[key])
        return out

    if market.batch_shape == ():
        return {"format": FORMAT, **one(v, d, s, names)}
    if len(market.batch_shape) != 1:
        raise ValueError(f"market: save a single market or a 1-D batch, got batch shape "
                         f"{market.batch_shape} (reshape_batch first)")
    names = names or [None] * market.batch_shape[0]
    return {"format": FORMAT, "markets": [one(v[k], d[k], s[k], names[k])
                                          for k in range(market.batch_shape[0])]}


def save_multiunit_market(market: MultiUnitMarket, path: PathLike, *, names: dict | list | None = None) -> None:
    """Write a market (or a 1-D batch) as JSON; ``names`` as returned by the loader.

    Examples
    --------
    >>> import os, tempfile, jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[10], [4]], demands=[2, 1], supplies=[2])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.json")
    >>> jw.save_multiunit_market(mkt, path, names={"buyers": ["a", "b"]})
    >>> jw.load_multiunit_market(path, with_names=True)[1]
    {'buyers': ['a', 'b']}
    """
    write_json(multiunit_market_to_dict(market, names), path)
