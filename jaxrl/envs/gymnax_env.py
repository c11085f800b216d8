"""gymnax backend: pure, vmapped step and reset with auto-reset and episode statistics."""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.core import Box, Discrete, Env, EnvSpec, EpisodeStats, TimeStep


class GymnaxState(NamedTuple):
    inner: Any  # gymnax env state, batched over envs
    stats: EpisodeStats


def _space(space) -> Discrete | Box:
    import gymnax.environments.spaces as sp

    if isinstance(space, sp.Discrete):
        return Discrete(int(space.n))
    if isinstance(space, sp.Box):
        shape = tuple(space.shape)
        return Box(np.broadcast_to(np.asarray(space.low, np.float32), shape),
                   np.broadcast_to(np.asarray(space.high, np.float32), shape), shape)
    raise TypeError(f"unsupported gymnax space {space!r}")


def make_gymnax(name: str, num_envs: int, max_episode_steps: int | None = None, **env_kwargs) -> Env:
    """``max_episode_steps`` overrides the env's time limit (``params.max_steps_in_episode``)."""
    import gymnax

    genv, params = gymnax.make(name, **env_kwargs)
    if max_episode_steps is not None:
        params = params.replace(max_steps_in_episode=int(max_episode_steps))
    obs_space = genv.observation_space(params)
    spec = EnvSpec(
        env_id=f"gymnax:{name}",
        num_envs=num_envs,
        obs_shape=tuple(obs_space.shape),
        obs_dtype=np.dtype(getattr(obs_space, "dtype", np.float32)),
        action_space=_space(genv.action_space(params)),
        max_episode_steps=int(getattr(params, "max_steps_in_episode", 0)) or None,
        backend="gymnax",
    )
    v_reset = jax.vmap(genv.reset, in_axes=(0, None))
    v_step = jax.vmap(genv.step, in_axes=(0, 0, 0, None))
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
        if discrete:
            action = action.astype(jnp.int32)
        obs, inner, reward, terminated, truncated, info = v_step(
            jax.random.split(key, num_envs), state.inner, action, params)
        # gymnax may report truncation at the same step as termination; termination wins.
        terminated = terminated.astype(bool)
        truncated = jnp.logical_and(truncated.astype(bool), ~terminated)
        done = terminated | truncated
        reward = reward.astype(jnp.float32)
        stats = state.stats.update(reward, done)
        ts = TimeStep(obs, reward, terminated, truncated, info["final_observation"], done,
                      stats.last_return, stats.last_length, {})
        return GymnaxState(inner, stats), ts

    return Env(spec, reset, step)


def gymnax_ids() -> list[str]:
    import gymnax

    return list(gymnax.registered_envs)
