"""Returns and advantage estimators, as batched functions over time-major arrays.

Shapes use ``T`` for time and ``N`` for any number of trailing batch dims (envs, seeds).
Unlike rlax, which is unbatched by design, these take the batch directly: a reverse
``lax.scan`` over ``T`` with ``[N]`` vectors in the carry is one fused loop, not a vmap of
``N`` loops. Tests compare them with rlax.

Episode ends follow the jaxrl convention: ``terminated`` stops bootstrapping, ``done``
(terminated or truncated) stops the recursion; ``next_values[t]`` is the value of the
observation the transition at ``t`` reached (``final_obs``), so truncated steps bootstrap.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(rewards, values, next_values, terminated, done, gamma, gae_lambda):
    """Generalized advantage estimation (Schulman et al. 2016, arXiv:1506.02438).

    Args:
      rewards:     [T, N] float, reward of transition t.
      values:      [T, N] float, V(s_t).
      next_values: [T, N] float, V(s'_t) of the state the transition reached (before auto-reset).
      terminated:  [T, N] bool, s'_t is terminal: do not bootstrap.
      done:        [T, N] bool, the episode ended at t (terminated or truncated): cut the trace.
      gamma, gae_lambda: scalars (may be traced).
    Returns:
      advantages [T, N]; value targets are ``advantages + values``.
    """
    not_term = 1.0 - terminated.astype(rewards.dtype)
    not_done = 1.0 - done.astype(rewards.dtype)
    deltas = rewards + gamma * not_term * next_values - values
    decay = gamma * gae_lambda * not_done

    def step(adv_next, xs):
        delta, d = xs
        adv = delta + d * adv_next
        return adv, adv

    _, adv = jax.lax.scan(step, jnp.zeros_like(deltas[0]), (deltas, decay), reverse=True)
    return adv


def discounted_returns(rewards, done, gamma, bootstrap=None):
    """Monte-Carlo reward-to-go, cut at episode ends.

    Args:
      rewards: [T, N]; done: [T, N] bool, the episode ended at t; gamma: scalar.
      bootstrap: optional [N] value added (discounted) after the last step of unfinished episodes.
    Returns:
      G [T, N] with ``G_t = r_t + gamma * (1 - done_t) * G_{t+1}``.
    """
    not_done = 1.0 - done.astype(rewards.dtype)
    init = jnp.zeros_like(rewards[0]) if bootstrap is None else bootstrap

    def step(g_next, xs):
        r, nd = xs
        g = r + gamma * nd * g_next
        return g, g

    _, g = jax.lax.scan(step, init, (rewards, not_done), reverse=True)
    return g
