"""MenuEconomy: validation, pytree behaviour, batching, constructors (Milgrom and Watt, 2022)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxwalras as jw
from jaxwalras.economy import MenuEconomy


def _tiny(batch=()):
    X = np.zeros(batch + (2, 3, 2))
    X[..., 1, :] = [1.0, 0.0]
    X[..., 2, :] = [1.0, 1.0]
    V = np.zeros(batch + (2, 3))
    V[..., 1] = 2.0
    V[..., 2] = 3.0
    Y = np.zeros(batch + (1, 2, 2))
    Y[..., 1, :] = [2.0, 2.0]
    C = np.zeros(batch + (1, 2))
    C[..., 1] = 1.0
    return X, V, Y, C


def test_basic_shapes_and_properties():
    eco = MenuEconomy(*_tiny())
    assert eco.batch_shape == ()
    assert (eco.n_buyers, eco.n_sellers, eco.n_goods) == (2, 1, 2)
    assert (eco.n_buyer_options, eco.n_seller_options) == (3, 2)
    assert eco.buyer_mask.all() and eco.seller_mask.all()
    b = MenuEconomy(*_tiny((4, 3)))
    assert b.batch_shape == (4, 3)
    assert b[1].batch_shape == (3,)
    assert b[1, 2].batch_shape == ()
    assert b.take(slice(0, 2)).batch_shape == (2, 3)
    np.testing.assert_array_equal(b[2, 1].buyer_values, eco.buyer_values)
    with pytest.raises(IndexError):
        eco[0]
    with pytest.raises(IndexError):
        b[0, 0, 0]


def test_broadcast_of_batch_axes():
    X, V, Y, C = _tiny()
    Xb = np.broadcast_to(X, (5,) + X.shape)
    eco = MenuEconomy(Xb, V, Y, C)  # one seller side shared by 5 buyer sides
    assert eco.batch_shape == (5,)
    assert eco.seller_costs.shape == (5, 1, 2)
    with pytest.raises(ValueError, match="batch"):
        MenuEconomy(np.broadcast_to(X, (5,) + X.shape), V, np.broadcast_to(Y, (4,) + Y.shape), C)


def test_pytree_roundtrip_jit_vmap():
    eco = MenuEconomy(*_tiny((3,)))
    leaves, tree = jax.tree_util.tree_flatten(eco)
    assert len(leaves) == 6
    eco2 = jax.tree_util.tree_unflatten(tree, leaves)
    assert isinstance(eco2, MenuEconomy)

    @jax.jit
    def total_value(e):
        return jnp.sum(jnp.where(e.buyer_mask, e.buyer_values, 0.0))

    assert float(total_value(eco)) == pytest.approx(3 * 2 * 5.0)
    per = jax.vmap(lambda e: jnp.sum(e.seller_costs))(eco)
    assert per.shape == (3,)
    doubled = jax.tree_util.tree_map(lambda a: a * 2 if a.dtype != bool else a, eco)
    assert isinstance(doubled, MenuEconomy)


@pytest.mark.parametrize("field,mutate,match", [
    ("X", lambda X, V, Y, C: X.__setitem__((0, 1, 0), -1.0), "non-negative"),
    ("Y", lambda X, V, Y, C: Y.__setitem__((0, 1, 0), -0.5), "non-negative"),
    ("V", lambda X, V, Y, C: V.__setitem__((0, 1), np.nan), "NaN"),
    ("C", lambda X, V, Y, C: C.__setitem__((0, 1), np.inf), "NaN or infinity"),
    ("X0", lambda X, V, Y, C: X.__setitem__((1, 0, 1), 1.0), "option 0"),
    ("V0", lambda X, V, Y, C: V.__setitem__((1, 0), 1.0), "option 0"),
    ("Y0", lambda X, V, Y, C: Y.__setitem__((0, 0, 0), 1.0), "option 0"),
    ("C0", lambda X, V, Y, C: C.__setitem__((0, 0), 0.1), "option 0"),
])
def test_bad_values(field, mutate, match):
    X, V, Y, C = _tiny()
    mutate(X, V, Y, C)
    with pytest.raises(ValueError, match=match):
        MenuEconomy(X, V, Y, C)


def test_bad_shapes_and_types():
    X, V, Y, C = _tiny()
    with pytest.raises(ValueError, match="buyer_values"):
        MenuEconomy(X, V[:, :2], Y, C)
    with pytest.raises(ValueError, match="seller_costs"):
        MenuEconomy(X, V, Y, C[:, :1])
    with pytest.raises(ValueError, match="number of goods"):
        MenuEconomy(X, V, Y[..., :1], C)
    with pytest.raises(ValueError, match="dimensions"):
        MenuEconomy(X[0], V, Y, C)
    with pytest.raises(TypeError, match="buyer_values"):
        MenuEconomy(X, [["a", "b", "c"], ["d", "e", "f"]], Y, C)
    with pytest.raises(ValueError, match="buyer_mask"):
        MenuEconomy(X, V, Y, C, buyer_mask=np.ones((2, 2), bool))
    bad = np.ones((2, 3), bool)
    bad[0, 0] = False
    with pytest.raises(ValueError, match="option 0"):
        MenuEconomy(X, V, Y, C, buyer_mask=bad)
    with pytest.raises(TypeError, match="buyer_mask"):
        MenuEconomy(X, V, Y, C, buyer_mask=np.full((2, 3), 0.5))


def test_masked_entries_may_hold_nan_and_are_zeroed():
    X, V, Y, C = _tiny()
    V[1, 2] = np.nan
    X[1, 2, :] = -3.0
    m = np.ones((2, 3), bool)
    m[1, 2] = False
    eco = MenuEconomy(X, V, Y, C, buyer_mask=m)
    assert eco.buyer_values[1, 2] == 0.0 and np.all(eco.buyer_bundles[1, 2] == 0.0)


def test_stack_pads_with_inert_agents():
    a = jw.examples.milgrom_watt_table1()            # N=10, Ks=7
    b = jw.examples.milgrom_watt_table1(max_units=3)  # Ks=4
    c = MenuEconomy.single_good([[1.0]], [[2.0]], [[1.0], [2.0]], [[0.5], [1.0]])  # N=1,F=2
    s = MenuEconomy.stack([a, b, c])
    assert s.batch_shape == (3,)
    assert (s.n_buyers, s.n_sellers, s.n_seller_options) == (10, 2, 7)
    assert s.seller_mask[1, 0].tolist() == [True] * 4 + [False] * 3
    assert s.seller_mask[0, 1].tolist() == [True] + [False] * 6     # padded inert seller
    assert s.buyer_mask[2, 1:].tolist() == [[True, False]] * 9      # padded inert buyers
    # padding does not change the convexified optimum
    r_s = jw.convexified_equilibrium(s, method="lp")
    for i, e in enumerate([a, b, c]):
        r_i = jw.convexified_equilibrium(e, method="lp")
        assert r_s.primal_value[i] == pytest.approx(float(r_i.primal_value), abs=1e-9)
    with pytest.raises(ValueError, match="goods"):
        MenuEconomy.stack([a, jw.examples.random_menu_economy(n_goods=2)])
    with pytest.raises(TypeError):
        MenuEconomy.stack([a, 3])
    with pytest.raises(ValueError):
        MenuEconomy.stack([])


def test_single_good_constructor_and_table1():
    eco = jw.examples.milgrom_watt_table1()
    assert eco.n_goods == 1 and eco.n_buyers == 10 and eco.n_sellers == 1
    v = np.array([0.97, 0.90, 0.85, 0.79, 0.65, 0.63, 0.42, 0.30, 0.20, 0.18])
    q = np.array([0.28, 0.65, 0.50, 0.50, 0.75, 0.50, 0.45, 0.95, 0.60, 0.30])
    np.testing.assert_allclose(eco.buyer_bundles[:, 1, 0], q)
    np.testing.assert_allclose(eco.buyer_values[:, 1], q * v)
    np.testing.assert_allclose(eco.seller_bundles[0, :, 0], np.arange(7))
    np.testing.assert_allclose(eco.seller_costs[0], 0.5 * np.arange(7))
    # ragged grid through NaN
    e2 = MenuEconomy.single_good([[1.0, 2.0], [1.0, np.nan]], [[1.0, 1.5], [0.7, np.nan]],
                                 [[3.0]], [[2.0]])
    assert e2.buyer_mask.tolist() == [[True, True, True], [True, True, False]]
    with pytest.raises(ValueError, match="buyer_values"):
        MenuEconomy.single_good([[1.0, 2.0]], [[1.0]], [[1.0]], [[1.0]])
    with pytest.raises(ValueError, match="non-negative"):
        MenuEconomy.single_good([[-1.0]], [[1.0]], [[1.0]], [[1.0]])
    with pytest.raises(ValueError, match="NaN"):
        MenuEconomy.single_good([[1.0]], [[np.nan]], [[1.0]], [[1.0]])


def test_pad_and_reshape():
    e = jw.examples.random_menu_economy(5, 2, 3, 3, 2, batch_shape=(6,))
    p = e.pad(n_buyers=8, buyer_options=5)
    assert (p.n_buyers, p.n_buyer_options) == (8, 5)
    assert not p.buyer_mask[:, 5:, 1:].any()
    with pytest.raises(ValueError, match="at least"):
        e.pad(n_buyers=2)
    r = e.reshape_batch((2, 3))
    assert r.batch_shape == (2, 3)
    np.testing.assert_array_equal(r[1, 2].buyer_values, e[5].buyer_values)
