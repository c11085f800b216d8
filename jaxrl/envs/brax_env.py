"""brax backend (optional: ``pip install 'jaxrl[brax]'``): Brax's pure-JAX physics, ``brax:halfcheetah`` ...

Brax environments (``brax.envs.get_environment``) are pure JAX, so like gymnax's they vmap over
envs and seeds, shard over devices, checkpoint (the physics state is arrays) and run on GPU/TPU,
where Brax and rejax report their headline figures. On a CPU they are slow (halfcheetah: about
2,600 steps/s at 256 envs on the default pipeline, 6,000 on ``spring``, after a 20-45 s compile),
so ``envpool:HalfCheetah-v5`` and friends stay the CPU choice for MuJoCo tasks.

Options (``--env-option``): ``backend`` (the physics pipeline: ``generalized``, the default,
``positional``, ``spring`` or ``mjx``), ``max_episode_steps`` (1000, Brax's training episode length)
and any keyword of the environment's constructor. Episodes end when the task terminates (Brax's
``done``: the hopper falls) or, truncated, after ``max_episode_steps``; finished envs are reset with
fresh keys in the same step (``final_obs`` keeps the observation reached), as for gymnax. Actions
are in ``[-1, 1]^A``.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.config import ConfigError
from jaxrl.envs.core import Box, Env, EnvSpec, EpisodeStats, TimeStep
from jaxrl.envs.registry import Backend

EPISODE_STEPS = 1000
PIPELINES = ("generalized", "positional", "spring", "mjx")
INSTALL = "pip install 'jaxrl[brax]'"


class BraxState(NamedTuple):
    inner: Any  # brax.envs.State, batched [num_envs]
    time: jax.Array  # [num_envs] int32 steps into the episode
    stats: EpisodeStats


def _brax_envs():
    """``brax.envs``, or a one-line error naming the extra to install."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # mujoco prints that its optional warp module is missing
            from brax import envs
    except ImportError as e:
        raise ConfigError("env", f"the brax backend needs the brax extra ({e}); install it with {INSTALL} "
                                 f"(brax 0.14.2), or use envpool:HalfCheetah-v5 and friends for MuJoCo on CPU") from e
    return envs


def brax_ids() -> list[str]:
    return sorted(_brax_envs()._envs)


def validate(name: str) -> None:
    if name not in brax_ids():
        import difflib

        close = difflib.get_close_matches(name, brax_ids(), n=3)
        hint = f"did you mean {' or '.join('brax:' + c for c in close)}?" if close else \
            f"brax has {', '.join(brax_ids())}"
        raise ConfigError("env", f"unknown environment 'brax:{name}'; {hint}")


def make_brax(name: str, num_envs: int, num_seeds: int = 1, backend: str = "generalized",
              max_episode_steps: int = EPISODE_STEPS, **kwargs) -> Env:
    """``num_envs`` copies of Brax's ``name`` on the physics pipeline ``backend``; ``num_seeds`` is unused
    (the env is pure and vmaps)."""
    if backend not in PIPELINES:
        raise ConfigError("env_option", f"backend={backend!r}: brax's pipelines are {', '.join(PIPELINES)}")
    limit = int(max_episode_steps)
    if limit < 1:
        raise ConfigError("env_option", f"max_episode_steps must be >= 1; got {limit}")
    with warnings.catch_warnings():  # "Brax System, pipelines and environments are not actively maintained"
        warnings.simplefilter("ignore", UserWarning)
        benv = _brax_envs().get_environment(name, backend=backend, **kwargs)
    A = int(benv.action_size)
    spec = EnvSpec(f"brax:{name}", num_envs, (int(benv.observation_size),), np.dtype(np.float32),
                   Box(-np.ones(A, np.float32), np.ones(A, np.float32), (A,)), limit, "brax")
    v_reset, v_step = jax.vmap(benv.reset), jax.vmap(benv.step)

    def reset(key):
        inner = v_reset(jax.random.split(key, num_envs))
        obs = inner.obs.astype(jnp.float32)
        stats = EpisodeStats.zeros(num_envs)
        zb = jnp.zeros((num_envs,), bool)
        ts = TimeStep(obs, jnp.zeros((num_envs,), jnp.float32), zb, zb, obs, zb, stats.last_return,
                      stats.last_length, {})
        return BraxState(inner, jnp.zeros((num_envs,), jnp.int32), stats), ts

    def step(state: BraxState, action, key):
        inner = v_step(state.inner, action.astype(jnp.float32))
        time = state.time + 1
        terminated = inner.done > 0.5
        truncated = (time >= limit) & ~terminated
        done = terminated | truncated
        final_obs, reward = inner.obs.astype(jnp.float32), inner.reward.astype(jnp.float32)

        def with_reset(_):
            fresh = v_reset(jax.random.split(key, num_envs))
            pick = lambda r, s: jnp.where(done.reshape(done.shape + (1,) * (s.ndim - 1)), r, s)  # noqa: E731
            return jax.tree_util.tree_map(pick, fresh, inner)

        inner = jax.lax.cond(done.any(), with_reset, lambda _: inner, None)
        stats = state.stats.update(reward, done)
        ts = TimeStep(inner.obs.astype(jnp.float32), reward, terminated, truncated, final_obs, done,
                      stats.last_return, stats.last_length, {})
        return BraxState(inner, jnp.where(done, 0, time), stats), ts

    return Env(spec, reset, step)


BACKEND = Backend(name="brax", make=make_brax, ids=brax_ids, validate=validate)
