"""Compile ahead the kernels a study will use: :func:`warmup`.

The batched entry points compile their device kernels for a few bucketed shapes only
(:mod:`jaxwalras._batching`): chunks of markets of a bucketed size, never the exact
batch size, and, for the multi-unit and set-function families, buyers and objects padded
to their buckets. :func:`warmup` compiles them before a sweep starts, so that the first
call at every batch size and every market size inside the buckets runs at the speed of a
repeat. JAX's persistent compilation cache
(:func:`jaxwalras.experiments.compilation_cache`) then keeps them for later processes.

The buckets, per family (markets per device call; market dimensions):

* auction: 16, 64, 256 markets (up to 4096 on accelerators; on CPUs from 4 for markets
  above 32 KiB of padded values, from 1 and up to 4 above 128 KiB, only 1 above
  512 KiB); buyers and objects padded to 0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, ...
  (zero-demand buyers, zero-supply objects);
* optimal allocation and demand queries: 16, 64, 256, ... up to a memory cap; buyers
  padded as above (buyers the DP skips, buyers who value nothing); items exact (a table
  has ``2**m`` sets);
* CWE (bundling): 8, 16, 32, 64, ... (powers of two; on CPUs from 4, 2 or 1 for large
  value tables, :func:`jaxwalras.bundling.cwe_floor`); dimensions exact;
* convexified equilibria: 16, 64, 256, ... up to a memory cap (on CPUs 1 or 4 for
  economies whose inputs exceed 128 KiB); dimensions exact (the
  canonical-prices LP pads its rows to 16, 64, 256, ...).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .typing import DevicesLike

from ._batching import BATCH_BASE, dim_bucket, padded_size

__all__ = ["warmup"]


def _batch_sizes(batch_sizes: Any, default: int) -> list[int]:
    if batch_sizes is None:
        sizes = [default]
    elif isinstance(batch_sizes, (int, np.integer)) and not isinstance(batch_sizes, bool):
        sizes = [int(batch_sizes)]
    else:
        try:
            sizes = [int(b) for b in batch_sizes]
        except (TypeError, ValueError):
            raise TypeError(f"batch_sizes: expected an int or a sequence of ints, got "
                            f"{batch_sizes!r}") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"batch_sizes: expected positive batch sizes, got {batch_sizes!r}")
    return sizes


def _powers_of_two(top: int, start: int = 8) -> list[int]:
    """``start`` (8), 16, 32, ... up to the power of two bucket of ``top``: every CWE batch
    bucket and, through the chunk plans, every chunk bucket (16, 64, 256, ...) of the
    others."""
    last = padded_size(top, floor=start)
    out, b = [], start
    while b <= last:
        out.append(b)
        b *= 2
    return out


def _warm_multiunit(example: Any, sizes: Sequence[tuple[int, int]] | None, top: int,
                    devices: Any, options: dict) -> list[tuple[str, tuple[int, ...]]]:
    import jax

    from . import auction_rounds as _rounds
    from .devices import put_batch, resolve_devices
    from .multiunit_chunks import bundles_flat, chunk_limits

    devs = resolve_devices(devices)
    k = len(devs)
    step = options.get("step", "long")
    jumps = options.get("jumps")
    jumps = bool(step == "long" if jumps is None else jumps)
    backend = options.get("backend", "auto")
    on_device = backend == "device" or (backend == "auto" and devs[0].platform != "cpu"
                                        and step != "search")
    dims = sorted({(dim_bucket(n), dim_bucket(m)) for n, m in
                   (sizes or [(example.n_buyers, example.n_objects)])})
    done: list[tuple[str, tuple[int, ...]]] = []
    for nb, mb in dims:
        if nb == 0 or mb == 0:
            continue
        cap, floor = chunk_limits(nb, mb, devs)
        chunks = [c for c in (floor * BATCH_BASE ** j for j in range(12)) if c <= cap]
        chunks = [c for c in chunks if c <= max(padded_size(min(top, cap), base=BATCH_BASE,
                                                            floor=floor), floor)]
        for c in chunks:
            size = c * k
            z3 = np.zeros((size, nb, mb), np.int32)
            zn = np.zeros((size, nb), np.int32)
            zm = np.zeros((size, mb), np.int32)
            put = lambda *a: tuple(put_batch(x, devs) for x in a)  # noqa: E731
            if on_device and mb <= 16:
                out = _rounds.device_auction(*put(z3, zn, zm, zm), step="unit" if step ==
                                             "unit" else "long", max_rounds=jax.numpy.int32(1),
                                             jumps=jumps)
                done.append(("device_auction", (size, nb, mb)))
            else:
                dev_step = "unit" if step == "search" else step
                out = _rounds.advance(*put(z3, zn, zm, zm, np.zeros((size, mb), bool), zn),
                                      step=dev_step, jumps=jumps)
                done.append(("advance", (size, nb, mb)))
                if step == "search":
                    jax.block_until_ready(out)
                    out = bundles_flat(*put(z3, zn, zm, zm))
                    jax.block_until_ready(out)
                    out = _rounds.long_steps(*put(z3, zn, zm, zm, np.zeros((size, mb), bool)))
                    done.append(("search kernels", (size, nb, mb)))
            jax.block_until_ready(out)
    return done


def warmup(example: Any, *, batch_sizes: int | Sequence[int] | None = None,
           sizes: Sequence[tuple[int, int]] | None = None, fn: Callable[..., Any] | None = None,
           devices: DevicesLike = None, **options: Any) -> list[tuple[str, tuple[int, ...]]]:
    """Compile the device kernels a study will use, for every bucket it will meet.

    Parameters
    ----------
    example : MultiUnitMarket, MenuEconomy or SetFunctionMarket
        A market of the study (one market or a batch; the first market is used).
    batch_sizes : int or sequence of int, optional
        The batch sizes the study will solve (default: the example's). Every batch bucket
        up to the largest one's is compiled.
    sizes : sequence of (n_buyers, n_objects), optional
        Multi-unit markets only: the market sizes of the study (default: the example's);
        one compilation per bucket pair (:func:`jaxwalras._batching.dim_bucket`).
    fn : callable, optional
        Menu economies and set-function markets: the entry point to warm (default
        :func:`jaxwalras.convexified_equilibrium`, resp.
        :func:`jaxwalras.combinatorial_walrasian_equilibrium`); it is called on the
        example's first market repeated ``8, 16, 32, ...`` times up to the bucket of the
        largest batch size, with ``**options``.
    devices : int, str, jax.Device or sequence of them, optional
        As for the entry points (:func:`jaxwalras.resolve_devices`).
    **options
        Multi-unit markets: ``step``, ``jumps``, ``backend`` of
        :func:`jaxwalras.buyer_optimal_equilibrium` (compiled kernels depend on them).
        Otherwise: keyword arguments of ``fn``.

    Returns
    -------
    list of (str, tuple of int)
        What was run: the kernel or entry point and its (padded) shape.

    Raises
    ------
    TypeError, ValueError
        An example of another type, bad ``batch_sizes`` or ``sizes``.

    Notes
    -----
    The buckets are listed in :mod:`jaxwalras.warmup`. Markets in a bucket share compiled
    code (batches are cut into chunks of bucketed sizes and padded with copies of a real
    market, dimensions with entries that change nothing), the design of OTT-JAX's
    ``batched_vmap`` (Cuturi et al., "Optimal Transport Tools (OTT): A JAX Toolbox for all
    things Wasserstein", arXiv:2201.12324, 2022).

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket(values=[[3, 4], [2, 1]], demands=[1, 3], supplies=[1, 1])
    >>> jw.warmup(mkt, batch_sizes=10)[0]
    ('advance', (16, 2, 2))
    """
    from .devices import resolve_devices
    from .economy import MenuEconomy
    from .multiunit import MultiUnitMarket
    from .setfunction import SetFunctionMarket

    if isinstance(example, MultiUnitMarket):
        B = int(np.prod(example.batch_shape, dtype=np.int64))
        if B == 0:
            raise ValueError("example: empty batch; pass at least one market")
        top = max(_batch_sizes(batch_sizes, B))
        if sizes is not None:
            try:
                sizes = [(int(n), int(m)) for n, m in sizes]
            except (TypeError, ValueError):
                raise TypeError(f"sizes: expected a sequence of (n_buyers, n_objects) pairs, "
                                f"got {sizes!r}") from None
            if any(n < 0 or m < 0 for n, m in sizes):
                raise ValueError(f"sizes: market sizes must be non-negative, got {sizes!r}")
        return _warm_multiunit(example, sizes, top, devices, options)
    if sizes is not None:
        raise ValueError("sizes: only multi-unit markets pad their dimensions to buckets; "
                         "warm other sizes with one example each")
    if isinstance(example, MenuEconomy):
        from .convexified import convexified_equilibrium
        flat = example.reshape_batch((-1,)) if example.batch_shape else \
            example.reshape_batch((1,))
        B = int(np.prod(flat.batch_shape))
        run = fn or convexified_equilibrium
        make: Callable[[int], Any] = lambda b: flat[np.zeros(b, np.int64)]  # noqa: E731
        start = 8
    elif isinstance(example, SetFunctionMarket):
        from .bundling import combinatorial_walrasian_equilibrium
        vals = np.asarray(example.values)
        one = vals.reshape((-1,) + tuple(vals.shape[-2:]))
        B = int(len(one))
        run = fn or combinatorial_walrasian_equilibrium
        make = lambda b: SetFunctionMarket(np.repeat(one[:1], b, axis=0))  # noqa: E731
        from .bundling import cwe_floor
        start = cwe_floor(int(vals.shape[-2]), int(vals.shape[-1]))
    else:
        raise TypeError(f"example: expected a MultiUnitMarket, MenuEconomy or "
                        f"SetFunctionMarket, got {type(example).__name__}")
    if B == 0:
        raise ValueError("example: empty batch; pass at least one market")
    top = max(_batch_sizes(batch_sizes, B))
    from .devices import use_devices
    done: list[tuple[str, tuple[int, ...]]] = []
    with use_devices(devices if devices is not None else resolve_devices()):
        for b in _powers_of_two(top, start):
            run(make(b), **options)
            done.append((str(getattr(run, "__name__", "fn")), (int(b),)))
    if isinstance(example, MenuEconomy) and fn is None:
        # the canonical-prices LP: its row count depends on the data (rows binding at
        # the solution), in buckets 16, 64, 256, ...: compile them all
        from .exact_finish import canonical_rows, warm_canonical
        eco = example
        rows = canonical_rows(eco.n_buyers, int(np.shape(eco.buyer_values)[-1]),
                              eco.n_sellers, int(np.shape(eco.seller_costs)[-1]),
                              eco.n_goods)
        done += [("canonical_prices", s) for s in warm_canonical(eco.n_goods, rows, top)]
    return done
