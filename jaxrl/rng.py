"""Random words for hot training loops: draw once per update, slice per step.

A DQN update needs a little randomness at every env step and gradient step (epsilon, random
actions, replay indices, env and noise keys).  Drawing it all with **one** ``jax.random.bits``
call per update and slicing it is much cheaper on CPU than many small draws.  (jaxrl also lowers
Threefry unrolled on CPU, see :mod:`jaxrl._platform`, so each call is one fused kernel.)

* :func:`threefry_bits`: ``n`` uint32 words from a raw threefry key (uint32[2]);
* :func:`uniform`: words -> float32 uniform on [0, 1);
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


def key_from_words(words):
    """A raw threefry key (uint32[2]) from the first two of ``words``."""
    return words[:2].astype(jnp.uint32)
