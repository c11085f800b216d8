"""Q networks for the DQN family: torsos, and heads for every mix of dueling, distributional, noisy.

* Torso: an MLP for vector observations, or the Nature CNN (:mod:`jaxrl.networks.torsos`;
  Mnih et al. 2015) for 84x84xC frames.  Integer frames (uint8) are scaled by 1/255 *inside*
  the network, so replay stores them as uint8.
* Head: ``Q [.., A]`` (``num_atoms == 1``) or C51 logits ``[.., A, K]`` (``num_atoms = K > 1``);
  dueling (Wang et al. 2016, arXiv:1511.06581) adds ``V + A - mean_a A`` (per atom for C51);
  noisy (Fortunato et al. 2018, arXiv:1706.10295) makes the head layers factorized-Gaussian
  :class:`NoisyDense`.  The noise is drawn from the ``"noise"`` RNG stream; without one (e.g.
  greedy evaluation) a noisy layer uses its mean weights.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.networks.init import orthogonal
from jaxrl.networks.torsos import Conv1D, NatureCNN, flatten_obs

__all__ = ["NatureCNN", "NoisyDense", "QNetwork"]  # NatureCNN re-exported from jaxrl.networks.torsos


def _materialize(v):
    """``v`` (a vector), computed once into a buffer of its own.

    A product with the identity is a fusion boundary on every XLA backend (a dot is never
    fused into an elementwise consumer); ``lax.optimization_barrier`` is removed before fusion
    on CPU. The product costs ``len(v)^2`` multiply-adds, a few microseconds here.
    """
    return jnp.dot(v, jnp.eye(v.shape[-1], dtype=v.dtype), precision=jax.lax.Precision.HIGHEST)


class NoisyDense(nn.Module):
    """Dense layer with factorized Gaussian noise on weights and biases (NoisyNet, sigma0 = 0.5).

    ``y = x (mu_w + sigma_w * f(e_in) f(e_out)^T) + mu_b + sigma_b * f(e_out)``,
    ``f(e) = sign(e) sqrt|e|``; computed as two matmuls without forming the noise matrix.
    """

    features: int
    sigma0: float = 0.5

    @nn.compact
    def __call__(self, x):
        p = x.shape[-1]
        bound = 1.0 / jnp.sqrt(p)
        uni = lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -bound, bound)
        const = lambda key, shape: jnp.full(shape, self.sigma0 / jnp.sqrt(p), jnp.float32)
        mu_w = self.param("mu_kernel", uni, (p, self.features))
        mu_b = self.param("mu_bias", uni, (self.features,))
        sigma_w = self.param("sigma_kernel", const, (p, self.features))
        sigma_b = self.param("sigma_bias", const, (self.features,))
        y = x @ mu_w + mu_b
        if not self.has_rng("noise"):
            return y
        e = jax.random.normal(self.make_rng("noise"), (p + self.features,))
        # Materialise the p + features noise values: otherwise XLA:CPU fuses the Threefry and
        # erfinv that make them into the [batch, features] output fusion and recomputes them
        # per output element (Rainbow on MinAtar: two such fusions took 400 us each per step).
        e = _materialize(jnp.sign(e) * jnp.sqrt(jnp.abs(e)))
        e_in, e_out = e[:p], e[p:]
        return y + ((x * e_in) @ sigma_w + sigma_b) * e_out


class QNetwork(nn.Module):
    """``__call__(obs) -> Q [.., A]`` or, when ``num_atoms > 1``, logits ``[.., A, num_atoms]``.

    ``torso``: ``"mlp"`` (flattens the observation; ``hidden`` sizes, ReLU), ``"nature_cnn"``, or
    ``"conv1d"`` (:class:`~jaxrl.networks.torsos.Conv1D` over ``[channels, length]``, then the ``hidden`` layers).
    """

    action_dim: int
    hidden: Sequence[int] = (128, 128)
    torso: str = "mlp"
    dueling: bool = False
    num_atoms: int = 1
    noisy: bool = False
    obs_ndim: int = 1  # len(obs_shape): the MLP torso flattens that many trailing axes
    sigma0: float = 0.5  # noisy layers' initial sigma * sqrt(fan_in)
    noisy_hidden: bool = False  # the last hidden MLP layer is noisy too (Rainbow's noisy 512-unit layer)

    @nn.compact
    def __call__(self, obs):
        if self.torso == "nature_cnn":
            x = NatureCNN()(obs)
        else:
            x = Conv1D()(obs) if self.torso == "conv1d" else flatten_obs(obs, self.obs_ndim)
            for i, h in enumerate(self.hidden):
                if self.noisy and self.noisy_hidden and i == len(self.hidden) - 1:
                    x = nn.relu(NoisyDense(h, self.sigma0)(x))
                else:
                    x = nn.relu(nn.Dense(h, kernel_init=orthogonal(2 ** 0.5))(x))
        dense = (lambda n: NoisyDense(n, self.sigma0)) if self.noisy else (lambda n: nn.Dense(n))
        k, a = self.num_atoms, self.action_dim
        adv = dense(a * k)(x).reshape(x.shape[:-1] + (a, k))
        if self.dueling:
            value = dense(k)(x).reshape(x.shape[:-1] + (1, k))
            adv = value + adv - adv.mean(axis=-2, keepdims=True)
        return adv[..., 0] if k == 1 else adv
