"""The optimisation loop shared by the mechanism tuners (:mod:`jaxwalras.tuning`,
:mod:`jaxwalras.tuning_reserves`): training samples, constraint handling, and an optax
loop whose jitted step is compiled once per loss, options and shapes."""
from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .economy import MenuEconomy

#: the feasibility logistic is centred SHIFT temperatures above the threshold: an economy
#: counts (almost) fully only once its markup clears alpha* by a few temperatures, so the
#: smoothed feasibility does not exceed the exact one (conservative), and the shift
#: vanishes with the temperature
_SHIFT = 3.0


def _flat(economy: MenuEconomy) -> MenuEconomy:
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economies: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    if len(economy.batch_shape) != 1:
        raise ValueError(f"economies: need ONE batch axis (a sample of economies), got batch "
                         f"shape {economy.batch_shape}")
    return economy.to_numpy()


def _draw(economies: Any, n: int | None, key: Any, what: str) -> MenuEconomy:
    if isinstance(economies, MenuEconomy):
        return _flat(economies)
    if callable(economies):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{what}: a generator needs the number of economies to draw, got {n!r}")
        return _flat(economies(key, int(n)))
    raise TypeError(f"{what}: expected a MenuEconomy batch or a generator (key, n) -> "
                    f"MenuEconomy, got {type(economies).__name__}")


def _constrained(loss, pf, target, lam_mult, rho, constraint):
    """The loss with the constraint ``pf >= target`` (``None``: unconstrained) handled by
    ``constraint`` (see :func:`tune_markups`)."""
    if target is None:
        return loss
    g = target - pf                     # constraint g <= 0
    if constraint == "lagrangian":      # augmented Lagrangian (inequality form)
        return loss + jnp.where(lam_mult + rho * g >= 0, lam_mult * g + 0.5 * rho * g ** 2,
                                -lam_mult ** 2 / (2 * rho))
    if constraint == "switching":       # objective step if feasible, else constraint step
        return jnp.where(g <= 0, loss, g)
    return loss + 0.5 * rho * jnp.maximum(g, 0.0) ** 2


#: the tuners' optimisers, built once so that the compiled step is reused across calls
#: (the learning rate is a hyperparameter set at every step)
_OPTIMISERS = {"adam": optax.inject_hyperparams(optax.adam)(learning_rate=0.0, b1=0.5),
               "sgd": optax.inject_hyperparams(optax.sgd)(learning_rate=0.0)}


@functools.partial(jax.jit, static_argnames=("loss", "static", "tau_s", "opt", "normalise"))
def _step(raw, state, batch, consts, temp, mult, tau_d, lr, *, loss, static, tau_s, opt,
          normalise):
    """One optimiser step on ``loss``; compiled once per (loss, options, shapes)."""
    (_, (obj, pf)), gr = jax.value_and_grad(loss, has_aux=True)(
        raw, batch, consts, temp, mult, tau_d, tau_s, **dict(static))
    gr = jnp.where(jnp.isfinite(gr), gr, 0.0)          # a failed smoothed solve: no step
    if normalise:
        gr = gr / (jnp.linalg.norm(gr) + 1e-30)
    state = state._replace(hyperparams={**state.hyperparams, "learning_rate": lr})
    upd, state = _OPTIMISERS[opt].update(gr, state, raw)
    return optax.apply_updates(raw, upd), state, obj, pf


def _optimise(loss: Callable, static: dict, consts: dict, arrays: list, size: int, *,
              steps: int, tau: tuple, static_tau: bool, temperature: tuple,
              learning_rate: float, constraint: str, target: float | None,
              dual_learning_rate: float, batch_size: int, key: int):
    """The optax loop shared by the tuners.

    ``loss(raw, batch, consts, temp, mult, tau_dyn, tau_static, **static)`` returns
    ``(loss, (objective, P(feasible)))``; ``batch`` holds the minibatch rows of ``arrays``,
    ``consts`` traced constants, ``static`` hashable options; ``raw`` (``size`` entries)
    starts at 0.  The ``tau`` stages split ``steps`` evenly (``static_tau``: one
    compilation per stage); the temperature is annealed geometrically, the learning rate
    by optax's cosine schedule.  Returns the answer (switching: the mean of the feasible
    iterates of the last quarter, Lan and Zhou's cooperative stochastic approximation;
    else the last iterate) and the trajectory (``raw`` per step, objective, feasibility,
    multiplier, tau, temperature).
    """
    B = arrays[0].shape[0]
    n_stage = len(tau)
    per = [steps // n_stage + (1 if s < steps % n_stage else 0) for s in range(n_stage)]
    lrs = np.asarray(optax.cosine_decay_schedule(learning_rate, steps, alpha=0.05)(
        np.arange(steps)), np.float64)
    switching = constraint == "switching" and target is not None
    # switching: normalised gradient steps (the two gradients have unrelated scales)
    opt = "sgd" if switching else "adam"
    dt = jnp.result_type(float)
    kept = []
    raw = jnp.zeros(size, dt)
    state = _OPTIMISERS[opt].init(raw)
    consts = {k: jnp.asarray(v, dt) for k, v in consts.items()}
    stat = tuple(sorted(static.items()))
    rng = np.random.default_rng(key)
    mult = 0.0
    t0, t1 = (float(t) for t in temperature)
    bs = min(int(batch_size), B)
    traj: dict[str, list[Any]] = {k: [] for k in ("raw", "objective", "feasibility",
                                                  "multiplier", "tau", "temperature")}
    k = 0
    for s, ts in enumerate(tau):
        for _ in range(per[s]):
            temp = t0 * (t1 / t0) ** (k / max(steps - 1, 1))
            idx = np.sort(rng.choice(B, bs, replace=False)) if bs < B else np.arange(B)
            batch = tuple(jnp.asarray(z[idx], dt) if z.dtype != bool else jnp.asarray(z[idx])
                          for z in arrays)
            before = np.asarray(raw, np.float64)
            raw, state, obj, pf = _step(raw, state, batch, consts, temp, mult, float(ts),
                                        float(lrs[k]), loss=loss, static=stat,
                                        tau_s=float(ts) if static_tau else None, opt=opt,
                                        normalise=switching)
            if switching and k >= steps - steps // 4 and target is not None \
                    and float(pf) >= target:
                kept.append(before)
            if target is not None and constraint == "lagrangian":
                mult = max(0.0, mult + float(dual_learning_rate) * (target - float(pf)))
            traj["raw"].append(np.asarray(raw, np.float64))
            traj["objective"].append(float(obj))
            traj["feasibility"].append(float(pf))
            traj["multiplier"].append(mult)
            traj["tau"].append(float(ts))
            traj["temperature"].append(temp)
            k += 1
    last = np.mean(kept, 0) if kept else np.asarray(raw, np.float64)
    return last, traj
