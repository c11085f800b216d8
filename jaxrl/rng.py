"""Loop-free random bits for hot training loops on XLA:CPU.

On CPU, JAX lowers every threefry call (``split``, ``uniform``, ``randint``...) to a rolled
``while`` loop of 5 iterations, about 80 runtime thunks each.  In a DQN step that trains on
a small MLP these loops cost more than the network.  This module gives

* :func:`threefry_bits`: Threefry-2x32 (20 rounds, Salmon et al. 2011), the same generator as
  ``jax.random``'s default, written as plain unrolled ``jnp`` ops: XLA fuses it into one
  elementwise kernel.  It is pure and vmaps per member (each seed keeps its own stream).
  Its outputs are not bit-identical to ``jax.random.bits``.
* :func:`rbg_key`: an ``unsafe_rbg`` key from 4 words, for code we do not own (env steps,
  flax RNG streams): its ``split``/``uniform`` are single ``RngBitGenerator`` ops.  Note that
  under ``vmap`` JAX draws the bits of all members from the first member's key (different
  slices, so still independent draws), so such streams are not reproducible member by member.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_ROT = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotl(x, r):
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32 block function, 20 rounds, unrolled. All uint32, broadcastable."""
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(0x1BD11BDA))
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for i in range(5):
        for r in _ROT[i % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r) ^ x0
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def threefry_bits(key_data, n: int):
    """``n`` uint32 words from a key (uint32[2]) in one fused op: the hash of counters 0..ceil(n/2)."""
    half = (n + 1) // 2
    c = jnp.arange(half, dtype=jnp.uint32)
    x0, x1 = threefry2x32(key_data[0], key_data[1], c, jnp.zeros_like(c) + np.uint32(0x9E3779B9))
    return jnp.concatenate([x0, x1])[:n]


def uniform(bits):
    """uint32 bits -> float32 uniform on [0, 1)."""
    return jax.lax.bitcast_convert_type((bits >> 9) | np.uint32(0x3F800000), jnp.float32) - 1.0


def rbg_key(words):
    """An ``unsafe_rbg`` PRNG key from 4 uint32 words."""
    return jax.random.wrap_key_data(words[:4].astype(jnp.uint32), impl="unsafe_rbg")
