"""Uniform circular replay, a pytree that lives inside the compiled training loop.

Storage is time-major per env: every leaf is ``[rows, num_envs, ...]`` with
``rows = capacity // num_envs``, so the transitions of one env are consecutive in time and an
n-step window is a strided gather (see :func:`window`).  One ``add`` writes one row (one
transition per env) with ``dynamic_update_slice`` on every leaf; under ``jit`` with the state
threaded through ``lax.scan`` (or donated) XLA updates the buffers in place.  Leaf dtypes are
whatever the example row had: uint8 frames stay uint8.

``lag``: a transition becomes sampleable once ``lag`` more rows were written after it (the
rows its n-step window and next observation need).  Use ``lag = n_step``.

    buf = uniform.make(capacity=10_000, num_envs=10, lag=1)
    state = buf.init(example_row)             # leaves [num_envs, ...]
    state = buf.add(state, row)
    idx = buf.sample(state, key, batch_size)  # Indices(t [B], env [B], weight [B])
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp



class ReplayState(NamedTuple):
    data: Any  # pytree, leaves [rows, num_envs, ...]
    pos: jax.Array  # int32, row written next
    added: jax.Array  # int32, rows written so far (not capped)


class Indices(NamedTuple):
    t: jax.Array  # [B] int32 row
    env: jax.Array  # [B] int32 env column
    weight: jax.Array  # [B] float32 importance weight (ones for uniform replay)


class ReplayBuffer(NamedTuple):
    """Pure functions over a :class:`ReplayState` (optax-style)."""

    init: Callable
    add: Callable
    sample: Callable
    rows: int
    num_envs: int
    lag: int


def rows_for(capacity: int, num_envs: int) -> int:
    return max(1, capacity // num_envs)


def _write_row(data, row, pos):
    return jax.tree_util.tree_map(
        lambda buf, x: jax.lax.dynamic_update_index_in_dim(buf, x.astype(buf.dtype), pos, 0), data, row)


def alloc(example_row, rows: int):
    """Zero storage ``[rows, *leaf.shape]`` for every leaf of ``example_row``, dtypes kept."""
    return jax.tree_util.tree_map(lambda x: jnp.zeros((rows,) + jnp.shape(x), jnp.asarray(x).dtype), example_row)


def random_bits(rand, shape) -> jax.Array:
    """uint32 random bits of ``shape``: drawn from ``rand`` if it is a PRNG key, else ``rand`` itself.

    Agents that draw all the randomness of an update in one call pass slices of it here, which
    saves one small random draw per use.
    """
    if jnp.issubdtype(rand.dtype, jax.dtypes.prng_key):
        return jax.random.bits(rand, shape, jnp.uint32)
    return rand.reshape(shape).astype(jnp.uint32)




def sampleable_rows(state: ReplayState, rows: int, lag: int):
    """(oldest row, number of rows that may start a sample)."""
    filled = jnp.minimum(state.added, rows)
    oldest = jnp.where(state.added > rows, state.pos, 0)
    return oldest, jnp.maximum(filled - lag, 0)


def make(capacity: int, num_envs: int, lag: int = 1) -> ReplayBuffer:
    rows = rows_for(capacity, num_envs)
    if rows <= lag:
        raise ValueError(f"buffer of {rows} rows per env cannot hold an n-step window of {lag}")

    def init(example_row) -> ReplayState:
        return ReplayState(alloc(example_row, rows), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    def add(state: ReplayState, row) -> ReplayState:
        return ReplayState(_write_row(state.data, row, state.pos), (state.pos + 1) % rows, state.added + 1)

    def sample(state: ReplayState, rand, batch_size: int) -> Indices:
        """``rand``: a PRNG key, or uint32 bits [batch_size]."""
        oldest, n_rows = sampleable_rows(state, rows, lag)
        m = (jnp.maximum(n_rows, 1) * num_envs).astype(jnp.uint32)
        j = (random_bits(rand, (batch_size,)) % m).astype(jnp.int32)  # modulo bias <= m / 2^32
        t = (oldest + j // num_envs) % rows
        return Indices(t.astype(jnp.int32), (j % num_envs).astype(jnp.int32), jnp.ones((batch_size,), jnp.float32))

    return ReplayBuffer(init, add, sample, rows, num_envs, lag)


def gather(state: ReplayState, t, env, offset: int = 0, leaves=None):
    """Leaves at rows ``(t + offset) % rows`` of env ``env``: [B, ...]. ``offset`` may be an array [B]."""
    data = state.data if leaves is None else {k: state.data[k] for k in leaves}
    return jax.tree_util.tree_map(lambda x: x[(t + offset) % x.shape[0], env], data)


def window(state: ReplayState, t, env, n: int, leaves=None):
    """The ``n`` consecutive transitions of each env from row ``t``: leaves [B, n, ...]."""
    data = state.data if leaves is None else {k: state.data[k] for k in leaves}
    rows = jnp.add.outer(t, jnp.arange(n, dtype=t.dtype))
    return jax.tree_util.tree_map(lambda x: x[rows % x.shape[0], env[:, None]], data)
