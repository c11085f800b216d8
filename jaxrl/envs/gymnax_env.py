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
    import gymnax.environments.spaces as sp

    genv, params = gymnax.make(name, **env_kwargs)
    if max_episode_steps is not None:
        params = params.replace(max_steps_in_episode=int(max_episode_steps))
    obs_space = genv.observation_space(params)
    obs_n = int(obs_space.n) if isinstance(obs_space, sp.Discrete) else None
    spec = EnvSpec(
        env_id=f"gymnax:{name}",
        num_envs=num_envs,
        obs_shape=tuple(obs_space.shape),
        obs_dtype=np.dtype(getattr(obs_space, "dtype", np.float32)),
        action_space=_space(genv.action_space(params)),
        max_episode_steps=int(getattr(params, "max_steps_in_episode", 0)) or None,
        backend="gymnax",
        obs_num_states=obs_n,
    )
    v_reset = jax.vmap(genv.reset_env, in_axes=(0, None))
    v_step = jax.vmap(genv.step_env, in_axes=(0, 0, 0, None))
    v_truncated = jax.vmap(genv.is_truncated, in_axes=(0, None))
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
        # gymnax may report truncation at the same step as termination; termination wins.
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
