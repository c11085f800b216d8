"""MLP torsos and actor-critic networks for vector observations."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxrl.networks.init import orthogonal

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu}


class MLP(nn.Module):
    """Dense layers with an activation after each; orthogonal(sqrt 2) init, zero bias."""

    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for h in self.hidden:
            x = act(nn.Dense(h, kernel_init=orthogonal(2 ** 0.5))(x))
        return x


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs on flattened observations.

    ``__call__(obs[..., *obs_shape]) -> (logits_or_mean [..., A], value [...], log_std [A] | None)``.
    For a discrete policy the first output holds logits; for a continuous one the Gaussian mean,
    and ``log_std`` is a state-independent parameter.
    """

    action_dim: int
    continuous: bool = False
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        x = obs.reshape(obs.shape[: obs.ndim - 1] + (-1,)) if obs.ndim >= 1 else obs
        x = x.astype(jnp.float32)
        pi = MLP(self.hidden, self.activation)(x)
        pi = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01))(pi)
        v = MLP(self.hidden, self.activation)(x)
        v = nn.Dense(1, kernel_init=orthogonal(1.0))(v)[..., 0]
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,)) if self.continuous else None
        return pi, v, log_std
