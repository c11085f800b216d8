"""Proportional prioritized replay (Schaul et al. 2016, arXiv:1511.05952) over a JAX sum tree.

Same storage as :mod:`jaxrl.buffers.uniform` (time-major per env); slot ``t * num_envs + env``
of the sum tree holds ``priority ** alpha``.

* A transition enters the tree at the current maximum priority once it is sampleable (``lag``
  rows later), times its ``mask`` (0 keeps it out for good, e.g. envpool's reset steps).
* The row being overwritten leaves the tree at once: an incomplete or stale slot has priority 0
  and can never be drawn.
* ``sample`` is stratified; weights are ``(N * P(i)) ** -beta`` normalised by the batch max.
* ``update_priorities`` takes new priorities (e.g. ``|td| + eps`` or the C51 loss).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.buffers import sum_tree
from jaxrl.buffers.uniform import Indices, _write_row, alloc, rows_for, sampleable_rows


class PrioritizedState(NamedTuple):
    data: Any  # pytree, leaves [rows, num_envs, ...]
    pos: jax.Array
    added: jax.Array
    tree: jax.Array  # sum_tree layout [blocks, block + 1] float32, leaves = priority ** alpha
    mask: jax.Array  # [rows, num_envs] float32, 0 = never sample
    max_priority: jax.Array  # float32, max priority seen (before ** alpha)


class PrioritizedBuffer(NamedTuple):
    init: Callable
    add: Callable  # (state, row, mask=None, alpha=...) -> state
    sample: Callable  # (state, key, batch_size, beta) -> Indices
    update_priorities: Callable  # (state, indices, priorities, alpha) -> state
    rows: int
    num_envs: int
    lag: int


def make(capacity: int, num_envs: int, lag: int = 1) -> PrioritizedBuffer:
    rows = rows_for(capacity, num_envs)
    if rows <= lag:
        raise ValueError(f"buffer of {rows} rows per env cannot hold an n-step window of {lag}")
    slots = rows * num_envs
    env_ids = jnp.arange(num_envs, dtype=jnp.int32)

    def init(example_row) -> PrioritizedState:
        return PrioritizedState(alloc(example_row, rows), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32),
                                sum_tree.init(slots), jnp.zeros((rows, num_envs), jnp.float32),
                                jnp.ones((), jnp.float32))

    def add(state: PrioritizedState, row, mask=None, alpha=1.0) -> PrioritizedState:
        pos = state.pos
        data = _write_row(state.data, row, pos)
        m = jnp.ones((num_envs,), jnp.float32) if mask is None else mask.astype(jnp.float32)
        masks = jax.lax.dynamic_update_index_in_dim(state.mask, m, pos, 0)
        added = state.added + 1
        ready = (pos - lag) % rows  # its window is complete now
        ready_p = (state.max_priority ** alpha) * masks[ready] * (added > lag)
        idx = jnp.concatenate([pos * num_envs + env_ids, ready * num_envs + env_ids])
        val = jnp.concatenate([jnp.zeros((num_envs,), jnp.float32), ready_p])
        tree = sum_tree.set_leaves(state.tree, idx, val)
        return PrioritizedState(data, (pos + 1) % rows, added, tree, masks, state.max_priority)

    def sample(state: PrioritizedState, rand, batch_size: int, beta=1.0) -> Indices:
        """``rand``: a PRNG key, or uint32 bits [batch_size]."""
        slot = jnp.minimum(sum_tree.sample(state.tree, rand, batch_size), slots - 1)
        p = sum_tree.get(state.tree, slot) / jnp.maximum(sum_tree.total(state.tree), 1e-30)
        _, n_rows = sampleable_rows(state, rows, lag)
        n = jnp.maximum(n_rows * num_envs, 1).astype(jnp.float32)
        w = (n * jnp.maximum(p, 1e-30)) ** (-beta)
        w = w / w.max()
        return Indices((slot // num_envs).astype(jnp.int32), (slot % num_envs).astype(jnp.int32), w)

    def update_priorities(state: PrioritizedState, idx: Indices, priorities, alpha=1.0) -> PrioritizedState:
        slot = idx.t * num_envs + idx.env
        pr = jnp.maximum(priorities.astype(jnp.float32), 1e-6)
        # a slot overwritten since it was sampled cannot be: sampling and updating happen in one step
        tree = sum_tree.set_leaves(state.tree, slot, (pr ** alpha) * state.mask[idx.t, idx.env])
        return state._replace(tree=tree, max_priority=jnp.maximum(state.max_priority, pr.max()))

    return PrioritizedBuffer(init, add, sample, update_priorities, rows, num_envs, lag)
