"""Menu economies to and from JSON: :func:`load_economy` and :func:`save_economy`.

The format (``jaxwalras.menu_economy/1``: buyers' and sellers' options, the implicit empty
option 0, optional names, batches as ``{"economies": [...]}``) and its written schema are in
:mod:`jaxwalras.formats.menu`.
"""
from __future__ import annotations

import os
from typing import Any

from .economy import MenuEconomy
from .formats.menu import (FORMAT, load_menu_economy, menu_economy_from_dict,
                           menu_economy_to_dict, save_menu_economy)

__all__ = ["FORMAT", "economy_from_dict", "economy_to_dict", "load_economy", "save_economy"]


def economy_from_dict(d: Any, *, with_names: bool = False) -> Any:
    """Build a :class:`~jaxwalras.MenuEconomy` from the parsed JSON structure (see
    :func:`jaxwalras.formats.menu.menu_economy_from_dict`)."""
    return menu_economy_from_dict(d, with_names=with_names)


def economy_to_dict(economy: MenuEconomy, goods: list[str] | None = None) -> dict:
    """The JSON structure of an economy or a 1-D batch (option 0 left implicit)."""
    return menu_economy_to_dict(economy, goods)


def load_economy(path: str | os.PathLike, *, with_names: bool = False) -> Any:
    """Read a JSON economy file (format in :mod:`jaxwalras.formats.menu`).

    Parameters
    ----------
    path : str or os.PathLike
    with_names : bool
        Also return ``{"buyers": [...], "sellers": [...], "goods": [...]}`` (agent names
        are on the economy too, as ``buyer_names`` / ``seller_names``).

    Returns
    -------
    MenuEconomy or (MenuEconomy, dict)
        One economy, or a batch for ``{"economies": [...]}``.

    Raises
    ------
    FormatError
        The file cannot be read, is not valid JSON, or is not a valid economy; the message
        is one line naming the file, the place in it and what is wrong.

    Examples
    --------
    >>> import importlib.resources, jaxwalras as jw
    >>> path = importlib.resources.files("jaxwalras") / "examples/data/table1.json"
    >>> jw.load_economy(path).n_buyers
    10
    """
    return load_menu_economy(path, with_names=with_names)


def save_economy(economy: MenuEconomy, path: str | os.PathLike,
                 goods: list[str] | None = None) -> None:
    """Write an economy (or a 1-D batch) as JSON; agent names are kept.

    Parameters
    ----------
    economy : MenuEconomy
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
    save_menu_economy(economy, path, goods)
