"""Greedy/deterministic evaluation episodes, compiled, for every agent that provides ``Agent.act``.

An agent supplies only its greedy policy::

    act(state, obs[num_envs, *obs_shape]) -> action[num_envs, ...]   (ready for env.step: argmax,
                                                                     or the clipped Gaussian mean)

and :func:`make_evaluate` turns it into ``evaluate(state, key) -> returns[num_episodes]``: reset a
separate evaluation env of ``num_episodes`` copies, step all of them with ``act`` in a
``lax.while_loop`` until every copy has finished its first episode (or ``max_steps`` steps), and
return each episode's undiscounted return.  The training env state is not touched, and the key is
separate from the agent's key, so turning evaluation on or off never changes training.

Evaluation measures the true task: on envpool Atari the evaluation env is made with
``episodic_life=False, reward_clip=False`` (a full game, unclipped score).  An episode still
running after ``max_steps`` counts with the return it has so far.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

DEFAULT_MAX_STEPS = 10_000  # when the env declares no episode limit

EVAL_ENV_OVERRIDES = {"envpool": dict(episodic_life=False, reward_clip=False)}


def make_eval_env(env_id: str, num_episodes: int, batch: int, env_options: dict):
    """The evaluation env: ``num_episodes`` copies (per batch member for envpool), true-task options."""
    from jaxrl import envs
    from jaxrl.envs.envpool_env import _atari_ids

    backend, name = envs.parse_id(env_id)
    opts = dict(env_options)
    if backend == "envpool" and name in _atari_ids():
        opts.update(EVAL_ENV_OVERRIDES["envpool"])
    return envs.make(env_id, num_envs=num_episodes, num_seeds=batch, **opts)


def make_evaluate(env, act: Callable, max_steps: int | None = None) -> Callable:
    """``evaluate(state, key) -> returns [env.spec.num_envs]``: one greedy episode per env copy."""
    limit = int(max_steps or env.spec.max_episode_steps or DEFAULT_MAX_STEPS)
    n = env.spec.num_envs

    def evaluate(state, key):
        k_reset, k_run = jax.random.split(key)
        env_state, ts = env.reset(k_reset)

        def cond(carry):
            t, _, _, active, _, _ = carry
            return (t < limit) & active.any()

        def body(carry):
            t, env_state, obs, active, ret, key = carry
            key, k_step = jax.random.split(key)
            env_state, ts = env.step(env_state, act(state, obs), k_step)
            ret = ret + jnp.where(active, ts.reward, 0.0)
            return t + 1, env_state, ts.obs, active & ~ts.done, ret, key

        carry = (jnp.zeros((), jnp.int32), env_state, ts.obs, jnp.ones((n,), bool), jnp.zeros((n,), jnp.float32),
                 k_run)
        return jax.lax.while_loop(cond, body, carry)[4]

    return evaluate
