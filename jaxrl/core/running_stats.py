"""Running mean and variance of observations, kept in the agent state (observation normalisation).

An init/update/apply triple over a small pytree, like an optax transformation:

    stats = init(obs_shape)
    stats = update(stats, obs)          # obs [N, *obs_shape]: a batch of N observations
    x = normalize(stats, obs)           # (obs - mean) / sqrt(var + eps), clipped to +-clip

``update`` merges a batch into the running moments exactly (Chan, Golub & LeVeque 1979, the
parallel form of Welford's algorithm), so the result does not depend on how the stream is split
into batches, up to float32 rounding. The statistics are ordinary arrays of the state: a checkpoint
holds them and a resumed run continues them bit for bit. Before the first update ``normalize`` is
the identity on the mean (0) and variance (1) it starts from.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

CLIP = 10.0  # normalised observations are clipped to +-CLIP (as SB3's VecNormalize)
EPS = 1e-8


class RunningStats(NamedTuple):
    mean: jax.Array  # [*obs_shape] float32
    var: jax.Array  # [*obs_shape] float32, the population variance of what was seen
    count: jax.Array  # float32 scalar: observations seen (exact up to 2^24)


def init(obs_shape) -> RunningStats:
    """Statistics of nothing seen yet: mean 0, variance 1, count 0."""
    return RunningStats(jnp.zeros(obs_shape, jnp.float32), jnp.ones(obs_shape, jnp.float32),
                        jnp.zeros((), jnp.float32))


def update(stats: RunningStats, obs) -> RunningStats:
    """Merge a batch ``obs [N, *obs_shape]`` into ``stats``."""
    x = obs.astype(jnp.float32)
    n = jnp.asarray(x.shape[0], jnp.float32)
    mean_b = x.mean(0)
    var_b = ((x - mean_b) ** 2).mean(0)
    total = stats.count + n
    delta = mean_b - stats.mean
    mean = stats.mean + delta * (n / total)
    m2 = stats.var * stats.count + var_b * n + delta * delta * (stats.count * n / total)
    return RunningStats(mean, m2 / total, total)


def normalize(stats: RunningStats, obs, clip: float = CLIP):
    """``clip((obs - mean) / sqrt(var + eps), -clip, clip)``. obs ``[..., *obs_shape]`` -> float32, same shape."""
    x = (obs.astype(jnp.float32) - stats.mean) * jax.lax.rsqrt(stats.var + EPS)
    return jnp.clip(x, -clip, clip)
