"""One vocabulary across the three market families: result fields, status table, model
methods, deprecated aliases, and an import graph without cycles."""
from __future__ import annotations

import ast
import pathlib

import jax
import numpy as np
import pytest

import jaxwalras as jw

PKG = pathlib.Path(jw.__file__).resolve().parent

SOLVER_RESULTS = [jw.AuctionResult, jw.ConvexifiedResult, jw.RoundingResult, jw.MarkupResult,
                  jw.RationingResult, jw.EfficientAllocation, jw.OptimalAllocationResult,
                  jw.WalrasianResult, jw.ItemPriceAuctionResult, jw.CWEResult,
                  jw.ItemPriceWelfareResult, jw.PriceInfo, jw.MultiUnitPriceInfo,
                  jw.TuningResult, jw.MarkupEvaluation, jw.PostedOutcome]


@pytest.mark.parametrize("cls", SOLVER_RESULTS, ids=lambda c: c.__name__)
def test_every_solver_result_speaks_the_same_vocabulary(cls):
    assert {"converged", "status", "iterations"} <= set(cls._fields)


def test_status_table():
    assert set(jw.STATUS) == {int(s) for s in jw.Status}
    assert jw.Status.OK == 0 and jw.status_message(0).startswith("ok")
    for code in jw.Status:
        assert jw.status_message(code) == jw.STATUS[int(code)]
        assert jw.status_message(np.int64(code)) == jw.STATUS[int(code)]
    with pytest.raises(ValueError, match="unknown status code 99"):
        jw.status_message(99)
    with pytest.raises(TypeError, match="one integer status code"):
        jw.status_message([0, 1])


def test_status_zero_iff_converged_on_real_results():
    mkt = jw.MultiUnitMarket([[4, 4], [5, 3]], demands=[2, 1], supplies=[1, 1])
    eco = jw.examples.milgrom_watt_table1()
    results = [jw.buyer_optimal_equilibrium(mkt), jw.convexified_equilibrium(eco),
               jw.markup_mechanism(eco), jw.rationing_mechanism(eco),
               jw.efficient_allocation(eco), jw.walrasian_equilibrium(jw.examples.shoes()),
               jw.combinatorial_walrasian_equilibrium(jw.examples.shoes()),
               jw.optimal_allocation(jw.examples.shoes())]
    for r in results:
        assert np.array_equal(np.asarray(r.converged), np.asarray(r.status) == 0), type(r)
        assert np.asarray(r.iterations).dtype.kind == "i", type(r)


MODELS = {
    "multiunit": lambda: jw.MultiUnitMarket([[4, 4], [5, 3]], [2, 1], [1, 1]),
    "menu": lambda: jw.examples.milgrom_watt_table1(),
    "setfunction": lambda: jw.examples.shoes(),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_models_share_their_methods(name):
    one = MODELS[name]()
    assert one.batch_shape == () and one.n_buyers >= 1
    batch = type(one).stack([one, one, one])
    assert batch.batch_shape == (3,)
    assert batch.reshape_batch((3, 1)).batch_shape == (3, 1)
    assert batch[1].batch_shape == ()
    host = batch.to_numpy()
    assert type(host) is type(one)
    leaves = jax.tree_util.tree_leaves(host)
    assert leaves and all(isinstance(x, np.ndarray) for x in leaves)


def test_size_names():
    assert MODELS["multiunit"]().n_objects == 2
    eco = MODELS["menu"]()
    assert (eco.n_sellers, eco.n_goods) == (1, 1)
    assert MODELS["setfunction"]().n_items == 2


# ------------------------------------------------------------------ deprecated aliases
def test_deprecated_model_names_warn_and_agree():
    mkt = MODELS["multiunit"]()
    with pytest.warns(FutureWarning, match="host_arrays"):
        old = mkt.numpy()
    assert all(np.array_equal(a, b) for a, b in zip(old, mkt.host_arrays()))
    with pytest.warns(FutureWarning, match="MultiUnitMarket.stack"):
        st = jw.stack_markets([mkt, mkt])
    assert np.array_equal(st.values, jw.MultiUnitMarket.stack([mkt, mkt]).values)
    cm = jw.examples.shoes()
    with pytest.warns(FutureWarning, match="n_buyers"):
        assert cm.n == cm.n_buyers
    with pytest.warns(FutureWarning, match="n_items"):
        assert cm.m == cm.n_items


def test_deprecated_multiunit_options_warn_and_agree():
    mkt = jw.MultiUnitMarket([[3, 4], [2, 1]], [1, 3], [1, 1])
    new = jw.buyer_optimal_equilibrium(mkt, backend="host", flow_solver="networkx")
    with pytest.warns(FutureWarning, match='flow_solver="networkx"'):
        old = jw.buyer_optimal_equilibrium(mkt, backend="networkx")
    assert new.prices.tolist() == old.prices.tolist() == [0, 1]
    with pytest.warns(FutureWarning, match='backend="host"'):
        assert jw.buyer_optimal_equilibrium(mkt, backend="scipy").prices.tolist() == [0, 1]


def test_deprecated_menu_options_warn_and_agree():
    eco = jw.examples.random_menu_economy(8, 2, 3, 3, 2, seed=3)
    ref = jw.convexified_equilibrium(eco)
    with pytest.warns(FutureWarning, match="method"):
        old = jw.convexified_equilibrium(eco, method="device")
    np.testing.assert_allclose(old.primal_value, ref.primal_value, rtol=1e-12)
    with pytest.warns(FutureWarning, match="rtol"):
        jw.convexified_equilibrium(eco, tol=1e-6)
    with pytest.warns(FutureWarning, match="backend"):
        jw.convexified_equilibrium(eco, finish="host")
    mk = jw.markup_mechanism(eco, backend="host")
    with pytest.warns(FutureWarning, match='backend="host"'):
        mk_old = jw.markup_mechanism(eco, method="lp")
    assert float(mk_old.markup) == float(mk.markup)
    with pytest.warns(FutureWarning, match="grid"):
        jw.markup_mechanism(jw.examples.milgrom_watt_table1(), exact_single_good=False,
                            backend="host")
    with pytest.warns(FutureWarning, match='backend="host"'):
        ra = jw.rationing_mechanism(eco, method="lp")
    np.testing.assert_allclose(ra.prices, jw.rationing_mechanism(eco, backend="host").prices)
    t1 = jw.examples.milgrom_watt_table1()
    ce = jw.convexified_equilibrium(t1, markup=0.3, reserve=1.0, method="lp")
    r = jw.shapley_folkman_rounding(t1, ce.prices, 0.3, ce.buyer_weights, ce.seller_weights)
    with pytest.warns(FutureWarning, match="converged"):
        assert bool(r.feasible) == bool(r.converged)
    opt = jw.efficient_allocation(t1)
    with pytest.warns(FutureWarning, match="converged"):
        assert bool(opt.optimal) == bool(opt.converged)


def test_deprecated_combinatorial_options_warn_and_agree():
    cm = jw.examples.shirts(3)
    we = jw.walrasian_equilibrium(cm)
    with pytest.warns(FutureWarning, match="chunk_size"):
        we2 = jw.walrasian_equilibrium(cm, lp_chunk=8)
    assert bool(we2.exists) == bool(we.exists)
    with pytest.warns(FutureWarning, match="exists & converged"):
        assert bool(we.verified) == bool(we.exists & we.converged)
    au = jw.ascending_auction(jw.SetFunctionMarket.unit_demand([[3, 1], [2, 2]]))
    with pytest.warns(FutureWarning, match="iterations"):
        assert int(au.steps) == int(au.iterations)
    with pytest.warns(FutureWarning, match="rounds_per_call"):
        cwe = jw.combinatorial_walrasian_equilibrium(cm, chunk=4)
    assert float(cwe.welfare) == 3.0
    with pytest.warns(FutureWarning, match="atol"):
        assert jw.check_cwe(cm, cwe.bundles, cwe.prices, cwe.holder, tol=1e-6) == []
    with pytest.warns(FutureWarning, match="atol"):
        assert jw.is_gross_substitutes(jw.examples.shoes(), tol=1e-9).tolist() == \
            jw.is_gross_substitutes(jw.examples.shoes()).tolist()


# ------------------------------------------------------------------ module structure
def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mod = ".".join(parts)
        here = parts if is_pkg else parts[:-1]
        deps: set[str] = set()
        for node in ast.parse(path.read_text()).body:      # module-level imports only
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[:len(here) - node.level + 1]
                    name = ".".join(base + ([node.module] if node.module else []))
                    names = [name] if node.module else [f"{name}.{a.name}" for a in node.names]
                else:
                    names = [node.module or ""]
                deps.update(n for n in names if n.startswith("jaxwalras"))
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("jaxwalras"))
        graph[mod] = deps
    return graph


def test_no_import_cycles_between_library_modules():
    graph = _import_graph()
    graph = {m: {d for d in deps if d in graph and d != m and not m.startswith(d + ".")
                 and d != "jaxwalras"}
             for m, deps in graph.items() if m != "jaxwalras"}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in graph.get(m, ()):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [d]))
            if d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_format_and_algorithm_modules_do_not_import_demos_or_cli():
    graph = _import_graph()
    for mod, deps in graph.items():
        if mod in ("jaxwalras.cli", "jaxwalras.demo"):
            continue
        assert not deps & {"jaxwalras.cli", "jaxwalras.demo"}, mod
    # the file format of menu economies needs the model and the formats package only
    assert not {d for d in graph["jaxwalras.economy_json"]
                if d != "jaxwalras.economy" and not d.startswith("jaxwalras.formats")}, \
        graph["jaxwalras.economy_json"]


# ------------------------------------------------------------------ jit / vmap / grad
def test_host_functions_say_so_under_tracing():
    from jaxwalras._host import HOST_FUNCTIONS
    import jax.numpy as jnp
    for name in HOST_FUNCTIONS:
        fn = getattr(jw, name)
        for transform in (jax.jit, jax.vmap, jax.grad):
            with pytest.raises(TypeError, match=f"jaxwalras.{name} runs exact host steps"):
                transform(lambda x: jnp.sum(jnp.asarray(fn(x))))(jnp.ones(2))
    eco = jw.examples.milgrom_watt_table1()
    with pytest.raises(TypeError, match="smoothed_equilibrium"):
        jax.jit(lambda v: jw.convexified_equilibrium(eco.replace(buyer_values=v)).prices)(
            jnp.asarray(eco.buyer_values))


def test_every_public_function_is_classified():
    """Each public function is either a host function (with a clear error under tracing),
    jittable, or a file / vocabulary helper that takes no arrays."""
    import inspect
    from jaxwalras._host import HOST_FUNCTIONS, JITTABLE
    helpers = {"status_message", "stack_markets", "load_economy", "save_economy",
               "read_cats", "write_cats", "load_multiunit_market", "save_multiunit_market",
               "load_setfunction_market", "save_setfunction_market", "result_to_dict",
               "result_to_json", "result_from_json", "save_result", "load_result"}
    for name in jw.__all__:
        obj = getattr(jw, name)
        if inspect.isfunction(obj):
            assert (name in HOST_FUNCTIONS) + (name in JITTABLE) + (name in helpers) == 1, name
            if name in HOST_FUNCTIONS:
                assert getattr(obj, "__jaxwalras_host__", False), name
    assert "jittable" not in set(HOST_FUNCTIONS) & set(JITTABLE)
