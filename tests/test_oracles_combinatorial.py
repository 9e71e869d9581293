"""Combinatorial markets: checks the other combinatorial test files lack, each against an
oracle written here.

* CATS ``paths``: every XOR bid is the edge set of a simple path between the bidder's two
  cities in the road network the generator built (the network is recorded while the
  generator runs; connectivity, degrees and endpoints are checked by hand).
* ``allocation_welfare`` against the definition, its bad input and its batch broadcast.
* ``is_gross_substitutes``: batch == per-market loop, against the classes known to be
  gross substitutes (unit demand, additive) and a brute-force violation witness found on a
  price grid (Kelso and Crawford's definition, single-item price raises)."""
from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

import jaxwalras as jw


# ------------------------------------------------------------------ CATS paths --

def atoms(v_i, m):
    """Sets whose value exceeds that of every proper subset (the XOR bids that matter)."""
    return [s for s in range(1, 2 ** m)
            if all(v_i[s] > v_i[s ^ (1 << j)] for j in range(m) if (s >> j) & 1)]


@pytest.mark.parametrize("seed", [2, 7])
def test_paths_bids_are_simple_paths_between_the_bidders_cities(monkeypatch, seed):
    calls = []
    original = nx.shortest_simple_paths

    def recording(g, source, target, *args, **kwargs):
        calls.append((g.copy(), int(source), int(target)))
        return original(g, source, target, *args, **kwargs)

    monkeypatch.setattr(nx, "shortest_simple_paths", recording)
    m, n = 10, 5
    cm = jw.cats.paths(n_bidders=n, m=m, seed=seed)
    assert len(calls) == n                                # one route search per bidder
    n_paths = 0
    for i, (g, a, b) in enumerate(calls):
        ends = {d["idx"]: (u, w) for u, w, d in g.edges(data=True)}
        assert sorted(ends) == list(range(m))             # the goods are the edges
        for s in atoms(cm.values[i], m):
            edges = [ends[j] for j in range(m) if (s >> j) & 1]
            h = nx.Graph(edges)
            deg = dict(h.degree())
            assert nx.is_connected(h), (i, s)
            assert h.number_of_nodes() == len(edges) + 1, (i, s)     # a tree ...
            assert sorted(k for k, dk in deg.items() if dk == 1) == sorted([a, b]), (i, s)
            assert all(dk <= 2 for dk in deg.values()), (i, s)       # ... that is a path
            n_paths += 1
        # the shortest route is among the bids unless it is worth nothing
        if cm.values[i].max() > 0:
            sp = nx.shortest_path(g, a, b, weight="weight")
            mask = sum(1 << g[u][w]["idx"] for u, w in zip(sp, sp[1:]))
            assert cm.values[i, mask] == cm.values[i].max()
    assert n_paths >= n                                   # the test saw real bids


# ---------------------------------------------------------- allocation_welfare --

def test_allocation_welfare_against_the_definition_and_batches():
    rng = np.random.default_rng(41)
    B, n, m = 5, 3, 4
    raw = rng.uniform(0, 5, (B, n, 2 ** m))
    raw[..., 0] = 0
    for s in range(2 ** m):                               # free-disposal closure
        for j in range(m):
            if (s >> j) & 1:
                raw[..., s] = np.maximum(raw[..., s], raw[..., s ^ (1 << j)])
    cm = jw.SetFunctionMarket(raw)
    owner = rng.integers(0, n + 1, (B, m))                # n = unallocated
    alloc = np.array([[sum(1 << j for j in range(m) if owner[b, j] == i) for i in range(n)]
                      for b in range(B)])
    w = jw.allocation_welfare(cm, alloc)
    assert w.shape == (B,)
    for b in range(B):
        want = sum(raw[b, i, alloc[b, i]] for i in range(n))
        assert w[b] == pytest.approx(want, rel=1e-15)
        assert float(jw.allocation_welfare(cm[b], alloc[b])) == w[b]      # batch == loop
    # one allocation broadcast against every market; a grid of allocations per market
    w1 = jw.allocation_welfare(cm, alloc[0])
    np.testing.assert_array_equal(w1, [jw.allocation_welfare(cm[b], alloc[0]) for b in range(B)])
    grid = jw.allocation_welfare(cm[:, None], np.stack([alloc, alloc[::-1]], 1))
    assert grid.shape == (B, 2) and grid[:, 0].tolist() == w.tolist()
    # the optimal allocation's welfare is the optimum (brute force over item owners)
    oa = jw.optimal_allocation(cm)
    for b in range(B):
        best = max(sum(raw[b, i, sum(1 << j for j in range(m) if a[j] == i)] for i in range(n))
                   for a in itertools.product(range(n + 1), repeat=m))
        assert jw.allocation_welfare(cm[b], oa.allocation[b]) == pytest.approx(best, rel=1e-6)


def test_allocation_welfare_refuses_bad_input():
    cm = jw.examples.shoes()                              # 2 buyers, 2 items
    with pytest.raises(ValueError, match="allocation: buyers' sets must be disjoint"):
        jw.allocation_welfare(cm, [1, 3])
    with pytest.raises(ValueError, match="allocation: bitmasks must be < 2\\*\\*m = 4, found 4"):
        jw.allocation_welfare(cm, [4, 0])
    with pytest.raises(ValueError, match="allocation"):
        jw.allocation_welfare(cm, [1, 0, 0])
    with pytest.raises(ValueError, match="allocation: must be non-negative"):
        jw.allocation_welfare(cm, [-1, 0])
    with pytest.raises(TypeError, match="allocation: must hold integers"):
        jw.allocation_welfare(cm, [0.5, 0])
    with pytest.raises(TypeError, match="SetFunctionMarket"):
        jw.allocation_welfare(np.zeros((2, 4)), [0, 0])
    with pytest.raises(ValueError, match="allocation"):
        jw.allocation_welfare(jw.SetFunctionMarket(np.stack([cm.values] * 3)),
                              np.zeros((2, 2), int))


# ---------------------------------------------------------- is_gross_substitutes --

def gs_violation_on_grid(v, m, top):
    """A witness against gross substitutes (Kelso and Crawford): prices p, one item k
    raised to q = p + delta e_k, a demanded set S at p, and no demanded set at q keeping
    S minus k.  Integer values, prices on the half-integer grid [0, top] (exact in
    doubled units)."""
    v2 = 2 * np.asarray(v)                               # doubled: integer arithmetic
    sets = np.arange(2 ** m)
    member = (sets[:, None] >> np.arange(m)) & 1          # (2^m, m)
    grid = np.arange(0, 2 * top + 1)
    for p in itertools.product(grid, repeat=m):
        p = np.array(p)
        u = v2 - member @ p
        D = np.flatnonzero(u == u.max())
        for k in range(m):
            for delta in range(1, 2 * top + 1 - p[k]):
                q = p.copy()
                q[k] += delta
                uq = v2 - member @ q
                Dq = np.flatnonzero(uq == uq.max())
                for S in D:
                    keep = int(S) & ~(1 << k)
                    if not any((int(T) & keep) == keep for T in Dq):
                        return p / 2, q / 2, int(S)
    return None


def test_is_gross_substitutes_against_kelso_crawford_on_a_price_grid():
    rng = np.random.default_rng(42)
    m = 2
    tables = []
    for _ in range(8):                                    # random monotone integer tables
        t = rng.integers(0, 5, 2 ** m).astype(float)
        t[0] = 0
        for s in range(2 ** m):
            for j in range(m):
                if (s >> j) & 1:
                    t[s] = max(t[s], t[s ^ (1 << j)])
        tables.append(t)
    cm = jw.SetFunctionMarket(np.array(tables).reshape(4, 2, 2 ** m))
    gs = jw.is_gross_substitutes(cm)
    assert gs.shape == (4, 2)
    seen = set()
    for b, i in np.ndindex(4, 2):
        witness = gs_violation_on_grid(cm.values[b, i], m, top=5)
        if witness is not None:
            assert not gs[b, i], (cm.values[b, i], witness)
        seen.add(witness is None)
        assert bool(jw.is_gross_substitutes(cm[b])[i]) == bool(gs[b, i])   # batch == loop
    # the shoes: Alice's complements have a grid witness, Bob's single shoe none
    shoes = jw.examples.shoes()
    assert gs_violation_on_grid(shoes.values[0], 2, top=11) is not None
    assert jw.is_gross_substitutes(shoes).tolist() == [False, True]
    assert seen == {True, False}                          # both verdicts exercised


def test_is_gross_substitutes_known_classes_and_batches():
    rng = np.random.default_rng(43)
    w = rng.integers(0, 9, (3, 2, 3)).astype(float)
    for cm in (jw.SetFunctionMarket.unit_demand(w), jw.SetFunctionMarket.additive(w)):
        gs = jw.is_gross_substitutes(cm)
        assert gs.shape == (3, 2) and gs.all()
        for b in range(3):
            assert gs_violation_on_grid(cm.values[b, 0], 3, top=2) is None
    with pytest.raises(ValueError, match="m <= 8"):
        jw.is_gross_substitutes(jw.SetFunctionMarket(np.zeros((1, 2 ** 9))))
    with pytest.raises(TypeError, match="SetFunctionMarket"):
        jw.is_gross_substitutes(np.zeros((1, 4)))
