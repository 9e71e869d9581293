"""Host-side exact step of the flow-based auction: the networks N(p) and N'(p), maximum
flows and left-most minimum cuts (seed 001; DESIGN §1).

The networks of all markets still running are laid out as ONE disjoint-union graph with a
shared super source (node 0) and super sink (node 1), built with vectorised numpy, and
solved with a single ``scipy.sparse.csgraph.maximum_flow`` call per round. A maximum flow
of the union restricts to a maximum flow of every component, and the vertices reachable
from the super source in the residual graph are, component by component, exactly each
market's source side of its left-most minimum cut. The ``networkx`` backend solves the same
networks one market at a time with ``networkx`` and is the reference for tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

__all__ = ["UnionNetwork", "auction_network", "allocation_network", "solve_max_flow",
           "restrict", "conserve", "reference_unit_step_auction"]

Backend = Literal["scipy", "networkx"]


@dataclass
class UnionNetwork:
    """Arcs of the disjoint union of per-market flow networks (all numpy, int64).

    ``tail``/``head``/``cap`` describe the arcs; ``market`` is each arc's market (row in the
    batch passed to the builder); ``kind`` tags arcs (see the builders) and ``buyer`` /
    ``obj`` give the buyer and object index of buyer->object arcs (-1 elsewhere).
    ``source_cap`` is each market's total source capacity; ``object_node`` (A, m) the node
    id of every object.
    """
    n_nodes: int
    tail: np.ndarray
    head: np.ndarray
    cap: np.ndarray
    market: np.ndarray
    kind: np.ndarray
    buyer: np.ndarray
    obj: np.ndarray
    source_cap: np.ndarray
    object_node: np.ndarray


# arc kinds
SRC_F, SRC_M, F_OBJ, M_OBJ, OBJ_SNK, M_DUMMY, SRC_DB, DB_OBJ, DB_DUMMY, DUMMY_SNK = range(10)


def _concat(parts):
    cols = list(zip(*parts))
    return [np.concatenate(c).astype(np.int64) if c else np.zeros(0, np.int64) for c in cols]


def _arcs(mask, tail, head, cap, kind, market, buyer=None, obj=None):
    idx = np.nonzero(mask)
    t = tail[idx] if np.ndim(tail) else np.full(len(idx[0]), tail)
    h = head[idx] if np.ndim(head) else np.full(len(idx[0]), head)
    c = cap[idx] if np.ndim(cap) else np.full(len(idx[0]), cap)
    mk = market[idx]
    b = buyer[idx] if buyer is not None else np.full(len(idx[0]), -1)
    o = obj[idx] if obj is not None else np.full(len(idx[0]), -1)
    return t, h, c, np.full(len(idx[0]), kind), mk, b, o


def _market_arcs(strict, marginal, m_cap, supplies, per):
    """Arcs shared by N(p) and N'(p) for a batch ``(A, n, m)``, markets laid out ``per``
    nodes apart from node 2: source -> i^F (cap s(F_i)), i^F -> j in F_i, source -> i^M
    (cap ``m_cap``), i^M -> j in M_i, j -> sink (buyer->object and sink arcs cap s_j).
    Returns the arc parts, the market base node ids, the i^M and object node ids, s(F_i)."""
    A, n, m = strict.shape
    s = supplies.astype(np.int64)
    m_cap = m_cap.astype(np.int64)
    base = 2 + per * np.arange(A, dtype=np.int64)
    iF = base[:, None] + np.arange(n)[None, :]
    iM = iF + n
    jn = base[:, None] + 2 * n + np.arange(m)[None, :]
    ar = np.arange(A)
    mk_n = np.broadcast_to(ar[:, None], (A, n))
    mk_m = np.broadcast_to(ar[:, None], (A, m))
    mk_nm = np.broadcast_to(ar[:, None, None], (A, n, m))
    b_n = np.broadcast_to(np.arange(n)[None, :], (A, n))
    b_nm = np.broadcast_to(np.arange(n)[None, :, None], (A, n, m))
    o_nm = np.broadcast_to(np.arange(m)[None, None, :], (A, n, m))
    o_m = np.broadcast_to(np.arange(m)[None, :], (A, m))
    s_nm = np.broadcast_to(s[:, None, :], (A, n, m))
    to_obj = np.broadcast_to(jn[:, None, :], (A, n, m))
    sF = (strict * s[:, None, :]).sum(-1)
    parts = [
        _arcs(sF > 0, 0, iF, sF, SRC_F, mk_n, buyer=b_n),
        _arcs(m_cap > 0, 0, iM, m_cap, SRC_M, mk_n, buyer=b_n),
        _arcs(strict & (s_nm > 0), np.broadcast_to(iF[:, :, None], (A, n, m)), to_obj, s_nm,
              F_OBJ, mk_nm, b_nm, o_nm),
        _arcs(marginal & (s_nm > 0) & (m_cap[:, :, None] > 0),
              np.broadcast_to(iM[:, :, None], (A, n, m)), to_obj, s_nm, M_OBJ, mk_nm, b_nm,
              o_nm),
        _arcs(s > 0, jn, 1, s, OBJ_SNK, mk_m, obj=o_m),
    ]
    return parts, base, iM, jn, sF


def auction_network(strict: np.ndarray, marginal: np.ndarray, r: np.ndarray,
                    supplies: np.ndarray) -> UnionNetwork:
    """Union of the networks N(p) (DESIGN §1) for a batch ``(A, n, m)`` of markets.

    Per market: arcs source -> i^F (cap s(F_i)), i^F -> j in F_i (cap s_j),
    source -> i^M (cap r_i), i^M -> j in M_i (cap s_j), j -> sink (cap s_j). Arcs of
    capacity 0 are left out (they carry no flow and no residual capacity).
    """
    A, n, m = strict.shape
    per = 2 * n + m
    rr = r.astype(np.int64)
    parts, _, _, jn, sF = _market_arcs(strict, marginal, rr, supplies, per)
    t, h, c, k, mk, b, o = _concat(parts)
    return UnionNetwork(2 + per * A, t, h, c, mk, k, b, o, sF.sum(-1) + rr.sum(-1), jn)


def allocation_network(strict: np.ndarray, marginal: np.ndarray, case_a: np.ndarray,
                       demands: np.ndarray, supplies: np.ndarray,
                       prices: np.ndarray) -> UnionNetwork:
    """Union of the networks N'(p) that compute a market-clearing allocation (DESIGN §1).

    N(p) plus a dummy object and a dummy buyer: source -> i^M gets capacity
    ``d_i - s(F_i)``; i^M -> dummy object (unbounded) only in case B; source -> dummy buyer
    ``sum s``; dummy buyer -> j (cap s_j) where ``p_j = 0``; dummy buyer -> dummy object
    (unbounded); dummy object -> sink ``sum d``. A Walrasian allocation exists iff a
    maximum flow saturates every source and sink arc.
    """
    A, n, m = strict.shape
    s = supplies.astype(np.int64)
    d = demands.astype(np.int64)
    per = 2 * n + m + 2
    rest = d - (strict * s[:, None, :]).sum(-1)
    parts, base, iM, jn, _ = _market_arcs(strict, marginal, rest, s, per)
    dob = base + 2 * n + m          # dummy object
    dbu = dob + 1                   # dummy buyer
    big = int(s.sum() + d.sum() + 1)
    ar = np.arange(A)
    mk_n = np.broadcast_to(ar[:, None], (A, n))
    mk_m = np.broadcast_to(ar[:, None], (A, m))
    caseB = ~case_a.astype(bool)
    sum_s = s.sum(-1)
    sum_d = d.sum(-1)
    parts += [
        _arcs(caseB & (rest > 0), iM, np.broadcast_to(dob[:, None], (A, n)), big, M_DUMMY,
              mk_n, buyer=np.broadcast_to(np.arange(n)[None, :], (A, n))),
        _arcs(sum_s > 0, 0, dbu, sum_s, SRC_DB, ar),
        _arcs((prices == 0) & (s > 0), np.broadcast_to(dbu[:, None], (A, m)), jn, s, DB_OBJ,
              mk_m, obj=np.broadcast_to(np.arange(m)[None, :], (A, m))),
        _arcs(sum_s > 0, dbu, dob, big, DB_DUMMY, ar),
        _arcs(sum_d > 0, dob, 1, sum_d, DUMMY_SNK, ar),
    ]
    t, h, c, k, mk, b, o = _concat(parts)
    return UnionNetwork(2 + per * A, t, h, c, mk, k, b, o, sum_d + sum_s, jn)


def _residual_reachable(n_nodes, tail, head, cap, flow) -> np.ndarray:
    fwd = cap - flow > 0
    bwd = flow > 0
    rt = np.concatenate([tail[fwd], head[bwd]])
    rh = np.concatenate([head[fwd], tail[bwd]])
    R = csr_matrix((np.ones(len(rt), np.int8), (rt, rh)), shape=(n_nodes, n_nodes))
    order = breadth_first_order(R, 0, directed=True, return_predecessors=False)
    reach = np.zeros(n_nodes, bool)
    reach[order] = True
    return reach


def _cold_scipy(net: UnionNetwork, at: UnionNetwork | None = None) -> np.ndarray:
    """Max flow by scipy; returns the NET flow on the arcs of ``at`` (default ``net``).

    scipy reports net flows (antisymmetric), so for a residual network with antiparallel
    arcs, read the result on the original arcs (``at``) rather than per residual arc."""
    N = net.n_nodes
    at = net if at is None else at
    if len(net.tail) == 0:
        return np.zeros(len(at.tail), np.int64)
    G = csr_matrix((net.cap.astype(np.int32), (net.tail, net.head)), shape=(N, N))
    F = maximum_flow(G, 0, 1).flow
    return np.asarray(F[at.tail, at.head]).ravel().astype(np.int64)


def _cold_networkx(net: UnionNetwork, n_markets: int) -> np.ndarray:
    """Per-market reference: one networkx max flow for each market's component."""
    flow = np.zeros(len(net.tail), np.int64)
    for a in range(n_markets):
        sel = np.nonzero(net.market == a)[0]
        if len(sel) == 0:
            continue
        G = nx.DiGraph()
        G.add_nodes_from([0, 1])
        for e in sel:
            G.add_edge(int(net.tail[e]), int(net.head[e]), capacity=int(net.cap[e]))
        _, fd = nx.maximum_flow(G, 0, 1, flow_func=nx.algorithms.flow.preflow_push)
        flow[sel] = [fd[int(net.tail[e])][int(net.head[e])] for e in sel]
    return flow


def _cold(net: UnionNetwork, n_markets: int, backend: Backend) -> np.ndarray:
    if backend == "scipy":
        return _cold_scipy(net)
    if backend == "networkx":
        return _cold_networkx(net, n_markets)
    raise ValueError(f"backend: must be 'scipy' or 'networkx', got {backend!r}")


def _residual_network(net: UnionNetwork, f0: np.ndarray) -> tuple[UnionNetwork, np.ndarray]:
    """Residual network of ``net`` w.r.t. the feasible flow ``f0``; also returns, for each
    residual arc, the original arc and its direction (+1 forward, -1 backward)."""
    fwd = net.cap - f0
    kf = np.nonzero(fwd > 0)[0]
    kb = np.nonzero(f0 > 0)[0]
    orig = np.concatenate([kf, kb])
    sign = np.concatenate([np.ones(len(kf), np.int64), -np.ones(len(kb), np.int64)])
    tail = np.concatenate([net.tail[kf], net.head[kb]])
    head = np.concatenate([net.head[kf], net.tail[kb]])
    cap = np.concatenate([fwd[kf], f0[kb]])
    res = UnionNetwork(net.n_nodes, tail, head, cap, net.market[orig], net.kind[orig],
                       net.buyer[orig], net.obj[orig], net.source_cap, net.object_node)
    return res, np.stack([orig, sign])


def solve_max_flow(net: UnionNetwork, n_markets: int, *, backend: Backend = "scipy",
                   init_flow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum flow of every component and its left-most minimum cut.

    Returns ``(flow per arc, saturated (A,) bool, reachable node mask)``: ``saturated``
    says whether every source arc of the market is saturated (``p`` competitive for N(p);
    a Walrasian allocation exists for N'(p)). ``init_flow`` warm-starts from a feasible
    flow: the result is ``init_flow`` plus a maximum flow of its residual network
    (augmenting paths never decrease the flow on source or sink arcs).
    """
    if init_flow is None:
        flow = _cold(net, n_markets, backend)
    else:
        f0 = np.asarray(init_flow, np.int64)
        res, (orig, sign) = _residual_network(net, f0)
        if backend == "scipy":
            flow = f0 + _cold_scipy(res, at=net)
        else:
            g = _cold(res, n_markets, backend)
            flow = f0 + np.bincount(orig, weights=sign * g, minlength=len(f0)).astype(np.int64)
    value = np.bincount(net.market[net.tail == 0], weights=flow[net.tail == 0],
                        minlength=n_markets).astype(np.int64)
    saturated = value == net.source_cap
    reach = _residual_reachable(net.n_nodes, net.tail, net.head, net.cap, flow)
    return flow, saturated, reach


def restrict(net: UnionNetwork, keep: np.ndarray) -> UnionNetwork:
    """The sub-network made of the arcs ``keep`` (bool mask), same node numbering."""
    src = net.tail[keep] == 0
    cap_src = np.bincount(net.market[keep][src], weights=net.cap[keep][src],
                          minlength=len(net.source_cap)).astype(np.int64)
    return UnionNetwork(net.n_nodes, net.tail[keep], net.head[keep], net.cap[keep],
                        net.market[keep], net.kind[keep], net.buyer[keep], net.obj[keep],
                        cap_src, net.object_node)


def conserve(net: UnionNetwork, flow: np.ndarray) -> np.ndarray:
    """Set source and sink arc flows from the buyer->object flows by flow conservation
    (networks whose buyer nodes have one source arc and objects one sink arc)."""
    flow = flow.copy()
    mid = (net.tail != 0) & (net.head != 1)
    out = np.bincount(net.tail[mid], weights=flow[mid], minlength=net.n_nodes)
    inn = np.bincount(net.head[mid], weights=flow[mid], minlength=net.n_nodes)
    src = net.tail == 0
    snk = net.head == 1
    flow[src] = out[net.head[src]].astype(np.int64)
    flow[snk] = inn[net.tail[snk]].astype(np.int64)
    return flow


# ---------------------------------------------------------------------------------------
# Independent reference: plain per-market unit-step auction in numpy + networkx.
# Used as the "what a user would write" baseline in benchmarks and as a cross-check in
# tests; it shares no code with the batched implementation.

def _greedy_np(v, d, s, p):
    n, m = v.shape
    u = v - p[None, :]
    F = np.zeros((n, m), bool)
    M = np.zeros((n, m), bool)
    r = np.zeros(n, np.int64)
    for i in range(n):
        rem = int(d[i])
        levels = sorted({int(x) for x in u[i] if x > 0}, reverse=True)
        marginal_found = False
        for lv in levels:
            objs = np.nonzero(u[i] == lv)[0]
            sup = int(s[objs].sum())
            if sup < rem:
                F[i, objs] = True
                rem -= sup
            else:
                M[i, objs] = True
                r[i] = rem
                marginal_found = True
                break
        if not marginal_found:
            M[i] = u[i] == 0
            r[i] = 0
    return F, M, r


def reference_unit_step_auction(values, demands, supplies, max_rounds: int = 10**7) -> np.ndarray:
    """Buyer-optimal prices of ONE market by the plain unit-step ascending auction.

    From ``p = 0``: build N(p) in networkx, compute a maximum flow, take the objects on the
    source side of the left-most minimum cut (reachable in the residual graph) and raise
    their prices by one; stop when every source arc is saturated. Pseudo-polynomial.
    """
    v = np.asarray(values, np.int64)
    d = np.asarray(demands, np.int64)
    s = np.asarray(supplies, np.int64)
    n, m = v.shape
    p = np.zeros(m, np.int64)
    for _ in range(max_rounds):
        F, M, r = _greedy_np(v, d, s, p)
        G = nx.DiGraph()
        G.add_node("s")
        G.add_node("t")
        for i in range(n):
            sF = int((s * F[i]).sum())
            if sF > 0:
                G.add_edge("s", ("F", i), capacity=sF)
            if r[i] > 0:
                G.add_edge("s", ("M", i), capacity=int(r[i]))
            for j in range(m):
                if s[j] > 0 and F[i, j]:
                    G.add_edge(("F", i), ("o", j), capacity=int(s[j]))
                if s[j] > 0 and M[i, j] and r[i] > 0:
                    G.add_edge(("M", i), ("o", j), capacity=int(s[j]))
        for j in range(m):
            if s[j] > 0:
                G.add_edge(("o", j), "t", capacity=int(s[j]))
        R = nx.algorithms.flow.preflow_push(G, "s", "t")
        need = sum(c for _, _, c in G.out_edges("s", data="capacity"))
        if R.graph["flow_value"] == need:
            return p
        seen = {"s"}
        stack = ["s"]
        while stack:
            x = stack.pop()
            for y, attr in R[x].items():
                if y not in seen and attr["flow"] < attr["capacity"]:
                    seen.add(y)
                    stack.append(y)
        for node in seen:
            if isinstance(node, tuple) and node[0] == "o":
                p[node[1]] += 1
    raise RuntimeError("reference_unit_step_auction: did not converge")
