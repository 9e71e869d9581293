"""Compile once, run any size (issue 12): after one warm-up per bucket, new batch sizes and
new market sizes inside a bucket compile nothing, and a market's answer does not depend on
its batch mates or on the padding."""
from __future__ import annotations

import subprocess
import sys

import jax
import jax.monitoring
import numpy as np
import pytest

import jaxwalras as jw
from jaxwalras._batching import (BATCH_BASE, BATCH_FLOOR, chunk_plan, dim_bucket,
                                 padded_size, spread)

_EVENT = "/jax/core/compile/backend_compile_duration"


class _Compiles:
    """Counts XLA backend compilations (JAX's monitoring events) inside a ``with`` block."""

    def __enter__(self) -> "_Compiles":
        self.count = 0
        self.names: list[str] = []

        def listen(event: str, duration: float, **kw) -> None:
            if event == _EVENT:
                self.count += 1
                self.names.append(str(kw.get("fun_name", "?")))

        self._listen = listen
        jax.monitoring.register_event_duration_secs_listener(listen)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self._listen)


def _multiunit(rng, B, n, m, vmax=1000):
    return jw.MultiUnitMarket(rng.integers(0, vmax + 1, (B, n, m)), rng.integers(1, 4, (B, n)),
                              rng.integers(1, 6, (B, m)))


# ------------------------------------------------------------------ bucket arithmetic
def test_buckets():
    assert [dim_bucket(k) for k in range(10)] == [0, 1, 2, 3, 4, 6, 6, 8, 8, 12]
    assert dim_bucket(47) == 48 and dim_bucket(49) == 64 and dim_bucket(100) == 128
    allowed = {BATCH_FLOOR * BATCH_BASE ** j for j in range(4)}
    for n in (1, 5, 16, 17, 63, 100, 255, 256, 257, 700, 1000):
        plan = chunk_plan(n, 256, base=BATCH_BASE, floor=BATCH_FLOOR, split_rest=True)
        assert plan[0][0] == 0 and plan[-1][1] == n
        assert all(hi - lo <= size and size in allowed for lo, hi, size in plan)
    for n in (1, 7, 33, 64, 65):           # over 4 devices: each device gets one bucket
        plan = chunk_plan(n, 256, base=BATCH_BASE, floor=BATCH_FLOOR, split_rest=True,
                          multiple=4)
        assert plan[-1][1] == n and all(size % 4 == 0 and size // 4 in allowed
                                        for _, _, size in plan)
        for lo, hi, size in plan:
            idx, pos = spread(np.arange(lo, hi), size, 4)
            assert len(idx) == size and np.array_equal(idx[pos], np.arange(lo, hi))
    assert padded_size(100, base=4, floor=16) == 256


# ------------------------------------------------------------------ auction
def test_auction_compiles_once_per_bucket(rng):
    # buyers 5 and 6 share bucket 6; objects 3 are their own bucket
    jw.warmup(_multiunit(rng, 1, 6, 3), batch_sizes=64, sizes=[(6, 3)])
    with _Compiles() as c:
        for B, n in ((1, 6), (5, 6), (23, 5), (40, 6), (64, 5), (17, 6)):
            res = jw.buyer_optimal_equilibrium(_multiunit(rng, B, n, 3))
            assert res.converged.all()
    assert c.count == 0, c.names


def test_large_auction_markets_get_small_chunks(rng, monkeypatch):
    """On CPUs large markets go to the device in chunks of 4 or 1, not 16 (two markets
    of 1,000 x 50 padded to 16 cost the device eight times their work); warmup compiles
    those chunks, after which new batch sizes compile nothing; the answers equal each
    market's alone."""
    from jaxwalras import auction_rounds as _rounds
    from jaxwalras.multiunit_chunks import chunk_limits
    cpu = tuple(jax.devices("cpu"))
    assert chunk_limits(dim_bucket(50), dim_bucket(10), cpu) == (256, 16)
    assert chunk_limits(dim_bucket(250), dim_bucket(25), cpu) == (256, 16)   # 32 KiB
    assert chunk_limits(dim_bucket(500), dim_bucket(50), cpu) == (256, 4)    # 128 KiB
    assert chunk_limits(dim_bucket(1000), dim_bucket(50), cpu) == (4, 1)     # 256 KiB
    assert chunk_limits(dim_bucket(2000), dim_bucket(100), cpu) == (1, 1)    # 1 MiB
    seen = []
    advance = _rounds.advance

    def spy(v, *args, **kw):
        seen.append(v.shape)
        return advance(v, *args, **kw)

    monkeypatch.setattr(_rounds, "advance", spy)
    mk = _multiunit(rng, 5, 520, 40)          # padded to 768 x 48: 144 KiB of values
    jw.warmup(mk, batch_sizes=5)
    parts = [mk[:B] for B in (2, 3, 5)]
    with _Compiles() as c:
        for part in parts:
            res = jw.buyer_optimal_equilibrium(part)
            assert res.converged.all()
    assert c.count == 0, c.names
    # (4, 1) for 768 x 48: 2 markets go as two chunks of 1, 3 as one of 4, 5 as 4 + 1
    assert seen and {s[0] for s in seen} == {1, 4}, {s[0] for s in seen}
    for k in range(2):
        alone = jw.buyer_optimal_equilibrium(mk[k])
        np.testing.assert_array_equal(res.prices[k], alone.prices)


@pytest.mark.parametrize("scale", [1, 10_000])
def test_auction_market_alone_equals_in_padded_mixed_batch(rng, scale):
    markets = [_multiunit(rng, 1, n, m, vmax=1000)[0] for n, m in
               ((5, 3), (6, 3), (6, 4), (7, 4), (5, 4), (1, 3))]
    markets = [jw.MultiUnitMarket(np.asarray(mk.values) * scale, mk.demands, mk.supplies)
               for mk in markets]
    alone = [jw.buyer_optimal_equilibrium(mk) for mk in markets]
    batch = jw.buyer_optimal_equilibrium(jw.MultiUnitMarket.stack(markets))
    for k, (mk, a) in enumerate(zip(markets, alone)):
        n, m = mk.n_buyers, mk.n_objects
        np.testing.assert_array_equal(batch.prices[k, :m], a.prices)
        assert not batch.prices[k, m:].any()                  # padding objects cost 0
        np.testing.assert_array_equal(batch.allocation[k, :n, :m], a.allocation)
        assert not batch.allocation[k, n:].any() and not batch.allocation[k, :, m:].any()
        assert batch.status[k] == a.status and batch.converged[k]


def test_auction_empty_batch_and_bad_devices(rng):
    mkt = _multiunit(rng, 3, 2, 2)
    with pytest.raises(ValueError, match="market: empty batch"):
        jw.buyer_optimal_equilibrium(mkt[:0])
    with pytest.raises(ValueError, match="devices: an empty sequence names no device"):
        jw.buyer_optimal_equilibrium(mkt, devices=[])
    with pytest.raises(ValueError, match="devices: no local device of platform 'tpu'"):
        jw.buyer_optimal_equilibrium(mkt, devices="tpu")
    with pytest.raises(ValueError, match="devices: a count must be between 1"):
        jw.buyer_optimal_equilibrium(mkt, devices=0)
    with pytest.raises(ValueError, match=r"devices\[0\]: no local device with id 99"):
        jw.buyer_optimal_equilibrium(mkt, devices=[99])
    with pytest.raises(TypeError, match="devices"):
        jw.buyer_optimal_equilibrium(mkt, devices=1.5)


def test_devices_mixing_platforms_is_refused():
    class Fake:                       # a device of another platform, as JAX describes one
        platform, id, process_index = "gpu", 0, jax.process_index()

        def __repr__(self) -> str:
            return "FakeGpu(id=0)"

    with pytest.raises(ValueError, match="mixes platforms"):
        jw.resolve_devices([jax.local_devices()[0], Fake()])


# ------------------------------------------------------------------ set-function markets
def _cats(B, n, m, seed):
    return jw.cats.arbitrary(n, m, seed, n_markets=B)


def test_cwe_and_optimal_allocation_compile_once_per_bucket():
    jw.warmup(_cats(1, 4, 5, 0), batch_sizes=16)
    with _Compiles() as c:
        for B, seed in ((1, 1), (3, 2), (9, 3), (16, 4), (5, 5)):
            mk = _cats(B, 4, 5, seed)
            assert jw.combinatorial_walrasian_equilibrium(mk).converged.all()
            assert jw.optimal_allocation(mk).converged.all()
    assert c.count == 0, c.names


def test_cwe_large_tables_get_small_working_batches(monkeypatch):
    """On CPUs, CWE on large value tables pads its working batch to 4, 2 or 1 markets, not
    8 (two markets of 5 x 2^14 padded to 8 cost the device four times their work); warmup
    compiles those buckets, after which batch sizes 1 to 3 compile nothing; answers equal
    each market's alone, at money scales 1e-6 and 1e6 mixed in one batch."""
    from jaxwalras import bundling
    assert [bundling.cwe_floor(5, 2 ** m, np.float32) for m in (10, 12, 13, 14)] == [8, 4, 2, 1]
    sizes = []
    chunk = bundling._cwe_chunk

    def spy(values, *args, **kw):
        sizes.append(values.shape[0])
        return chunk(values, *args, **kw)

    monkeypatch.setattr(bundling, "_cwe_chunk", spy)
    floor = bundling.cwe_floor(5, 2 ** 13)
    mk = _cats(3, 5, 13, 3)
    vals = np.asarray(mk.values) * np.array([1e-6, 1.0, 1e6])[:, None, None]
    parts = [jw.SetFunctionMarket(vals[:B]) for B in (1, 2, 3)]
    jw.warmup(mk, batch_sizes=3)
    sizes.clear()
    with _Compiles() as c:
        outs = [jw.combinatorial_walrasian_equilibrium(part) for part in parts]
    assert c.count == 0, c.names
    assert max(sizes) <= 4 and min(sizes) == floor, sizes
    for k in range(3):
        alone = outs[0] if k == 0 else jw.combinatorial_walrasian_equilibrium(
            jw.SetFunctionMarket(vals[k:k + 1]))
        np.testing.assert_array_equal(alone.bundles[0], outs[2].bundles[k])
        np.testing.assert_array_equal(alone.prices[0], outs[2].prices[k])
        assert outs[2].converged[k]


def test_optimal_allocation_buyer_padding_compiles_nothing():
    jw.optimal_allocation(_cats(2, 6, 4, 0))            # buyers 5 and 6 share bucket 6
    with _Compiles() as c:
        res = jw.optimal_allocation(_cats(7, 5, 4, 1))
    assert c.count == 0, c.names
    assert res.converged.all()


def test_demand_queries_compile_once_per_bucket():
    rng = np.random.default_rng(5)
    slots = np.array([1, 2, 4, 8, 16])
    cm = _cats(9, 5, 5, 0)
    jw.item_demand(cm, rng.uniform(0, 2, (9, 5)))             # bucket 16, buyers bucket 6
    jw.bundle_demand(cm, slots, rng.uniform(0, 2, (9, 5)))
    with _Compiles() as c:
        for B, n in ((1, 5), (4, 6), (13, 5), (16, 6)):
            mk = _cats(B, n, 5, B)
            p = rng.uniform(0, 2, (B, 5))
            one = jw.item_demand(mk, p)
            bd = jw.bundle_demand(mk, slots, p)
            alone = jw.item_demand(mk[B - 1], p[B - 1])     # and batch mates change nothing
            np.testing.assert_array_equal(one.demand[B - 1], alone.demand)
            np.testing.assert_array_equal(bd.demand, one.demand)   # singleton slots
    assert c.count == 0, c.names


def test_item_price_auction_compiles_once_per_bucket():
    cm = _cats(9, 4, 5, 0)
    jw.ascending_auction(cm, step=0.5)
    with _Compiles() as c:
        for B in (1, 5, 16):
            mk = _cats(B, 4, 5, B)
            res = jw.ascending_auction(mk, step=0.5)
            alone = jw.ascending_auction(mk[B - 1], step=0.5)
            np.testing.assert_array_equal(res.prices[B - 1], alone.prices)
    assert c.count == 0, c.names


@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_setfunction_market_alone_equals_in_batch(scale):
    mk = jw.SetFunctionMarket(np.asarray(_cats(11, 4, 5, 7).values) * scale)
    # batch mates of other scales: results must not depend on them
    mates = np.asarray(_cats(11, 4, 5, 8).values) * np.geomspace(1e-3, 1e3, 11)[:, None, None]
    mixed = jw.SetFunctionMarket(np.concatenate([np.asarray(mk.values), mates]))
    cwe_b = jw.combinatorial_walrasian_equilibrium(mixed)
    opt_b = jw.optimal_allocation(mixed)
    for k in (0, 3, 10):
        one = mk[k:k + 1]
        cwe = jw.combinatorial_walrasian_equilibrium(one)
        np.testing.assert_array_equal(cwe.bundles[0], cwe_b.bundles[k])
        np.testing.assert_array_equal(cwe.prices[0], cwe_b.prices[k])
        np.testing.assert_array_equal(cwe.allocation[0], cwe_b.allocation[k])
        assert cwe.status[0] == cwe_b.status[k]
        opt = jw.optimal_allocation(one)
        np.testing.assert_array_equal(opt.allocation[0], opt_b.allocation[k])
        assert opt.welfare[0] == opt_b.welfare[k]


# ------------------------------------------------------------------ convexified
def _menu(B, seed, scale=1.0):
    eco = jw.examples.random_menu_economy(12, 3, 4, 4, 3, seed=seed, batch_shape=(B,))
    if scale != 1.0:
        eco = eco.replace(buyer_values=np.asarray(eco.buyer_values) * scale,
                          seller_costs=np.asarray(eco.seller_costs) * scale)
    return eco


def test_convexified_compiles_once_per_bucket():
    jw.warmup(_menu(1, 0), batch_sizes=16)
    with _Compiles() as c:
        for B in (1, 3, 11, 16, 6):
            assert jw.convexified_equilibrium(_menu(B, B)).converged.all()
    assert c.count == 0, c.names


@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_convexified_economy_alone_equals_in_batch(scale):
    eco = _menu(9, 3, scale)
    batch = jw.convexified_equilibrium(eco)
    for k in (0, 4, 8):
        one = jw.convexified_equilibrium(eco[k:k + 1])
        np.testing.assert_array_equal(one.prices[0], batch.prices[k])
        np.testing.assert_array_equal(one.status[0], batch.status[k])


# ------------------------------------------------------------------ no global JAX setting
def test_import_changes_no_jax_setting():
    code = "\n".join([
        "import jax",
        "names = ['jax_compilation_cache_dir', 'jax_enable_x64', 'jax_default_device',",
        "         'jax_persistent_cache_min_compile_time_secs', 'jax_platforms']",
        "before = [getattr(jax.config, k) for k in names]",
        "import jaxwalras as jw, jaxwalras.experiments",
        "jw.resolve_devices()",
        "with jw.use_devices(1):",
        "    pass",
        "after = [getattr(jax.config, k) for k in names]",
        "assert before == after, (before, after)",
        "print('ok')"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_default_cache_dir_respects_xdg(monkeypatch, tmp_path):
    from jaxwalras.experiments.cache import default_cache_dir, resolve_cache_dir
    if sys.platform in ("win32", "darwin"):
        pytest.skip("XDG_CACHE_HOME is the Linux convention")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("JAXWALRAS_CACHE_DIR", raising=False)
    assert default_cache_dir() == str(tmp_path / "jaxwalras" / "jax-compilation-cache")
    assert resolve_cache_dir() == default_cache_dir()
    monkeypatch.setenv("JAXWALRAS_CACHE_DIR", "off")
    assert resolve_cache_dir() is None
    assert resolve_cache_dir(str(tmp_path / "x")) == str(tmp_path / "x")
