"""All local devices (issue 12): the batch axis split over 4 (forced host) CPU devices gives
results identical to one device. Runs in a subprocess, since the device count is fixed when
JAX starts."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import jaxwalras as jw

_SCRIPT = textwrap.dedent("""
    import numpy as np, jax
    import jaxwalras as jw
    from jaxwalras.devices import put_batch
    assert len(jax.local_devices()) == 4, jax.local_devices()
    x = put_batch(np.zeros((8, 3)), jw.resolve_devices())
    assert len(x.sharding.device_set) == 4 and x.addressable_shards[0].data.shape == (2, 3)

    rng = np.random.default_rng(3)
    B, n, m = 37, 7, 4
    mkt = jw.MultiUnitMarket(rng.integers(0, 500, (B, n, m)), rng.integers(1, 4, (B, n)),
                             rng.integers(1, 6, (B, m)))
    one = jw.buyer_optimal_equilibrium(mkt, devices=1)
    for devs in (None, [1, 3]):
        many = jw.buyer_optimal_equilibrium(mkt, devices=devs)
        for f in ("prices", "allocation", "status", "iterations"):
            assert np.array_equal(getattr(one, f), getattr(many, f)), (devs, f)
    pb1 = jw.preferred_bundles(mkt, one.prices, devices=1)
    pb4 = jw.preferred_bundles(mkt, one.prices)
    assert all(np.array_equal(a, b) for a, b in zip(pb1, pb4))

    cm = jw.cats.arbitrary(4, 5, 0, n_markets=21)
    o1 = jw.optimal_allocation(cm, devices=1)
    o4 = jw.optimal_allocation(cm, devices=4)
    assert np.array_equal(o1.allocation, o4.allocation) and np.array_equal(o1.welfare, o4.welfare)
    prices = np.random.default_rng(0).uniform(0, 50, (21, 5))
    with jw.use_devices(1):
        q1 = jw.item_demand(cm, prices)
    q4 = jw.item_demand(cm, prices)
    assert np.array_equal(q1.demand, q4.demand) and np.array_equal(q1.utility, q4.utility)

    eco = jw.examples.random_menu_economy(10, 3, 3, 3, 2, seed=1, batch_shape=(19,))
    with jw.use_devices(1):
        c1 = jw.convexified_equilibrium(eco)
    with jw.use_devices(4):
        c4 = jw.convexified_equilibrium(eco)
    assert np.array_equal(c1.prices, c4.prices) and np.array_equal(c1.status, c4.status)
    print("ok")
""")


def test_four_host_devices_give_identical_results():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         env=env, timeout=900)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), \
        out.stdout[-2000:] + out.stderr[-4000:]


def test_resolve_devices_forms():
    local = tuple(jax.local_devices())
    assert jw.resolve_devices() == local
    assert jw.resolve_devices(1) == local[:1]
    assert jw.resolve_devices("cpu") == tuple(jax.local_devices(backend="cpu"))
    assert jw.resolve_devices(local[0]) == local[:1]
    assert jw.resolve_devices([local[0].id]) == local[:1]
    with jw.use_devices(1) as devs:
        assert jw.resolve_devices() == devs == local[:1]
    assert jw.resolve_devices() == local
    with pytest.raises(ValueError, match="lists a device twice"):
        jw.resolve_devices([local[0], local[0]])
    with pytest.raises(TypeError, match=r"devices\[0\]: expected a jax.Device"):
        jw.resolve_devices(["cpu"])
    with pytest.raises(TypeError, match="devices: expected None"):
        jw.resolve_devices(True)


def test_empty_batches_are_refused():
    mkt = jw.MultiUnitMarket(np.zeros((0, 2, 2), int), np.zeros((0, 2), int),
                             np.zeros((0, 2), int))
    with pytest.raises(ValueError, match="market: empty batch"):
        jw.preferred_bundles(mkt, np.zeros(2, int))
    with pytest.raises(ValueError, match="example: empty batch"):
        jw.warmup(mkt)
    with pytest.raises(ValueError, match="batch_sizes"):
        jw.warmup(jw.MultiUnitMarket([[1]], [1], [1]), batch_sizes=[0])
