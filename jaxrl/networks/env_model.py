"""Environment model for imagination-augmented agents (I2A, Weber et al. 2017, arXiv:1707.06203).

A conv net from ``(observation, action)`` to the next observation and the reward. The action enters
as one-hot planes broadcast over the frame (``[H, W, A]`` concatenated to the observation's
channels), as in the paper and Lapan's *Deep RL Hands-On* ch. 17. Two kinds of frames:

* ``planes`` (MinAtar: binary planes, :class:`EnvModel`): the frame head gives one logit per cell,
  trained with a Bernoulli (sigmoid cross-entropy) loss; a predicted frame is ``logits > 0``.
* ``pixels`` (envpool Atari: a stack of ``C`` uint8 grayscale frames, newest last,
  :class:`PixelEnvModel`): as in Lapan's ch. 17, the model predicts the *change* of the newest
  frame, ``(next - last) / 255``, with a squared-error loss; the imagined observation drops the
  oldest frame and appends ``clip(last + 255 * change, 0, 255)``.

The reward head is a regression: its own convs per cell, summed over the frame (rewards come from
local events, such as a ball meeting a brick).

Pure functions around the modules, chosen by :func:`frame_kind` (a :class:`FrameKind`):

* :func:`bernoulli_logit_loss`, :func:`model_loss`, :func:`model_metrics` (cell accuracy, frame
  accuracy, reward MAE; for pixels also the mean absolute pixel error and the accuracy of "the
  frame does not change");
* :func:`make_train_model`: the whole model training as one compiled program (a ``lax.scan`` of
  Adam steps on random minibatches of a transition dataset).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxrl.networks.conv import Conv2D
from jaxrl.networks.init import orthogonal
from jaxrl.networks.torsos import is_frame_stack


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


class PixelEnvModel(nn.Module):
    """``(obs [N, H, W, C] uint8 or float on 0..255, action [N]) -> (change [N, H, W, 1], reward [N])``.

    ``change`` predicts ``(next_frame - obs[..., -1]) / 255``. An ``s x s`` convolution with stride ``s``
    (``H, W`` divisible by ``stride``), a residual 3x3 layer, then a dense map per cell to the ``s x s``
    pixels it covers (a stride-``s`` transposed convolution without overlap, as the chapter's deconvolution).
    """

    num_actions: int
    channels: int = 32
    reward_hidden: int = 16
    stride: int = 4

    @nn.compact
    def __call__(self, obs, action):
        n, h, w = obs.shape[:3]
        s = self.stride
        x = jnp.concatenate([obs.astype(jnp.float32) * (1.0 / 255.0),
                             action_planes(action, self.num_actions, (h, w))], -1)
        z = nn.relu(Conv2D(self.channels, (s, s), (s, s), orthogonal(2 ** 0.5), name="Conv_0")(x))
        z = nn.relu(same_conv(self.channels, z, "Conv_1")) + z
        cells = nn.Dense(s * s, kernel_init=orthogonal(1.0), name="Frame")(z)  # [N, H/s, W/s, s*s]
        change = cells.reshape(n, h // s, w // s, s, s).transpose(0, 1, 3, 2, 4).reshape(n, h, w, 1)
        r = nn.relu(same_conv(self.reward_hidden, z, "Reward_0"))
        return change, same_conv(1, r, "Reward_1", kernel=1, scale=0.01).sum((1, 2, 3))


class Transitions(NamedTuple):
    """A dataset of ``M`` transitions: ``obs [M, H, W, C]``, ``action [M]``, ``next_obs``, ``reward [M]``.

    ``next_obs`` is what the model predicts (:attr:`FrameKind.target`): the whole next observation for
    binary planes, the newest frame alone (``[M, H, W, 1]``) for pixels."""

    obs: jax.Array
    action: jax.Array
    next_obs: jax.Array
    reward: jax.Array


def bernoulli_logit_loss(logits, target):
    """Mean sigmoid cross-entropy of binary ``target`` under ``logits`` (same shape), i.e. the
    negative log-likelihood per cell of independent Bernoulli cells; shape ``[]``."""
    return optax.sigmoid_binary_cross_entropy(logits, target.astype(logits.dtype)).mean()


def change_loss(change, obs, next_frame):
    """Mean squared error of the predicted change of the newest frame, ``change [N, H, W, 1]`` against
    ``(next_frame - obs[..., -1:]) / 255`` (frames on 0..255); shape ``[]``."""
    target = (next_frame.astype(jnp.float32) - obs[..., -1:].astype(jnp.float32)) * (1.0 / 255.0)
    return ((change - target) ** 2).mean()


def model_loss(params, apply, batch: Transitions, reward_coef=1.0, kind: str = "planes"):
    """``frame loss + reward_coef * mean (r_hat - r)^2``; returns ``(loss, stats)``. The frame loss is
    :func:`bernoulli_logit_loss` for planes, :func:`change_loss` for pixels."""
    out, reward = apply(params, batch.obs, batch.action)
    frame = (bernoulli_logit_loss(out, batch.next_obs) if kind == "planes"
             else change_loss(out, batch.obs, batch.next_obs))
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


def next_pixels(obs, change):
    """The imagined next observation of a frame stack: ``obs [N, H, W, C]`` (0..255) without its oldest
    frame, then ``clip(obs[..., -1:] + 255 * change, 0, 255)``; float32 ``[N, H, W, C]`` on 0..255."""
    last = obs[..., -1:].astype(jnp.float32)
    return jnp.concatenate([obs[..., 1:].astype(jnp.float32), jnp.clip(last + 255.0 * change, 0.0, 255.0)], -1)


PIXEL_TOLERANCE = 8.0  # on 0..255: a predicted pixel within 8 levels (1/32 of the range) counts as right


def pixel_metrics(change, reward_pred, obs, next_frame, reward) -> dict:
    """Quality of predicted changes ``change [M, H, W, 1]`` of the newest frame of ``obs [M, H, W, C]``
    (0..255) against ``next_frame [M, H, W, 1]``.

    The predicted frame is ``clip(last + 255 * change, 0, 255)``; a pixel is right within
    :data:`PIXEL_TOLERANCE`. ``cell_accuracy``: fraction of pixels right; ``frame_accuracy``: fraction of
    frames with every pixel right; ``pixel_mae``: mean ``|error|`` on 0..255; ``reward_mae``; and
    ``copy_frame_accuracy``, the frame accuracy of predicting no change (the trivial predictor).
    """
    last = obs[..., -1:].astype(jnp.float32)
    truth = next_frame.astype(jnp.float32)
    err = jnp.abs(jnp.clip(last + 255.0 * change, 0.0, 255.0) - truth)
    right = err <= PIXEL_TOLERANCE
    frames = lambda x: x.reshape(x.shape[0], -1).all(-1).mean()  # noqa: E731
    return {"cell_accuracy": right.mean(), "frame_accuracy": frames(right), "pixel_mae": err.mean(),
            "reward_mae": jnp.abs(reward_pred - reward).mean(),
            "copy_frame_accuracy": frames(jnp.abs(last - truth) <= PIXEL_TOLERANCE)}


class FrameKind(NamedTuple):
    """What an environment model predicts for one kind of observation (:func:`frame_kind`)."""

    name: str  # "planes" | "pixels"
    model: type  # EnvModel | PixelEnvModel
    target: Callable  # next_obs [.., H, W, C] -> what Transitions.next_obs holds
    next_obs: Callable  # (obs, model output) -> the imagined next observation, float32
    metrics: Callable  # (out, reward_pred, obs, next_obs, reward) -> dict


PLANES = FrameKind("planes", EnvModel, lambda o: o, lambda obs, logits: (logits > 0).astype(jnp.float32),
                   lambda out, r, obs, nxt, rew: model_metrics(out, r, nxt, rew))
PIXELS = FrameKind("pixels", PixelEnvModel, lambda o: o[..., -1:], next_pixels, pixel_metrics)


def frame_kind(obs_shape, obs_dtype) -> FrameKind:
    """:data:`PIXELS` for uint8 frame stacks ``[H, W, C]`` (envpool Atari), :data:`PLANES` otherwise (MinAtar)."""
    return PIXELS if is_frame_stack(obs_shape, obs_dtype) else PLANES


def evaluate_model(apply, params, data: Transitions, batch_size: int = 1024, kind: FrameKind = PLANES) -> dict:
    """``kind.metrics`` over ``data``, in batches (host loop; floats out)."""
    m = data.obs.shape[0]
    outs, rewards = [], []
    fn = jax.jit(apply)
    for i in range(0, m, batch_size):
        out, r = fn(params, data.obs[i:i + batch_size], data.action[i:i + batch_size])
        outs.append(jnp.where(out > 0, 1.0, -1.0) if kind is PLANES else out)  # planes: only the sign matters
        rewards.append(r)
    metrics = kind.metrics(jnp.concatenate(outs), jnp.concatenate(rewards), data.obs, data.next_obs, data.reward)
    return {k: float(v) for k, v in metrics.items()}


def make_train_model(model, num_updates: int, batch_size: int, reward_coef: float = 1.0):
    """``train(key, data: Transitions, lr) -> (params, losses [num_updates])``: one compiled program.

    Adam on minibatches of ``batch_size`` transitions drawn uniformly with replacement. ``model`` is an
    :class:`EnvModel` or a :class:`PixelEnvModel` (its loss follows).
    """
    kind = "pixels" if isinstance(model, PixelEnvModel) else "planes"
    def train(key, data: Transitions, lr):
        k_init, k_batch = jax.random.split(key)
        params = model.init(k_init, data.obs[:1], data.action[:1])
        tx = optax.adam(lr)
        m = data.obs.shape[0]

        def step(carry, k):
            p, o = carry
            idx = jax.random.randint(k, (batch_size,), 0, m)
            batch = jax.tree_util.tree_map(lambda x: x[idx], data)
            (loss, _), g = jax.value_and_grad(model_loss, has_aux=True)(p, model.apply, batch, reward_coef, kind)
            updates, o = tx.update(g, o, p)
            return (optax.apply_updates(p, updates), o), loss

        (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(k_batch, num_updates))
        return params, losses

    return jax.jit(train)
