"""A policy-value residual tower over board planes (AlphaZero's network, small).

``PolicyValueNet(num_actions, channels, blocks)``: ``obs [..., H, W, C] -> (logits [..., A], value [...])``.

* stem: 3x3 convolution to ``channels``, ReLU;
* ``blocks`` residual blocks: 3x3 conv, ReLU, 3x3 conv, add the input, ReLU (no batch norm: search
  and training see the same function, and there are no batch statistics to keep);
* policy head: 1x1 conv to 2 planes, ReLU, dense to ``num_actions`` logits;
* value head: 1x1 conv to 1 plane, ReLU, dense ``value_hidden``, ReLU, dense 1, ``tanh``.

Convolutions keep the board size (zero padding) and are :class:`jaxrl.networks.conv.Conv2D` (im2col on
CPU, where XLA's own convolution is slow inside loops). Boolean or integer planes become float32 inside.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxrl.networks.conv import Conv2D


def _same(x):
    """Zero-pad H and W by one: a VALID 3x3 convolution of the result keeps the board size."""
    return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


class PolicyValueNet(nn.Module):
    num_actions: int
    channels: int = 32
    blocks: int = 2
    value_hidden: int = 64

    @nn.compact
    def __call__(self, obs):
        batch = obs.shape[:-3]
        x = obs.astype(jnp.float32).reshape((-1,) + obs.shape[-3:])
        x = nn.relu(Conv2D(self.channels, (3, 3))(_same(x)))
        for _ in range(self.blocks):
            y = nn.relu(Conv2D(self.channels, (3, 3))(_same(x)))
            x = nn.relu(x + Conv2D(self.channels, (3, 3))(_same(y)))
        p = nn.relu(Conv2D(2, (1, 1))(x)).reshape(x.shape[0], -1)
        logits = nn.Dense(self.num_actions)(p)
        v = nn.relu(Conv2D(1, (1, 1))(x)).reshape(x.shape[0], -1)
        v = jnp.tanh(nn.Dense(1)(nn.relu(nn.Dense(self.value_hidden)(v))))[:, 0]
        return logits.reshape(batch + (self.num_actions,)), v.reshape(batch)
