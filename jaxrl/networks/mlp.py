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


def flatten_obs(obs, obs_ndim: int):
    """[..., *obs_shape] -> [..., prod(obs_shape)] float32, for ``obs_ndim = len(obs_shape)``."""
    return obs.reshape(obs.shape[: obs.ndim - obs_ndim] + (-1,)).astype(jnp.float32)


class ActorCritic(nn.Module):
    """Actor and critic on a shared input.

    ``__call__(obs[..., *obs_shape]) -> (logits_or_mean [..., A], value [...], log_std [A] | None)``.
    For a discrete policy the first output holds logits; for a continuous one the Gaussian mean,
    and ``log_std`` is a state-independent parameter.

    ``torso="mlp"``: separate actor and critic MLPs on the flattened observation (``obs_ndim`` is
    ``len(obs_shape)``). ``torso="nature_cnn"``: one shared Nature CNN (uint8 frames scaled inside)
    feeding both heads, as in the Atari PPO reference setups.

    ``heads``: ``"both"``, or ``"policy"`` / ``"value"`` to compute only one side (the other output
    is ``None``). The parameter names are the same for every choice, so a one-sided module
    applies to the full network's parameters (PPO: V(s') without the actor, greedy evaluation
    without the critic).
    """

    action_dim: int
    continuous: bool = False
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1
    torso: str = "mlp"
    heads: str = "both"

    @nn.compact
    def __call__(self, obs):
        policy, value = self.heads in ("both", "policy"), self.heads in ("both", "value")
        # Explicit names (flax's automatic ones for heads="both") keep every subset compatible.
        if self.torso == "nature_cnn":
            from jaxrl.networks.q_networks import NatureCNN

            x = NatureCNN(name="NatureCNN_0")(obs)
            pi, v = x, x
        else:
            x = flatten_obs(obs, self.obs_ndim)
            pi = MLP(self.hidden, self.activation, name="MLP_0")(x) if policy else None
            v = MLP(self.hidden, self.activation, name="MLP_1")(x) if value else None
        pi = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01), name="Dense_0")(pi) if policy else None
        v = nn.Dense(1, kernel_init=orthogonal(1.0), name="Dense_1")(v)[..., 0] if value else None
        log_std = None
        if self.continuous and policy:
            log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return pi, v, log_std
