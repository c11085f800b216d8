"""GAE and Monte-Carlo returns against rlax and hand-computed cases."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from jaxrl.returns import discounted_returns, gae, q_lambda


def _random_episode_data(key, T=37, N=5, p_end=0.15):
    k1, k2, k3 = jax.random.split(key, 3)
    rewards = jax.random.normal(k1, (T, N))
    values = jax.random.normal(k2, (T + 1, N))
    terminated = jax.random.bernoulli(k3, p_end, (T, N))
    return rewards, values, terminated


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0)])
def test_gae_matches_rlax_with_episode_ends(jit, gamma, lam):
    rewards, values, terminated = _random_episode_data(jax.random.PRNGKey(3))
    # With termination only, next value is V(s_{t+1}) and the discount is cut at episode ends.
    fn = jax.jit(gae) if jit else gae
    adv = fn(rewards, values[:-1], values[1:], terminated, terminated, gamma, lam)
    discount = gamma * (1.0 - terminated.astype(jnp.float32))
    ref = jax.vmap(rlax.truncated_generalized_advantage_estimation, in_axes=(1, 1, None, 1), out_axes=1)(
        rewards, discount, lam, values)
    assert terminated.any() and not terminated.all()
    np.testing.assert_allclose(adv, ref, rtol=1e-5, atol=1e-5)


def test_gae_truncation_bootstraps_from_final_obs_hand_computed():
    # One env, 3 steps; the episode is truncated at t=1 (time limit), so step 1 bootstraps from
    # V(final_obs_1) = 10 but the trace is cut; step 2 starts a new episode.
    r = jnp.array([[1.0], [2.0], [3.0]])
    v = jnp.array([[0.5], [1.0], [2.0]])
    next_v = jnp.array([[1.0], [10.0], [4.0]])
    term = jnp.zeros((3, 1), bool)
    done = jnp.array([[False], [True], [False]])
    g, lam = 0.9, 0.8
    adv = np.asarray(gae(r, v, next_v, term, done, g, lam))[:, 0]
    d2 = 3.0 + g * 4.0 - 2.0
    d1 = 2.0 + g * 10.0 - 1.0
    d0 = 1.0 + g * 1.0 - 0.5
    np.testing.assert_allclose(adv, [d0 + g * lam * d1, d1, d2], rtol=1e-6)
    # Termination instead: no bootstrap at all.
    adv_t = np.asarray(gae(r, v, next_v, done, done, g, lam))[:, 0]
    np.testing.assert_allclose(adv_t[1], 2.0 - 1.0, rtol=1e-6)


def test_discounted_returns_matches_rlax_lambda_one():
    rewards, values, terminated = _random_episode_data(jax.random.PRNGKey(7))
    g = discounted_returns(rewards, terminated, 0.97)
    discount = 0.97 * (1.0 - terminated.astype(jnp.float32))
    ref = jax.vmap(rlax.discounted_returns, in_axes=(1, 1, None), out_axes=1)(rewards, discount, 0.0)
    np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-5)


def test_q_lambda_by_hand_with_a_truncation_and_a_termination():
    """Three steps of one env: step 0 truncated (bootstraps, trace cut), step 1 runs on, step 2 terminates."""
    gamma, lam = 0.9, 0.5
    r = jnp.array([[1.0], [2.0], [3.0]])
    q = jnp.array([[10.0], [20.0], [30.0]])  # max_a Q(s'_t, a)
    term = jnp.array([[False], [False], [True]])
    done = jnp.array([[True], [False], [True]])
    g2 = 3.0  # terminal: no bootstrap
    g1 = 2.0 + gamma * ((1 - lam) * 20.0 + lam * g2)
    g0 = 1.0 + gamma * 10.0  # truncated: bootstrap from the state reached, nothing of g1
    np.testing.assert_allclose(q_lambda(r, q, term, done, gamma, lam)[:, 0], [g0, g1, g2], rtol=1e-6)
    # the last step of an unfinished rollout bootstraps fully: G = r + gamma max Q
    g = q_lambda(r, q, jnp.zeros_like(term), jnp.zeros_like(done), gamma, lam)
    np.testing.assert_allclose(g[-1, 0], 3.0 + gamma * 30.0, rtol=1e-6)


@pytest.mark.parametrize("lam", [0.0, 0.65, 1.0])
def test_q_lambda_matches_rlax_q_lambda_with_terminations(lam):
    """rlax's ``q_lambda`` target (Peng's Q(lambda), ``lambda_returns`` of ``max q_t``) where the definitions
    coincide: episodes end only by termination (discount 0), and the rollout's last step bootstraps."""
    T, N, A = 23, 4, 3
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(7), 4)
    rewards = jax.random.normal(k1, (T, N))
    q_next = jax.random.normal(k2, (T, N, A))  # Q(s'_t, .)
    terminated = jax.random.bernoulli(k3, 0.15, (T, N))
    q_tm1 = jax.random.normal(k4, (T, N, A))
    a_tm1 = jnp.zeros((T, N), jnp.int32)
    discount = 0.97 * (1.0 - terminated.astype(jnp.float32))
    td = jax.vmap(rlax.q_lambda, in_axes=(1, 1, 1, 1, 1, None), out_axes=1)(q_tm1, a_tm1, rewards, discount, q_next,
                                                                            lam)
    ref = td + q_tm1[..., 0]
    ours = q_lambda(rewards, q_next.max(-1), terminated, terminated, 0.97, lam)
    assert terminated.any() and not terminated.all()
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
