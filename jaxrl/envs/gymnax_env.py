"""gymnax backend: pure, vmapped step and reset with auto-reset and episode statistics.

:func:`wrap_gymnax` turns any gymnax-style environment (gymnax's own, or a user's, see
:mod:`jaxrl.envs.custom`) into a batched :class:`~jaxrl.envs.core.Env`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.config import ConfigError
from jaxrl.envs.core import Box, Discrete, Env, EnvSpec, EpisodeStats, TimeStep
from jaxrl.envs.registry import Backend


class GymnaxState(NamedTuple):
    inner: Any  # gymnax env state, batched over envs
    stats: EpisodeStats


def _space(space, env_id: str, what: str) -> Discrete | Box:
    """A gymnax (or jaxrl) Discrete/Box space as jaxrl's; anything else is a one-line error."""
    import gymnax.environments.spaces as sp

    if isinstance(space, Discrete):
        return space
    if isinstance(space, Box):
        return Box(np.asarray(space.low, np.float32), np.asarray(space.high, np.float32), tuple(space.shape))
    if isinstance(space, sp.Discrete):
        return Discrete(int(space.n))
    if isinstance(space, sp.Box):
        shape = tuple(space.shape)
        return Box(np.broadcast_to(np.asarray(space.low, np.float32), shape),
                   np.broadcast_to(np.asarray(space.high, np.float32), shape), shape)
    raise ConfigError("env", f"{env_id}: unsupported {what} space {type(space).__name__}; use "
                             f"gymnax.environments.spaces.Discrete or Box (or jaxrl.envs.Discrete or Box)")


def _obs_layout(space, env_id: str) -> tuple[tuple, np.dtype, int | None]:
    """(shape, dtype, number of states or None) of an observation space."""
    s = _space(space, env_id, "observation")
    if isinstance(s, Discrete):
        return tuple(getattr(space, "shape", ())), np.dtype(getattr(space, "dtype", np.int32)), s.n
    return s.shape, np.dtype(getattr(space, "dtype", np.float32)), None


def with_time_limit(params, max_episode_steps: int, env_id: str):
    """``params`` with ``max_steps_in_episode`` replaced (flax struct, dataclass or NamedTuple)."""
    if not hasattr(params, "max_steps_in_episode"):
        raise ConfigError("env", f"{env_id}: max_episode_steps needs env params with a "
                                 f"max_steps_in_episode field; {type(params).__name__} has none")
    n = int(max_episode_steps)
    if hasattr(params, "replace"):
        return params.replace(max_steps_in_episode=n)
    if dataclasses.is_dataclass(params):
        return dataclasses.replace(params, max_steps_in_episode=n)
    return params._replace(max_steps_in_episode=n)


def truncation_fn(genv, params):
    """``is_truncated(state, params)`` of one env: the env's own when it has one, else
    ``state.time >= params.max_steps_in_episode`` when both exist, else never."""
    if hasattr(genv, "is_truncated"):
        return genv.is_truncated

    def by_time(state, p):
        if hasattr(state, "time") and hasattr(p, "max_steps_in_episode"):
            return jnp.asarray(state.time >= p.max_steps_in_episode)
        return jnp.zeros((), bool)

    return by_time


def make_gymnax(name: str, num_envs: int, num_seeds: int = 1, max_episode_steps: int | None = None,
                **env_kwargs) -> Env:
    """gymnax's env ``name``; ``max_episode_steps`` overrides its time limit
    (``params.max_steps_in_episode``), other options go to ``gymnax.make``.  ``num_seeds`` is unused:
    the env is pure and vmaps."""
    import gymnax

    genv, params = gymnax.make(name, **env_kwargs)
    return wrap_gymnax(genv, params, num_envs, f"gymnax:{name}", max_episode_steps=max_episode_steps)


def wrap_gymnax(genv, params, num_envs: int, env_id: str, backend: str = "gymnax",
                max_episode_steps: int | None = None) -> Env:
    """Batch a gymnax-style env: ``num_envs`` copies, auto-reset, episode statistics.

    ``genv`` needs ``reset_env(key, params)``, ``step_env(key, state, action, params)``,
    ``action_space(params)`` and ``observation_space(params)`` (Discrete or Box spaces).
    ``step_env``'s done flag is termination; truncation is ``genv.is_truncated(state, params)``
    (see :func:`truncation_fn` for envs without it), and termination wins when both hold.
    """
    if max_episode_steps is not None:
        params = with_time_limit(params, max_episode_steps, env_id)
    obs_shape, obs_dtype, obs_n = _obs_layout(genv.observation_space(params), env_id)
    spec = EnvSpec(
        env_id=env_id,
        num_envs=num_envs,
        obs_shape=obs_shape,
        obs_dtype=obs_dtype,
        action_space=_space(genv.action_space(params), env_id, "action"),
        max_episode_steps=int(getattr(params, "max_steps_in_episode", 0)) or None,
        backend=backend,
        obs_num_states=obs_n,
    )
    v_reset = jax.vmap(genv.reset_env, in_axes=(0, None))
    v_step = jax.vmap(genv.step_env, in_axes=(0, 0, 0, None))
    v_truncated = jax.vmap(truncation_fn(genv, params), in_axes=(0, None))
    discrete = spec.discrete

    def reset(key):
        obs, inner = v_reset(jax.random.split(key, num_envs), params)
        obs = obs.astype(jnp.float32) if obs.dtype == jnp.float64 else obs
        zf = jnp.zeros((num_envs,), jnp.float32)
        zb = jnp.zeros((num_envs,), bool)
        stats = EpisodeStats.zeros(num_envs)
        ts = TimeStep(obs, zf, zb, zb, obs, zb, stats.last_return, stats.last_length, {})
        return GymnaxState(inner, stats), ts

    def step(state: GymnaxState, action, key):
        """Step all envs; auto-reset the finished ones.

        Equivalent to gymnax's own ``env.step`` (step, then reset where done), restructured for
        speed on small batches, where generating random keys dominates the cost of a step:
        one ``split`` gives every env its step and reset key (gymnax splits once more per env),
        and the reset is skipped when no env finished (a ``lax.cond``; under ``vmap`` it
        becomes a select and both branches run, which is still correct).
        """
        if discrete:
            action = action.astype(jnp.int32)
        keys = jax.random.split(key, 2 * num_envs)
        obs_st, inner_st, reward, terminated, _ = v_step(keys[:num_envs], state.inner, action, params)
        terminated = terminated.astype(bool)
        # truncation may hold at the same step as termination; termination wins.
        truncated = jnp.logical_and(v_truncated(inner_st, params).astype(bool), ~terminated)
        done = terminated | truncated

        def with_reset(_):
            obs_re, inner_re = v_reset(keys[num_envs:], params)
            pick = lambda r, s: jnp.where(done.reshape(done.shape + (1,) * (s.ndim - 1)), r, s)
            return jax.tree_util.tree_map(pick, obs_re, obs_st), jax.tree_util.tree_map(pick, inner_re, inner_st)

        obs, inner = jax.lax.cond(done.any(), with_reset, lambda _: (obs_st, inner_st), None)
        reward = reward.astype(jnp.float32)
        stats = state.stats.update(reward, done)
        ts = TimeStep(obs, reward, terminated, truncated, obs_st, done, stats.last_return, stats.last_length, {})
        return GymnaxState(inner, stats), ts

    return Env(spec, reset, step)


def gymnax_ids() -> list[str]:
    import gymnax

    return list(gymnax.registered_envs)


BACKEND = Backend(name="gymnax", make=make_gymnax, ids=gymnax_ids)
