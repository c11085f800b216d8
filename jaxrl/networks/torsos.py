"""Torsos shared by the policy and Q networks: observation -> features.

* :class:`MLP`: dense layers for (flattened) vector observations.
* :class:`Conv1D`: 1-D convolutions over ``[channels, length]`` observations (Lapan ch. 8's
  DQNConv1D torso for the trading env's ``layout=conv``).
* :class:`NatureCNN`: the Mnih et al. 2015 torso (conv 32 8x8/4, 64 4x4/2, 64 3x3/1, dense 512,
  ReLU) for 84x84xC frames; integer frames (uint8) are scaled by 1/255 *inside* the network, so
  replay stores them as uint8.

The actor-critic (:mod:`jaxrl.networks.mlp`) and Q networks (:mod:`jaxrl.networks.q_networks`)
both import from here; neither imports the other.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxrl.networks.conv import Conv2D
from jaxrl.networks.init import orthogonal

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu}


class MLP(nn.Module):
    """Dense layers with an activation after each; orthogonal(sqrt 2) init, zero bias. [..., D] -> [..., hidden[-1]]."""

    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for h in self.hidden:
            x = act(nn.Dense(h, kernel_init=orthogonal(2 ** 0.5))(x))
        return x


def is_frame_stack(obs_shape, obs_dtype) -> bool:
    """Whether observations of this shape and dtype are uint8 image stacks ``[H, W, C]`` (Atari frames)."""
    return len(obs_shape) == 3 and np.dtype(obs_dtype) == np.uint8


def pixel_frames(spec) -> bool:
    """:func:`is_frame_stack` of an env spec's observations."""
    return is_frame_stack(spec.obs_shape, spec.obs_dtype)


def check_nature_cnn(spec, instead: str) -> None:
    """A :class:`jaxrl.config.ConfigError` naming ``torso`` unless ``spec`` has images of at least 36x36xC
    (the smallest the Nature CNN's strides take); ``instead``: the torso the message suggests."""
    from jaxrl.config import ConfigError

    if len(spec.obs_shape) != 3 or min(spec.obs_shape[:2]) < 36:
        raise ConfigError("torso", f"nature_cnn needs image observations of at least 36x36xC; {spec.env_id} "
                                   f"gives {tuple(spec.obs_shape)}; use --torso {instead}")


def flatten_obs(obs, obs_ndim: int):
    """[..., *obs_shape] -> [..., prod(obs_shape)] float32, for ``obs_ndim = len(obs_shape)``."""
    return obs.reshape(obs.shape[: obs.ndim - obs_ndim] + (-1,)).astype(jnp.float32)


class NatureCNN(nn.Module):
    """Mnih et al. 2015 torso: [.., 84, 84, C] (uint8 or float) -> [.., 512].

    ``conv_impl``: how the convolutions are lowered (:mod:`jaxrl.networks.conv`): ``"auto"``
    is im2col on CPU, where XLA's convolution is about 10x slower inside a loop, and XLA's own
    convolution on GPU/TPU. The parameters are the same either way.
    """

    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x):
        if jnp.issubdtype(x.dtype, jnp.integer):
            x = x.astype(jnp.float32) * (1.0 / 255.0)
        x = x.astype(jnp.float32)
        batch = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])
        init = orthogonal(2 ** 0.5)
        for i, (c, k, s) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
            x = nn.relu(Conv2D(c, (k, k), (s, s), init, self.conv_impl, name=f"Conv_{i}")(x))
        x = x.reshape(batch + (-1,))
        return nn.relu(nn.Dense(512, kernel_init=init)(x))


class Conv1D(nn.Module):
    """VALID 1-D convolutions with ReLU over channels-first sequences: ``[.., C, L] -> [.., L' * features[-1]]``.

    ``L' = L - sum(kernel - 1)``.  Lapan ch. 8 (DQNConv1D): two 128-channel convolutions of width 5.  Each
    convolution is a :class:`~jaxrl.networks.conv.Conv2D` with a ``1 x kernel`` window (im2col on CPU).
    """

    features: Sequence[int] = (128, 128)
    kernel: int = 5
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x):
        x = x.astype(jnp.float32)
        batch = x.shape[:-2]
        x = jnp.swapaxes(x.reshape((-1,) + x.shape[-2:]), -1, -2)[:, None]  # [N, 1, L, C]
        init = orthogonal(2 ** 0.5)
        for i, f in enumerate(self.features):
            x = nn.relu(Conv2D(f, (1, self.kernel), (1, 1), init, self.conv_impl, name=f"Conv_{i}")(x))
        return x.reshape(batch + (-1,))
