"""Random words for hot training loops: draw once per update, slice per step.

A DQN update needs a little randomness at every env step and gradient step (epsilon, random
actions, replay indices, env and noise keys).  Drawing it all with **one** ``jax.random.bits``
call per update and slicing it is much cheaper on CPU than many small draws.  (jaxrl also lowers
Threefry unrolled on CPU, see :mod:`jaxrl._platform`, so each call is one fused kernel.)

* :func:`threefry_bits`: ``n`` uint32 words from a raw threefry key (uint32[2]);
* :func:`uniform`: words -> float32 uniform on [0, 1);
* :func:`normal`: words -> float32 standard normal (inverse CDF, one word per value);
* :func:`key_from_words`: a raw threefry key for code we do not own (env steps, flax noise).

Everything is threefry, so streams vmap member by member: a vmapped or sharded seed draws
exactly what it draws alone.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def threefry_bits(key_data, n: int):
    """``n`` uint32 words from a raw threefry key ``key_data`` (uint32[2])."""
    return jax.random.bits(key_data.astype(jnp.uint32), (n,), jnp.uint32)


def uniform(bits):
    """uint32 bits -> float32 uniform on [0, 1) (23 mantissa bits)."""
    return jax.lax.bitcast_convert_type((bits >> 9) | np.uint32(0x3F800000), jnp.float32) - 1.0


def normal(bits):
    """uint32 bits -> float32 standard normal, one word per value: ``sqrt(2) erfinv(2u - 1)`` with ``u``
    the word's 23 high bits centred in (0, 1), so the tails stop at about +-5.3 (a probability of
    about 1e-7 per draw lies beyond). Elementwise: one fused kernel, no further draw."""
    u = (((bits >> 9).astype(jnp.float32) + 0.5) * (1.0 / (1 << 23)))
    return np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(2.0 * u - 1.0)


def key_from_words(words):
    """A raw threefry key (uint32[2]) from the first two of ``words``."""
    return words[:2].astype(jnp.uint32)


def permutations(key, num: int, n: int):
    """``num`` independent random permutations of ``range(n)``: int32 ``[num, n]``.

    For ``n <= 4096`` each row is ONE single-operand sort of uint32 words that hold random bits
    above the element's index (``(bits >> b << b) | i``, ``b = ceil(log2 n)``), the index being
    read back from the low bits. XLA:CPU sorts a bare uint32 array far faster than the
    key/payload sort behind ``jax.random.permutation`` (PPO's 4 x 512 shuffle: about 3x). The
    keys keep ``32 - b >= 20`` random bits; two elements whose random bits tie keep their index
    order, which for ``n = 512`` happens to at most one pair in about 1.6% of permutations.
    Larger ``n`` uses ``jax.random.permutation``.
    """
    b = max(1, int(np.ceil(np.log2(n))))
    if b > 12:
        return jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, num)).astype(jnp.int32)
    bits = jax.random.bits(key, (num, n), jnp.uint32)
    words = (bits >> b << b) | jnp.arange(n, dtype=jnp.uint32)
    return (jnp.sort(words, axis=-1) & np.uint32((1 << b) - 1)).astype(jnp.int32)
