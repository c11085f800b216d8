"""Sums over ``capacity`` non-negative priorities for proportional sampling, as one device array.

Layout: a two-level tree, ``[blocks, block + 1]`` float32. Row ``b`` holds leaves
``b * block .. b * block + block - 1`` in its first ``block`` columns and their sum in the last one;
``block`` is the power of two nearest ``sqrt(capacity)`` from above, so both levels are short. Block
sums are always *recomputed* from their leaves (never updated incrementally), so rounding errors
cannot accumulate, and duplicate indices in one update cannot corrupt them.

Why two levels and not a binary tree of ``log2(capacity)`` levels: each level of a binary tree is a
dependent gather (sampling) or scatter (updating), about 40 small ops per update for 100k slots; on
XLA:CPU under ``vmap`` over seeds each of them cost tens of microseconds, so prioritized replay ran at
a fraction of uniform replay's speed (docs/performance.md, 2026-12-03). Here sampling is a cumsum over
the block sums plus a cumsum over one gathered row per draw, and updating is a scatter plus a
row sum: a handful of ops whatever the capacity (``O(sqrt(capacity))`` work per draw).

Float rounding can make a sample point land past the last positive leaf of its row (or block); the
search then takes the nearest positive one, so it always ends on a leaf with positive priority (an
occupied, in-range slot) whenever the total is positive.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.buffers.uniform import random_bits
from jaxrl.rng import uniform as bits_to_uniform


def block_size(capacity: int) -> int:
    """Leaves per block: the power of two at or above ``sqrt(capacity)``."""
    return 1 << max(0, (max(1, int(capacity)) - 1).bit_length() + 1) // 2


def init(capacity: int) -> jax.Array:
    """All-zero tree: ``[ceil(capacity / block), block + 1]`` float32."""
    bs = block_size(capacity)
    return jnp.zeros((-(-int(capacity) // bs), bs + 1), jnp.float32)


def total(tree: jax.Array) -> jax.Array:
    return tree[:, -1].sum()


def leaves(tree: jax.Array, capacity: int) -> jax.Array:
    """The priorities ``[capacity]``."""
    return tree[:, :-1].reshape(-1)[:capacity]


def get(tree: jax.Array, idx: jax.Array) -> jax.Array:
    """Priorities of leaves ``idx`` [M]."""
    bs = tree.shape[1] - 1
    return tree[idx // bs, idx % bs]


def set_leaves(tree: jax.Array, idx: jax.Array, values: jax.Array) -> jax.Array:
    """Set leaves ``idx`` [M] to ``values`` [M] and recompute the sums of their blocks.

    Duplicate indices are allowed (one of the values wins); each touched block's sum is recomputed
    from the leaves it holds after the write, so duplicates cannot corrupt the sums.
    """
    bs = tree.shape[1] - 1
    idx = idx.astype(jnp.int32)
    blk = idx // bs
    tree = tree.at[blk, idx % bs].set(values.astype(tree.dtype))
    return tree.at[blk, bs].set(tree[blk, :bs].sum(-1))


def _pick(weights: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per row of ``weights`` [M, n] (or one row [n] shared by all draws): the index whose prefix-sum
    interval contains ``u`` [M], the nearest positive one when rounding lands elsewhere; and ``u`` minus
    the sum before that index."""
    before = jnp.cumsum(weights, -1) - weights  # exclusive prefix sums
    n = weights.shape[-1]
    pos = jnp.arange(n, dtype=jnp.int32)
    w = jnp.broadcast_to(weights, u.shape + (n,))
    b = jnp.broadcast_to(before, u.shape + (n,))
    j = jnp.clip((b <= u[:, None]).sum(-1) - 1, 0, n - 1).astype(jnp.int32)
    positive = w > 0
    last_le = jnp.max(jnp.where(positive & (pos <= j[:, None]), pos, -1), -1)
    first_ge = jnp.min(jnp.where(positive & (pos >= j[:, None]), pos, n), -1)
    j = jnp.where(last_le >= 0, last_le, jnp.minimum(first_ge, n - 1))
    return j, u - jnp.take_along_axis(b, j[:, None], -1)[:, 0]


def find(tree: jax.Array, u: jax.Array) -> jax.Array:
    """Leaf indices [M] whose prefix-sum interval contains ``u`` [M] (``0 <= u < total``)."""
    bs = tree.shape[1] - 1
    blk, rest = _pick(tree[:, bs], u)
    leaf, _ = _pick(tree[blk, :bs], rest)
    return blk * bs + leaf


def sample(tree: jax.Array, rand: jax.Array, batch: int) -> jax.Array:
    """Stratified proportional sampling: one leaf from each of ``batch`` equal slices of the total.

    ``rand``: a PRNG key, or uint32 random bits [batch].
    """
    t = total(tree)
    u = (jnp.arange(batch, dtype=jnp.float32) + bits_to_uniform(random_bits(rand, (batch,)))) * (t / batch)
    return find(tree, jnp.minimum(u, t))
