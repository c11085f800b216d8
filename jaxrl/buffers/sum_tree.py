"""A sum tree over ``capacity`` non-negative priorities, as a flat array that lives on device.

Layout: ``tree[1]`` is the root, node ``i`` has children ``2i`` and ``2i + 1``, leaves start at
``size`` (the next power of two >= capacity).  Parents are always *recomputed* as the sum of
their two children (never updated incrementally), so rounding errors cannot accumulate.

Sampling descends from the root.  Float rounding can make the sample point ``u`` exceed the
sum of the subtree it was sent to; the descent therefore never steps into a child whose sum is
zero, so it always ends on a leaf with positive priority (an occupied, in-range slot) whenever
the total is positive.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.buffers.uniform import random_bits
from jaxrl.rng import uniform as bits_to_uniform


def tree_size(capacity: int) -> int:
    return 1 << max(0, (int(capacity) - 1).bit_length())


def init(capacity: int) -> jax.Array:
    """All-zero tree: [2 * tree_size(capacity)] float32."""
    return jnp.zeros((2 * tree_size(capacity),), jnp.float32)


def total(tree: jax.Array) -> jax.Array:
    return tree[1]


def leaves(tree: jax.Array, capacity: int) -> jax.Array:
    size = tree.shape[0] // 2
    return tree[size:size + capacity]


def set_leaves(tree: jax.Array, idx: jax.Array, values: jax.Array) -> jax.Array:
    """Set leaves ``idx`` [M] to ``values`` [M] and refresh their ancestors.

    Duplicate indices are allowed (one of the values wins); the ancestors are recomputed from
    their children level by level, which is idempotent, so duplicates cannot corrupt the sums.
    """
    size = tree.shape[0] // 2
    node = idx.astype(jnp.int32) + size
    tree = tree.at[node].set(values.astype(tree.dtype))
    for _ in range(size.bit_length() - 1):
        node = node // 2
        tree = tree.at[node].set(tree[2 * node] + tree[2 * node + 1])
    return tree


def find(tree: jax.Array, u: jax.Array) -> jax.Array:
    """Leaf indices [M] whose prefix-sum interval contains ``u`` [M] (``0 <= u < total``)."""
    size = tree.shape[0] // 2
    node = jnp.ones(u.shape, jnp.int32)
    for _ in range(size.bit_length() - 1):
        left = tree[2 * node]
        right = tree[2 * node + 1]
        go_right = ((u >= left) & (right > 0)) | (left <= 0)
        u = jnp.where(go_right, u - left, u)
        node = 2 * node + go_right.astype(jnp.int32)
    return node - size


def sample(tree: jax.Array, rand: jax.Array, batch: int) -> jax.Array:
    """Stratified proportional sampling: one leaf from each of ``batch`` equal slices of the total.

    ``rand``: a PRNG key, or uint32 random bits [batch].
    """
    t = total(tree)
    u = (jnp.arange(batch, dtype=jnp.float32) + bits_to_uniform(random_bits(rand, (batch,)))) * (t / batch)
    return find(tree, jnp.minimum(u, t))
