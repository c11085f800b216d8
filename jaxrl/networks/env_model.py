"""Environment model for imagination-augmented agents (I2A, Weber et al. 2017, arXiv:1707.06203).

A conv net from ``(observation, action)`` to the next observation and the reward. The action enters
as one-hot planes broadcast over the frame (``[H, W, A]`` concatenated to the observation's
channels), as in the paper and Lapan's *Deep RL Hands-On* ch. 17. Observations are binary planes
(MinAtar): the frame head gives one logit per cell, trained with a Bernoulli (sigmoid
cross-entropy) loss; a predicted frame is ``logits > 0``. The reward head is a regression: its own convs
per cell, summed over the frame (rewards come from local events, such as a ball meeting a brick).

Pure functions around the module:

* :func:`bernoulli_logit_loss`, :func:`model_loss`, :func:`model_metrics` (cell accuracy, frame
  accuracy, reward MAE);
* :func:`make_train_model`: the whole model training as one compiled program (a ``lax.scan`` of
  Adam steps on random minibatches of a transition dataset).
"""
from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxrl.networks.conv import Conv2D
from jaxrl.networks.init import orthogonal


def same_conv(features: int, x, name: str, kernel: int = 3, scale: float = 2 ** 0.5):
    """A stride-1 ``kernel x kernel`` :class:`Conv2D` with zero padding to keep ``H, W`` (``[N, H, W, C]``)."""
    p = kernel // 2
    x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    return Conv2D(features, (kernel, kernel), (1, 1), orthogonal(scale), name=name)(x)


def action_planes(action, num_actions: int, hw):
    """One-hot actions ``[N]`` -> planes ``[N, H, W, A]`` (1 on the action's plane)."""
    one_hot = jax.nn.one_hot(action, num_actions, dtype=jnp.float32)
    return jnp.broadcast_to(one_hot[:, None, None, :], (action.shape[0],) + tuple(hw) + (num_actions,))


class EnvModel(nn.Module):
    """``(obs [N, H, W, C], action [N]) -> (next-frame logits [N, H, W, C], reward [N])``."""

    num_actions: int
    channels: int = 32
    reward_hidden: int = 16

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([obs.astype(jnp.float32), action_planes(action, self.num_actions, obs.shape[1:3])], -1)
        h = nn.relu(same_conv(self.channels, x, "Conv_0"))
        h = nn.relu(same_conv(self.channels, h, "Conv_1")) + h
        logits = same_conv(obs.shape[-1], h, "Frame", kernel=1)
        r = nn.relu(same_conv(self.reward_hidden, x, "Reward_0"))
        r = nn.relu(same_conv(self.reward_hidden, r, "Reward_1"))
        return logits, same_conv(1, r, "Reward_2", kernel=1, scale=0.01).sum((1, 2, 3))


class Transitions(NamedTuple):
    """A dataset of ``M`` transitions: ``obs [M, H, W, C]``, ``action [M]``, ``next_obs``, ``reward [M]``."""

    obs: jax.Array
    action: jax.Array
    next_obs: jax.Array
    reward: jax.Array


def bernoulli_logit_loss(logits, target):
    """Mean sigmoid cross-entropy of binary ``target`` under ``logits`` (same shape), i.e. the
    negative log-likelihood per cell of independent Bernoulli cells; shape ``[]``."""
    return optax.sigmoid_binary_cross_entropy(logits, target.astype(logits.dtype)).mean()


def model_loss(params, apply, batch: Transitions, reward_coef=1.0):
    """``bernoulli_logit_loss(frame) + reward_coef * mean (r_hat - r)^2``; returns ``(loss, stats)``."""
    logits, reward = apply(params, batch.obs, batch.action)
    frame = bernoulli_logit_loss(logits, batch.next_obs)
    r_loss = ((reward - batch.reward) ** 2).mean()
    total = frame + reward_coef * r_loss
    return total, {"model_loss": total, "frame_loss": frame, "reward_loss": r_loss}


def model_metrics(logits, reward_pred, next_obs, reward) -> dict:
    """Quality of predictions ``logits [M, H, W, C]``, ``reward_pred [M]`` against the truth.

    ``cell_accuracy``: fraction of cells (all planes) predicted right (``logits > 0`` vs ``next_obs > 0.5``);
    ``frame_accuracy``: fraction of frames with every cell right; ``reward_mae``: mean ``|r_hat - r|``.
    """
    right = (logits > 0) == (next_obs > 0.5)
    return {"cell_accuracy": right.mean(), "frame_accuracy": right.reshape(right.shape[0], -1).all(-1).mean(),
            "reward_mae": jnp.abs(reward_pred - reward).mean()}


def evaluate_model(apply, params, data: Transitions, batch_size: int = 1024) -> dict:
    """:func:`model_metrics` over ``data``, in batches (host loop; floats out)."""
    m = data.obs.shape[0]
    parts = []
    fn = jax.jit(apply)
    for i in range(0, m, batch_size):
        logits, r = fn(params, data.obs[i:i + batch_size], data.action[i:i + batch_size])
        parts.append((logits > 0, r))
    pred = jnp.concatenate([p for p, _ in parts]).astype(jnp.float32) * 2 - 1
    reward = jnp.concatenate([r for _, r in parts])
    return {k: float(v) for k, v in model_metrics(pred, reward, data.next_obs, data.reward).items()}


def make_train_model(model: EnvModel, num_updates: int, batch_size: int, reward_coef: float = 1.0):
    """``train(key, data: Transitions, lr) -> (params, losses [num_updates])``: one compiled program.

    Adam on minibatches of ``batch_size`` transitions drawn uniformly with replacement.
    """
    def train(key, data: Transitions, lr):
        k_init, k_batch = jax.random.split(key)
        params = model.init(k_init, data.obs[:1], data.action[:1])
        tx = optax.adam(lr)
        m = data.obs.shape[0]

        def step(carry, k):
            p, o = carry
            idx = jax.random.randint(k, (batch_size,), 0, m)
            batch = jax.tree_util.tree_map(lambda x: x[idx], data)
            (loss, _), g = jax.value_and_grad(model_loss, has_aux=True)(p, model.apply, batch, reward_coef)
            updates, o = tx.update(g, o, p)
            return (optax.apply_updates(p, updates), o), loss

        (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(k_batch, num_updates))
        return params, losses

    return jax.jit(train)
