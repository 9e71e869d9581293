"""HiGHS adapters: the exact LPs and MILPs of the library, on public APIs only.

LPs go to HiGHS (Huangfu and Hall, 2018) through the public ``highspy`` package when it is
installed (it skips ``scipy.optimize.linprog``'s per-call Python overhead), otherwise
through ``scipy.optimize.linprog(method="highs-ds")``; both run HiGHS' dual simplex, so
every answer is a basic (vertex) solution.  MILPs go through ``scipy.optimize.milp``.
HiGHS prints nothing: the library's output belongs to the user.

The convexified LP of a menu economy (Milgrom and Watt, 2022) with markup ``alpha`` and
reserve ``R``, restricted to the options where the masks of ``A`` are True::

    max  sum lam[n,k] V[n,k] / (1+alpha) - sum mu[f,k] C[f,k]
    s.t. sum_k lam[n,k] = 1, sum_k mu[f,k] = 1, sum X lam + R <= sum Y mu,  lam, mu >= 0

Agents with a single allowed option are constants (no variable, no row).  The duals of
the goods rows are the seller prices.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.optimize import LinearConstraint, linprog, milp

from .economy import MenuArrays
from .menu_host import max_over_options

__all__ = ["dual_simplex", "solve_menu_lp", "solve_menu_lp_blocks", "solve_menu_lps",
           "menu_lp_feasible", "solve_milp", "MilpResult", "HAVE_HIGHSPY", "lp_scales"]

try:
    import highspy as _highspy
    HAVE_HIGHSPY = all(hasattr(_highspy, n) for n in (
        "Highs", "HighsLp", "MatrixFormat", "HighsModelStatus", "HighsStatus"))
except Exception:  # pragma: no cover - highspy missing: scipy's linprog runs HiGHS
    _highspy, HAVE_HIGHSPY = None, False  # type: ignore[assignment]

#: set to False to force the ``scipy.optimize.linprog`` path (tests do)
USE_HIGHSPY = True
_BANNER_DONE = False


class _Quiet:
    """Redirect the process's standard output and error (file descriptors 1 and 2) to the
    null device: HiGHS' C++ code prints some diagnostics (e.g. from its MIP solver) with
    ``printf``, whatever its output options say."""

    def __enter__(self) -> "_Quiet":
        self.saved = []
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            self.null = open(os.devnull, "w")
            for fd in (1, 2):
                self.saved.append((fd, os.dup(fd)))
                os.dup2(self.null.fileno(), fd)
        except OSError:  # pragma: no cover - no such descriptors
            pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for fd, keep in self.saved:
            os.dup2(keep, fd)
            os.close(keep)
        if hasattr(self, "null"):
            self.null.close()


def _new_highs() -> Any:
    """A silent ``highspy.Highs`` (the first one of a process prints a licence banner
    from C++ on standard output: that one is created with the output redirected)."""
    global _BANNER_DONE
    if _BANNER_DONE:
        h = _highspy.Highs()
    else:
        try:
            sys.stdout.flush()
            fd = os.dup(1)
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                try:
                    h = _highspy.Highs()
                finally:
                    os.dup2(fd, 1)
                    os.close(fd)
        except OSError:  # pragma: no cover - no file descriptor 1
            h = _highspy.Highs()
        _BANNER_DONE = True
    h.setOptionValue("output_flag", False)
    h.setOptionValue("log_to_console", False)
    return h


def dual_simplex(c: np.ndarray, A: sp.csc_matrix, m_ub: int, b_ub: np.ndarray,
                 b_eq: np.ndarray) -> tuple[bool, np.ndarray | None, np.ndarray | None, int]:
    """``min c.x  s.t.  A[:m_ub] x <= b_ub,  A[m_ub:] x = b_eq,  x >= 0`` by HiGHS' dual
    simplex (``A`` in CSC format).

    Returns ``(ok, x, duals of the first m_ub rows (<= 0), simplex iterations)``;
    ``x`` and the duals are ``None`` when HiGHS reports anything but optimality.
    """
    if not (HAVE_HIGHSPY and USE_HIGHSPY):
        A = sp.csr_matrix(A)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = linprog(c, A_ub=A[:m_ub], b_ub=b_ub, A_eq=A[m_ub:], b_eq=b_eq,
                          bounds=(0, None), method="highs-ds")
        if res.status != 0:
            return False, None, None, int(getattr(res, "nit", 0) or 0)
        return True, res.x, np.asarray(res.ineqlin.marginals, np.float64), int(res.nit)
    h = _highspy
    inf = h.kHighsInf
    A = A if sp.issparse(A) and A.format == "csc" else sp.csc_matrix(A)
    m, n = A.shape
    highs = _new_highs()
    highs.setOptionValue("solver", "simplex")
    highs.setOptionValue("simplex_strategy", 1)      # dual simplex: a basic (vertex) optimum
    # the model as rows (bounds only) then columns (costs, bounds, CSC entries): numpy
    # arrays go to HiGHS as buffers, where filling a ``HighsLp`` converts them elementwise
    # (~1 ms per call on LPs of a thousand columns)
    i32 = lambda z: np.ascontiguousarray(z, np.int32)  # noqa: E731
    if (highs.addRows(m, np.concatenate([np.full(m_ub, -inf), np.asarray(b_eq, np.float64)]),
                      np.concatenate([np.asarray(b_ub, np.float64), np.asarray(b_eq, np.float64)]),
                      0, i32([]), i32([]), np.zeros(0)) == h.HighsStatus.kError
            or highs.addCols(n, np.asarray(c, np.float64), np.zeros(n), np.full(n, inf), A.nnz,
                             i32(A.indptr[:-1]), i32(A.indices),
                             np.ascontiguousarray(A.data, np.float64)) == h.HighsStatus.kError
            or highs.run() == h.HighsStatus.kError):
        return False, None, None, 0
    nit = int(highs.getInfo().simplex_iteration_count)
    if highs.getModelStatus() != h.HighsModelStatus.kOptimal:
        return False, None, None, nit
    sol = highs.getSolution()
    return True, np.asarray(sol.col_value), np.asarray(sol.row_dual)[:m_ub], nit


def _pow2(x: np.ndarray) -> np.ndarray:
    """The power of two nearest to ``x > 0`` (1 where ``x`` is 0): dividing by it is exact."""
    x = np.asarray(x, np.float64)
    return np.where(x > 0, 2.0 ** np.round(np.log2(np.where(x > 0, x, 1.0))), 1.0)


def lp_scales(A: MenuArrays, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-economy money scale ``(...,)`` and per-good quantity scale ``(..., L)`` (powers of
    two) that every LP/MILP of the library divides its data by before HiGHS sees it, so
    HiGHS' absolute tolerances act relative to the economy's own scale (and a change of the
    money unit is exact)."""
    vs, qs, _ = lp_and_quantity_scales(A, r)
    return vs, qs


def _masked_max(z: np.ndarray, mask: np.ndarray, axis: int | tuple[int, ...]) -> np.ndarray:
    """``np.where(mask, z, 0).max(axis)``, without the masked copy when nothing is masked."""
    if mask.all():
        return np.maximum(z.max(axis), 0.0)
    return np.where(mask, z, 0.0).max(axis)


def lp_and_quantity_scales(A: MenuArrays, r: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`lp_scales` and :func:`jaxwalras.menu_host.quantity_scale` (the same
    numbers) from one pass over the options."""
    X, V, bm, Y, C, sm = A
    vs = np.maximum(_masked_max(np.abs(V), bm, (-1, -2)), _masked_max(np.abs(C), sm, (-1, -2)))
    qx = max_over_options(X, bm)                            # (..., N, L)
    qy = max_over_options(Y, sm)                            # (..., F, L)
    qs = np.maximum(np.maximum(qx.max(-2), qy.max(-2)), np.abs(r))
    return _pow2(vs), _pow2(qs), qx.sum(-2) + qy.sum(-2)


def _scaled(A: MenuArrays, r: np.ndarray, vs: np.ndarray, qs: np.ndarray
            ) -> tuple[MenuArrays, np.ndarray]:
    X, V, bm, Y, C, sm = A
    q = qs[..., None, None, :]
    v = np.asarray(vs)[..., None, None]
    return MenuArrays(X / q, V / v, bm, Y / q, C / v, sm), r / qs


def solve_menu_lp(A: MenuArrays, a: float, r: np.ndarray
                  ) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray, int]:
    """The convexified LP of ONE economy restricted to the options where ``A.bm`` /
    ``A.sm`` are True (see the module docstring).

    Returns ``(ok, p (L,), lam (N, Kb), mu (F, Ks), simplex iterations)``; the weights are a
    basic (vertex) solution; ``p`` is NaN when ``ok`` is False.  The LP is solved on data
    scaled by :func:`lp_scales`.
    """
    vs, qs = lp_scales(A, r)
    A, r = _scaled(A, np.asarray(r, np.float64), vs, qs)
    ok, p, lam, mu, nit = _solve_menu_lp_scaled(A, a, r)
    return ok, p * vs / qs, lam, mu, nit


def _solve_menu_lp_scaled(A: MenuArrays, a: float, r: np.ndarray):
    X, V, bm, Y, C, sm = A
    N, Kb, L = X.shape
    nb_opt = bm.sum(-1)
    ns_opt = sm.sum(-1)
    lam = np.where(bm & (nb_opt[:, None] == 1), 1.0, 0.0)
    mu = np.where(sm & (ns_opt[:, None] == 1), 1.0, 0.0)
    const_use = (np.einsum("nk,nkl->l", lam, X) + r - np.einsum("fk,fkl->l", mu, Y))
    bi, bk = np.nonzero(bm & (nb_opt[:, None] > 1))
    si, sk = np.nonzero(sm & (ns_opt[:, None] > 1))
    nbv, nsv = len(bi), len(si)
    if nbv + nsv == 0:
        ok = bool(np.all(const_use <= 1e-12))
        return ok, np.zeros(L), lam, mu, 0
    c = np.concatenate([-V[bi, bk] / (1.0 + a), C[si, sk]])
    A_ub = np.concatenate([X[bi, bk].T, -Y[si, sk].T], axis=1)
    # one simplex row per agent that has a choice
    bu, brow = np.unique(bi, return_inverse=True)
    su, srow = np.unique(si, return_inverse=True)
    rows = np.concatenate([brow, len(bu) + srow])
    A_eq = sp.csr_matrix((np.ones(nbv + nsv), (rows, np.arange(nbv + nsv))),
                         shape=(len(bu) + len(su), nbv + nsv))
    ok, x, duals, nit = dual_simplex(c, sp.vstack([sp.csr_matrix(A_ub), A_eq]).tocsc(), L,
                                     -const_use, np.ones(len(bu) + len(su)))
    if not ok or x is None or duals is None:
        return False, np.full(L, np.nan), lam, mu, nit
    xsol = np.clip(x, 0.0, 1.0)
    lam[bi, bk] = xsol[:nbv]
    mu[si, sk] = xsol[nbv:]
    return True, np.maximum(-duals, 0.0), lam, mu, nit


def _segment_reduce(op: np.ufunc, out: np.ndarray, idx: np.ndarray, val: np.ndarray) -> None:
    """``out[i] = op(out[i], op.reduce(val[idx == i]))`` in place, for SORTED ``idx``."""
    if idx.size == 0:
        return
    starts = np.flatnonzero(np.concatenate([[True], idx[1:] != idx[:-1]]))
    rows = idx[starts]
    out[rows] = op(out[rows], op.reduceat(val, starts, axis=0))


def solve_menu_lp_blocks(A: MenuArrays, a: np.ndarray, r: np.ndarray,
                         elastic: np.ndarray | None = None):
    """Many restricted convexified LPs at once: ONE block-diagonal HiGHS dual-simplex call.

    ``A`` is a flat batch ``(B, ...)`` whose masks select each economy's allowed options.
    The blocks are independent, so an optimum of the whole is optimal per block, a basis
    of the whole is a basis per block (each block keeps its vertex property), and the
    duals of block ``b``'s goods rows are economy ``b``'s prices.  Set-up is vectorised
    over the batch.  Returns ``(ok (B,), P (B, L), LAM, MU, iterations (B,))``; ``ok`` is
    all False if the joint LP fails (e.g. one block infeasible): the caller then splits
    the blocks.

    ``elastic`` (B, L): if given, every goods row gets an extra supply column at that unit
    cost, so that no block is infeasible; ``ok[b]`` is then False where block ``b`` uses it
    (its allowed options cannot clear the market, or its prices would exceed the cost:
    either way it needs more options).  A solution that does not use it is a basic
    optimum of the restricted LP itself.  Every block is scaled by its own
    :func:`lp_scales` first.
    """
    X, V, bm, Y, C, sm = A
    B, N, Kb, L = X.shape
    F, Ks = C.shape[1:]
    r = np.asarray(r, np.float64)
    # everything below touches the allowed options only (gathered), not the full menus
    bb, bn, bk = np.nonzero(bm)
    sb, sf, sk = np.nonzero(sm)
    Xc, Vc, Yc, Cc = X[bb, bn, bk], V[bb, bn, bk], Y[sb, sf, sk], C[sb, sf, sk]
    # lp_scales of the restricted economies (max over allowed options, and 0)
    vs, qs = np.zeros(B), np.abs(r)
    for idx, val, q in ((bb, np.abs(Vc), Xc), (sb, np.abs(Cc), Yc)):
        _segment_reduce(np.maximum, vs, idx, val)
        _segment_reduce(np.maximum, qs, idx, q)
    vs, qs = _pow2(vs), _pow2(qs)
    Xc, Yc, rs = Xc / qs[bb], Yc / qs[sb], r / qs
    Vc, Cc = Vc / vs[bb], Cc / vs[sb]
    if elastic is not None:
        elastic = np.asarray(elastic, np.float64) * qs / vs[:, None]
    # agents with one allowed option are constants; the others get LP columns
    one_b = (np.bincount(bb * N + bn, minlength=B * N) == 1)[bb * N + bn]
    one_s = (np.bincount(sb * F + sf, minlength=B * F) == 1)[sb * F + sf]
    LAM = np.zeros((B, N, Kb))
    MU = np.zeros((B, F, Ks))
    LAM[bb[one_b], bn[one_b], bk[one_b]] = 1.0
    MU[sb[one_s], sf[one_s], sk[one_s]] = 1.0
    const_use = rs.copy()
    _segment_reduce(np.add, const_use, bb[one_b], Xc[one_b])
    _segment_reduce(np.add, const_use, sb[one_s], -Yc[one_s])
    many_b, many_s = ~one_b, ~one_s
    ok, P, LAM, MU, it = _blocks_scaled(
        (bb[many_b], bn[many_b], bk[many_b], Xc[many_b], Vc[many_b]),
        (sb[many_s], sf[many_s], sk[many_s], Yc[many_s], Cc[many_s]),
        LAM, MU, const_use, N, F, a, elastic)
    return ok, P * vs[:, None] / qs, LAM, MU, it


def _blocks_scaled(buy, sell, LAM: np.ndarray, MU: np.ndarray, const_use: np.ndarray, N: int,
                   F: int, a: np.ndarray, elastic: np.ndarray | None):
    """The block-diagonal LP over the LP columns ``buy = (b, n, k, X (nb, L), V (nb,))``
    and ``sell`` (same for sellers), on scaled data; ``const_use`` (B, L) is the goods use
    of the agents with one allowed option (their weights already set in LAM / MU)."""
    bb, bn, bk, Xv, Vv = buy
    sb, sf, sk, Yv, Cv = sell
    B, L = const_use.shape
    nbv, nsv = len(bb), len(sb)
    nvar = nbv + nsv
    if nvar == 0:
        ok = np.all(const_use <= 1e-12, -1)
        return ok, np.zeros((B, L)), LAM, MU, np.zeros(B, np.int64)
    c = np.concatenate([-Vv / (1.0 + a[bb]), Cv])
    vb = np.concatenate([bb, sb])
    coef = np.concatenate([Xv, -Yv])                                 # (nvar, L)
    # simplex rows (after the B*L goods rows): one per agent with a choice
    agent = np.concatenate([bb * N + bn, B * N + sb * F + sf])
    uniq, arow = np.unique(agent, return_inverse=True)
    # the matrix in CSC form directly: column j holds its nonzero goods entries (rows
    # b*L + l, ascending) and then its agent's simplex row; the elastic columns follow
    rows = np.concatenate([vb[:, None] * L + np.arange(L), (B * L + arow)[:, None]], 1)
    vals = np.concatenate([coef, np.ones((nvar, 1))], 1)
    keep = vals != 0
    indices, data = rows[keep], vals[keep]
    counts = keep.sum(1)
    ncol = nvar
    if elastic is not None:
        c = np.concatenate([c, np.asarray(elastic, np.float64).ravel()])
        indices = np.concatenate([indices, np.arange(B * L)])
        data = np.concatenate([data, -np.ones(B * L)])
        counts = np.concatenate([counts, np.ones(B * L, np.int64)])
        ncol = nvar + B * L
    indptr = np.concatenate([[0], np.cumsum(counts)])
    Am = sp.csc_matrix((data, indices, indptr), shape=(B * L + len(uniq), ncol))
    good, x, duals, nit = dual_simplex(c, Am, B * L, -const_use.ravel(), np.ones(len(uniq)))
    if not good or x is None or duals is None:
        return np.zeros(B, bool), np.full((B, L), np.nan), LAM, MU, np.zeros(B, np.int64)
    xs = np.clip(x, 0.0, 1.0)
    LAM[bb, bn, bk] = xs[:nbv]
    MU[sb, sf, sk] = xs[nbv:nvar]
    P = np.maximum(-duals.reshape(B, L), 0.0)
    ok = np.ones(B, bool)
    if elastic is not None:
        used = x[nvar:].reshape(B, L)
        ok = (used <= 1e-11 * (1.0 + np.abs(const_use))).all(-1)
    return ok, P, LAM, MU, np.full(B, nit // max(B, 1), np.int64)


def solve_menu_lps(A: MenuArrays, a: np.ndarray, r: np.ndarray):
    """The full convexified LP of every economy of a flat batch, one HiGHS call each
    (the baseline a user would write).  Returns ``(ok, P, LAM, MU, iterations)``."""
    B = A.n_markets
    L = A.X.shape[-1]
    P = np.zeros((B, L))
    LAM = np.zeros(A.V.shape)
    MU = np.zeros(A.C.shape)
    ok = np.zeros(B, bool)
    it = np.zeros(B, np.int64)
    for b in range(B):
        ok[b], P[b], LAM[b], MU[b], it[b] = solve_menu_lp(A.take(b), float(a[b]), r[b])
    return ok, P, LAM, MU, it


def menu_lp_feasible(A: MenuArrays, r: np.ndarray) -> bool:
    """Whether the convexified LP of ONE economy (with reserve ``r``) has a feasible point.

    Buyers consume nothing at their empty option, so the LP is feasible iff the sellers'
    mixed plans can cover the reserve: ``exists mu`` on the sellers' simplices with
    ``sum Y mu >= r`` (a small LP).  Used to tell an infeasible economy from a solver
    failure.
    """
    _, _, _, Y, C, sm = A
    F, Ks, L = Y.shape
    qs = lp_scales(A, np.asarray(r, np.float64))[1]
    Y, r = Y / qs, np.asarray(r, np.float64) / qs
    fi, ki = np.nonzero(sm)
    if fi.size == 0:
        return bool(np.all(np.asarray(r) <= 0))
    A_eq = sp.csr_matrix((np.ones(fi.size), (fi, np.arange(fi.size))), shape=(F, fi.size))
    A_ub = sp.csr_matrix(-Y[fi, ki].T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = linprog(np.zeros(fi.size), A_ub=A_ub, b_ub=-np.asarray(r, np.float64),
                      A_eq=A_eq, b_eq=np.ones(F), bounds=(0, None), method="highs")
    return bool(res.status == 0)


class MilpResult(NamedTuple):
    """Outcome of :func:`solve_milp`."""
    status: str                 # "optimal", "time_limit", "infeasible" or "failed"
    x: np.ndarray | None        # the best solution found (None if none)
    dual_bound: float           # HiGHS' bound on the optimum (nan if unknown)
    nodes: int                  # branch-and-bound nodes


def solve_milp(c: np.ndarray, A: Any, lb: np.ndarray, ub: np.ndarray, integrality: np.ndarray,
               *, time_limit: float = 60.0, mip_rel_gap: float = 0.0,
               feasibility_tol: float = 1e-9) -> MilpResult:
    """``min c.x  s.t.  lb <= A x <= ub,  0 <= x <= 1`` with ``integrality`` (1 = binary) by
    HiGHS branch and cut, silently (highspy, tight feasibility tolerances; scipy's ``milp``
    when highspy is missing).  Callers pass well-scaled data (entries of order 1) and
    re-verify the answer themselves."""
    A = sp.csc_matrix(A)
    m, n = A.shape
    if HAVE_HIGHSPY and USE_HIGHSPY:
        h = _highspy
        inf = h.kHighsInf
        lp = h.HighsLp()
        lp.num_col_, lp.num_row_ = n, m
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, m
        lp.a_matrix_.format_ = h.MatrixFormat.kColwise
        lp.col_cost_ = np.asarray(c, np.float64)
        lp.col_lower_ = np.zeros(n)
        lp.col_upper_ = np.ones(n)
        lp.row_lower_ = np.where(np.isfinite(lb), lb, -inf).astype(np.float64)
        lp.row_upper_ = np.where(np.isfinite(ub), ub, inf).astype(np.float64)
        lp.a_matrix_.start_ = A.indptr
        lp.a_matrix_.index_ = A.indices
        lp.a_matrix_.value_ = A.data
        lp.integrality_ = [h.HighsVarType.kInteger if k else h.HighsVarType.kContinuous
                           for k in np.asarray(integrality)]
        highs = _new_highs()
        for key, val in (("time_limit", float(time_limit)), ("mip_rel_gap", float(mip_rel_gap)),
                         ("mip_abs_gap", 0.0),
                         ("mip_feasibility_tolerance", float(feasibility_tol)),
                         ("primal_feasibility_tolerance", float(feasibility_tol))):
            highs.setOptionValue(key, val)
        with _Quiet():
            failed = (highs.passModel(lp) == h.HighsStatus.kError
                      or highs.run() == h.HighsStatus.kError)
        if failed:
            return MilpResult("failed", None, np.nan, 0)
        st = highs.getModelStatus()
        info = highs.getInfo()
        nodes = int(getattr(info, "mip_node_count", 0) or 0)
        bound = float(getattr(info, "mip_dual_bound", np.nan))
        has_x = int(getattr(info, "primal_solution_status", 0)) == 2
        x = np.asarray(highs.getSolution().col_value) if has_x else None
        if st == h.HighsModelStatus.kOptimal:
            return MilpResult("optimal", x, bound, nodes)
        if st == h.HighsModelStatus.kTimeLimit:
            return MilpResult("time_limit", x, bound, nodes)
        if st == h.HighsModelStatus.kInfeasible:
            return MilpResult("infeasible", None, np.nan, nodes)
        return MilpResult("failed", x, bound, nodes)
    with warnings.catch_warnings(), _Quiet():
        warnings.simplefilter("ignore")
        res = milp(c, integrality=integrality, bounds=(0, 1),
                   constraints=LinearConstraint(A, lb, ub),
                   options={"time_limit": float(time_limit), "mip_rel_gap": float(mip_rel_gap),
                            "disp": False})
    status = {0: "optimal", 1: "time_limit", 2: "infeasible"}.get(res.status, "failed")
    dual = getattr(res, "mip_dual_bound", None)
    return MilpResult(status, res.x, float("nan") if dual is None else float(dual),
                      int(getattr(res, "mip_node_count", 0) or 0))
