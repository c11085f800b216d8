"""Actor and critic networks of the continuous-control agents (DDPG, TD3, SAC, D4PG).

* :class:`DeterministicActor`: obs -> ``tanh`` action in the normalised box ``[-1, 1]^A`` (DDPG, TD3, D4PG).
* :class:`GaussianActor`: obs -> ``(mean, log_std)`` of a tanh-squashed Gaussian (SAC), ``log_std``
  squashed into ``[log_std_min, log_std_max]`` by a scaled tanh (as in CleanRL's SAC).
* :class:`Critic`: ``(obs, action) -> Q [...]``, or ``[..., K]`` logits of a distributional critic
  (D4PG). The action enters at the input (``action_layer=0``: TD3, SAC) or after the first hidden
  layer (``action_layer=1``: Lillicrap et al. 2016 and Lapan ch. 14, "400 -> concat(action) -> 300").
* :func:`twin`: several critics as one network with stacked parameters ``[C, ...]`` (TD3's and
  SAC's two critics), applied with ``jax.vmap``: ``Q [C, ...]``.

Hidden layers are ReLU with flax's default (LeCun normal) kernels; the output layers start small
(uniform in +-3e-3, Lillicrap et al. 2016, section 7), so the first actions sit near the middle of
the box and the first Q values near 0. No LAPACK-based initializer: these inits vmap over seeds.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.networks.torsos import flatten_obs

FINAL_INIT = 3e-3


def small_uniform(scale: float = FINAL_INIT):
    """Kernel initializer: uniform on ``[-scale, scale]``."""
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


def _mlp(x, hidden: Sequence[int], start: int = 0):
    for i, h in enumerate(hidden):
        x = nn.relu(nn.Dense(h, name=f"hidden_{start + i}")(x))
    return x


class DeterministicActor(nn.Module):
    """``obs [..., *obs_shape] -> action [..., A]`` in ``[-1, 1]`` (tanh output)."""

    action_dim: int
    hidden: Sequence[int] = (256, 256)
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        x = _mlp(flatten_obs(obs, self.obs_ndim), self.hidden)
        return jnp.tanh(nn.Dense(self.action_dim, kernel_init=small_uniform(), name="out")(x))


class GaussianActor(nn.Module):
    """``obs -> (mean [..., A], log_std [..., A])`` of the pre-tanh Gaussian; log_std in ``[min, max]``."""

    action_dim: int
    hidden: Sequence[int] = (256, 256)
    obs_ndim: int = 1
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, obs):
        x = _mlp(flatten_obs(obs, self.obs_ndim), self.hidden)
        mean = nn.Dense(self.action_dim, kernel_init=small_uniform(), name="mean")(x)
        raw = nn.Dense(self.action_dim, kernel_init=small_uniform(), name="log_std")(x)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (jnp.tanh(raw) + 1.0)
        return mean, log_std


class Critic(nn.Module):
    """``(obs [..., *obs_shape], action [..., A]) -> Q [...]`` (``num_outputs == 1``) or logits ``[..., K]``."""

    hidden: Sequence[int] = (256, 256)
    action_layer: int = 0  # the action is concatenated to the input of hidden layer `action_layer`
    num_outputs: int = 1
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs, action):
        x = flatten_obs(obs, self.obs_ndim)
        k = min(self.action_layer, len(self.hidden))
        x = _mlp(x, self.hidden[:k])
        x = _mlp(jnp.concatenate([x, action.astype(jnp.float32)], -1), self.hidden[k:], start=k)
        out = nn.Dense(self.num_outputs, kernel_init=small_uniform(), name="out")(x)
        return out[..., 0] if self.num_outputs == 1 else out


def twin(critic: Critic, num: int = 2):
    """``(init, apply)`` of ``num`` independent critics with stacked parameters (leaves ``[num, ...]``).

    init(key, obs, action) -> params;  apply(params, obs, action) -> ``[num, ...]`` (one row per critic).
    """
    def init(key, obs, action):
        return jax.vmap(lambda k: critic.init(k, obs, action))(jax.random.split(key, num))

    def apply(params, obs, action):
        return jax.vmap(lambda p: critic.apply(p, obs, action))(params)

    return init, apply
