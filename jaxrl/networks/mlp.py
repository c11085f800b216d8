"""The actor-critic network (policy logits or Gaussian mean, value, log-std).

The torsos live in :mod:`jaxrl.networks.torsos`; ``ACTIVATIONS``, ``MLP`` and ``flatten_obs`` are
re-exported here for existing imports.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from jaxrl.networks.init import orthogonal
from jaxrl.networks.torsos import ACTIVATIONS, MLP, NatureCNN, flatten_obs

__all__ = ["ACTIVATIONS", "MLP", "flatten_obs", "ActorCritic"]


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
