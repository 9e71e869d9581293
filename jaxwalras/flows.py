"""Host-side exact step of the flow-based auction: the networks N(p) and N'(p), maximum
flows and left-most minimum cuts (Eickhoff, McCormick, Peis, Rieken and Vargas Koch,
"A flow-based ascending auction to compute buyer-optimal Walrasian prices", Networks 2024).

The networks of all markets still running are laid out as ONE disjoint-union graph with a
shared super source (node 0) and super sink (node 1), built with vectorised numpy, and
solved with a single ``scipy.sparse.csgraph.maximum_flow`` call per round. A maximum flow
of the union restricts to a maximum flow of every component, and the vertices reachable
from the super source in the residual graph are, component by component, exactly each
market's source side of its left-most minimum cut. The ``networkx`` backend solves the same
networks one market at a time with ``networkx`` and is the reference for tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

from ._batching import as_slice

__all__ = ["UnionNetwork", "CsrLayout", "csr_layout", "auction_network", "network_from_arcs",
           "network_from_arc_list", "allocation_network", "solve_max_flow", "restrict",
           "conserve", "carry_flow", "buyer_object_arcs", "buyer_object_flows",
           "reference_unit_step_auction"]

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
    layout: CsrLayout | None = field(default=None, repr=False)
    #: the buyer -> object arcs, where the builder made them contiguous (else ``None``)
    mid: slice | None = field(default=None, repr=False)

    def csr(self) -> CsrLayout:
        """The CSR layout of the arcs (built on first use, then cached)."""
        if self.layout is None:
            self.layout = csr_layout(self.n_nodes, self.tail, self.head, self.cap)
        return self.layout


@dataclass
class CsrLayout:
    """The network as the CSR matrix that ``scipy.sparse.csgraph.maximum_flow`` works on.

    Every arc ``(u, v)`` has an entry and so has its reverse ``(v, u)`` (an explicit zero
    unless it is an arc too), with sorted column indices. scipy then adds no reverse edges
    and keeps this exact entry structure for the returned (antisymmetric) flow, so flows
    are read and residual graphs are formed entry-wise, without any re-sorting.
    ``pos`` / ``rpos``: each arc's forward / reverse entry.
    """
    indptr: np.ndarray      # (N + 1,) int32
    indices: np.ndarray     # (nnz,) int32
    cap: np.ndarray         # (nnz,) int64: arc capacities (summed over parallel arcs)
    pos: np.ndarray         # (E,) int64
    rpos: np.ndarray        # (E,) int64
    simple: bool = False    # every entry belongs to exactly one arc (as pos or rpos)


def csr_layout(n_nodes: int, tail: np.ndarray, head: np.ndarray,
               cap: np.ndarray) -> CsrLayout:
    """:class:`CsrLayout` of any arc list."""
    E = len(tail)
    # scipy's COO -> CSR conversion (a counting sort) orders the entries; the data carry
    # each entry's id (+1: no zeros), unless entries repeat (antiparallel or parallel arcs)
    ids = csr_matrix((np.arange(1, 2 * E + 1, dtype=np.int64),
                      (np.concatenate([tail, head]), np.concatenate([head, tail]))),
                     shape=(n_nodes, n_nodes))
    if ids.nnz == 2 * E:
        where = np.empty(2 * E, np.int64)
        where[ids.data - 1] = np.arange(2 * E)
        pos, rpos = where[:E], where[E:]
        data = np.zeros(2 * E, np.int64)
        data[pos] = cap
        return CsrLayout(ids.indptr.astype(np.int32), ids.indices.astype(np.int32), data,
                         pos, rpos, simple=True)
    N = np.int64(n_nodes)
    keys = np.concatenate([tail * N + head, head * N + tail])
    uniq, inv = np.unique(keys, return_inverse=True)
    pos, rpos = inv[:E], inv[E:]
    data = np.bincount(pos, weights=cap, minlength=len(uniq)).astype(np.int64)
    indptr = np.searchsorted(uniq, np.arange(n_nodes + 1, dtype=np.int64) * N)
    return CsrLayout(indptr.astype(np.int32), (uniq % N).astype(np.int32), data, pos, rpos)


_INT32_MAX = 2**31 - 1

# arc kinds
SRC_F, SRC_M, F_OBJ, M_OBJ, OBJ_SNK, M_DUMMY, SRC_DB, DB_OBJ, DB_DUMMY, DUMMY_SNK = range(10)


def auction_network(strict: np.ndarray, marginal: np.ndarray, r: np.ndarray,
                    supplies: np.ndarray) -> UnionNetwork:
    """Union of the networks N(p) (Eickhoff et al., 2024, §2.2) for a batch ``(A, n, m)``.

    Per market: arcs source -> i^F (cap s(F_i)), i^F -> j in F_i (cap s_j),
    source -> i^M (cap r_i), i^M -> j in M_i (cap s_j), j -> sink (cap s_j). Arcs of
    capacity 0 are left out (they carry no flow and no residual capacity). Nodes of market
    ``a`` are ``base + (i^F: i, i^M: n + i, j: 2n + j)`` with ``base = 2 + a (2n + m)``.
    """
    s = supplies.astype(np.int64)
    rr = r.astype(np.int64)
    s_pos = s > 0
    bm = np.concatenate([strict & s_pos[:, None, :],
                         marginal & s_pos[:, None, :] & (rr > 0)[:, :, None]], axis=1)
    sF = np.einsum("anm,am->an", strict.astype(np.int64), s)
    return network_from_arcs(bm, np.cumsum(bm, axis=1, dtype=np.int32) - 1,
                             np.concatenate([sF, rr], axis=1), s)


def network_from_arcs(bm: np.ndarray, col_rank: np.ndarray, src_cap: np.ndarray,
                      supplies: np.ndarray, sink_caps: np.ndarray | None = None
                      ) -> UnionNetwork:
    """:func:`auction_network` from its arc structure (the round kernel computes it on the
    device): ``bm`` ``(A, 2n, m)`` bool, the buyer-node -> object arcs (buyer node ``t``
    is ``i^F`` for ``t < n`` and ``i^M`` for ``t = n + i``); ``col_rank`` the number of
    arcs into the same object from smaller buyer nodes (read where ``bm``);
    ``src_cap`` ``(A, 2n)`` the source arc capacities ``(s(F_i), r_i)``; ``sink_caps``
    ``(A, m)`` the object -> sink capacities (default the supplies).
    """
    fb = np.flatnonzero(bm)
    return network_from_arc_list(fb, col_rank.ravel()[fb], src_cap, supplies, sink_caps)


def network_from_arc_list(fb: np.ndarray, rank: np.ndarray, src_cap: np.ndarray,
                          supplies: np.ndarray, sink_caps: np.ndarray | None = None
                          ) -> UnionNetwork:
    """:func:`network_from_arcs` from the arcs as a list: ``fb`` the flat indices of the
    buyer-node -> object arcs into ``(A, 2n, m)`` (increasing; ``A, 2n`` the shape of
    ``src_cap``, ``m`` of the objects of ``supplies``), ``rank`` each arc's
    ``col_rank``."""
    A, n2 = src_cap.shape
    m = supplies.shape[-1]
    n = n2 // 2
    s = supplies.astype(np.int64)
    snk = s if sink_caps is None else np.asarray(sink_caps, np.int64)
    kind_mid = np.repeat(np.array([F_OBJ, M_OBJ]), n)[:, None].repeat(m, 1)
    return _bipartite_union(
        (A, n2, m), fb, rank, src_cap, s, snk, np.arange(n2), n2 + np.arange(m), n2 + m,
        np.repeat(np.array([SRC_F, SRC_M]), n), kind_mid, np.full(m, OBJ_SNK),
        np.tile(np.arange(n), 2), np.arange(m), src_cap.sum(-1, dtype=np.int64), True)


def _bipartite_union(shape: tuple[int, int, int], fb, rank_b, src_cap, right_cap, snk_cap,
                     left_off, right_off, per: int, kind_src, kind_mid, kind_snk, buyer_of,
                     obj_of, source_cap, buyer_object_only: bool) -> UnionNetwork:
    """Disjoint union of bipartite networks source -> left -> right -> sink, with its CSR
    layout built from the structure (no sorting).

    Per market: left nodes ``t`` (``T``) at ``base + left_off[t]``, right nodes ``j``
    (``J``) at ``base + right_off[j]`` (both increasing), ``base = 2 + a per``;
    ``shape = (A, T, J)``. Arcs: source -> t (cap ``src_cap[a, t]`` where positive),
    t -> j for the flat indices ``fb`` (increasing) into ``shape`` (cap
    ``right_cap[a, j]``; ``rank_b``: each one's number of arcs into ``j`` from smaller
    ``t``), j -> sink (cap ``snk_cap[a, j]`` where positive). The small tables give each arc's
    kind (``kind_src[t]``, ``kind_mid[t, j]``, ``kind_snk[j]``), buyer (``buyer_of[t]``)
    and object (``obj_of[j]``). Arc order: source arcs (by market, t), middle arcs (by
    market, t, j), sink arcs (by market, j).
    """
    A, T, J = shape
    src_cap = np.ascontiguousarray(src_cap, np.int64)
    snk_cap = np.ascontiguousarray(snk_cap, np.int64)
    has = src_cap > 0
    snk_has = snk_cap > 0
    fs = np.flatnonzero(has)                   # source arcs, (a, t) order
    fo = np.flatnonzero(snk_has)               # sink arcs, (a, j) order
    ns, nb, no = len(fs), len(fb), len(fo)
    E = ns + nb + no
    mid = slice(ns, ns + nb)
    snk = slice(ns + nb, E)
    bt_key, j_b = np.divmod(fb, J)             # left row (a T + t), object of each middle arc
    a_b, t_b = np.divmod(bt_key, T)
    oj_key = a_b * J + j_b                     # right row (a J + j)
    a_s, t_s = np.divmod(fs, T)
    a_o, j_o = np.divmod(fo, J)

    # CSR rows: 0 (source arcs), 1 (reverse sink arcs), then every market's nodes. A left
    # row is [0 (reverse source arc)] + its right nodes; a right row is [1 (sink arc)] +
    # its left nodes; both sorted since 0 < 1 < every market node.
    left, right = as_slice(left_off), as_slice(right_off)
    cnt_bt = np.bincount(bt_key, minlength=A * T)
    cnt = np.zeros((A, per), np.int64)
    cnt[:, left] = has + cnt_bt.reshape(A, T)
    cnt[:, right] = snk_has + np.bincount(oj_key, minlength=A * J).reshape(A, J)
    indptr = np.empty(3 + A * per, np.int64)
    indptr[:3] = (0, ns, ns + no)
    np.cumsum(cnt.ravel(), out=indptr[3:])
    indptr[3:] += ns + no
    rows = indptr[2:-1].reshape(A, per)
    row_bt = rows[:, left].ravel()             # row starts of left nodes
    row_oj = rows[:, right].ravel()            # ... and of right nodes
    # forward middle entries: after the reverse source entry, in right-node order;
    # reverse ones: after the sink entry, in left-node order
    shift_bt = row_bt + has.ravel()            # first middle entry of each left row ...
    start_bt = np.cumsum(cnt_bt)
    start_bt -= cnt_bt
    shift_bt -= start_bt                       # ... less the left row's first middle arc
    pos = np.empty(E, np.int64)
    rpos = np.empty(E, np.int64)
    pos[:ns] = np.arange(ns)
    rpos[:ns] = row_bt[fs]
    np.add(np.arange(nb), shift_bt[bt_key], out=pos[mid])
    np.add((row_oj + snk_has.ravel())[oj_key], rank_b, out=rpos[mid])
    pos[snk] = row_oj[fo]
    rpos[snk] = np.arange(ns, ns + no)

    base = 2 + per * np.arange(A, dtype=np.int64)[:, None]
    node_l = (base + np.asarray(left_off)).ravel()
    node_r = (base + np.asarray(right_off)).ravel()
    tail = np.empty(E, np.int64)
    head = np.empty(E, np.int64)
    cap = np.empty(E, np.int64)
    tail[:ns] = 0
    head[:ns] = node_l[fs]
    cap[:ns] = src_cap.ravel()[fs]
    tail[mid] = node_l[bt_key]
    head[mid] = node_r[oj_key]
    cap[mid] = np.asarray(right_cap, np.int64).ravel()[oj_key]
    tail[snk] = node_r[fo]
    head[snk] = 1
    cap[snk] = snk_cap.ravel()[fo]
    nnz = int(indptr[-1])
    indices = np.empty(nnz, np.int32)
    indices[pos] = head
    indices[rpos] = tail
    data = np.zeros(nnz, np.int64)
    data[pos] = cap
    layout = CsrLayout(indptr.astype(np.int32), indices, data, pos, rpos, simple=True)
    kind_mid = np.asarray(kind_mid)
    kind = np.empty(E, np.int64)
    kind[:ns] = np.asarray(kind_src)[t_s]
    kind[mid] = kind_mid.ravel()[fb % (T * J)]
    kind[snk] = np.asarray(kind_snk)[j_o]
    market = np.empty(E, np.int64)
    market[:ns] = a_s
    market[mid] = a_b
    market[snk] = a_o
    buyer_of = np.asarray(buyer_of)
    obj_of = np.asarray(obj_of)
    buyer = np.empty(E, np.int64)
    buyer[:ns] = buyer_of[t_s]
    buyer[mid] = buyer_of[t_b]
    buyer[snk] = -1
    obj = np.empty(E, np.int64)
    obj[:ns] = -1
    obj[mid] = obj_of[j_b]
    obj[snk] = obj_of[j_o]
    m = int(np.count_nonzero(obj_of >= 0))
    n2 = int(np.count_nonzero(buyer_of >= 0))
    object_node = base + n2 + np.arange(m)
    return UnionNetwork(2 + per * A, tail, head, cap, market, kind, buyer, obj, source_cap,
                        object_node, layout, mid if buyer_object_only else None)


def allocation_network(strict: np.ndarray, marginal: np.ndarray, case_a: np.ndarray,
                       demands: np.ndarray, supplies: np.ndarray,
                       prices: np.ndarray) -> UnionNetwork:
    """Union of the networks N'(p) that compute a market-clearing allocation (Eickhoff et
    al., 2024, §2.2).

    N(p) plus a dummy object and a dummy buyer: source -> i^M gets capacity
    ``d_i - s(F_i)``; i^M -> dummy object (unbounded) only in case B; source -> dummy buyer
    ``sum s``; dummy buyer -> j (cap s_j) where ``p_j = 0``; dummy buyer -> dummy object
    (unbounded); dummy object -> sink ``sum d``. A Walrasian allocation exists iff a
    maximum flow saturates every source and sink arc.  "Unbounded" is the market's own
    ``max(sum s, sum d)`` (no arc into the dummy object can carry more), so every
    capacity is a per-market quantity that fits scipy's int32.

    Nodes of market ``a``: ``base + (i^F: i, i^M: n + i, j: 2n + j, dummy object:
    2n + m, dummy buyer: 2n + m + 1)``, ``base = 2 + a (2n + m + 2)``; the dummy buyer is
    the last left node and the dummy object the last right node of the bipartite layout.
    """
    A, n, m = strict.shape
    s = supplies.astype(np.int64)
    d = demands.astype(np.int64)
    n2 = 2 * n
    s_pos = s > 0
    rest = d - np.einsum("anm,am->an", strict.astype(np.int64), s)
    sF = d - rest
    sum_s = s.sum(-1)
    sum_d = d.sum(-1)
    big = np.maximum(sum_s, sum_d)
    bm = np.zeros((A, n2 + 1, m + 1), bool)
    bm[:, :n, :m] = strict & s_pos[:, None, :]
    bm[:, n:n2, :m] = marginal & s_pos[:, None, :] & (rest > 0)[:, :, None]
    bm[:, n:n2, m] = ~case_a.astype(bool) & (rest > 0)
    bm[:, n2, :m] = (prices == 0) & s_pos
    bm[:, n2, m] = sum_s > 0
    fb = np.flatnonzero(bm)
    col_rank = (np.cumsum(bm, axis=1, dtype=np.int32) - 1).ravel()[fb]
    src_cap = np.concatenate([sF, rest, sum_s[:, None]], axis=1)
    right_cap = np.concatenate([s, big[:, None]], axis=1)
    snk_cap = np.concatenate([s, sum_d[:, None]], axis=1)
    kind_mid = np.empty((n2 + 1, m + 1), np.int64)
    kind_mid[:n] = F_OBJ
    kind_mid[n:n2, :m] = M_OBJ
    kind_mid[n:n2, m] = M_DUMMY
    kind_mid[n2, :m] = DB_OBJ
    kind_mid[n2, m] = DB_DUMMY
    return _bipartite_union(
        bm.shape, fb, col_rank, src_cap, right_cap, snk_cap,
        np.r_[np.arange(n2), n2 + m + 1], n2 + np.arange(m + 1), n2 + m + 2,
        np.r_[np.repeat([SRC_F, SRC_M], n), SRC_DB], kind_mid,
        np.r_[np.full(m, OBJ_SNK), DUMMY_SNK], np.r_[np.tile(np.arange(n), 2), -1],
        np.r_[np.arange(m), -1], sum_d + sum_s, False)


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
    """Max flow from zero by a per-arc backend (the scipy one is :func:`_scipy_max_flow`)."""
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


def _scipy_max_flow(net: UnionNetwork, init_flow: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """scipy max flow on the CSR layout, from ``init_flow`` (or zero): the flow per arc and
    the mask of CSR entries with residual capacity."""
    lay = net.csr()
    N = net.n_nodes
    data = lay.cap
    if init_flow is not None:
        # entry-wise (antisymmetric) net flow of the start; solve on its residual network
        if lay.simple:             # pos and rpos are disjoint and each without repeats
            data = data.copy()
            data[lay.pos] -= init_flow
            data[lay.rpos] += init_flow
        else:
            ef0 = (np.bincount(lay.pos, weights=init_flow, minlength=len(data))
                   - np.bincount(lay.rpos, weights=init_flow, minlength=len(data)))
            data = data - ef0.astype(np.int64)
    if len(data) == 0:
        return np.zeros(len(net.tail), np.int64), np.zeros(0, bool)
    if data.size and (data.max() > _INT32_MAX or data.min() < 0):
        # every arc capacity is a per-market quantity bounded by MAX_TOTAL_UNITS; this
        # guards against a caller that bypassed the market's validation
        raise ValueError(f"max flow: arc capacities must lie in [0, {_INT32_MAX}] (scipy "
                         f"computes in int32), found {int(data.max())}")
    G = csr_matrix((data.astype(np.int32), lay.indices, lay.indptr), shape=(N, N))
    G.has_sorted_indices = True
    g = maximum_flow(G, 0, 1).flow.data.astype(np.int64)
    flow = g[lay.pos]
    if init_flow is not None:
        flow += init_flow
    return flow, data - g > 0


def _reachable_entries(net: UnionNetwork, residual: np.ndarray) -> np.ndarray:
    """Nodes reachable from the source over the CSR entries ``residual`` (bool mask)."""
    lay = net.csr()
    N = net.n_nodes
    csum = np.concatenate([[0], np.cumsum(residual, dtype=np.int64)])
    # float64 data and int32 indices: what csgraph works on, so it makes no copies
    # (np.compress: a much faster gather than boolean indexing for irregular masks)
    R = csr_matrix((np.ones(int(csum[-1])), np.compress(residual, lay.indices),
                    csum[lay.indptr].astype(np.int32)), shape=(N, N))
    order = breadth_first_order(R, 0, directed=True, return_predecessors=False)
    reach = np.zeros(N, bool)
    reach[order] = True
    return reach


def solve_max_flow(net: UnionNetwork, n_markets: int, *, backend: Backend = "scipy",
                   init_flow: np.ndarray | None = None,
                   cut: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Maximum flow of every component and its left-most minimum cut.

    Returns ``(flow per arc, saturated (A,) bool, reachable node mask)``: ``saturated``
    says whether every source arc of the market is saturated (``p`` competitive for N(p);
    a Walrasian allocation exists for N'(p)). ``init_flow`` warm-starts from a feasible
    flow: the result is ``init_flow`` plus a maximum flow of its residual network
    (augmenting paths never decrease the flow on source or sink arcs). ``cut=False``
    skips the left-most cut (the mask is then ``None``).
    """
    reach = None
    if backend == "scipy":
        flow, residual = _scipy_max_flow(
            net, None if init_flow is None else np.asarray(init_flow, np.int64))
        if cut:
            reach = _reachable_entries(net, residual)
    else:
        if init_flow is None:
            flow = _cold(net, n_markets, backend)
        else:
            f0 = np.asarray(init_flow, np.int64)
            res, (orig, sign) = _residual_network(net, f0)
            g = _cold(res, n_markets, backend)
            flow = f0 + np.bincount(orig, weights=sign * g, minlength=len(f0)).astype(np.int64)
        if cut:
            reach = _residual_reachable(net.n_nodes, net.tail, net.head, net.cap, flow)
    src = _arc_groups(net)[0]
    value = np.bincount(net.market[src], weights=flow[src],
                        minlength=n_markets).astype(np.int64)
    saturated = value == net.source_cap
    return flow, saturated, reach


def restrict(net: UnionNetwork, keep: np.ndarray) -> UnionNetwork:
    """The sub-network made of the arcs ``keep`` (bool mask), same node numbering."""
    src = net.tail[keep] == 0
    cap_src = np.bincount(net.market[keep][src], weights=net.cap[keep][src],
                          minlength=len(net.source_cap)).astype(np.int64)
    layout = None
    lay = net.layout
    if lay is not None and lay.simple:
        # drop the entries of the removed arcs: the order (and so scipy's flow) is kept
        used = np.zeros(len(lay.cap), bool)
        used[lay.pos[keep]] = True
        used[lay.rpos[keep]] = True
        csum = np.concatenate([[0], np.cumsum(used)])
        layout = CsrLayout(csum[lay.indptr].astype(np.int32), lay.indices[used],
                           lay.cap[used], csum[lay.pos[keep]], csum[lay.rpos[keep]],
                           simple=True)
    return UnionNetwork(net.n_nodes, net.tail[keep], net.head[keep], net.cap[keep],
                        net.market[keep], net.kind[keep], net.buyer[keep], net.obj[keep],
                        cap_src, net.object_node, layout)


def _arc_groups(net: UnionNetwork) -> tuple[slice | np.ndarray, ...]:
    """The source arcs, the arcs between them and the sink arcs: slices where the builder
    made the middle arcs contiguous (then the source arcs precede and the sink arcs
    follow them), else masks."""
    if net.mid is not None:
        return slice(0, net.mid.start), net.mid, slice(net.mid.stop, len(net.tail))
    return net.tail == 0, (net.tail != 0) & (net.head != 1), net.head == 1


def conserve(net: UnionNetwork, flow: np.ndarray) -> np.ndarray:
    """Set source and sink arc flows from the buyer->object flows by flow conservation
    (networks whose buyer nodes have one source arc and objects one sink arc)."""
    flow = flow.copy()
    src, mid, snk = _arc_groups(net)
    fm = flow[mid]
    out = np.bincount(net.tail[mid], weights=fm, minlength=net.n_nodes)
    inn = np.bincount(net.head[mid], weights=fm, minlength=net.n_nodes)
    flow[src] = out[net.head[src]].astype(np.int64)
    flow[snk] = inn[net.tail[snk]].astype(np.int64)
    return flow


# ---------------------------------------------------------------------------------------
# Warm starts of the auction (flows carried from one round to the next)

def buyer_object_arcs(net: UnionNetwork) -> slice | np.ndarray:
    """The F- and M-arcs of ``net`` (a slice where the builder made them contiguous)."""
    if net.mid is not None:
        return net.mid
    return np.flatnonzero((net.kind == F_OBJ) | (net.kind == M_OBJ))


def carry_flow(net_new: UnionNetwork, prev_x: np.ndarray, r: np.ndarray,
                active_rows: np.ndarray) -> np.ndarray:
    """Warm start: carry the previous buyer->object flow into the new network N(p).

    Keep ``min(x_ij, s_j)`` on F-arcs and at most ``r_i`` units in total on each buyer's
    M-arcs (greedily, in object order); derive source/sink arc flows by conservation.
    """
    _, n, m = prev_x.shape
    fo = buyer_object_arcs(net_new)
    a = net_new.market[fo]
    i = net_new.buyer[fo]
    x = prev_x.reshape(-1)[(active_rows[a] * n + i) * m + net_new.obj[fo]]
    x = np.minimum(x, net_new.cap[fo])
    is_m = np.flatnonzero(net_new.kind[fo] == M_OBJ)
    if len(is_m):
        # truncate each buyer's M-arc total to r_i (arcs of one buyer are contiguous)
        xm = x[is_m]
        key = a[is_m] * (n + 1) + i[is_m]
        csum = np.cumsum(xm)
        first = np.empty(len(key), bool)
        first[:1] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        seg_start = np.maximum.accumulate(np.where(first, np.arange(len(key)), 0))
        before = csum - xm - (csum - xm)[seg_start]
        limit = r[a[is_m], i[is_m]]
        x[is_m] = np.clip(limit - before, 0, xm)
    fl = np.zeros(len(net_new.kind), np.int64)
    fl[fo] = x
    return conserve(net_new, fl)


def buyer_object_flows(net: UnionNetwork, flow: np.ndarray, A: int, n: int, m: int) -> np.ndarray:
    """Buyer->object flows as ``(A, n, m)`` (F_i and M_i are disjoint: one arc per (i, j))."""
    x = np.zeros(A * n * m, np.int64)
    fo = buyer_object_arcs(net)
    x[(net.market[fo] * n + net.buyer[fo]) * m + net.obj[fo]] = flow[fo]
    return x.reshape(A, n, m)


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
