"""A documented JSON format for menu economies.

Format (``"format": "jaxwalras.menu_economy/1"``)::

    {
      "format": "jaxwalras.menu_economy/1",
      "goods": ["widgets"],                        # optional names; length = L
      "buyers": [                                  # one entry per buyer
        {"name": "b1",                             # optional
         "options": [{"bundle": [0.28], "value": 0.2716}]},
        ...
      ],
      "sellers": [
        {"name": "s1",
         "options": [{"bundle": [1], "cost": 0.5}, {"bundle": [2], "cost": 1.0}]}
      ]
    }

* ``bundle`` lists the quantity of each good (length ``L``, non-negative); buyers have a
  ``value`` (money value of the bundle), sellers a ``cost`` (cost of producing the plan).
* The empty option (zero bundle, value / cost 0) is implicit: it is ALWAYS option 0 and must
  not be listed; listed options are numbered 1, 2, ... in file order.
* Menus may have different lengths (they are padded with masks).
* ``L`` is taken from ``goods`` if given, otherwise from the first bundle.

:func:`load_economy` / :func:`save_economy` convert to and from
:class:`~jaxwalras.MenuEconomy` (a single economy, no batch axes).
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from .economy import MenuEconomy

__all__ = ["FORMAT", "economy_from_dict", "economy_to_dict", "load_economy", "save_economy"]

FORMAT = "jaxwalras.menu_economy/1"


def _num(x: Any, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise ValueError(f"{where}: must be a finite number, got {x!r}")
    return float(x)


def _agents(d: dict, side: str, key: str, L: int | None) -> tuple[list, int | None]:
    agents = d.get(side)
    if not isinstance(agents, list):
        raise ValueError(f"'{side}': must be a list of {side[:-1]} objects, got {type(agents).__name__}")
    out = []
    for i, a in enumerate(agents):
        where = f"{side}[{i}]"
        if not isinstance(a, dict) or not isinstance(a.get("options", None), list):
            raise ValueError(f"{where}: must be an object with an 'options' list")
        opts = []
        for k, o in enumerate(a["options"]):
            w = f"{where}.options[{k}]"
            if not isinstance(o, dict) or "bundle" not in o or key not in o:
                raise ValueError(f"{w}: must be an object with 'bundle' and '{key}'")
            b = o["bundle"]
            if not isinstance(b, list) or not b:
                raise ValueError(f"{w}.bundle: must be a non-empty list of quantities")
            b = [_num(x, f"{w}.bundle") for x in b]
            if L is None:
                L = len(b)
            if len(b) != L:
                raise ValueError(f"{w}.bundle: has {len(b)} quantities, expected L={L} goods")
            if min(b) < 0:
                raise ValueError(f"{w}.bundle: quantities must be non-negative")
            opts.append((b, _num(o[key], f"{w}.{key}")))
        out.append(opts)
    return out, L


def economy_from_dict(d: dict) -> MenuEconomy:
    """Build a :class:`MenuEconomy` from the JSON structure described in the module doc."""
    if not isinstance(d, dict):
        raise ValueError(f"economy JSON: top level must be an object, got {type(d).__name__}")
    fmt = d.get("format", FORMAT)
    if fmt != FORMAT:
        raise ValueError(f"'format': expected {FORMAT!r}, got {fmt!r}")
    goods = d.get("goods")
    L = len(goods) if isinstance(goods, list) and goods else None
    buyers, L = _agents(d, "buyers", "value", L)
    sellers, L = _agents(d, "sellers", "cost", L)
    if L is None:
        raise ValueError("economy JSON: cannot tell the number of goods (no 'goods' and no options)")
    if not buyers or not sellers:
        raise ValueError("economy JSON: need at least one buyer and one seller")

    def pack(agents):
        K = 1 + max(len(a) for a in agents)
        Z = np.zeros((len(agents), K, L))
        W = np.zeros((len(agents), K))
        M = np.zeros((len(agents), K), bool)
        M[:, 0] = True
        for i, a in enumerate(agents):
            for k, (b, w) in enumerate(a, start=1):
                Z[i, k], W[i, k], M[i, k] = b, w, True
        return Z, W, M

    X, V, bm = pack(buyers)
    Y, C, sm = pack(sellers)
    return MenuEconomy(X, V, Y, C, bm, sm)


def economy_to_dict(economy: MenuEconomy, goods: list[str] | None = None) -> dict:
    """The JSON structure of a single (unbatched) economy (option 0 is left implicit)."""
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a MenuEconomy, got {type(economy).__name__}")
    if economy.batch_shape != ():
        raise ValueError(f"economy: save one economy at a time, got batch_shape {economy.batch_shape}")
    e = economy.to_numpy()

    def agents(Z, W, M, key, prefix):
        out = []
        for i in range(Z.shape[0]):
            opts = [{"bundle": Z[i, k].tolist(), key: float(W[i, k])}
                    for k in range(1, Z.shape[1]) if M[i, k]]
            out.append({"name": f"{prefix}{i + 1}", "options": opts})
        return out

    d = {"format": FORMAT,
         "buyers": agents(e.buyer_bundles, e.buyer_values, e.buyer_mask, "value", "b"),
         "sellers": agents(e.seller_bundles, e.seller_costs, e.seller_mask, "cost", "s")}
    if goods is not None:
        d["goods"] = list(goods)
    return d


def load_economy(path: str | os.PathLike) -> MenuEconomy:
    """Read a JSON economy file (format in the module docstring).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    MenuEconomy
        One economy (no batch axes).

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        The content is not valid JSON or not a valid economy (the message names the place).

    Examples
    --------
    >>> import importlib.resources, jaxwalras as jw
    >>> path = importlib.resources.files("jaxwalras") / "examples/data/table1.json"
    >>> jw.load_economy(path).n_buyers
    10
    """
    with open(path) as fh:
        try:
            d = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
    return economy_from_dict(d)


def save_economy(economy: MenuEconomy, path: str | os.PathLike,
                 goods: list[str] | None = None) -> None:
    """Write a single economy as JSON (format in the module docstring).

    Parameters
    ----------
    economy : MenuEconomy
        One economy (no batch axes).
    path : str or os.PathLike
    goods : list of str, optional
        Names of the goods.

    Returns
    -------
    None

    Examples
    --------
    >>> import os, tempfile, jaxwalras as jw
    >>> path = os.path.join(tempfile.mkdtemp(), "t1.json")
    >>> jw.save_economy(jw.examples.milgrom_watt_table1(), path)
    >>> jw.load_economy(path).n_sellers
    1
    """
    with open(path, "w") as fh:
        json.dump(economy_to_dict(economy, goods), fh, indent=1)
