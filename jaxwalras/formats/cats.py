"""Reading and writing the CATS file format (Leyton-Brown, Pearson and Shoham, 2000).

A CATS file lists XOR bids::

    % comments start with %
    goods 4
    bids 5
    dummy 2

    0	12.5	0	1	#
    1	7.25	2	4	#
    2	6.0	3	4	#
    3	9.0	1	5	#
    4	3.5	2	#

Header lines ``goods N``, ``bids M``, ``dummy D``; then one line per bid: the bid id, its
price, the ids of its goods, and ``#`` (fields separated by tabs or spaces).  Goods ids
``>= N`` are *dummy goods*: every bid that includes the same dummy good comes from the same
bidder (so the bidder wins at most one of them: an XOR bid), and every bid without a dummy
good is a bidder of its own.  Known quirks handled here: ``dummy D`` is only an upper bound,
so dummy ids are sparse; a bidder's last bid may carry a dummy that no other bid has.

Each bidder becomes one buyer of a :class:`~jaxwalras.SetFunctionMarket` with
``v(S) = max{price : the bid's goods lie in S}``; the library's dense value tables hold at
most 16 goods.
"""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from ..typing import PathLike
from ..setfunction import MAX_ITEMS, SetFunctionMarket
from ._common import FormatError
from .setfunction import xor_bids

__all__ = ["CatsMarket", "read_cats", "write_cats"]


class CatsMarket(NamedTuple):
    """A CATS file as a market.

    Attributes
    ----------
    market : SetFunctionMarket
        One buyer per bidder, in the order of their first bid in the file.
    bidders : list of list of int
        Each bidder's CATS bid ids.
    n_goods : int
        The number of (real) goods.
    """
    market: SetFunctionMarket
    bidders: list
    n_goods: int


def _header(line: str, key: str, lineno: int, path: Any) -> int:
    parts = line.split()
    if len(parts) != 2 or parts[0] != key:
        raise FormatError(path, f"line {lineno}", f"expected the header line '{key} <count>', "
                          f"got {line.strip()!r}")
    try:
        value = int(parts[1])
    except ValueError:
        raise FormatError(path, f"line {lineno}", f"'{key}' needs a whole number, got "
                          f"{parts[1]!r}") from None
    if value < 0:
        raise FormatError(path, f"line {lineno}", f"'{key}' must be >= 0, got {value}")
    return value


def read_cats(path: PathLike) -> CatsMarket:
    """Read a CATS file (format in the module docstring).

    Raises
    ------
    FormatError
        A malformed header or bid line (naming the line), a good id out of range, a
        repeated bid id, a bid count different from the header's, more than 16 goods,
        or a file that is not text.

    Examples
    --------
    >>> import os, tempfile, jaxwalras as jw
    >>> path = os.path.join(tempfile.mkdtemp(), "shoes.txt")
    >>> _ = open(path, "w").write("goods 2\\nbids 3\\ndummy 1\\n0\\t10\\t0\\t1\\t#\\n"
    ...                           "1\\t6\\t0\\t2\\t#\\n2\\t6\\t1\\t2\\t#\\n")
    >>> cats = jw.read_cats(path)
    >>> cats.bidders, bool((cats.market.values == jw.examples.shoes().values).all())
    ([[0], [1, 2]], True)
    """
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
    except OSError as exc:
        raise FormatError(path, "", f"cannot read the file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"byte {exc.start}", "not UTF-8 text") from None
    lines = [(k + 1, ln) for k, ln in enumerate(text.splitlines())
             if ln.strip() and not ln.lstrip().startswith("%")]
    if len(lines) < 3:
        raise FormatError(path, "", "not a CATS file: it needs the header lines 'goods N', "
                          "'bids M' and 'dummy D' before the bids")
    n_goods = _header(lines[0][1], "goods", *lines[0][:1], path)
    n_bids = _header(lines[1][1], "bids", *lines[1][:1], path)
    n_dummy = _header(lines[2][1], "dummy", *lines[2][:1], path)
    if n_goods > MAX_ITEMS:
        raise FormatError(path, f"line {lines[0][0]}", f"{n_goods} goods: the library's "
                          f"dense value tables hold at most {MAX_ITEMS} goods")
    if n_goods < 1:
        raise FormatError(path, f"line {lines[0][0]}", "a market needs at least one good")
    bids: list[tuple[int, float, list[int], int | None]] = []
    seen: set[int] = set()
    for lineno, ln in lines[3:]:
        parts = ln.split()
        if parts[-1] != "#":
            raise FormatError(path, f"line {lineno}", "a bid line must end with '#'")
        try:
            bid_id = int(parts[0])
            price = float(parts[1])
            goods = [int(g) for g in parts[2:-1]]
        except (ValueError, IndexError):
            raise FormatError(path, f"line {lineno}", f"expected 'id price good ... #', got "
                              f"{ln.strip()!r}") from None
        if not np.isfinite(price) or price < 0:
            raise FormatError(path, f"line {lineno}", f"the price must be a finite number "
                              f">= 0, got {parts[1]}")
        if bid_id in seen:
            raise FormatError(path, f"line {lineno}", f"bid id {bid_id} appears twice")
        seen.add(bid_id)
        bad = [g for g in goods if g < 0 or g >= n_goods + n_dummy]
        if bad:
            raise FormatError(path, f"line {lineno}", f"good {bad[0]} is out of range (goods "
                              f"0..{n_goods - 1}, dummy goods {n_goods}..{n_goods + n_dummy - 1})")
        real = sorted({g for g in goods if g < n_goods})
        dummies = sorted({g for g in goods if g >= n_goods})
        if len(dummies) > 1:
            raise FormatError(path, f"line {lineno}", f"a bid may carry at most one dummy "
                              f"good, got {dummies}")
        if not real:
            raise FormatError(path, f"line {lineno}", "a bid needs at least one real good")
        bids.append((bid_id, price, real, dummies[0] if dummies else None))
    if len(bids) != n_bids:
        raise FormatError(path, "", f"the header says 'bids {n_bids}' but the file has "
                          f"{len(bids)} bid lines")
    # bidders: one per dummy good (in order of first appearance), one per dummy-free bid
    order: dict[Any, int] = {}
    groups: list[list[int]] = []
    for k, (_, _, _, dummy) in enumerate(bids):
        key = ("dummy", dummy) if dummy is not None else ("bid", k)
        if key not in order:
            order[key] = len(groups)
            groups.append([])
        groups[order[key]].append(k)
    xor = [[(bids[k][2], bids[k][1]) for k in g] for g in groups]
    market = SetFunctionMarket.from_xor(xor, m=n_goods)
    return CatsMarket(market, [[bids[k][0] for k in g] for g in groups], n_goods)


def write_cats(market: SetFunctionMarket, path: PathLike, *, comment: str | None = None) -> list:
    """Write one market as a CATS file: every buyer's minimal XOR bids (bids of one buyer
    tied by a dummy good; a buyer with one bid needs none).

    Returns the bidders' bid ids as written (``read_cats`` reports the same).  Reading the
    file back gives the same value tables exactly (prices are written with ``repr``), except
    that buyers who value nothing have no bids and so do not appear in the file.

    Examples
    --------
    >>> import os, tempfile, jaxwalras as jw
    >>> cm = jw.cats.regions(n_bidders=4, m=6, seed=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "regions.txt")
    >>> ids = jw.write_cats(cm, path)
    >>> back = jw.read_cats(path)
    >>> bool((back.market.values == cm.values).all()), back.bidders == ids
    (True, True)
    """
    if not isinstance(market, SetFunctionMarket):
        raise TypeError(f"market: expected a jaxwalras.SetFunctionMarket, got "
                        f"{type(market).__name__}")
    if market.batch_shape:
        raise ValueError(f"market: a CATS file holds one market, got batch shape "
                         f"{market.batch_shape}")
    m = market.n_items
    bids = xor_bids(np.asarray(market.values))
    multi = [i for i, b in enumerate(bids) if len(b) > 1]
    dummy_of = {i: m + k for k, i in enumerate(multi)}
    lines, ids, bid_id = [], [], 0
    for i, blist in enumerate(bids):
        mine = []
        for S, value in blist:
            goods = [j for j in range(m) if (S >> j) & 1]
            if i in dummy_of:
                goods.append(dummy_of[i])
            lines.append("\t".join([str(bid_id), repr(float(value))] + [str(g) for g in goods]
                                   + ["#"]))
            mine.append(bid_id)
            bid_id += 1
        if mine:
            ids.append(mine)
    head = [f"% {comment}"] if comment else []
    head += [f"% written by jaxwalras: {market.n_buyers} buyers, {m} goods",
             f"goods {m}", f"bids {bid_id}", f"dummy {len(multi)}", ""]
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n".join(head + lines) + "\n")
    os.replace(tmp, path)
    return ids
