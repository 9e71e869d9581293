"""CATS-style workload generators for combinatorial markets (``jw.cats``).

Implemented from the published descriptions of the Combinatorial Auction Test Suite
(Leyton-Brown, Pearson & Shoham, "Towards a universal test suite for combinatorial auction
algorithms", EC 2000), scaled down to the small item counts that dense set-function tables
allow (``m <= 16``). Each bidder submits XOR bids; a bidder becomes one buyer of a
:class:`~jaxwalras.SetFunctionMarket` with ``v_i(S) = max{bid value : bid bundle subset S}``.

Distributions
-------------
* :func:`arbitrary` -- goods with common values and random pairwise complementarities; a
  bundle grows by adding goods related to the ones already in it.
* :func:`regions` -- goods are regions on a grid (with random diagonal neighbours); bundles
  are connected sets grown from a seed region (with occasional jumps).
* :func:`paths` -- goods are edges of a planar road graph between random cities; a bidder
  wants to connect two cities and bids XOR on short paths.
* :func:`scheduling` -- goods are time slots; a bidder needs ``L`` consecutive slots and has
  values decreasing in the deadline met.

In ``arbitrary``/``regions`` a bundle's value is
``sum_{j in B} max(0, c_j + pv_ij) * |B|^alpha`` (common value ``c_j ~ U[1, 100]``, private
deviation ``pv_ij ~ U[-dev, dev] * 100``, superadditivity ``alpha``); substitutable bids are
kept only if worth at most ``budget_factor`` times the bidder's first bid and their common
value is at least ``resale_factor`` times the first bid's (CATS's budget and resale rules).

Every generator takes ``seed`` and optional ``n_markets``: with ``n_markets=None`` it returns
one market, otherwise a batch of ``n_markets`` independent markets (batch axis first).
"""
from __future__ import annotations

import itertools
import math
from typing import Callable

import numpy as np

from ._validation import check_number as _check_number
from .setfunction import MAX_ITEMS, SetFunctionMarket

__all__ = ["arbitrary", "regions", "paths", "scheduling", "GENERATORS"]

Bid = tuple[int, float]


def _check_int(x, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name}: must be an int, got {type(x).__name__}")
    if x < lo or (hi is not None and x > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name}: must be in {rng}, got {x}")
    return int(x)


def _check_prob(x, name: str) -> float:
    if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool):
        if not 0.0 <= float(x) <= 1.0:          # (NaN fails too)
            raise ValueError(f"{name}: must be a probability in [0, 1], got {x!r}")
    return _check_number(x, name, lo=0.0, hi=1.0)


def _check_shape_params(alpha: float, deviation: float, budget_factor: float,
                        resale_factor: float, max_substitutable_bids: int
                        ) -> tuple[float, float, float, float, int]:
    """The value-shape parameters shared by :func:`arbitrary` and :func:`regions`."""
    return (_check_number(alpha, "alpha", lo=0.0), _check_number(deviation, "deviation",
                                                                 lo=0.0, hi=1.0),
            _check_number(budget_factor, "budget_factor", lo=0.0),
            _check_number(resale_factor, "resale_factor", lo=0.0),
            _check_int(max_substitutable_bids, "max_substitutable_bids", 0))


def _batch(make: Callable[[np.random.Generator], list[list[Bid]]], n_bidders: int, m: int,
           seed: int, n_markets: int | None) -> SetFunctionMarket:
    _check_int(seed, "seed", 0)
    count = 1 if n_markets is None else _check_int(n_markets, "n_markets", 1)
    tables = []
    for k in range(count):
        rng = np.random.default_rng([seed, k])
        bids = make(rng)
        kmax = max(1, max(len(b) for b in bids))
        mk = np.zeros((n_bidders, kmax), np.int64)
        vk = np.zeros((n_bidders, kmax))
        for i, bl in enumerate(bids):
            for q, (mask, val) in enumerate(bl):
                mk[i, q], vk[i, q] = mask, val
        tables.append(SetFunctionMarket.from_xor_arrays(mk, vk, m).values)
    vals = np.stack(tables)
    return SetFunctionMarket(vals[0] if n_markets is None else vals)


def _bundle_value(bundle: list[int], common: np.ndarray, private: np.ndarray,
                  alpha: float) -> float:
    base = float(np.maximum(common[bundle] + private[bundle], 0.0).sum())
    return base * len(bundle) ** alpha


def _grow(rng: np.random.Generator, first: int, weights: np.ndarray, p_add: float,
          max_size: int) -> list[int]:
    """Grow a bundle from ``first``: while ``U < p_add`` add a good drawn with probability
    proportional to ``weights[last-added-or-any member, good]`` among goods not yet in it."""
    bundle = [first]
    while len(bundle) < max_size and rng.random() < p_add:
        w = weights[bundle].sum(axis=0)
        w[bundle] = 0.0
        if w.sum() <= 0:
            break
        bundle.append(int(rng.choice(len(w), p=w / w.sum())))
    return sorted(bundle)


def _related_bids(rng: np.random.Generator, m: int, weights: np.ndarray, *, p_add: float,
                  alpha: float, deviation: float, max_substitutable_bids: int,
                  budget_factor: float, resale_factor: float, common: np.ndarray,
                  max_size: int) -> list[Bid]:
    private = rng.uniform(-deviation, deviation, m) * 100.0
    pos = np.maximum(common + private, 1e-9)
    first = int(rng.choice(m, p=pos / pos.sum()))
    b0 = _grow(rng, first, weights, p_add, max_size)
    v0 = _bundle_value(b0, common, private, alpha)
    bids: dict[int, float] = {sum(1 << j for j in b0): v0}
    c0 = float(common[b0].sum())
    # substitutable bids: regrow from each good of the first bundle
    for start in b0[:max_substitutable_bids]:
        b = _grow(rng, start, weights, p_add, max_size)
        mask = sum(1 << j for j in b)
        val = _bundle_value(b, common, private, alpha)
        if val <= budget_factor * v0 and common[b].sum() >= resale_factor * c0 and mask not in bids:
            bids[mask] = val
    return [(k, round(v, 6)) for k, v in bids.items()]


def arbitrary(n_bidders: int = 5, m: int = 8, seed: int = 0, *, n_markets: int | None = None,
              p_add: float = 0.6, alpha: float = 0.2, deviation: float = 0.5,
              max_substitutable_bids: int = 5, budget_factor: float = 1.5,
              resale_factor: float = 0.5, max_bundle_size: int | None = None
              ) -> SetFunctionMarket:
    """CATS *arbitrary relationships*: a complete graph of goods with random
    complementarity weights ``d(j, k) ~ U[0, 1]``; bundles grow by adding a good with
    probability proportional to its total relationship with the bundle."""
    n_bidders = _check_int(n_bidders, "n_bidders", 1)
    m = _check_int(m, "m", 1, MAX_ITEMS)
    p_add = _check_prob(p_add, "p_add")
    alpha, deviation, budget_factor, resale_factor, max_substitutable_bids = \
        _check_shape_params(alpha, deviation, budget_factor, resale_factor,
                            max_substitutable_bids)
    max_size = m if max_bundle_size is None else _check_int(max_bundle_size, "max_bundle_size", 1, m)

    def make(rng):
        common = rng.uniform(1.0, 100.0, m)
        d = rng.uniform(0.0, 1.0, (m, m))
        d = (d + d.T) / 2
        np.fill_diagonal(d, 0.0)
        return [_related_bids(rng, m, d, p_add=p_add, alpha=alpha, deviation=deviation,
                              max_substitutable_bids=max_substitutable_bids,
                              budget_factor=budget_factor, resale_factor=resale_factor,
                              common=common, max_size=max_size) for _ in range(n_bidders)]
    return _batch(make, n_bidders, m, seed, n_markets)


def regions(n_bidders: int = 5, m: int = 9, seed: int = 0, *, n_markets: int | None = None,
            p_add: float = 0.6, jump_prob: float = 0.05, additional_neighbor: float = 0.2,
            alpha: float = 0.2, deviation: float = 0.5, max_substitutable_bids: int = 5,
            budget_factor: float = 1.5, resale_factor: float = 0.5,
            max_bundle_size: int | None = None) -> SetFunctionMarket:
    """CATS *regions*: goods are cells of a near-square grid (4-neighbourhood plus each
    diagonal with probability ``additional_neighbor``); bundles are grown from a seed cell by
    adding a neighbour of the bundle, or with probability ``jump_prob`` any good."""
    n_bidders = _check_int(n_bidders, "n_bidders", 1)
    m = _check_int(m, "m", 1, MAX_ITEMS)
    p_add = _check_prob(p_add, "p_add")
    jump_prob = _check_prob(jump_prob, "jump_prob")
    additional_neighbor = _check_prob(additional_neighbor, "additional_neighbor")
    alpha, deviation, budget_factor, resale_factor, max_substitutable_bids = \
        _check_shape_params(alpha, deviation, budget_factor, resale_factor,
                            max_substitutable_bids)
    max_size = m if max_bundle_size is None else _check_int(max_bundle_size, "max_bundle_size", 1, m)
    cols = int(math.ceil(math.sqrt(m)))

    def make(rng):
        adj = np.zeros((m, m))
        for j in range(m):
            r, c = divmod(j, cols)
            for dr, dc in ((0, 1), (1, 0)):
                k = (r + dr) * cols + (c + dc)
                if c + dc < cols and k < m:
                    adj[j, k] = adj[k, j] = 1.0
            for dc in (-1, 1):
                k = (r + 1) * cols + (c + dc)
                if 0 <= c + dc < cols and k < m and rng.random() < additional_neighbor:
                    adj[j, k] = adj[k, j] = 1.0
        weights = (1 - jump_prob) * adj / np.maximum(adj.sum(1, keepdims=True), 1) \
            + jump_prob / m * (1 - np.eye(m))
        common = rng.uniform(1.0, 100.0, m)
        return [_related_bids(rng, m, weights, p_add=p_add, alpha=alpha, deviation=deviation,
                              max_substitutable_bids=max_substitutable_bids,
                              budget_factor=budget_factor, resale_factor=resale_factor,
                              common=common, max_size=max_size) for _ in range(n_bidders)]
    return _batch(make, n_bidders, m, seed, n_markets)


def paths(n_bidders: int = 5, m: int = 10, seed: int = 0, *, n_markets: int | None = None,
          n_cities: int | None = None, max_paths: int = 5, budget_factor: float = 1.5
          ) -> SetFunctionMarket:
    """CATS *paths in space*: ``n_cities`` random points in the unit square joined by the
    ``m`` shortest city-to-city segments that keep the graph planar-ish (Delaunay-like greedy
    shortest-edge construction); goods are the edges. Bidder ``i`` wants to connect two
    random cities ``A, B``; with ``w_i ~ U[1, 2]`` she bids XOR on up to ``max_paths`` shortest
    simple paths ``P`` no longer than ``budget_factor`` times the shortest, each valued
    ``w_i * d(A, B) - (len(P) - len(shortest))`` (longer detours are worth less)."""
    n_bidders = _check_int(n_bidders, "n_bidders", 1)
    m = _check_int(m, "m", 1, MAX_ITEMS)
    max_paths = _check_int(max_paths, "max_paths", 1)
    budget_factor = _check_number(budget_factor, "budget_factor", lo=0.0)
    nc = max(3, int(round(0.75 * m))) if n_cities is None else _check_int(n_cities, "n_cities", 2)
    if nc * (nc - 1) // 2 < m:
        raise ValueError(f"n_cities: {nc} cities have fewer than m = {m} possible edges")

    def make(rng):
        import networkx as nx
        pts = rng.uniform(0, 1, (nc, 2))
        cand = sorted(itertools.combinations(range(nc), 2),
                      key=lambda e: np.linalg.norm(pts[e[0]] - pts[e[1]]))
        edges: list[tuple[int, int]] = []
        # spanning tree first (connected road network), then the shortest remaining edges
        tree = nx.minimum_spanning_tree(nx.Graph([(a, b, {"weight": float(np.linalg.norm(
            pts[a] - pts[b]))}) for a, b in cand]))
        edges = [tuple(sorted(e)) for e in tree.edges()][:m]
        for e in cand:
            if len(edges) >= m:
                break
            if e not in edges:
                edges.append(e)
        g = nx.Graph()
        for k, (a, b) in enumerate(edges):
            g.add_edge(a, b, weight=float(np.linalg.norm(pts[a] - pts[b])), idx=k)
        bids = []
        for _ in range(n_bidders):
            out: list[Bid] = []
            for _try in range(20):
                a, b = rng.choice(nc, 2, replace=False)
                if nx.has_path(g, a, b):
                    break
            w = rng.uniform(1.0, 2.0)
            dab = float(np.linalg.norm(pts[a] - pts[b]))
            gen = nx.shortest_simple_paths(g, int(a), int(b), weight="weight")
            best = None
            for path in itertools.islice(gen, max_paths):
                ln = sum(g[u][v]["weight"] for u, v in zip(path, path[1:]))
                best = ln if best is None else best
                if ln > budget_factor * best:
                    break
                mask = sum(1 << g[u][v]["idx"] for u, v in zip(path, path[1:]))
                val = w * dab - (ln - best)
                if val > 0:
                    out.append((mask, round(val * 100.0, 6)))
            bids.append(out)
        return bids
    return _batch(make, n_bidders, m, seed, n_markets)


def scheduling(n_bidders: int = 5, m: int = 8, seed: int = 0, *, n_markets: int | None = None,
               max_length: int | None = None, max_deadlines: int = 3,
               deviation: float = 0.5) -> SetFunctionMarket:
    """CATS *scheduling*: goods are ``m`` time slots of one machine. Bidder ``i`` has a job of
    length ``L ~ U{1..max_length}`` and ``1..max_deadlines`` increasing deadlines; meeting
    the first deadline ``d_1 ~ U{L..m}`` is worth ``L * U[1, 100]``, each later deadline a
    factor ``U[1 - deviation, 1]`` less. She bids XOR on every interval of ``L`` consecutive
    slots, valued at the best deadline it meets."""
    n_bidders = _check_int(n_bidders, "n_bidders", 1)
    m = _check_int(m, "m", 1, MAX_ITEMS)
    max_length = max(1, m // 3) if max_length is None else _check_int(max_length, "max_length", 1, m)
    max_deadlines = _check_int(max_deadlines, "max_deadlines", 1)
    deviation = _check_number(deviation, "deviation", lo=0.0, hi=1.0)

    def make(rng):
        bids = []
        for _ in range(n_bidders):
            length = int(rng.integers(1, max_length + 1))
            nd = int(rng.integers(1, max_deadlines + 1))
            dl = np.sort(rng.choice(np.arange(length, m + 1), min(nd, m - length + 1),
                                    replace=False))
            val = length * rng.uniform(1.0, 100.0)
            vals = [val]
            for _k in range(1, len(dl)):
                vals.append(vals[-1] * rng.uniform(1.0 - deviation, 1.0))
            out: list[Bid] = []
            for s in range(0, m - length + 1):
                end = s + length
                ok = [v for d, v in zip(dl, vals) if end <= d]
                if ok:
                    out.append((sum(1 << j for j in range(s, end)), round(max(ok), 6)))
            bids.append(out)
        return bids
    return _batch(make, n_bidders, m, seed, n_markets)


GENERATORS: dict[str, Callable[..., SetFunctionMarket]] = {
    "arbitrary": arbitrary, "regions": regions, "paths": paths, "scheduling": scheduling}
