"""The least markup of one-good economies against a brute force over ALL pure outcomes
(written here, independent of the library), on random economies (with and without ties),
on sub-fleets of a real PGLib-UC case, and with a set-aside; plus the definition of a
markup outcome checked by hand, the certified lower bound when tie sets are pruned, and
the multi-good grid search against a brute force over pure allocations x a markup grid."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

import jaxwalras as jw
from jaxwalras.markup_scan import least_markup_one_good


# ------------------------------------------------------------------ independent oracles
def brute_least_markup(x, V, bm, y, C, sm, R=0.0):
    """Least markup over ALL pure outcomes of a one-good economy.

    For every pure allocation, the buyer prices keeping each buyer on its option form an
    interval [blo, bhi] and the seller prices an interval [plo, phi]; with p = 0 allowed
    only with beta = 0 (then alpha = 0), and for p > 0 the least t = beta / p with
    t >= max(1, Y / X) and beta / p reachable from the two intervals."""
    N, F = x.shape[0], y.shape[0]
    bopts = [np.nonzero(bm[n])[0] for n in range(N)]
    sopts = [np.nonzero(sm[f])[0] for f in range(F)]
    qs = np.where(bm, x, 0).max(-1).sum() + np.where(sm, y, 0).max(-1).sum()
    best = np.inf
    for cb in itertools.product(*bopts):
        blo, bhi = 0.0, np.inf
        for n, c in enumerate(cb):
            for k in bopts[n]:
                dx, dv = x[n, c] - x[n, k], V[n, c] - V[n, k]
                if dx > 0:
                    bhi = min(bhi, dv / dx)
                elif dx < 0:
                    blo = max(blo, dv / dx)
                elif dv < 0:
                    bhi = -1.0
        X = sum(x[n, c] for n, c in enumerate(cb))
        for cs in itertools.product(*sopts):
            Y = sum(y[f, c] for f, c in enumerate(cs))
            if X + R > Y + 1e-12 * qs:
                continue
            plo, phi = 0.0, np.inf
            for f, c in enumerate(cs):
                for k in sopts[f]:
                    dy, dc = y[f, k] - y[f, c], C[f, k] - C[f, c]
                    if dy > 0:
                        phi = min(phi, dc / dy)
                    elif dy < 0:
                        plo = max(plo, dc / dy)
                    elif dc < 0:
                        phi = -1.0
            if blo > bhi * (1 + 1e-12) + 1e-300 or plo > phi * (1 + 1e-12) + 1e-300:
                continue
            if plo <= 0 <= phi and blo <= 0 <= bhi:
                return 0.0
            if phi <= 0 or bhi <= 0:
                continue
            if X <= 0:
                if Y > 1e-12 * qs:
                    continue
                tb = 1.0
            else:
                tb = max(1.0, Y / X)
            t = max(tb, blo / phi)
            if t <= (bhi / plo if plo > 0 else np.inf) * (1 + 1e-12):
                best = min(best, t)
    return best - 1.0


def check_outcome(eco, mk, i=None, set_aside=0.0, rtol=1e-9):
    """The markup-outcome definition, by hand (per-agent relative tolerances)."""
    g = (lambda z: np.asarray(z)) if i is None else (lambda z: np.asarray(z)[i])
    e = eco if i is None else eco[i]
    X, V, Y, C = (np.asarray(getattr(e, f)) for f in
                  ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
    bm, sm = np.asarray(e.buyer_mask), np.asarray(e.seller_mask)
    a, p = float(g(mk.markup)), g(mk.prices)
    assert np.isfinite(a) and a >= 0 and np.all(p >= 0)
    beta = (1 + a) * p
    x = np.zeros(X.shape[-1])
    y = np.zeros(X.shape[-1])
    for n in range(X.shape[0]):
        k = int(g(mk.buyer_choice)[n])
        u = [V[n, j] - beta @ X[n, j] for j in range(X.shape[1]) if bm[n, j]]
        scale = np.abs(V[n][bm[n]]).max() + np.abs(X[n][bm[n]] @ beta).max()
        assert bm[n, k] and max(u) - (V[n, k] - beta @ X[n, k]) <= rtol * scale, f"buyer {n}"
        x += X[n, k]
    for f in range(Y.shape[0]):
        k = int(g(mk.seller_choice)[f])
        w = [p @ Y[f, j] - C[f, j] for j in range(Y.shape[1]) if sm[f, j]]
        scale = np.abs(C[f][sm[f]]).max() + np.abs(Y[f][sm[f]] @ p).max()
        assert sm[f, k] and max(w) - (p @ Y[f, k] - C[f, k]) <= rtol * scale, f"seller {f}"
        y += Y[f, k]
    assert np.all(y - x - set_aside >= -rtol * (x + y + set_aside)), "not feasible"
    assert beta @ x - p @ y >= -rtol * (beta @ x + p @ y), "budget deficit"


def random_one_good(rng, kind, N=None, F=None):
    N = int(rng.integers(1, 4)) if N is None else N
    F = int(rng.integers(1, 3)) if F is None else F
    Kb, Ks = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    if kind == 0:                                   # continuous values: generic
        x = rng.uniform(0, 2, (N, Kb))
        V = x * rng.uniform(0.2, 1.5, (N, Kb))
        y = rng.uniform(0, 3, (F, Ks))
        C = y * rng.uniform(0.2, 1.2, (F, Ks)) + rng.uniform(0, 0.5, (F, 1))
    else:                                           # small integers: many exact ties
        x = rng.integers(0, 4, (N, Kb)).astype(float)
        V = np.round(x * rng.integers(2, 12, (N, Kb)) / 10, 2)
        y = rng.integers(0, 5, (F, Ks)).astype(float)
        C = np.round(y * rng.integers(2, 10, (F, 1)) / 10 + rng.integers(0, 3, (F, 1)) / 10, 2)
    x[:, 0] = 0
    V[:, 0] = 0
    y[:, 0] = 0
    C[:, 0] = 0
    return jw.MenuEconomy(x[..., None], V, y[..., None], C)


def _brute(eco, R=0.0):
    return brute_least_markup(eco.buyer_bundles[..., 0], eco.buyer_values, eco.buyer_mask,
                              eco.seller_bundles[..., 0], eco.seller_costs, eco.seller_mask, R)


# ------------------------------------------------------------------ one good: exact
def test_least_markup_equals_brute_force_on_250_random_economies():
    # the experiment: 250 random one-good economies (half of them full of ties)
    rng = np.random.default_rng(2024)
    ecos = [random_one_good(rng, t % 2) for t in range(250)]
    agree = 0
    for e in ecos:
        mk = jw.markup_mechanism(e, max_markup=1e6)
        ref = _brute(e)
        if np.isinf(ref):
            assert int(mk.status) == jw.Status.NO_SOLUTION and not bool(mk.converged)
            agree += 1
            continue
        assert bool(mk.converged), mk.status
        check_outcome(e, mk)
        assert bool(mk.certified_minimal) and float(mk.markup_lower) == float(mk.markup)
        agree += float(mk.markup) == pytest.approx(ref, rel=1e-9, abs=1e-12)
    assert agree == 250


def test_least_markup_in_a_batch_equals_brute_force_with_set_aside():
    rng = np.random.default_rng(7)
    ecos = [random_one_good(rng, 1, N=3, F=2) for _ in range(24)]
    batch = jw.MenuEconomy.stack(ecos)
    R = rng.choice([0.0, 1.0, 2.0], 24)
    mk = jw.markup_mechanism(batch, reserve=R[:, None], max_markup=1e6)
    for i, e in enumerate(ecos):
        ref = _brute(e, R[i])
        if np.isinf(ref):
            assert mk.status[i] == jw.Status.NO_SOLUTION
            continue
        check_outcome(batch, mk, i, set_aside=R[i])
        assert mk.markup[i] == pytest.approx(ref, rel=1e-9, abs=1e-12)
        assert mk.reserve[i, 0] == R[i]


def test_ties_of_the_table1_class_are_resolved_exactly():
    # equal per-unit values (ties) leave the sort-based fast path uncertified: the piece scan
    # takes over and resolves them exactly (brute force over 2^7 served sets)
    v = np.array([0.9, 0.7, 0.7, 0.7, 0.6, 0.6, 0.3])
    q = np.array([0.5, 0.4, 0.3, 0.6, 0.5, 0.2, 0.9])
    K = 5
    eco = jw.MenuEconomy.single_good(q[:, None], (q * v)[:, None], np.arange(1, K + 1.0)[None],
                                     0.5 * np.arange(1, K + 1.0)[None])
    mk = jw.markup_mechanism(eco)
    check_outcome(eco, mk)
    assert bool(mk.certified_minimal)
    assert float(mk.markup) == pytest.approx(_brute(eco), rel=1e-12)


def test_real_sub_fleets_equal_brute_force():
    # 4 real RTS-GMLC thermal units (menus off / on at their cost breakpoints), a block of
    # demand sized to need some of them: the real cost curves, exhaustively checked
    full = jw.load_pglib_uc(jw.examples.pglib_case_path(), hours=0, demand="blocks", n_blocks=1)
    X, V, Y, C = full.buyer_bundles, full.buyer_values, full.seller_bundles, full.seller_costs
    sm = full.seller_mask
    rng = np.random.default_rng(5)
    thermal = [f for f in range(full.n_sellers) if C[f, 1:].max() > 0 and sm[f].sum() > 2]
    for trial in range(6):
        pick = rng.choice(thermal, 4, replace=False)
        ys, cs, ms = Y[pick, :, 0], C[pick], sm[pick]
        cap = np.where(ms, ys, 0).max(-1).sum()
        d = float(rng.uniform(0.3, 0.9) * cap)
        qb = np.array([[d / 2], [d / 2]])
        eco = jw.MenuEconomy.single_good(qb, 200.0 * qb, np.where(ms, ys, np.nan)[:, 1:],
                                         cs[:, 1:])
        mk = jw.markup_mechanism(eco)
        check_outcome(eco, mk)
        assert float(mk.markup) == pytest.approx(_brute(eco), rel=1e-9, abs=1e-12), trial


def test_pruned_tie_sets_give_a_certified_lower_bound():
    # twelve identical-slope sellers with irregular outputs: the tie sumset has thousands of
    # values; pruned to 8 the scan still returns a valid outcome, and its lower bound is
    # below the true least markup (from the unpruned scan, itself checked by brute force on
    # a smaller copy in the tests above)
    rng = np.random.default_rng(3)
    F = 12
    ys = np.round(rng.uniform(0.5, 3.0, (F, 1)), 3)
    y = np.concatenate([np.zeros((F, 1)), ys, 2 * ys], 1)
    C = 0.4 * y + np.where(y > 0, 0.05, 0.0)
    x = np.array([[0.0, 7.77], [0.0, 4.41]])
    V = 0.9 * x
    eco = jw.MenuEconomy(x[..., None], V, y[..., None], C)
    A = eco.host_arrays(batch=(1,), flat=True)
    full = least_markup_one_good(A, np.zeros(1), 4.0)
    pruned = least_markup_one_good(A, np.zeros(1), 4.0, max_tie_set=8)
    assert full.exact[0] and full.found[0] and pruned.found[0]
    assert pruned.lower[0] <= full.alpha[0] * (1 + 1e-12) <= pruned.alpha[0] * (1 + 1e-12)
    out = jw.MarkupResult(*(None,) * len(jw.MarkupResult._fields))._replace(
        markup=pruned.alpha[0], prices=pruned.p[0], buyer_choice=pruned.cb[0],
        seller_choice=pruned.cs[0])
    check_outcome(eco, out)


def test_no_outcome_within_max_markup_is_reported():
    # a single buyer who only wants 1 unit, a seller who only makes 3: the least markup is
    # 2 (budget 3 p <= (1 + alpha) p); below max_markup = 1 there is none
    eco = jw.MenuEconomy.single_good([[1.0]], [[10.0]], [[3.0]], [[3.0]])
    assert _brute(eco) == pytest.approx(2.0)
    mk = jw.markup_mechanism(eco, max_markup=1.0)
    assert int(mk.status) == jw.Status.NO_SOLUTION and not bool(mk.converged)
    assert np.isinf(mk.markup) and float(mk.markup_lower) == 1.0
    ok = jw.markup_mechanism(eco, max_markup=3.0)
    assert bool(ok.converged) and float(ok.markup) == pytest.approx(2.0)


# ------------------------------------------------------------------ several goods: the grid
def brute_grid_markup(eco, grid):
    """Least grid markup with a pure outcome: every physically feasible pure allocation,
    prices by LP feasibility (HiGHS, written out here)."""
    X, V, Y, C = (np.asarray(getattr(eco, f)) for f in
                  ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
    N, Kb, L = X.shape
    F, Ks, _ = Y.shape
    allocs = []
    for cb in itertools.product(range(Kb), repeat=N):
        x = X[np.arange(N), cb].sum(0)
        for cs in itertools.product(range(Ks), repeat=F):
            y = Y[np.arange(F), cs].sum(0)
            if np.all(y >= x):
                G = [(X[n, cb[n]] - X[n, k], V[n, cb[n]] - V[n, k]) for n in range(N) for k in range(Kb)]
                H = [(Y[f, k] - Y[f, cs[f]], C[f, k] - C[f, cs[f]]) for f in range(F) for k in range(Ks)]
                allocs.append((G, H, x, y))
    for g in grid:
        for G, H, x, y in allocs:
            A = [(1 + g) * a for a, _ in G] + [a for a, _ in H] + [-((1 + g) * x - y)]
            b = [h for _, h in G] + [h for _, h in H] + [0.0]
            res = linprog(np.zeros(L), A_ub=np.array(A), b_ub=np.array(b) + 1e-12,
                          bounds=[(0, None)] * L, method="highs")
            if res.status == 0:
                return g
    return np.inf


def test_multi_good_grid_against_brute_force():
    rng = np.random.default_rng(11)
    grid = np.concatenate([[0.0], np.geomspace(1e-4, 4.0, 16)])
    ecos = []
    for _ in range(6):
        X = rng.integers(0, 3, (2, 3, 2)).astype(float)
        V = np.round(X.sum(-1) * rng.uniform(0.5, 1.5, (2, 3)), 2)
        Y = rng.integers(0, 4, (2, 3, 2)).astype(float)
        C = np.round(Y.sum(-1) * rng.uniform(0.3, 1.0, (2, 3)) + rng.uniform(0, 0.5, (2, 1)), 2)
        X[:, 0], V[:, 0], Y[:, 0], C[:, 0] = 0, 0, 0, 0
        ecos.append(jw.MenuEconomy(X, V, Y, C))
    mk = jw.markup_mechanism(jw.MenuEconomy.stack(ecos), backend="host")
    batch = jw.MenuEconomy.stack(ecos)
    not_above = 0
    for i, e in enumerate(ecos):
        ref = brute_grid_markup(e, grid)
        if not bool(mk.converged[i]):
            assert mk.status[i] != 0
            continue
        check_outcome(batch, mk, i)
        assert mk.markup_lower[i] == 0.0 and mk.markup_lower[i] <= ref
        assert bool(mk.certified_minimal[i]) == (mk.markup[i] == 0.0)
        not_above += mk.markup[i] <= ref * (1 + 1e-9)
    # the grid is a search, not a proof: it finds the brute-force grid markup or a smaller
    # one (refinement) on most of these economies
    assert not_above >= 4
