"""Exploration for off-policy agents: uniformly random actions, Gaussian and Ornstein-Uhlenbeck noise.

All of it is a deterministic function of uint32 words that the off-policy core hands ``act``
(:mod:`jaxrl.rng`: one draw per update, sliced per step), so it adds no random draw of its own.

Continuous actions here live in the normalised box ``[-1, 1]^A`` that the actor-critic agents
store in replay; the env receives them mapped onto its own bounds.

Ornstein-Uhlenbeck noise (Uhlenbeck & Ornstein 1930; used for exploration by Lillicrap et al. 2016,
"Continuous control with deep RL", arXiv:1509.02971, and Lapan's *Deep RL Hands-On* ch. 14) is a
per-env state ``x [E, A]``, advanced once per env step with ``dt = 1``:

    x' = x + theta * (mu - x) + sigma * N(0, I)

It reverts to ``mu`` at rate ``theta``; its stationary standard deviation is
``sigma / sqrt(theta * (2 - theta))``. The state belongs to an episode: the off-policy core resets it
to :func:`ou_init` where an episode ends (``reset_where``).
"""
from __future__ import annotations

import jax.numpy as jnp

from jaxrl import rng


def random_actions(spec, bits):
    """Uniformly random actions for ``spec.num_envs`` envs from uint32 ``bits``.

    Discrete: ``[E]`` int32 from ``E`` words. Continuous: ``[E, *shape]`` in the action box from
    ``E * prod(shape)`` words.
    """
    E = spec.num_envs
    if spec.discrete:
        return (bits[:E] % spec.action_space.n).astype(jnp.int32)
    shape = (E,) + tuple(spec.action_space.shape)
    u = rng.uniform(bits[:E * spec.action_space.dim]).reshape(shape)
    low, high = jnp.asarray(spec.action_space.low), jnp.asarray(spec.action_space.high)
    return low + u * (high - low)


def random_words(spec) -> int:
    """uint32 words :func:`random_actions` needs."""
    return spec.num_envs if spec.discrete else spec.num_envs * spec.action_space.dim


def uniform_unit(bits, shape):
    """Uniform actions in ``[-1, 1)`` of ``shape`` from ``prod(shape)`` uint32 words."""
    n = 1
    for d in shape:
        n *= d
    return 2.0 * rng.uniform(bits[:n]).reshape(shape) - 1.0


def ou_init(num_envs: int, action_dim: int, mu: float = 0.0):
    """The OU state of fresh episodes: ``[num_envs, action_dim]`` at ``mu``."""
    return jnp.full((num_envs, action_dim), mu, jnp.float32)


def ou_step(x, normal, theta, sigma, mu=0.0):
    """One OU step: ``x + theta (mu - x) + sigma normal``. x, normal ``[..., A]`` -> ``[..., A]``."""
    return x + theta * (mu - x) + sigma * normal


def noisy_action(action, noise):
    """A deterministic action plus noise, clipped to the normalised box ``[-1, 1]``. ``[..., A]``."""
    return jnp.clip(action + noise, -1.0, 1.0)
