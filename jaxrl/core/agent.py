"""The agent contract: what an algorithm gives the driver, and the metric conventions.

An algorithm module (``jaxrl/agents/<algo>.py``, or a user's file registered with
:func:`jaxrl.agents.register`) provides :data:`REQUIRED` attributes and may provide :data:`OPTIONAL`
ones; :func:`check_module` checks them when the module is registered, so a module that lacks one
fails with a message naming the missing piece, before anything is compiled.

``make_agent(config, env)`` returns an :class:`Agent`: pure functions over one pytree state, in the
style of optax's ``init``/``update`` pairs. The driver (:mod:`jaxrl.driver`), ``make_train``
(:mod:`jaxrl.core.program`), evaluation, profiling and the benchmarks work from this contract alone.

**State.** Everything a run needs to continue (parameters, optimizer states, target parameters,
replay buffer, env state, PRNG key, counters) lives in the state pytree, so a checkpoint of it is a
bit-exact resume point. Fields named in :data:`ENV_FIELDS` (of a NamedTuple or dataclass state, at
any depth) belong to the environment: a backend whose env state cannot be saved (envpool) gets them
replaced by a fresh reset on resume.

**Metrics.** ``update`` returns a flat dict of float32 scalars. When several updates are reduced to
one logging point, keys ending in ``_sum`` and the key ``episodes`` are summed, every other key is
averaged. Finished episodes are reported as ``episode_return_sum``, ``episode_length_sum`` and
``episodes`` (use :func:`episode_stats`); the driver derives ``episode_return = sum / episodes``.
"""
from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

# attribute -> what it must be; a module without one of these is refused at registration
REQUIRED = {
    "Config": "a frozen dataclass subclassing jaxrl.config.Config (the algorithm's fields)",
    "make_agent": "a function make_agent(config, env) -> jaxrl.core.agent.Agent",
}
OPTIONAL = {
    "DEFAULT_ENV": "the env id used when --env is not given (str; default gymnax:CartPole-v1)",
    "PRESETS": "extra `jaxrl train` names: {name: {field: value}} overrides of Config",
    "prepare": "prepare(spec, log) -> (spec, summary extras): stages run by jaxrl train before the agent's "
               "program (e.g. pretraining a model into the results folder); the returned spec is trained and saved",
}
DEFAULT_ENV = "gymnax:CartPole-v1"
ENV_FIELDS = ("env_state", "obs", "memory")  # state fields that belong to the environment (and its episodes)
SUMMED_SUFFIX = "_sum"  # metric keys summed over a logging point (and "episodes"); others averaged


class Agent(NamedTuple):
    """Pure functions of one training run (one seed, one hyperparameter setting).

    init(key, hp) -> state                     the whole agent state, a pytree
    update(state, hp) -> (state, metrics)      one iteration: ``steps_per_update`` env steps and learning
    act(state, obs, key) -> action             the greedy (deterministic) policy, for evaluation:
                                               obs ``[n, *obs_shape]`` -> action ``[n, ...]`` ready for
                                               ``env.step``; it must not use or advance the state's key
                                               (``key`` is for policies that search, e.g. MCTS)

    ``hp`` is the dict of traced hyperparameters (``config.hparams()``; a sweep vmaps over it).
    A recurrent policy also gives ``act_carry(state, n) -> carry`` (the initial memory of ``n`` envs);
    its ``act`` is then ``act(state, obs, key, carry) -> (action, carry)``.

    Optional, for game players (AlphaZero):

    act_game(state, g, key) -> action [n]      a policy that plans with the env's rules
                                               (:class:`jaxrl.envs.core.Game`) from games ``g [n]``;
                                               the pgx report and ``jaxrl play`` use it
    progress: metric names shown on the progress line (their mean over the batch at logging points)
    """

    config: Any
    init: Callable
    update: Callable
    act: Callable
    num_updates: int
    steps_per_update: int  # env steps per update, per seed (over all of its envs)
    act_carry: Optional[Callable] = None
    act_game: Optional[Callable] = None
    progress: tuple = ()


class ContractError(TypeError):
    """An algorithm module that does not follow the contract (names the missing piece)."""


def check_module(name: str, module: ModuleType) -> None:
    """Raise :class:`ContractError` naming the first missing or malformed attribute of an algorithm module."""
    from jaxrl.config import Config

    where = f"algorithm {name!r} ({getattr(module, '__file__', module.__name__)})"
    for attr, what in REQUIRED.items():
        if not hasattr(module, attr):
            raise ContractError(f"{where} has no {attr}: it needs {what}")
    cfg = module.Config
    if not (isinstance(cfg, type) and issubclass(cfg, Config) and dataclasses.is_dataclass(cfg)):
        raise ContractError(f"{where}: Config must be {REQUIRED['Config']}")
    if "__dataclass_params__" not in vars(cfg):  # a subclass without the decorator: its fields would vanish
        raise ContractError(f"{where}: Config needs the @dataclasses.dataclass(frozen=True) decorator")
    if not callable(module.make_agent):
        raise ContractError(f"{where}: make_agent must be {REQUIRED['make_agent']}")
    if not isinstance(getattr(module, "DEFAULT_ENV", ""), str):
        raise ContractError(f"{where}: DEFAULT_ENV must be a string env id")
    presets = getattr(module, "PRESETS", {})
    fields = cfg.field_specs()
    if not isinstance(presets, dict) or not all(isinstance(v, dict) for v in presets.values()):
        raise ContractError(f"{where}: PRESETS must be {OPTIONAL['PRESETS']}")
    for preset, overrides in presets.items():
        unknown = [k for k in overrides if k not in fields]
        if unknown:
            raise ContractError(f"{where}: preset {preset!r} sets unknown field {unknown[0]!r}")
    budget = [f for f in ("total_steps", "iterations") if f in fields]
    if "total_steps" not in budget:
        raise ContractError(f"{where}: Config needs a total_steps field (env steps per seed), the budget "
                            f"every algorithm accepts")


# ---------------------------------------------------------------------------------- metric helpers
def is_summed(name: str) -> bool:
    return name.endswith(SUMMED_SUFFIX) or name == "episodes"


def episode_stats(ts) -> dict:
    """Per-env contributions of the episodes that finished in one batched timestep, ``[num_envs]`` each.

    Summing them over steps and envs gives the ``episode_*_sum`` / ``episodes`` metrics. envpool Atari
    also reports the clipped per-life training return (``train_episode_return_sum``, ``train_episodes_sum``).
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


def episode_sums(ret, length) -> dict:
    """The episode metrics of whole finished episodes: returns and lengths of any shape."""
    return {
        "episode_return_sum": ret.sum(),
        "episode_length_sum": length.astype(jnp.float32).sum(),
        "episodes": jnp.asarray(ret.size, jnp.float32),
    }


def explained_variance(pred, target, mask=None):
    """``1 - Var[target - pred] / Var[target]`` (0 when the target has no variance); entries where
    ``mask`` is 0 are left out. Any equal shapes -> scalar."""
    m = jnp.ones_like(target) if mask is None else mask.astype(target.dtype)
    n = jnp.maximum(m.sum(), 1.0)

    def var(x):
        mu = (x * m).sum() / n
        return (((x - mu) * m) ** 2).sum() / n

    vt = var(target)
    return jnp.where(vt > 0, 1.0 - var(target - pred) / jnp.maximum(vt, 1e-8), 0.0)


def reset_where(done, carry, initial):
    """Per-env carries (leaves ``[num_envs, ...]``) with the envs where ``done`` replaced by ``initial``.

    Used for every piece of state that belongs to one episode: recurrent memory, Ornstein-Uhlenbeck
    exploration noise. done ``[num_envs]`` bool.
    """
    def pick(c, i):
        d = done.reshape(done.shape + (1,) * (c.ndim - done.ndim))
        return jnp.where(d, jnp.broadcast_to(i, c.shape), c)

    return jax.tree_util.tree_map(pick, carry, initial)


def zeros_like_shape(tree) -> Any:
    """Zeros with the shapes and dtypes of a pytree of arrays or ``ShapeDtypeStruct``s."""
    return jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype), tree)
