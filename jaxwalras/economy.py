"""Non-convex exchange economies given by finite menus (Milgrom and Watt, 2022).

One money good plus ``L`` goods.  Buyer ``n`` chooses one option ``k`` from a finite menu
with bundle ``X[n, k] in R^L_+`` and value ``V[n, k]``; seller ``f`` chooses a production
plan ``Y[f, k] in R^L_+`` with cost ``C[f, k]``.  Option 0 is always the empty bundle with
value / cost 0.  Nothing else is assumed: non-concave values, fixed or start-up costs and
integer production all fit.  Menus of different lengths are padded to a common ``K`` with
boolean masks; an agent whose only real option is option 0 is inert (used to pad agents).

Reference: P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without
convexity" (EC'22 / arXiv 2021).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import jax
import numpy as np

from ._validation import as_bool_array, broadcast_batch, check_trailing_shape

__all__ = ["MenuEconomy", "MenuArrays"]

_FIELDS = ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs",
           "buyer_mask", "seller_mask")

#: supported magnitudes of values, costs and quantities: ``0`` or within
#: ``[MIN_MAGNITUDE, MAX_MAGNITUDE]``, so that every price ``value / quantity`` and every
#: payment ``price * quantity`` the library forms stays a normal float64 number
MAX_MAGNITUDE = 1e100
MIN_MAGNITUDE = 1e-100


class MenuArrays(NamedTuple):
    """The six arrays of a menu economy in the one order every internal routine uses.

    Host code holds float64 / bool numpy arrays (:meth:`MenuEconomy.host_arrays`); device
    kernels take the same order.

    Attributes
    ----------
    X : array, shape (..., N, Kb, L)
        Buyer bundles.
    V : array, shape (..., N, Kb)
        Buyer values.
    bm : bool array, shape (..., N, Kb)
        Buyer mask (real options).
    Y : array, shape (..., F, Ks, L)
        Seller production plans.
    C : array, shape (..., F, Ks)
        Seller costs.
    sm : bool array, shape (..., F, Ks)
        Seller mask.
    """
    X: Any
    V: Any
    bm: Any
    Y: Any
    C: Any
    sm: Any

    def take(self, idx: Any) -> "MenuArrays":
        """Rows ``idx`` of a flat batch (leading axis)."""
        return MenuArrays(*(a[idx] for a in self))

    @property
    def n_markets(self) -> int:
        """Length of the leading (flat batch) axis."""
        return int(np.shape(self.V)[0])


def _float_allow_nan(x: Any, name: str, min_ndim: int) -> np.ndarray:
    """Numeric float64 array; NaN/inf are checked later (only unmasked entries must be finite)."""
    try:
        arr = np.asarray(x)
    except Exception as exc:
        raise TypeError(f"{name}: could not be converted to an array ({exc})") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: must be a rectangular numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name}: needs at least {min_ndim} dimensions, got shape {arr.shape}")
    return arr


def _check_range(arr: np.ndarray, name: str) -> None:
    """Refuse magnitudes outside ``[MIN_MAGNITUDE, MAX_MAGNITUDE]`` (zero allowed)."""
    a = np.abs(arr)
    bad = (a > MAX_MAGNITUDE) | ((a > 0) & (a < MIN_MAGNITUDE))
    if bad.any():
        val = float(arr[bad].ravel()[0])
        raise ValueError(f"{name}: found {val!r}; values, costs and quantities must be 0 or of "
                         f"magnitude within [{MIN_MAGNITUDE:g}, {MAX_MAGNITUDE:g}] (change the "
                         "unit of money or of the goods)")


def _check_names(names: Any, n: int, what: str) -> tuple[str, ...] | None:
    if names is None:
        return None
    if isinstance(names, str) or not hasattr(names, "__len__"):
        raise TypeError(f"{what}: must be a sequence of {n} strings, got {names!r}")
    out = tuple(names)
    if len(out) != n:
        raise ValueError(f"{what}: got {len(out)} names for {n} agents")
    for i, x in enumerate(out):
        if not isinstance(x, str):
            raise TypeError(f"{what}[{i}]: must be a string, got {x!r}")
    return out


@jax.tree_util.register_pytree_node_class
class MenuEconomy:
    """A (batch of) menu economies: buyers and sellers with finite option menus.

    Parameters
    ----------
    buyer_bundles : array (..., N, Kb, L), >= 0
        Bundle of goods of each buyer option; option 0 must be all zeros.
    buyer_values : array (..., N, Kb)
        Money value of each buyer option; option 0 must be 0.
    seller_bundles : array (..., F, Ks, L), >= 0
        Production plan of each seller option; option 0 must be all zeros.
    seller_costs : array (..., F, Ks)
        Cost of each production plan; option 0 must be 0.
    buyer_mask, seller_mask : bool arrays (..., N, Kb), (..., F, Ks), optional
        ``True`` for real options; ``False`` marks padding (ignored everywhere; such entries
        may hold anything, including NaN, and are stored as 0).  Option 0 must be ``True``.
    buyer_names, seller_names : sequence of str, optional
        One name per buyer (seller), e.g. generator names.  They are static pytree data
        (not leaves): they survive indexing, reshaping, padding (padded agents get ``""``)
        and :meth:`stack` of economies with the same names.

    Raises
    ------
    TypeError
        A non-numeric array or non-string names.
    ValueError
        No buyer (``N = 0``) or no seller (``F = 0``); shapes that do not match; NaN or
        infinity in a real option; negative bundles; option 0 not empty; a value, cost or
        quantity whose magnitude is outside ``[1e-100, 1e100]`` (zero allowed; change the
        unit of money or quantity).

    Leading batch axes of the four arrays (and masks) broadcast against each other, so
    e.g. one seller side can be shared by a batch of buyer sides.  The instance is a JAX
    pytree: it passes through ``jit``, ``vmap`` and ``tree_map`` (validation runs only in
    the constructor, on the host).

    Examples
    --------
    >>> import jaxwalras as jw
    >>> eco = jw.MenuEconomy.single_good([[1.0], [2.0]], [[3.0], [2.5]], [[1.0, 2.0, 3.0]],
    ...                                   [[1.0, 2.0, 3.0]])
    >>> eco.n_buyers, eco.n_sellers, eco.n_goods
    (2, 1, 1)
    """

    buyer_bundles: Any
    buyer_values: Any
    seller_bundles: Any
    seller_costs: Any
    buyer_mask: Any
    seller_mask: Any
    buyer_names: tuple[str, ...] | None
    seller_names: tuple[str, ...] | None

    def __init__(self, buyer_bundles: Any, buyer_values: Any, seller_bundles: Any,
                 seller_costs: Any, buyer_mask: Any = None, seller_mask: Any = None, *,
                 buyer_names: Sequence[str] | None = None,
                 seller_names: Sequence[str] | None = None) -> None:
        X = _float_allow_nan(buyer_bundles, "buyer_bundles", 3)
        V = _float_allow_nan(buyer_values, "buyer_values", 2)
        Y = _float_allow_nan(seller_bundles, "seller_bundles", 3)
        C = _float_allow_nan(seller_costs, "seller_costs", 2)
        N, Kb, L = X.shape[-3:]
        F, Ks, L2 = Y.shape[-3:]
        if N < 1:
            raise ValueError(f"buyer_bundles: an economy needs at least one buyer, got N = {N} "
                             f"(shape {X.shape}); add an inert buyer (menu {{0}}) if you must")
        if F < 1:
            raise ValueError(f"seller_bundles: an economy needs at least one seller, got F = {F} "
                             f"(shape {Y.shape}); add an inert seller (menu {{0}}) if you must")
        if L2 != L:
            raise ValueError(f"seller_bundles: number of goods L (last axis) is {L2} but "
                             f"buyer_bundles has L = {L}; both must describe the same goods")
        if L < 1:
            raise ValueError("buyer_bundles: need at least one good (L >= 1)")
        if Kb < 1 or Ks < 1:
            raise ValueError("buyer_bundles/seller_bundles: every menu needs option 0 (K >= 1)")
        check_trailing_shape(V, "buyer_values", (N, Kb), ("buyers N", "options Kb"))
        check_trailing_shape(C, "seller_costs", (F, Ks), ("sellers F", "options Ks"))
        bm = np.ones(X.shape[:-1], bool) if buyer_mask is None else as_bool_array(buyer_mask, "buyer_mask")
        sm = np.ones(Y.shape[:-1], bool) if seller_mask is None else as_bool_array(seller_mask, "seller_mask")
        if bm.ndim < 2:
            raise ValueError(f"buyer_mask: expected trailing axes (N, Kb), got shape {bm.shape}")
        if sm.ndim < 2:
            raise ValueError(f"seller_mask: expected trailing axes (F, Ks), got shape {sm.shape}")
        check_trailing_shape(bm, "buyer_mask", (N, Kb), ("buyers N", "options Kb"))
        check_trailing_shape(sm, "seller_mask", (F, Ks), ("sellers F", "options Ks"))
        batch = broadcast_batch({
            "buyer_bundles": X.shape[:-3], "buyer_values": V.shape[:-2],
            "seller_bundles": Y.shape[:-3], "seller_costs": C.shape[:-2],
            "buyer_mask": bm.shape[:-2], "seller_mask": sm.shape[:-2]})
        X = np.broadcast_to(X, batch + (N, Kb, L)).copy()
        V = np.broadcast_to(V, batch + (N, Kb)).copy()
        Y = np.broadcast_to(Y, batch + (F, Ks, L)).copy()
        C = np.broadcast_to(C, batch + (F, Ks)).copy()
        bm = np.broadcast_to(bm, batch + (N, Kb)).copy()
        sm = np.broadcast_to(sm, batch + (F, Ks)).copy()
        if not bm[..., 0].all():
            raise ValueError("buyer_mask: option 0 (the empty bundle) must be a real option "
                             "(True) for every buyer")
        if not sm[..., 0].all():
            raise ValueError("seller_mask: option 0 (the empty plan) must be a real option "
                             "(True) for every seller")
        # padded entries may hold anything: store zeros
        X[~bm] = 0.0
        V[~bm] = 0.0
        Y[~sm] = 0.0
        C[~sm] = 0.0
        for arr, name in ((X, "buyer_bundles"), (V, "buyer_values"),
                          (Y, "seller_bundles"), (C, "seller_costs")):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name}: contains NaN or infinity in a real (unmasked) "
                                 "option; only finite numbers are allowed (mark padding "
                                 "with the mask)")
        if X.size and X.min() < 0:
            raise ValueError(f"buyer_bundles: bundles must be non-negative, found {X.min()}")
        if Y.size and Y.min() < 0:
            raise ValueError(f"seller_bundles: production plans must be non-negative, "
                             f"found {Y.min()}")
        if np.any(X[..., 0, :] != 0):
            raise ValueError("buyer_bundles: option 0 must be the empty bundle (all zeros) "
                             "for every buyer")
        if np.any(V[..., 0] != 0):
            raise ValueError("buyer_values: option 0 (the empty bundle) must have value 0")
        if np.any(Y[..., 0, :] != 0):
            raise ValueError("seller_bundles: option 0 must be the empty plan (all zeros) "
                             "for every seller")
        if np.any(C[..., 0] != 0):
            raise ValueError("seller_costs: option 0 (the empty plan) must have cost 0")
        for arr, name in ((X, "buyer_bundles"), (V, "buyer_values"),
                          (Y, "seller_bundles"), (C, "seller_costs")):
            _check_range(arr, name)
        self._set(X, V, Y, C, bm, sm, _check_names(buyer_names, N, "buyer_names"),
                  _check_names(seller_names, F, "seller_names"))

    # -- internals -----------------------------------------------------------------------
    def _set(self, X: Any, V: Any, Y: Any, C: Any, bm: Any, sm: Any,
             buyer_names: tuple[str, ...] | None = None,
             seller_names: tuple[str, ...] | None = None) -> None:
        object.__setattr__(self, "buyer_bundles", X)
        object.__setattr__(self, "buyer_values", V)
        object.__setattr__(self, "seller_bundles", Y)
        object.__setattr__(self, "seller_costs", C)
        object.__setattr__(self, "buyer_mask", bm)
        object.__setattr__(self, "seller_mask", sm)
        object.__setattr__(self, "buyer_names", buyer_names)
        object.__setattr__(self, "seller_names", seller_names)

    @classmethod
    def _unchecked(cls, *fields: Any, names: tuple[Any, ...] = (None, None)) -> "MenuEconomy":
        """Build without validation (pytree unflattening, internal slicing)."""
        obj = object.__new__(cls)
        X, V, Y, C, bm, sm = fields
        obj._set(X, V, Y, C, bm, sm, *names)
        return obj

    @property
    def _names(self) -> tuple[Any, Any]:
        return (getattr(self, "buyer_names", None), getattr(self, "seller_names", None))

    def tree_flatten(self) -> tuple[tuple[Any, ...], tuple[Any, Any]]:
        return tuple(getattr(self, f) for f in _FIELDS), self._names

    @classmethod
    def tree_unflatten(cls, aux: Any, children: Sequence[Any]) -> "MenuEconomy":
        return cls._unchecked(*children, names=aux if aux is not None else (None, None))

    # -- shapes --------------------------------------------------------------------------
    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch axes (``()`` for a single economy)."""
        return tuple(np.shape(self.buyer_values)[:-2])

    @property
    def n_buyers(self) -> int:
        return int(np.shape(self.buyer_values)[-2])

    @property
    def n_sellers(self) -> int:
        return int(np.shape(self.seller_costs)[-2])

    @property
    def n_goods(self) -> int:
        return int(np.shape(self.buyer_bundles)[-1])

    @property
    def n_buyer_options(self) -> int:
        return int(np.shape(self.buyer_values)[-1])

    @property
    def n_seller_options(self) -> int:
        return int(np.shape(self.seller_costs)[-1])

    def __repr__(self) -> str:
        try:
            shapes_ok = np.ndim(self.buyer_values) >= 2 and np.ndim(self.seller_costs) >= 2
        except Exception:
            shapes_ok = False
        if not shapes_ok:
            return "MenuEconomy(<non-array leaves>)"
        return (f"MenuEconomy(batch_shape={self.batch_shape}, N={self.n_buyers}, "
                f"Kb={self.n_buyer_options}, F={self.n_sellers}, Ks={self.n_seller_options}, "
                f"L={self.n_goods})")

    # -- batch manipulation --------------------------------------------------------------
    def __getitem__(self, idx: Any) -> "MenuEconomy":
        """Index the batch axes only, e.g. ``eco[3]`` or ``eco[:10]``."""
        nb = len(self.batch_shape)
        if nb == 0:
            raise IndexError("this MenuEconomy has no batch axes to index")
        tup = idx if isinstance(idx, tuple) else (idx,)
        if any(t is Ellipsis or t is None for t in tup) or len(tup) > nb:
            raise IndexError(f"index {idx!r} must address at most the {nb} batch axes "
                             f"(batch_shape {self.batch_shape}) without ... or None")
        return MenuEconomy._unchecked(*(getattr(self, f)[tup] for f in _FIELDS),
                                      names=self._names)

    def take(self, i: Any) -> "MenuEconomy":
        """Batch element(s) ``i`` along the first batch axis (same as ``eco[i]``)."""
        return self[i]

    def reshape_batch(self, shape: Sequence[int]) -> "MenuEconomy":
        """Reshape the batch axes (the agent/option/good axes are unchanged)."""
        shape = tuple(int(s) for s in shape)
        out = []
        for f in _FIELDS:
            a = getattr(self, f)
            tail = np.shape(a)[len(self.batch_shape):]
            out.append(a.reshape(shape + tuple(tail)))
        return MenuEconomy._unchecked(*out, names=self._names)

    def broadcast_batch(self, shape: Sequence[int]) -> "MenuEconomy":
        """Broadcast the batch axes to ``shape`` (host numpy arrays, copies)."""
        shape = tuple(int(s) for s in shape)
        out = []
        for f in _FIELDS:
            a = np.asarray(getattr(self, f))
            tail = a.shape[len(self.batch_shape):]
            out.append(np.broadcast_to(a, shape + tail).copy())
        return MenuEconomy._unchecked(*out, names=self._names)

    def pad(self, n_buyers: int | None = None, buyer_options: int | None = None,
            n_sellers: int | None = None, seller_options: int | None = None) -> "MenuEconomy":
        """Pad with inert agents / masked options to the given sizes (never shrinks)."""
        N, Kb, F, Ks = self.n_buyers, self.n_buyer_options, self.n_sellers, self.n_seller_options
        n2 = N if n_buyers is None else int(n_buyers)
        kb2 = Kb if buyer_options is None else int(buyer_options)
        f2 = F if n_sellers is None else int(n_sellers)
        ks2 = Ks if seller_options is None else int(seller_options)
        if n2 < N or kb2 < Kb or f2 < F or ks2 < Ks:
            raise ValueError(f"pad: target sizes ({n2}, {kb2}, {f2}, {ks2}) must be at least "
                             f"the current (N={N}, Kb={Kb}, F={F}, Ks={Ks})")
        b = self.batch_shape
        nb = len(b)

        def padto(a: Any, tail: tuple[int, ...], fill: Any) -> np.ndarray:
            a = np.asarray(a)
            widths = [(0, 0)] * nb + [(0, t - s) for t, s in zip(tail, a.shape[nb:])]
            return np.pad(a, widths, constant_values=fill)

        L = self.n_goods
        X = padto(self.buyer_bundles, (n2, kb2, L), 0.0)
        V = padto(self.buyer_values, (n2, kb2), 0.0)
        Y = padto(self.seller_bundles, (f2, ks2, L), 0.0)
        C = padto(self.seller_costs, (f2, ks2), 0.0)
        bm = padto(self.buyer_mask, (n2, kb2), False)
        sm = padto(self.seller_mask, (f2, ks2), False)
        bm[..., 0] = True
        sm[..., 0] = True
        bn, sn = self._names
        bn = None if bn is None else tuple(bn) + ("",) * (n2 - N)
        sn = None if sn is None else tuple(sn) + ("",) * (f2 - F)
        return MenuEconomy._unchecked(X, V, Y, C, bm, sm, names=(bn, sn))

    @staticmethod
    def stack(economies: Sequence["MenuEconomy"]) -> "MenuEconomy":
        """Stack economies (possibly of different sizes) along a new leading batch axis.

        Smaller economies are padded with inert agents and masked options; all must have
        the same number of goods ``L`` and the same batch shape.  Agent names are kept where
        every economy has the same ones (after padding), else dropped (``None``).
        """
        economies = list(economies)
        if not economies:
            raise ValueError("stack: need at least one economy")
        for i, e in enumerate(economies):
            if not isinstance(e, MenuEconomy):
                raise TypeError(f"stack: element {i} is a {type(e).__name__}, expected MenuEconomy")
        L = economies[0].n_goods
        bs = economies[0].batch_shape
        for i, e in enumerate(economies):
            if e.n_goods != L:
                raise ValueError(f"stack: economy {i} has L={e.n_goods} goods, economy 0 has {L}")
            if e.batch_shape != bs:
                raise ValueError(f"stack: economy {i} has batch_shape {e.batch_shape}, "
                                 f"economy 0 has {bs}")
        sizes = dict(n_buyers=max(e.n_buyers for e in economies),
                     buyer_options=max(e.n_buyer_options for e in economies),
                     n_sellers=max(e.n_sellers for e in economies),
                     seller_options=max(e.n_seller_options for e in economies))
        padded = [e.pad(**sizes) for e in economies]
        names = tuple(n if all(e._names[i] == n for e in padded) else None
                      for i, n in enumerate(padded[0]._names))
        return MenuEconomy._unchecked(*(np.stack([np.asarray(getattr(e, f)) for e in padded])
                                        for f in _FIELDS), names=names)

    # -- constructors --------------------------------------------------------------------
    @classmethod
    def single_good(cls, buyer_quantities: Any, buyer_values: Any, seller_quantities: Any,
                    seller_costs: Any, *, buyer_names: Sequence[str] | None = None,
                    seller_names: Sequence[str] | None = None) -> "MenuEconomy":
        """One good (``L = 1``) from tabulated quantity grids.

        ``buyer_quantities[..., n, k]`` is a quantity buyer ``n`` may consume, worth
        ``buyer_values[..., n, k]``; likewise ``seller_quantities`` / ``seller_costs``.
        Any shape of value / cost is allowed: non-concave values ("all or nothing" demands),
        fixed and start-up costs, integer production.  The empty option (quantity 0,
        value/cost 0) is prepended as option 0; NaN quantities mark padding (ragged grids).

        Example (a seller with a fixed cost 1 and marginal cost 0.5 who produces integers):
        ``seller_quantities=[[1, 2, 3]], seller_costs=[[1.5, 2.0, 2.5]]``.
        """
        qb = _float_allow_nan(buyer_quantities, "buyer_quantities", 2)
        vb = _float_allow_nan(buyer_values, "buyer_values", 2)
        qs = _float_allow_nan(seller_quantities, "seller_quantities", 2)
        cs = _float_allow_nan(seller_costs, "seller_costs", 2)
        if qb.shape[-2:] != vb.shape[-2:]:
            raise ValueError(f"buyer_values: trailing shape {vb.shape[-2:]} must equal "
                             f"buyer_quantities' {qb.shape[-2:]} (buyers N, grid points K)")
        if qs.shape[-2:] != cs.shape[-2:]:
            raise ValueError(f"seller_costs: trailing shape {cs.shape[-2:]} must equal "
                             f"seller_quantities' {qs.shape[-2:]} (sellers F, grid points K)")

        def prep(q: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            q, v = np.broadcast_arrays(q, v)
            mask = ~np.isnan(q)
            zq = np.zeros(q.shape[:-1] + (1,))
            qq = np.concatenate([zq, np.where(mask, q, 0.0)], axis=-1)
            vv = np.concatenate([zq, np.where(mask, v, 0.0)], axis=-1)
            mm = np.concatenate([np.ones(zq.shape, bool), mask], axis=-1)
            return qq[..., None], vv, mm

        X, V, bm = prep(qb, vb)
        Y, C, sm = prep(qs, cs)
        for arr, m, name in ((X[..., 0], bm, "buyer_quantities"), (V, bm, "buyer_values"),
                             (Y[..., 0], sm, "seller_quantities"), (C, sm, "seller_costs")):
            if not np.all(np.isfinite(arr[m])):
                raise ValueError(f"{name}: contains NaN or infinity where the quantity is "
                                 "given; only finite numbers are allowed")
        return cls(X, V, Y, C, bm, sm, buyer_names=buyer_names, seller_names=seller_names)

    def replace(self, **fields: Any) -> "MenuEconomy":
        """A copy with some leaves replaced WITHOUT validation (for JAX transformations,
        e.g. ``jax.grad`` with respect to ``buyer_values``).  Shapes must be unchanged."""
        bad = set(fields) - set(_FIELDS)
        if bad:
            raise TypeError(f"replace: unknown field(s) {sorted(bad)}; fields are {list(_FIELDS)}")
        for k, v in fields.items():
            if np.shape(v) != np.shape(getattr(self, k)):
                raise ValueError(f"replace: {k} has shape {np.shape(v)}, expected "
                                 f"{np.shape(getattr(self, k))}")
        return MenuEconomy._unchecked(*(fields.get(f, getattr(self, f)) for f in _FIELDS),
                                      names=self._names)

    def to_numpy(self) -> "MenuEconomy":
        """A copy with host numpy leaves (float64 / bool)."""
        return MenuEconomy._unchecked(*(np.asarray(getattr(self, f)) for f in _FIELDS),
                                      names=self._names)

    def host_arrays(self, batch: Sequence[int] | None = None, *, flat: bool = False
                    ) -> MenuArrays:
        """The economy as :class:`MenuArrays` of float64 / bool numpy arrays.

        ``batch`` broadcasts the batch axes to a larger shape (default: the economy's own);
        ``flat=True`` merges them into one leading axis (``(B, N, Kb, L)`` etc.).
        """
        b = self.batch_shape
        batch = b if batch is None else tuple(int(x) for x in batch)
        out = []
        for f in ("buyer_bundles", "buyer_values", "buyer_mask", "seller_bundles",
                  "seller_costs", "seller_mask"):
            a = np.asarray(getattr(self, f))
            a = a.astype(bool, copy=False) if a.dtype == bool else a.astype(np.float64, copy=False)
            a = np.broadcast_to(a, batch + a.shape[len(b):])
            if flat:
                a = np.ascontiguousarray(a.reshape((-1,) + a.shape[len(batch):]))
            out.append(a)
        return MenuArrays(*out)

    @classmethod
    def from_arrays(cls, arrays: MenuArrays) -> "MenuEconomy":
        """An economy holding ``arrays`` as they are (no validation: for internal use on
        arrays that come from a validated economy)."""
        X, V, bm, Y, C, sm = arrays
        return cls._unchecked(X, V, Y, C, bm, sm)
