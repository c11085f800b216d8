"""The compiled training program: one chunk function shared by ``make_train``, the driver, profiling
and the benchmarks.

``chunk(state, acc, hp, n, start) -> (state, acc)`` runs ``n`` updates (``n`` may be traced, so one
compiled program serves every chunk length) and folds their metrics into an accumulator:

* ``acc.sums``: per metric, the sum over the updates of the chunk(s) since the last logging point;
* ``acc.count``: how many updates were folded in;
* ``acc.first_bad``: per metric, the index (counted from the start of the run) of the first update
  that produced a non-finite value, or -1: the NaN guard names it.

:func:`reduce` turns an accumulator into one logging point: keys ending in ``_sum`` and ``episodes``
are sums, every other key the mean over the updates it covers. Memory is a few scalars per metric,
whatever the number of updates. Because the accumulator is carried from chunk to chunk, a logging
point may be split into any number of chunks (the driver sizes them by wall time) and still
reduce to the same values, bit for bit.

``make_train(agent, num_log_points)(key, hp) -> (state, metrics [num_log_points])`` is the whole run as
one program: a ``lax.scan`` over logging points of the same chunk. Updates that do not divide evenly go
to the last point, which reduces over all of them.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.core.agent import Agent, is_summed


class Accumulator(NamedTuple):
    sums: dict  # metric -> float32 sum over the folded updates
    count: jax.Array  # int32 updates folded in
    first_bad: dict  # metric -> int32 first update with a non-finite value, -1 if none


def metric_shapes(agent: Agent, hp=None) -> dict:
    """``{name: ShapeDtypeStruct}`` of one update's metrics (traced, nothing runs)."""
    hp = agent.config.hparams() if hp is None else hp
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0), hp)
    return jax.eval_shape(agent.update, state, hp)[1]


def empty_accumulator(agent: Agent) -> Accumulator:
    """The accumulator of a logging point that has no update yet (unbatched)."""
    names = sorted(metric_shapes(agent))
    return Accumulator({k: jnp.zeros((), jnp.float32) for k in names}, jnp.zeros((), jnp.int32),
                       {k: jnp.full((), -1, jnp.int32) for k in names})


def fold(acc: Accumulator, metrics: dict, index) -> Accumulator:
    """Add one update's metrics (scalars) to ``acc``; ``index`` is that update's number in the run."""
    sums, bad = {}, {}
    for k, v in metrics.items():
        v = jnp.asarray(v, jnp.float32).reshape(())
        sums[k] = acc.sums[k] + v
        bad[k] = jnp.where((acc.first_bad[k] < 0) & ~jnp.isfinite(v), index, acc.first_bad[k]).astype(jnp.int32)
    return Accumulator(sums, acc.count + 1, bad)


def reduce(acc: Accumulator, xp=jnp) -> dict:
    """One logging point: sums for summed keys, means over ``acc.count`` updates for the rest.

    ``xp``: ``jax.numpy`` (in programs) or ``numpy`` (on the host, for an accumulator fetched there).
    """
    n = xp.maximum(acc.count, 1).astype(xp.float32)
    return {k: (v if is_summed(k) else v / n) for k, v in acc.sums.items()}


def make_chunk(agent: Agent):
    """``chunk(state, acc, hp, n, start) -> (state, acc)``: ``n`` updates in a loop, folded into ``acc``.

    ``start`` is the number of updates done before the chunk (for ``first_bad``). ``n`` and ``start``
    may be traced: the loop is a ``lax.fori_loop``, a ``while`` loop when ``n`` is traced.
    """

    def chunk(state, acc: Accumulator, hp, n, start):
        def body(i, carry):
            s, a = carry
            s, m = agent.update(s, hp)
            return s, fold(a, m, start + i)

        return jax.lax.fori_loop(0, n, body, (state, acc))

    return chunk


def finite_leaves(state, skip=None) -> jax.Array:
    """bool ``[num_leaves]``: every floating-point leaf of ``state`` is finite (others count as finite).

    ``skip(key_path_string) -> bool``: leaves not checked (counted as finite), e.g. :func:`replay_data`.
    """
    def check(path, x) -> bool:
        return jnp.issubdtype(x.dtype, jnp.inexact) and not (skip is not None and skip(jax.tree_util.keystr(path)))

    flags = [jnp.isfinite(x).all() if check(p, x) else jnp.asarray(True)
             for p, x in jax.tree_util.tree_flatten_with_path(state)[0]]
    return jnp.stack(flags or [jnp.asarray(True)])


def replay_data(path: str) -> bool:
    """The off-policy core's stored transitions (``.buffer.data``): env outputs, not learned values. The
    NaN guard leaves them to the metrics they feed (a non-finite observation or reward makes the episode
    return or the loss non-finite), since scanning a large buffer after every chunk costs more than the
    chunk (650 MB: 0.5 s on 2 CPU cores)."""
    return ".buffer.data" in path


def make_train(agent: Agent, num_log_points: int = 100):
    """``train(key, hp=None) -> (state, metrics)``: the whole run as one program.

    Metrics come back per logging point (``[num_log_points]`` per key, fewer when there are fewer
    updates), so device memory is bounded by the number of logging points, never by the number of steps.
    """
    n_log = max(1, min(num_log_points, agent.num_updates))
    per, rest = divmod(agent.num_updates, n_log)
    chunk = make_chunk(agent)

    def train(key, hp=None):
        hp = agent.config.hparams() if hp is None else hp
        state = agent.init(key, hp)
        acc0 = empty_accumulator(agent)

        def point(s, i):
            s, acc = chunk(s, acc0, hp, per, i * per)
            return s, reduce(acc)

        state, metrics = jax.lax.scan(point, state, jnp.arange(n_log - 1))
        state, last = chunk(state, acc0, hp, per + rest, (n_log - 1) * per)  # the last point covers the rest
        metrics = jax.tree_util.tree_map(lambda m, x: jnp.concatenate([m, x[None]]), metrics, reduce(last))
        return state, metrics

    return train


def run_updates(agent: Agent, state, hp, n: int):
    """``n`` updates as one loop; returns the new state and their reduced metrics (one logging point)."""
    state, acc = make_chunk(agent)(state, empty_accumulator(agent), hp, n, 0)
    return state, reduce(acc)


def hparams_batch(config, points: list, num_seeds: int) -> dict:
    """Traced hyperparameters ``[len(points) * num_seeds]``: each sweep point's values, once per seed."""
    return {k: jnp.asarray([p.get(k, getattr(config, k)) for p in points for _ in range(num_seeds)], jnp.float32)
            for k in config.hparams()}


def seed_keys(seed: int, num_seeds: int, num_points: int = 1) -> Any:
    """PRNG keys ``[num_points * num_seeds]``: the same ``num_seeds`` keys for every sweep point
    (common random numbers across settings)."""
    keys = jax.random.split(jax.random.PRNGKey(seed), num_seeds)
    return jnp.concatenate([keys] * num_points)
