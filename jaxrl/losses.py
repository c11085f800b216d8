"""Policy and value losses as standalone batched functions.

Shapes: ``B`` is any batch shape; ``A`` the number of actions or the action dimension.
Each function checks its arguments' shapes with chex at trace time. This module imports only
jax, numpy and chex.

Policy distributions now live in :mod:`jaxrl.networks.distributions`.
"""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def ppo_clip_loss(logp, old_logp, advantages, clip_eps):
    """PPO clipped surrogate (arXiv:1707.06347, eq. 7), to minimise.

    logp, old_logp, advantages: [B]; clip_eps: scalar. Returns (loss scalar, ratio [B]).
    The loss is ``rlax.clipped_surrogate_pg_loss(ratio, advantages, clip_eps)``.
    """
    chex.assert_equal_shape([logp, old_logp, advantages])
    chex.assert_type([logp, old_logp, advantages], float)
    ratio = jnp.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return -jnp.minimum(unclipped, clipped).mean(), ratio


def clipped_value_loss(values, old_values, targets, clip_eps):
    """PPO value loss with the value change clipped to ``clip_eps`` (as in OpenAI baselines).

    values, old_values, targets: [B] -> scalar ``0.5 * mean(max(sq, sq_clipped))``.
    """
    chex.assert_equal_shape([values, old_values, targets])
    clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * jnp.maximum((values - targets) ** 2, (clipped - targets) ** 2).mean()


def policy_gradient_loss(logp, advantages):
    """REINFORCE / A2C policy-gradient loss ``-mean(logp * stop_gradient(adv))``. [B], [B] -> scalar."""
    chex.assert_equal_shape([logp, advantages])
    return -(logp * jax.lax.stop_gradient(advantages)).mean()


# ----------------------------------------------------------------------------- value-based losses


def huber(x, delta: float = 1.0):
    """Huber function: ``0.5 x^2`` for ``|x| <= delta``, linear beyond (as ``rlax.huber_loss``). Elementwise."""
    ax = jnp.abs(x)
    # a select, not min/max arithmetic: on XLA:CPU it fuses into one cheap elementwise pass
    return jnp.where(ax <= delta, 0.5 * x * x, delta * (ax - 0.5 * delta))


def td_loss(td_error, weights=None, kind: str = "huber", delta: float = 1.0):
    """Mean TD loss, importance-weighted for prioritized replay (Schaul et al. 2016, arXiv:1511.05952).

    Args:
      td_error: [B] ``target - Q(s, a)``.
      weights: optional [B] importance-sampling weights (and masks: 0 drops a sample).
      kind: ``"huber"`` (Mnih et al. 2015 clip the error gradient to [-1, 1]) or ``"mse"`` (``0.5 x^2``).
    Returns:
      scalar ``mean(weights * l(td_error))``.
    """
    if weights is not None:
        chex.assert_equal_shape([td_error, weights])
    per = huber(td_error, delta) if kind == "huber" else 0.5 * td_error * td_error
    if weights is not None:
        per = per * weights
    return per.mean()


def categorical_cross_entropy(logits, target_probs):
    """Cross-entropy ``-sum_i p_i log softmax(logits)_i`` of a C51 prediction. [B, K], [B, K] -> [B]."""
    chex.assert_equal_shape([logits, target_probs])
    return -(jax.lax.stop_gradient(target_probs) * jax.nn.log_softmax(logits, axis=-1)).sum(-1)
