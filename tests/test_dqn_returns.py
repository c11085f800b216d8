"""Value-based targets and losses against rlax, the oracle, on random inputs with episode ends."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from jaxrl import losses, returns

JIT = pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])


def _maybe_jit(f, jit):
    return jax.jit(f) if jit else f


def _episode_sequence(rng, T):
    rewards = rng.normal(size=T).astype(np.float32)
    u = rng.uniform(size=T)
    terminated = u < 0.15
    truncated = (u >= 0.15) & (u < 0.25)
    next_values = rng.normal(size=T).astype(np.float32)
    return rewards, terminated, truncated, next_values


@JIT
@pytest.mark.parametrize("n", [1, 3, 5])
def test_n_step_window_matches_rlax(n, jit):
    rng = np.random.default_rng(n)
    T, gamma = 64, 0.9
    r, term, trunc, nv = _episode_sequence(rng, T)
    assert term.any() and trunc.any()
    # rlax cannot cut at truncation: fold the bootstrap into the reward and zero the discount there.
    r_oracle = np.where(trunc, r + gamma * nv, r).astype(np.float32)
    disc_oracle = np.where(term | trunc, 0.0, gamma).astype(np.float32)
    oracle = np.asarray(rlax.n_step_bootstrapped_returns(r_oracle, disc_oracle, nv, n))

    starts = np.arange(T - n + 1)
    win = starts[:, None] + np.arange(n)[None]
    f = _maybe_jit(lambda a, b, c: returns.n_step_window(a, b, c, gamma), jit)
    g, disc, last = f(jnp.asarray(r[win]), jnp.asarray(term[win]), jnp.asarray(trunc[win]))
    target = np.asarray(g) + np.asarray(disc) * nv[starts + np.asarray(last)]
    np.testing.assert_allclose(target, oracle[: T - n + 1], rtol=1e-5, atol=1e-5)
    # the window really is cut: ``last`` points at the first episode end inside it
    done = (term | trunc)[win]
    first_end = np.where(done.any(1), done.argmax(1), n - 1)
    np.testing.assert_array_equal(np.asarray(last), first_end)


@JIT
def test_double_q_target_matches_rlax(jit):
    rng = np.random.default_rng(0)
    B, A = 32, 5
    q_tm1, q_t_val, q_t_sel = (rng.normal(size=(B, A)).astype(np.float32) for _ in range(3))
    a = rng.integers(0, A, size=B)
    r = rng.normal(size=B).astype(np.float32)
    d = np.where(rng.uniform(size=B) < 0.2, 0.0, 0.99).astype(np.float32)
    oracle = jax.vmap(rlax.double_q_learning)(q_tm1, a, r, d, q_t_val, q_t_sel)
    f = _maybe_jit(lambda *x: returns.double_q_target(*x) - returns.select_action_values(jnp.asarray(q_tm1), a), jit)
    np.testing.assert_allclose(f(r, d, q_t_val, q_t_sel), oracle, rtol=1e-5, atol=1e-5)
    # plain DQN is double-Q with the target network as its own selector
    oracle_q = jax.vmap(rlax.q_learning)(q_tm1, a, r, d, q_t_val)
    np.testing.assert_allclose(returns.q_target(r, d, q_t_val) - q_tm1[np.arange(B), a], oracle_q, rtol=1e-5,
                               atol=1e-5)


@JIT
@pytest.mark.parametrize("method", ["auto", "scatter", "dense"])
def test_categorical_projection_matches_rlax(jit, method):
    rng = np.random.default_rng(1)
    B, K = 16, 11
    atoms = jnp.linspace(-3.0, 3.0, K)
    probs = jax.nn.softmax(jnp.asarray(rng.normal(size=(B, K)), jnp.float32))
    r = rng.normal(scale=2.0, size=B).astype(np.float32)  # some shifted atoms fall outside the support
    r[:3] = [3.0, -3.0, 0.6]  # exactly on the end atoms, and on an inner atom (d = 0 below)
    d = np.where(rng.uniform(size=B) < 0.25, 0.0, 0.9).astype(np.float32)
    d[:3] = 0.0
    f = _maybe_jit(lambda *a: returns.categorical_projection(*a, method=method), jit)
    out = f(atoms, probs, r, d)
    oracle = jax.vmap(lambda p, r_, d_: rlax.categorical_l2_project(r_ + d_ * atoms, p, atoms))(probs, r, d)
    np.testing.assert_allclose(out, oracle, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)


@JIT
def test_categorical_double_q_loss_matches_rlax(jit):
    rng = np.random.default_rng(2)
    B, A, K = 16, 4, 21
    atoms = jnp.linspace(-5.0, 5.0, K)
    logits_tm1 = jnp.asarray(rng.normal(size=(B, A, K)), jnp.float32)
    logits_t = jnp.asarray(rng.normal(size=(B, A, K)), jnp.float32)
    selector = jnp.asarray(rng.normal(size=(B, A)), jnp.float32)
    a = jnp.asarray(rng.integers(0, A, size=B))
    r = jnp.asarray(rng.normal(size=B), jnp.float32)
    d = jnp.asarray(np.where(rng.uniform(size=B) < 0.2, 0.0, 0.95), jnp.float32)

    def ours(logits_tm1, a, r, d, logits_t, selector):
        target = returns.categorical_q_target(atoms, r, d, logits_t, selector)
        return losses.categorical_cross_entropy(returns.select_action_values(logits_tm1, a), target)

    oracle = jax.vmap(lambda lq, a_, r_, d_, lt, s: rlax.categorical_double_q_learning(
        atoms, lq, a_, r_, d_, atoms, lt, s))(logits_tm1, a, r, d, logits_t, selector)
    np.testing.assert_allclose(_maybe_jit(ours, jit)(logits_tm1, a, r, d, logits_t, selector), oracle,
                               rtol=1e-4, atol=1e-5)


@JIT
def test_td_loss_huber_and_weights(jit):
    rng = np.random.default_rng(3)
    td = jnp.asarray(rng.normal(scale=3.0, size=64), jnp.float32)
    w = jnp.asarray(rng.uniform(size=64), jnp.float32)
    f = _maybe_jit(lambda x, y: losses.td_loss(x, y, "huber"), jit)
    np.testing.assert_allclose(f(td, w), (w * rlax.huber_loss(td, 1.0)).mean(), rtol=1e-5)
    np.testing.assert_allclose(losses.td_loss(td, None, "mse"), (0.5 * td ** 2).mean(), rtol=1e-5)
    # a zero weight removes a sample's contribution entirely
    w0 = w.at[0].set(0.0)
    g = jax.grad(lambda x: losses.td_loss(x, w0))(td)
    assert g[0] == 0.0 and jnp.all(g[1:] != 0.0)
