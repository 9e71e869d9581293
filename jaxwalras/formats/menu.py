"""JSON files of menu economies (format ``jaxwalras.menu_economy/1``).

One economy::

    {"format": "jaxwalras.menu_economy/1",                # optional
     "goods": ["widgets"],                                # optional names; length = L
     "buyers": [{"name": "b1",                            # optional
                 "options": [{"bundle": [0.28], "value": 0.2716}]}, ...],
     "sellers": [{"name": "s1",
                  "options": [{"bundle": [1], "cost": 0.5}, {"bundle": [2], "cost": 1.0}]}]}

or ``{"economies": [economy, ...]}`` for a batch (menus and agent counts may differ: the
batch is padded with inert agents and masked options).

* ``bundle`` lists the quantity of each good (length ``L``, non-negative); buyers have a
  ``value`` (money value of the bundle), sellers a ``cost`` (cost of producing the plan).
* The empty option (zero bundle, value / cost 0) is implicit: it is ALWAYS option 0 and is
  not listed; listed options are numbered 1, 2, ... in file order.
* ``L`` is taken from ``goods`` if given, otherwise from the first bundle.

The written schema is ``jaxwalras/formats/schemas/menu_economy.schema.json``; unknown keys
are errors.  Agent names become :attr:`~jaxwalras.MenuEconomy.buyer_names` /
``seller_names``; goods names come back with ``with_names=True``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..economy import MenuEconomy
from ._common import FormatError, location, read_json, validate, write_json

__all__ = ["FORMAT", "load_menu_economy", "save_menu_economy", "menu_economy_from_dict",
           "menu_economy_to_dict"]

FORMAT = "jaxwalras.menu_economy/1"
SCHEMA = "menu_economy"


def _one(d: dict, where: list, path: Any) -> tuple[MenuEconomy, dict]:
    goods = d.get("goods")
    L = len(goods) if goods else len(next((o["bundle"] for side in ("buyers", "sellers")
                                           for a in d[side] for o in a["options"]), [None]))
    if not goods and not any(a["options"] for side in ("buyers", "sellers") for a in d[side]):
        raise FormatError(path, location(where), "cannot tell the number of goods: give "
                          "'goods' or at least one option")
    packs, names = [], {}
    for side, key in (("buyers", "value"), ("sellers", "cost")):
        agents = d[side]
        K = 1 + max(len(a["options"]) for a in agents)
        Z = np.zeros((len(agents), K, L))
        W = np.zeros((len(agents), K))
        M = np.zeros((len(agents), K), bool)
        M[:, 0] = True
        for i, a in enumerate(agents):
            for k, o in enumerate(a["options"], start=1):
                if len(o["bundle"]) != L:
                    raise FormatError(path, location(where + [side, i, "options", k - 1,
                                                              "bundle"]),
                                      f"has {len(o['bundle'])} quantities, expected L={L} "
                                      "goods")
                Z[i, k], W[i, k], M[i, k] = o["bundle"], o[key], True
        packs.append((Z, W, M))
        names[side] = [a.get("name", f"{side[0]}{i + 1}") for i, a in enumerate(agents)]
    (X, V, bm), (Y, C, sm) = packs
    try:
        eco = MenuEconomy(X, V, Y, C, bm, sm, buyer_names=names["buyers"],
                          seller_names=names["sellers"])
    except (ValueError, TypeError) as exc:
        raise FormatError(path, location(where), str(exc)) from None
    if goods:
        names["goods"] = list(goods)
    return eco, names


def menu_economy_from_dict(d: Any, *, path: Any = None, with_names: bool = False) -> Any:
    """Build a :class:`~jaxwalras.MenuEconomy` from the parsed JSON structure.

    Returns the economy (a batch for ``{"economies": [...]}``), or ``(economy, names)``
    with ``with_names=True``: ``{"buyers": [...], "sellers": [...], "goods": [...]}``
    (``goods`` where the file names them) for one economy, or a list of such dicts.
    """
    if not isinstance(d, dict):
        raise FormatError(path, "(top level)", "must be a JSON object (one economy, or "
                          "{\"economies\": [...]})")
    if "economies" in d:
        validate(d, SCHEMA, "batch", path)
        parts = [_one(e, ["economies", k], path) for k, e in enumerate(d["economies"])]
        Ls = {p[0].n_goods for p in parts}
        if len(Ls) > 1:
            raise FormatError(path, "economies", f"every economy of a batch needs the same "
                              f"number of goods, got {sorted(Ls)}")
        eco = MenuEconomy.stack([p[0] for p in parts])
        names: Any = [p[1] for p in parts]
    else:
        validate(d, SCHEMA, "economy", path)
        eco, names = _one(d, [], path)
    return (eco, names) if with_names else eco


def load_menu_economy(path: Any, *, with_names: bool = False) -> Any:
    """Read a menu-economy file (format in the module docstring).

    Raises
    ------
    FormatError
        One line naming the file, the place in it and what is wrong.

    Examples
    --------
    >>> import json, os, tempfile, jaxwalras as jw
    >>> path = os.path.join(tempfile.mkdtemp(), "e.json")
    >>> with open(path, "w") as fh:
    ...     json.dump({"goods": ["kWh"], "buyers": [{"name": "home", "options": [
    ...         {"bundle": [2], "value": 3.0}]}], "sellers": [{"name": "plant", "options": [
    ...         {"bundle": [1], "cost": 1.0}, {"bundle": [2], "cost": 2.5}]}]}, fh)
    >>> eco, names = jw.load_economy(path, with_names=True)
    >>> eco.seller_names, names["goods"]
    (('plant',), ['kWh'])
    """
    return menu_economy_from_dict(read_json(path), path=path, with_names=with_names)


def menu_economy_to_dict(economy: MenuEconomy, goods: Any = None) -> dict:
    """The JSON structure of an economy (``{"economies": [...]}`` for a 1-D batch); option 0
    is left implicit, agent names come from the economy."""
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got "
                        f"{type(economy).__name__}")
    e = economy.to_numpy()

    def agents(Z, W, M, key, names, prefix):
        out = []
        for i in range(Z.shape[0]):
            opts = [{"bundle": Z[i, k].tolist(), key: float(W[i, k])}
                    for k in range(1, Z.shape[1]) if M[i, k]]
            out.append({"name": names[i] if names else f"{prefix}{i + 1}", "options": opts})
        return out

    def one(k: Any, gnames: Any) -> dict:
        sl = (lambda a: a[k]) if k is not None else (lambda a: a)
        d = {"buyers": agents(sl(e.buyer_bundles), sl(e.buyer_values), sl(e.buyer_mask),
                              "value", e.buyer_names, "b"),
             "sellers": agents(sl(e.seller_bundles), sl(e.seller_costs), sl(e.seller_mask),
                               "cost", e.seller_names, "s")}
        if gnames is not None:
            d = {"goods": list(gnames), **d}
        return d

    if economy.batch_shape == ():
        return {"format": FORMAT, **one(None, goods)}
    if len(economy.batch_shape) != 1:
        raise ValueError(f"economy: save one economy or a 1-D batch, got batch shape "
                         f"{economy.batch_shape} (reshape_batch first)")
    return {"format": FORMAT, "economies": [one(k, goods)
                                            for k in range(economy.batch_shape[0])]}


def save_menu_economy(economy: MenuEconomy, path: Any, goods: Any = None) -> None:
    """Write an economy (or a 1-D batch) as JSON; ``goods``: optional names of the goods."""
    write_json(menu_economy_to_dict(economy, goods), path)
