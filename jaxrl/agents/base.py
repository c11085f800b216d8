"""The contract every agent module follows, and the generic compiled training loop.

An agent module ``jaxrl/agents/<algo>.py`` defines

* ``Config``: a frozen :class:`jaxrl.config.Config` subclass (static fields and traced
  hyperparameters);
* ``make_agent(config, env) -> Agent``: pure ``init``/``update`` functions, optax-style.

and gets ``make_train`` for free from :func:`make_train`.  The CLI, the results folder,
benchmarks and profiling all work from ``Agent``, so adding an algorithm is one file.

Evaluation: give ``Agent(..., act=greedy_act)``; see :class:`Agent` and :mod:`jaxrl.evaluation`.

Checkpoint/resume: the driver saves the whole ``state`` pytree, so everything the agent needs to
continue (params, optimizer state, target params, replay buffer, key, counters) must live in it.
Fields named ``env_state`` and ``obs`` (of a NamedTuple/dataclass state, at any depth) belong to
the environment: on envpool, whose env state cannot be saved, a resumed run replaces them with a
fresh reset (:func:`jaxrl.checkpoint.splice_env`).

Metrics convention: ``update`` returns a flat dict of scalars.  When several updates are
reduced to one logging point, keys ending in ``_sum`` and the key ``episodes`` are summed,
every other key is averaged.  ``episode_return = episode_return_sum / episodes``.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrl.config import Config


class Agent(NamedTuple):
    """Pure functions of one training run (one seed, one hyperparameter setting).

    init(key, hp) -> state                      the whole agent state, a pytree
    update(state, hp) -> (state, metrics)       one iteration: act for ``steps_per_update``
                                                env steps (over all envs) and learn
    """

    config: Config
    init: Callable
    update: Callable
    num_updates: int
    steps_per_update: int
    # Optional custom evaluation: (state, key) -> returns of greedy episodes ([episodes] or a scalar).
    # Prefer ``act``: the driver builds evaluation from it (jaxrl.evaluation.make_evaluate).
    evaluate: Optional[Callable] = None
    # Optional greedy/deterministic policy for evaluation episodes:
    #   act(state, obs[num_envs, *obs_shape]) -> action[num_envs, ...], ready for env.step
    # (argmax of logits or Q-values; the clipped mean of a Gaussian; the mean of a CEM/ES
    # distribution).  It must not use or advance ``state.key``.  With it, ``jaxrl train`` reports
    # ``eval_return`` (``--eval-every``) and ``jaxrl eval`` works; without it there is no eval_return.
    act: Optional[Callable] = None


def is_summed(name: str) -> bool:
    return name.endswith("_sum") or name == "episodes"


def reduce_metrics(stacked: dict) -> dict:
    """Reduce metrics stacked over a leading update axis to one logging point."""
    return {k: (v.sum(0) if is_summed(k) else v.mean(0)) for k, v in stacked.items()}


def run_updates(agent: Agent, state, hp, num: int):
    """``num`` updates as one ``lax.scan``; returns the new state and reduced metrics."""

    def body(s, _):
        return agent.update(s, hp)

    state, stacked = jax.lax.scan(body, state, None, length=num)
    return state, reduce_metrics(stacked)


def make_train(agent: Agent, num_log_points: int = 100):
    """``train(key, hp=None) -> (state, metrics)``: the whole run as one program.

    Metrics come back per logging point (``[num_log_points]`` per key), so device memory is
    bounded by the number of logging points, never by the number of steps.  Updates that do
    not divide evenly are folded into the last point.
    """
    n_log = max(1, min(num_log_points, agent.num_updates))
    per, rest = divmod(agent.num_updates, n_log)

    def train(key, hp=None):
        hp = agent.config.hparams() if hp is None else hp
        state = agent.init(key, hp)
        state, metrics = jax.lax.scan(lambda s, _: run_updates(agent, s, hp, per), state, None, length=n_log)
        if rest:
            state, last = run_updates(agent, state, hp, rest)
            metrics = jax.tree_util.tree_map(lambda m, l: m.at[-1].set(l), metrics, last)
        return state, metrics

    return train


def episode_stats(ts) -> dict:
    """Per-env contributions of finished episodes in one batched timestep (unsummed, shape ``[N]``).

    Accumulating these in a scan carry and summing once at the end gives :func:`episode_metrics`
    of the whole rollout without a reduction and a stacked output per env step.
    """
    d = ts.episode_done.astype(jnp.float32)
    out = {
        "episode_return_sum": ts.episode_return * d,
        "episode_length_sum": ts.episode_length.astype(jnp.float32) * d,
        "episodes": d,
    }
    if "train_episode_done" in ts.info:
        td = ts.info["train_episode_done"].astype(jnp.float32)
        out["train_episode_return_sum"] = ts.info["train_episode_return"] * td
        out["train_episodes_sum"] = td
    return out


def episode_metrics(ts) -> dict:
    """Sum of returns and lengths of episodes that finished in a batch of timesteps (any shape)."""
    return {k: v.sum() for k, v in episode_stats(ts).items()}


def explained_variance(pred, target):
    """1 - Var[target - pred] / Var[target]; 0 when the target has no variance."""
    var = jnp.var(target)
    return jnp.where(var > 0, 1.0 - jnp.var(target - pred) / jnp.maximum(var, 1e-8), 0.0)
