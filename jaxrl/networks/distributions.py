"""Policy distributions as pure functions, and :class:`PolicyHead`, the one interface agents sample with.

Shapes: ``...`` is any batch shape, ``A`` the number of actions (categorical) or the action
vector's size (Gaussians). A policy network outputs a ``dist``: ``logits [..., A]`` for a
categorical, a ``(mean [..., A], log_std [A] or [..., A])`` tuple for the Gaussians (``log_std``
state-independent ``[A]`` or state-dependent ``[..., A]``).

Sampling from presampled noise: ``PolicyHead.sample(dist, noise)`` is a deterministic function of
``noise`` (Gumbel for a categorical, standard normal otherwise), so a rollout can draw all of its
noise in one call before the loop; on CPU one large draw costs far less than one per env step.

Imports only jax, numpy and chex (``tests/test_losses.py`` checks it).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

LOG_2PI = 1.8378770664093453
LOG_2 = 0.6931471805599453
TANH_CLIP_EPS = 1e-6  # tanh_gaussian_log_prob clips actions to +-(1 - eps) before atanh

# ----------------------------------------------------------------------------- categorical


def categorical_log_prob(logits, actions):
    """log pi(a). logits [..., A], actions [...] int -> [...]."""
    chex.assert_rank(logits, jnp.ndim(actions) + 1)
    chex.assert_equal_shape_prefix([logits, actions], jnp.ndim(actions))
    logp = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(logp, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits):
    """Entropy ``-sum_a p_a log p_a``. logits [..., A] -> [...]."""
    logp = jax.nn.log_softmax(logits)
    return -(jnp.exp(logp) * logp).sum(-1)


def categorical_sample(key, logits):
    """One draw per row. logits [..., A] -> int32 [...]."""
    return jax.random.categorical(key, logits)


def categorical_mode(logits):
    """Greedy action ``argmax_a logits``. [..., A] -> int32 [...]."""
    return jnp.argmax(logits, axis=-1)


def _gumbel_max(logits, gumbel):
    """Gumbel-max trick (e.g. Maddison et al. 2014, arXiv:1411.0030): ``argmax(logits + g)``, g iid
    Gumbel(0, 1), has the law of ``jax.random.categorical(logits)``. [..., A], [..., A] -> int32 [...]."""
    return jnp.argmax(logits + gumbel, axis=-1)


# ----------------------------------------------------------------------------- diagonal Gaussian


def gaussian_log_prob(mean, log_std, actions):
    """Diagonal Gaussian log-density. mean [..., A], log_std [A] or [..., A], actions [..., A] -> [...]."""
    chex.assert_equal_shape([mean, actions])
    chex.assert_equal_shape_suffix([mean, log_std], 1)
    z = (actions - mean) * jnp.exp(-log_std)
    return (-0.5 * z * z - log_std - 0.5 * LOG_2PI).sum(-1)


def gaussian_entropy(log_std, mean=None):
    """Entropy ``sum_i log_std_i + (log 2pi + 1) / 2``. log_std [..., A] -> [...].

    Given ``mean [..., A]`` (for a state-independent ``log_std [A]``) the result is broadcast to
    the batch ``[...]`` of the mean.
    """
    ent = (log_std + 0.5 * (LOG_2PI + 1.0)).sum(-1)
    return ent if mean is None else jnp.broadcast_to(ent, mean.shape[:-1])


def gaussian_sample(key, mean, log_std):
    """``mean + exp(log_std) * eps``, eps ~ N(0, I). mean [..., A], log_std [A] or [..., A] -> [..., A]."""
    return mean + jnp.exp(log_std) * jax.random.normal(key, jnp.shape(mean), jnp.result_type(mean))


def gaussian_mode(mean):
    """Greedy action: the mean. [..., A] -> [..., A]."""
    return mean


# ----------------------------------------------------------------------------- tanh-squashed Gaussian (SAC)
# a = tanh(u), u ~ N(mean, diag(exp(log_std)^2)). Change of variables (Haarnoja et al. 2018,
# "Soft Actor-Critic", arXiv:1801.01290, appendix C): log p(a) = log N(u) - sum_i log(1 - tanh(u_i)^2),
# with log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), which neither under- nor overflows.


def _tanh_log_det(u):
    """``sum_i log(1 - tanh(u_i)^2)``, computed stably. [..., A] -> [...]."""
    return (2.0 * (LOG_2 - u - jax.nn.softplus(-2.0 * u))).sum(-1)


def tanh_gaussian_sample_and_log_prob(dist, noise):
    """Squashed action and its log-density from standard normal noise, without atanh.

    dist: ``(mean [..., A], log_std [A] or [..., A])``; noise: [..., A] ~ N(0, I).
    Returns ``(action [..., A] in (-1, 1), log_prob [...])``. The density is that of
    ``u = mean + std * noise``; in float32 ``tanh(u)`` rounds to +-1 for ``|u| > ~9``, and the
    returned log_prob is still the exact one of ``u``. Differentiable in ``dist`` (reparameterised).
    """
    mean, log_std = dist
    chex.assert_equal_shape([mean, noise])
    u = mean + jnp.exp(log_std) * noise
    gauss = (-0.5 * noise * noise - log_std - 0.5 * LOG_2PI).sum(-1)
    return jnp.tanh(u), gauss - _tanh_log_det(u)


def tanh_gaussian_sample(key, mean, log_std):
    """Draw ``(action [..., A] in (-1, 1), log_prob [...])``. mean [..., A], log_std [A] or [..., A]."""
    noise = jax.random.normal(key, jnp.shape(mean), jnp.result_type(mean))
    return tanh_gaussian_sample_and_log_prob((mean, log_std), noise)


def tanh_gaussian_log_prob(mean, log_std, action):
    """log-density of a given squashed action. mean [..., A], log_std [A] or [..., A], action [..., A] -> [...].

    ``action`` is clipped to ``+-(1 - TANH_CLIP_EPS)`` before ``atanh`` (``|u| <= ~7.25``), so an
    action of exactly +-1 gives a finite (very small or large) value instead of inf/nan; near the
    edges, prefer the log_prob returned with the sample.
    """
    a = jnp.clip(action, -1.0 + TANH_CLIP_EPS, 1.0 - TANH_CLIP_EPS)
    u = jnp.arctanh(a)
    return gaussian_log_prob(mean, log_std, u) - _tanh_log_det(u)


def tanh_gaussian_mode(mean):
    """Greedy action ``tanh(mean)`` (the squashed law's median per coordinate). [..., A] -> [..., A]."""
    return jnp.tanh(mean)


def tanh_gaussian_entropy_estimate(key, mean, log_std, num_samples: int):
    """Monte-Carlo entropy ``E[-log p(a)]`` over ``num_samples`` draws. mean [..., A], log_std -> [...].

    There is no closed form. SAC itself never needs this: its losses use the sampled ``-log p``
    of each drawn action (Haarnoja et al. 2018, eq. 11-12); this is for logging and tests.
    """
    noise = jax.random.normal(key, (num_samples,) + jnp.shape(mean), jnp.result_type(mean))
    _, logp = tanh_gaussian_sample_and_log_prob((jnp.broadcast_to(mean, noise.shape), log_std), noise)
    return -logp.mean(0)


# ----------------------------------------------------------------------------- KL divergences (TRPO, ACKTR)


def categorical_kl(p_logits, q_logits):
    """``KL(p || q) = sum_a p_a (log p_a - log q_a)``. logits [..., A], [..., A] -> [...]."""
    logp, logq = jax.nn.log_softmax(p_logits), jax.nn.log_softmax(q_logits)
    return (jnp.exp(logp) * (logp - logq)).sum(-1)


def gaussian_kl(p, q):
    """``KL(p || q)`` of diagonal Gaussians, summed over the ``A`` coordinates.

    p, q: ``(mean [..., A], log_std [A] or [..., A])`` -> [...]. Per coordinate
    ``log s_q - log s_p + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2``.
    """
    (mp, lp), (mq, lq) = p, q
    per = lq - lp + (jnp.exp(2.0 * lp) + (mp - mq) ** 2) * 0.5 * jnp.exp(-2.0 * lq) - 0.5
    return jnp.broadcast_to(per, jnp.broadcast_shapes(jnp.shape(per), jnp.shape(mp))).sum(-1)


def kl_divergence(kind: str, p, q):
    """``KL(p || q)`` of two ``dist``s of a head ``kind`` -> [...]. A tanh-Gaussian's KL is its
    Gaussian's: KL is invariant under the (invertible) squashing."""
    return categorical_kl(p, q) if kind == "categorical" else gaussian_kl(p, q)


# ----------------------------------------------------------------------------- policy heads

KINDS = ("categorical", "gaussian", "tanh_gaussian")


class PolicyHead(NamedTuple):
    """A policy's distribution functions for one action space. ``dist``: see the module docstring.

    kind: ``"categorical" | "gaussian" | "tanh_gaussian"``; action_dim: A.
    noise(key, prefix) -> float32 [*prefix, A]: Gumbel (categorical) or N(0, 1) noise.
    sample(dist, noise) -> action [...] int32 (Gumbel-max) or [..., A]; deterministic in noise.
    sample_and_log_prob(dist, noise) -> (action, log_prob [...]): for tanh_gaussian computed from
      the pre-squash noise (no atanh); for the others ``log_prob(dist, sample(dist, noise))``.
    log_prob(dist, action) -> [...]. entropy(dist) -> [...]: for tanh_gaussian the entropy of the
      Gaussian *before* squashing (SAC does not use it; see tanh_gaussian_entropy_estimate).
    mode(dist) -> greedy action. to_env(action) -> the action the env gets: identity (categorical),
      clip to [low, high] (gaussian), affine map of (-1, 1) onto [low, high] (tanh_gaussian).
    It holds functions, not arrays: close over it in jitted code rather than passing it as an argument.
    """

    kind: str
    action_dim: int
    noise: Callable
    sample: Callable
    sample_and_log_prob: Callable
    log_prob: Callable
    entropy: Callable
    mode: Callable
    to_env: Callable


def _bounds(action_dim, low, high):
    """Flat float32 ``[A]`` bounds, or None when both are None."""
    if low is None and high is None:
        return None
    if low is None or high is None:
        raise ValueError("give both low and high, or neither")
    return tuple(np.broadcast_to(np.asarray(b, np.float32).reshape(-1), (action_dim,)) for b in (low, high))


def _with_log_prob(sample, log_prob):
    """``sample_and_log_prob`` from ``sample`` and ``log_prob``: ``(a, log_prob(dist, a))``."""
    def both(dist, noise):
        a = sample(dist, noise)
        return a, log_prob(dist, a)

    return both


def policy_head(kind: str, action_dim: int, low=None, high=None) -> PolicyHead:
    """The :class:`PolicyHead` of ``kind`` for ``action_dim`` actions, with action bounds ``low, high``.

    ``low, high``: scalars or arrays of ``action_dim`` elements (flattened), for the Gaussians;
    without them ``to_env`` is the identity (tanh_gaussian: actions stay in (-1, 1)). The
    tanh_gaussian map needs finite bounds. Continuous actions are flat ``[..., A]`` vectors.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "categorical":
        def gumbel(key, prefix):
            return jax.random.gumbel(key, tuple(prefix) + (action_dim,), jnp.float32)

        return PolicyHead(kind, action_dim, gumbel, _gumbel_max, _with_log_prob(_gumbel_max, categorical_log_prob),
                          categorical_log_prob, categorical_entropy, categorical_mode, lambda a: a)

    def normal(key, prefix):
        return jax.random.normal(key, tuple(prefix) + (action_dim,), jnp.float32)

    def entropy(dist):
        return gaussian_entropy(dist[1], dist[0])

    bounds = _bounds(action_dim, low, high)
    if kind == "gaussian":
        def sample(dist, eps):
            return dist[0] + jnp.exp(dist[1]) * eps

        def log_prob(dist, a):
            return gaussian_log_prob(dist[0], dist[1], a)

        to_env = (lambda a: a) if bounds is None else (lambda a: jnp.clip(a, bounds[0], bounds[1]))
        return PolicyHead(kind, action_dim, normal, sample, _with_log_prob(sample, log_prob), log_prob, entropy,
                          lambda dist: gaussian_mode(dist[0]), to_env)

    if bounds is None:
        to_env = lambda a: a  # noqa: E731
    elif not (np.isfinite(bounds[0]).all() and np.isfinite(bounds[1]).all()):
        raise ValueError("tanh_gaussian maps (-1, 1) onto [low, high]: the bounds must be finite")
    else:
        center, half = (bounds[1] + bounds[0]) / 2, (bounds[1] - bounds[0]) / 2
        to_env = lambda a: center + half * a  # noqa: E731
    return PolicyHead(kind, action_dim, normal, lambda dist, eps: tanh_gaussian_sample_and_log_prob(dist, eps)[0],
                      tanh_gaussian_sample_and_log_prob, lambda dist, a: tanh_gaussian_log_prob(dist[0], dist[1], a),
                      entropy, lambda dist: tanh_gaussian_mode(dist[0]), to_env)


def head_for(action_space, continuous_kind: str = "gaussian") -> PolicyHead:
    """The head for an env's action space: ``Discrete`` (has ``.n``) -> categorical; ``Box`` (has
    ``.low, .high, .shape``) -> ``continuous_kind`` (``"gaussian"`` or ``"tanh_gaussian"``) with
    ``A = prod(shape)`` and the box's bounds.
    """
    if hasattr(action_space, "n"):
        return policy_head("categorical", int(action_space.n))
    if continuous_kind not in ("gaussian", "tanh_gaussian"):
        raise ValueError(f"continuous_kind must be 'gaussian' or 'tanh_gaussian', got {continuous_kind!r}")
    dim = int(np.prod(action_space.shape))
    return policy_head(continuous_kind, dim, action_space.low, action_space.high)
