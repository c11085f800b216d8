"""Replay buffers: wrap-around, dtypes, n-step windows, sum-tree sampling, the memory check."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.buffers import prioritized, sum_tree, uniform
from jaxrl.config import ConfigError
from jaxrl.driver import guards


def _row(i, num_envs=3):
    return {"obs": jnp.full((num_envs, 2, 2), i % 256, jnp.uint8), "step": jnp.full((num_envs,), i, jnp.int32),
            "env": jnp.arange(num_envs, dtype=jnp.int32)}


def test_uniform_wraps_around_and_keeps_dtypes():
    buf = uniform.make(capacity=12, num_envs=3, lag=1)  # 4 rows per env
    state = buf.init(_row(0))
    assert state.data["obs"].dtype == jnp.uint8 and state.data["obs"].shape == (4, 3, 2, 2)
    add = jax.jit(buf.add)
    for i in range(10):
        state = add(state, _row(i))
    # rows hold steps 8, 9, 6, 7: the oldest were overwritten in circular order
    np.testing.assert_array_equal(state.data["step"][:, 0], [8, 9, 6, 7])
    assert int(state.pos) == 2 and int(state.added) == 10
    assert state.data["obs"].dtype == jnp.uint8
    idx = jax.jit(buf.sample, static_argnums=2)(state, jax.random.key(0), 2000)
    got = np.asarray(uniform.gather(state, idx.t, idx.env)["step"])
    # sampleable: steps 6, 7, 8 (9 is the newest row: its next observation is not written yet)
    assert set(got.tolist()) == {6, 7, 8}
    np.testing.assert_array_equal(np.asarray(uniform.gather(state, idx.t, idx.env)["env"]), idx.env)


def test_uniform_window_is_consecutive_in_time():
    buf = uniform.make(capacity=15, num_envs=3, lag=3)
    state = buf.init(_row(0))
    for i in range(11):
        state = buf.add(state, _row(i))
    idx = buf.sample(state, jax.random.key(1), 500)
    w = np.asarray(uniform.window(state, idx.t, idx.env, 3)["step"])
    np.testing.assert_array_equal(np.diff(w, axis=1), 1)  # no window crosses the write head
    assert set(w[:, 0].tolist()) == {6, 7}  # 5 rows hold steps 6..10; row t needs t + 3 written


def test_sum_tree_frequencies_match_priorities():
    cap = 37  # not a power of two: padded leaves must never be drawn
    rng = np.random.default_rng(0)
    pr = rng.uniform(0.0, 5.0, size=cap).astype(np.float32)
    pr[[3, 10, 36]] = 0.0  # empty slots
    tree = sum_tree.set_leaves(sum_tree.init(cap), jnp.arange(cap), jnp.asarray(pr))
    np.testing.assert_allclose(sum_tree.total(tree), pr.sum(), rtol=1e-5)
    n_draws = 200_000
    keys = jax.random.split(jax.random.key(42), 100)
    idx = np.asarray(jax.jit(jax.vmap(lambda k: sum_tree.sample(tree, k, n_draws // 100)))(keys)).ravel()
    assert idx.min() >= 0 and idx.max() < cap
    counts = np.bincount(idx, minlength=cap)
    assert counts[[3, 10, 36]].sum() == 0
    expected = n_draws * pr / pr.sum()
    # chi-square goodness of fit on the non-empty slots (df = 33: 99.9% quantile ~ 63.9)
    nz = expected > 0
    chi2 = ((counts[nz] - expected[nz]) ** 2 / expected[nz]).sum()
    assert chi2 < 63.9, chi2


def test_sum_tree_never_returns_empty_slot_at_the_edges():
    cap = 1000
    pr = np.zeros(cap, np.float32)
    pr[:7] = np.float32(1e-3)  # tiny priorities only at the start, a huge empty tail
    pr[500] = np.float32(3e7)  # one huge priority: float32 rounding in the sums
    tree = sum_tree.set_leaves(sum_tree.init(cap), jnp.arange(cap), jnp.asarray(pr))
    total = sum_tree.total(tree)
    u = jnp.concatenate([jnp.linspace(0.0, total, 4097), jnp.array([total, total * 1.0001, jnp.nextafter(total, 0)])])
    idx = np.asarray(sum_tree.find(tree, u))
    assert (idx >= 0).all() and (idx < cap).all()
    assert (pr[idx] > 0).all()


def test_sum_tree_duplicate_updates_keep_sums_consistent():
    tree = sum_tree.init(16)
    tree = sum_tree.set_leaves(tree, jnp.array([1, 1, 5, 5, 5]), jnp.array([2.0, 2.0, 3.0, 3.0, 3.0]))
    np.testing.assert_allclose(sum_tree.total(tree), 5.0)
    tree = sum_tree.set_leaves(tree, jnp.array([1]), jnp.array([0.5]))
    np.testing.assert_allclose(sum_tree.total(tree), 3.5)


def test_prioritized_buffer_samples_by_priority_and_masks():
    buf = prioritized.make(capacity=40, num_envs=4, lag=1)  # 10 rows
    state = buf.init(_row(0, 4))
    mask = jnp.array([1.0, 1.0, 1.0, 0.0])  # env 3's transitions are never sampled
    add = jax.jit(lambda s, r: buf.add(s, r, mask, 0.6))
    for i in range(14):
        state = add(state, _row(i, 4))
    leaves = np.asarray(sum_tree.leaves(state.tree, 40)).reshape(10, 4)
    # newest row (just written) has priority 0; env 3 too; every other stored row has the max priority
    newest = (int(state.pos) - 1) % 10
    assert (leaves[newest] == 0).all() and (leaves[:, 3] == 0).all()
    assert (np.delete(leaves, newest, 0)[:, :3] == 1.0).all()
    # raise the priority of one transition: it gets drawn far more often, weights shrink for it
    idx = buf.sample(state, jax.random.key(0), 64, 0.4)
    state = buf.update_priorities(state, idx, jnp.full((64,), 0.1), 0.6)
    hot = uniform.Indices(jnp.array([idx.t[0]]), jnp.array([idx.env[0]]), jnp.ones(1))
    state = buf.update_priorities(state, hot, jnp.array([100.0]), 0.6)
    assert float(state.max_priority) == pytest.approx(100.0)
    draws = buf.sample(state, jax.random.key(3), 256, 0.4)
    is_hot = (draws.t == hot.t[0]) & (draws.env == hot.env[0])
    assert int(is_hot.sum()) > 64  # p(hot) is ~ 100^.6 / (100^.6 + 26 * 0.1^.6) ~ 0.6
    assert (draws.env != 3).all()
    assert float(draws.weight.max()) == pytest.approx(1.0)
    assert float(draws.weight[is_hot].max()) < float(draws.weight[~is_hot].min())
    got = np.asarray(uniform.gather(state, draws.t, draws.env)["step"])
    assert got.min() >= 4 and got.max() <= 12  # stored and complete rows only


def test_the_driver_memory_check_sizes_replay_and_names_buffer_size(monkeypatch):
    """A 1M-frame Atari replay (8 envs) of one seed does not fit in 1 GiB; 10k frames do."""
    buf = uniform.make(1_000_000, 8)
    row = {"obs": jnp.zeros((8, 84, 84, 4), jnp.uint8), "a": jnp.zeros((8,), jnp.int32)}
    state = {"buffer": jax.eval_shape(buf.init, row), "params": jax.ShapeDtypeStruct((1000,), jnp.float32)}
    assert guards.tree_bytes(state) == 125_000 * 8 * (84 * 84 * 4 + 4) + 4000 + 8
    monkeypatch.setenv(guards.MEM_ENV_VAR, str(2 ** 30))
    with pytest.raises(ConfigError) as e:
        guards.check_memory(state, batch=1)
    assert e.value.field == "buffer_size" and "['buffer'].data['obs']" in str(e.value) and "\n" not in str(e.value)
    small = {"buffer": jax.eval_shape(uniform.make(10_000, 8).init, row)}
    guards.check_memory(small, batch=1)  # 270 MiB fits in 1 GiB
