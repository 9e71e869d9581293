"""JSON files of combinatorial markets as XOR bids (format ``jaxwalras.setfunction_market/1``).

One market::

    {"format": "jaxwalras.setfunction_market/1",           # optional
     "items": ["left shoe", "right shoe"],                 # or the number of items (<= 16)
     "buyers": [
       {"name": "alice", "bids": [{"items": [0, 1], "value": 10}]},
       {"name": "bob",   "bids": [{"items": [0], "value": 6, "id": 7},
                                  {"items": [1], "value": 6, "id": 8}]}]}

or ``{"markets": [...]}`` for a batch (every market needs the same number of items; buyers
are padded with buyers who value nothing).  Buyer ``i`` values a set ``S`` at the largest
value of her bids whose items all lie in ``S`` (0 if none): XOR bids with free disposal.
Bid ``id`` s are optional and kept (the CATS reader fills them from the file).  The written
schema is ``jaxwalras/formats/schemas/setfunction_market.schema.json``; unknown keys are
errors.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..typing import PathLike

from ..setfunction import MAX_ITEMS, SetFunctionMarket
from ._common import FormatError, location, read_json, validate, write_json

__all__ = ["FORMAT", "load_setfunction_market", "save_setfunction_market",
           "setfunction_market_from_dict", "setfunction_market_to_dict", "xor_bids"]

FORMAT = "jaxwalras.setfunction_market/1"
SCHEMA = "setfunction_market"


def xor_bids(values: np.ndarray) -> list[list[tuple[int, float]]]:
    """The minimal XOR bids of one market's value table ``(n, 2**m)``: for every buyer the
    sets ``S`` with ``v(S) > 0`` and ``v(S) > v(S - j)`` for every item ``j`` of ``S``
    (no smaller set is worth as much), as ``(bitmask, value)``; ``v`` is their free-disposal
    closure again."""
    values = np.asarray(values, np.float64)
    n, t = values.shape
    m = t.bit_length() - 1
    keep = values > 0
    for j in range(m):
        v3 = values.reshape(n, 2 ** (m - j - 1), 2, 2 ** j)
        k3 = keep.reshape(n, 2 ** (m - j - 1), 2, 2 ** j)
        k3[:, :, 1, :] &= v3[:, :, 1, :] > v3[:, :, 0, :]
    return [[(int(S), float(values[i, S])) for S in np.flatnonzero(keep[i])] for i in range(n)]


def _one(d: dict, where: list, path: Any, m_expected: int | None):
    items = d["items"]
    m = items if isinstance(items, int) else len(items)
    if m_expected is not None and m != m_expected:
        raise FormatError(path, location(where + ["items"]),
                          f"has {m} items, but markets[0] has {m_expected}; every market of a "
                          "batch needs the same number of items")
    bids, names, ids = [], [], []
    for i, b in enumerate(d["buyers"]):
        blist, bid_ids = [], []
        for k, bid in enumerate(b["bids"]):
            bad = [j for j in bid["items"] if j >= m]
            if bad:
                raise FormatError(path, location(where + ["buyers", i, "bids", k, "items"]),
                                  f"item {bad[0]} does not exist (items are 0..{m - 1})")
            if len(set(bid["items"])) != len(bid["items"]):
                raise FormatError(path, location(where + ["buyers", i, "bids", k, "items"]),
                                  "lists an item twice")
            blist.append((bid["items"], float(bid["value"])))
            bid_ids.append(bid.get("id", k))
        bids.append(blist)
        names.append(b.get("name", str(i)))
        ids.append(bid_ids)
    market = SetFunctionMarket.from_xor(bids, m=m)
    labels = {"buyers": names, "bids": ids}
    if not isinstance(items, int):
        labels["items"] = list(items)
    return market, labels


def setfunction_market_from_dict(d: Any, *, path: Any = None, with_names: bool = False) -> Any:
    """Build a :class:`~jaxwalras.SetFunctionMarket` from the parsed JSON structure.

    Returns the market (a batch for ``{"markets": [...]}``), or ``(market, names)`` with
    ``with_names=True``: ``names`` is ``{"buyers": [...], "bids": [[id, ...], ...],
    "items": [...]}`` (``items`` only where the file names them) for one market, or a list
    of such dicts.
    """
    if not isinstance(d, dict):
        raise FormatError(path, "(top level)", "must be a JSON object (one market, or "
                          "{\"markets\": [...]})")
    if "markets" in d:
        validate(d, SCHEMA, "batch", path)
        parts, m0 = [], None
        for k, mk in enumerate(d["markets"]):
            parts.append(_one(mk, ["markets", k], path, m0))
            m0 = parts[0][0].n_items
        market = SetFunctionMarket.stack([p[0] for p in parts])
        names: Any = [p[1] for p in parts]
    else:
        validate(d, SCHEMA, "market", path)
        market, names = _one(d, [], path, None)
    return (market, names) if with_names else market


def load_setfunction_market(path: PathLike, *, with_names: bool = False) -> Any:
    """Read a combinatorial market given by XOR bids in JSON (format in the module
    docstring).

    Raises
    ------
    FormatError
        One line naming the file, the place in it and what is wrong.

    Examples
    --------
    >>> import json, os, tempfile, jaxwalras as jw
    >>> path = os.path.join(tempfile.mkdtemp(), "shoes.json")
    >>> with open(path, "w") as fh:
    ...     json.dump({"items": 2, "buyers": [
    ...         {"name": "alice", "bids": [{"items": [0, 1], "value": 10}]},
    ...         {"name": "bob", "bids": [{"items": [0], "value": 6}, {"items": [1], "value": 6}]}]}, fh)
    >>> cm = jw.load_setfunction_market(path)
    >>> bool((cm.values == jw.examples.shoes().values).all())
    True
    """
    return setfunction_market_from_dict(read_json(path), path=path, with_names=with_names)


def setfunction_market_to_dict(market: SetFunctionMarket, names: Any = None) -> dict:
    """The JSON structure of a market (``{"markets": [...]}`` for a 1-D batch): each buyer's
    minimal XOR bids (:func:`xor_bids`), whose free-disposal closure is the value table."""
    if not isinstance(market, SetFunctionMarket):
        raise TypeError(f"market: expected a jaxwalras.SetFunctionMarket, got "
                        f"{type(market).__name__}")

    def one(values, nm):
        nm = nm or {}
        m = values.shape[-1].bit_length() - 1
        buyers = []
        for i, blist in enumerate(xor_bids(values)):
            out = [{"items": [j for j in range(m) if (S >> j) & 1], "value": v}
                   for S, v in blist]
            ids = nm.get("bids", [None] * len(values))[i]
            if ids is not None and len(ids) == len(out):   # the file's bid ids, where kept
                for o, bid_id in zip(out, ids):
                    o["id"] = bid_id
            buyers.append({"name": nm.get("buyers", [str(k) for k in range(len(values))])[i],
                           "bids": out})
        return {"items": list(nm["items"]) if "items" in nm else m, "buyers": buyers}

    vals = np.asarray(market.values, np.float64)
    if market.batch_shape == ():
        return {"format": FORMAT, **one(vals, names)}
    if len(market.batch_shape) != 1:
        raise ValueError(f"market: save a single market or a 1-D batch, got batch shape "
                         f"{market.batch_shape} (reshape_batch first)")
    names = names or [None] * vals.shape[0]
    return {"format": FORMAT, "markets": [one(vals[k], names[k]) for k in range(vals.shape[0])]}


def save_setfunction_market(market: SetFunctionMarket, path: PathLike, *, names: dict | list | None = None) -> None:
    """Write a market (or a 1-D batch) as XOR bids in JSON; reading it back gives the same
    value tables exactly.

    Examples
    --------
    >>> import os, tempfile, jaxwalras as jw
    >>> path = os.path.join(tempfile.mkdtemp(), "shirts.json")
    >>> jw.save_setfunction_market(jw.examples.shirts(4), path)
    >>> bool((jw.load_setfunction_market(path).values == jw.examples.shirts(4).values).all())
    True
    """
    write_json(setfunction_market_to_dict(market, names), path)


_ = MAX_ITEMS  # the schema's "maximum": 16 items mirrors jaxwalras.setfunction.MAX_ITEMS
