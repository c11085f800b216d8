"""The pieces of the continuous-control agents (DDPG, TD3, SAC, D4PG) against oracles and hand computations.

The tanh-Gaussian log-density (SAC's policy) is checked against distrax in ``test_distributions.py``
(``test_tanh_gaussian_log_prob_matches_distrax`` and the sample/log-prob test after it).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from jaxrl import envs, rng
from jaxrl.agents import d4pg, ddpg, sac
from jaxrl.core import exploration, offpolicy, running_stats
from jaxrl.envs.core import Box, Env, EnvSpec, EpisodeStats, TimeStep
from jaxrl.returns import n_step_window


def _batch(reward, discount, B=None):
    reward = jnp.asarray(reward, jnp.float32)
    z = jnp.zeros((reward.shape[0], 1))
    return offpolicy.Batch(z, z, reward, jnp.asarray(discount, jnp.float32), z, jnp.ones_like(reward))


# ----------------------------------------------------------------------------- random words -> normals
def test_normal_words_are_standard_normal():
    bits = jax.random.bits(jax.random.PRNGKey(0), (200_000,), jnp.uint32)
    z = np.asarray(jax.jit(rng.normal)(bits))
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    for x in (-2.0, -1.0, 0.0, 0.5, 1.5):  # the empirical CDF within 4 standard errors of Phi
        phi = 0.5 * (1 + math.erf(x / math.sqrt(2)))
        assert abs((z <= x).mean() - phi) < 4 * math.sqrt(phi * (1 - phi) / z.size), x
    extreme = np.asarray(rng.normal(jnp.asarray([0, 2**32 - 1], jnp.uint32)))
    assert np.isfinite(extreme).all() and extreme[0] < -5 and extreme[1] > 5


# ----------------------------------------------------------------------------- observation normalisation
def test_running_stats_match_numpy_over_a_stream_in_uneven_batches():
    x = np.random.default_rng(0).normal([3.0, -2.0], [0.5, 4.0], size=(1000, 2)).astype(np.float32)
    stats = running_stats.init((2,))
    assert np.asarray(running_stats.normalize(stats, jnp.asarray(x[:3]))).tolist() == x[:3].tolist()  # identity
    update = jax.jit(running_stats.update)
    for lo, hi in [(0, 1), (1, 8), (8, 300), (300, 1000)]:
        stats = update(stats, jnp.asarray(x[lo:hi]))
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.var, x.var(0), rtol=1e-4)
    assert float(stats.count) == 1000
    y = np.asarray(running_stats.normalize(stats, jnp.asarray(x)))
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(0), 1, rtol=1e-4)
    far = running_stats.normalize(stats, jnp.asarray([[1e6, -1e6]], jnp.float32))
    assert np.asarray(far).tolist() == [[running_stats.CLIP, -running_stats.CLIP]]


# ----------------------------------------------------------------------------- Ornstein-Uhlenbeck noise
def test_ou_noise_reverts_to_its_mean_and_has_the_stationary_spread():
    theta, sigma = 0.15, 0.2
    x = jnp.ones((1, 1))
    for t in range(1, 11):  # without noise: x_t = (1 - theta)^t
        x = exploration.ou_step(x, jnp.zeros((1, 1)), theta, sigma)
        assert float(x[0, 0]) == pytest.approx((1 - theta) ** t, rel=1e-5)

    def step(x, z):
        x = exploration.ou_step(x, z, theta, sigma)
        return x, x

    z = jax.random.normal(jax.random.PRNGKey(1), (20_000, 64, 1))
    _, xs = jax.lax.scan(step, exploration.ou_init(64, 1), z)
    xs = np.asarray(xs[1000:])  # past the transient
    assert abs(xs.mean()) < 0.02
    assert xs.std() == pytest.approx(sigma / math.sqrt(theta * (2 - theta)), rel=0.03)  # 0.39
    lag1 = np.corrcoef(xs[:-1].ravel(), xs[1:].ravel())[0, 1]
    assert lag1 == pytest.approx(1 - theta, abs=0.01)  # correlated in time, unlike Gaussian noise


def _staggered_env(num_envs=2, lengths=(3, 5)):
    """A 1-d continuous env whose env ``i`` ends its episodes every ``lengths[i]`` steps (truncation)."""
    spec = EnvSpec("test:staggered", num_envs, (1,), np.dtype(np.float32),
                   Box(-np.ones(1, np.float32), np.ones(1, np.float32), (1,)))
    limit = jnp.asarray(lengths, jnp.int32)

    def reset(key):
        obs = jnp.zeros((num_envs, 1))
        z = jnp.zeros((num_envs,), bool)
        return (jnp.zeros((num_envs,), jnp.int32), EpisodeStats.zeros(num_envs)), TimeStep(
            obs, jnp.zeros(num_envs), z, z, obs, z, jnp.zeros(num_envs), jnp.zeros(num_envs, jnp.int32), {})

    def step(state, action, key):
        t, stats = state
        t = t + 1
        done = t >= limit
        reward = -jnp.abs(action[:, 0])
        stats = stats.update(reward, done)
        obs = t[:, None].astype(jnp.float32)
        z = jnp.zeros((num_envs,), bool)
        ts = TimeStep(jnp.where(done[:, None], 0.0, obs), reward, z, done, obs, done, stats.last_return,
                      stats.last_length, {})
        return (jnp.where(done, 0, t), stats), ts

    return Env(spec, reset, step)


def test_ou_state_is_per_env_and_resets_where_an_episode_ends():
    cfg = ddpg.Config(num_envs=2, total_steps=40, buffer_size=40, batch_size=4, learning_starts=0, hidden=8,
                      last_hidden=0, noise="ou", noise_sigma=0.2, ou_theta=0.15)
    agent = ddpg.make_agent(cfg, _staggered_env())
    hp = cfg.hparams()
    state = agent.init(jax.random.PRNGKey(0), hp)
    update = jax.jit(agent.update)
    assert np.asarray(state.explore).tolist() == [[0.0], [0.0]]
    for t in range(1, 17):
        state, _ = update(state, hp)
        x = np.asarray(state.explore)[:, 0]
        for env, length in enumerate((3, 5)):
            if t % length == 0:
                assert x[env] == 0.0, (t, env)  # reset at that env's episode end ...
            else:
                assert x[env] != 0.0, (t, env)  # ... and only there
    assert len(set(np.asarray(state.explore)[:, 0].tolist())) == 2  # at t = 16 neither just reset: independent


# ----------------------------------------------------------------------------- TD3 and SAC targets
def test_td3_target_takes_the_min_of_the_twin_critics_hand_computed():
    q_next = jnp.asarray([[1.0, -2.0, 5.0], [0.5, 3.0, 4.0]])  # [C=2, B=3]
    batch = _batch([1.0, 0.0, -1.0], [0.99, 0.0, 0.5])
    y = ddpg.q_target(q_next, batch, {})
    np.testing.assert_allclose(y, [1 + 0.99 * 0.5, 0.0, -1 + 0.5 * 4.0], rtol=1e-6)
    loss, priority = ddpg.q_loss(q_next, y, jnp.asarray([1.0, 1.0, 0.0]))  # the last row weighs nothing
    td = np.asarray(q_next) - np.asarray(y)
    assert float(loss) == pytest.approx(((td[:, :2] ** 2).sum(1) / 3).sum(), rel=1e-6)
    np.testing.assert_allclose(priority, np.abs(td).mean(0), rtol=1e-6)


def test_td3_target_policy_smoothing_hand_computed():
    bits = jax.random.bits(jax.random.PRNGKey(3), (4,), jnp.uint32)
    eps = np.asarray(rng.normal(bits)).reshape(2, 2)
    action = jnp.asarray([[0.0, 0.9], [-0.95, 0.2]])
    hp = {"target_noise": jnp.float32(0.2), "target_noise_clip": jnp.float32(0.5)}
    got = ddpg.smoothed(action, bits, hp)
    want = np.clip(np.asarray(action) + np.clip(0.2 * eps, -0.5, 0.5), -1, 1)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    big = ddpg.smoothed(action, bits, dict(hp, target_noise=jnp.float32(100.0)))
    assert np.allclose(np.abs(np.asarray(big) - np.asarray(action)) <= 0.5 + 1e-6, True)  # clipped to +-0.5
    assert np.asarray(ddpg.smoothed(action, bits, dict(hp, target_noise=jnp.float32(0.0)))).tolist() == \
        np.asarray(action).tolist()


def test_sac_soft_target_and_temperature_loss_hand_computed():
    q_next = jnp.asarray([[2.0, -1.0], [1.5, 0.0]])
    logp = jnp.asarray([-1.0, 0.5])
    batch = _batch([0.5, 1.0], [0.99, 0.0])
    y = sac.soft_q_target(q_next, logp, 0.2, batch)
    np.testing.assert_allclose(y, [0.5 + 0.99 * (1.5 - 0.2 * -1.0), 1.0], rtol=1e-6)
    # alpha = e^0.3; target entropy -1: entropy (0.25) above it -> the loss falls as alpha falls
    loss, grad = jax.value_and_grad(sac.temperature_loss)(0.3, logp, -1.0)
    assert float(loss) == pytest.approx(-math.exp(0.3) * ((-1.0 + 0.5) / 2 - 1.0), rel=1e-6)
    assert float(grad) > 0  # gradient descent lowers log_alpha
    assert float(jax.grad(sac.temperature_loss)(0.3, jnp.asarray([3.0, 3.0]), -1.0)) < 0  # low entropy: raise it


# ----------------------------------------------------------------------------- D4PG's n-step categorical target
def test_d4pg_n_step_categorical_target_matches_rlax_projection_of_hand_returns():
    gamma, K = 0.9, 11
    atoms = jnp.linspace(-10.0, 10.0, K)
    rewards = np.asarray([[1.0, 2.0, 3.0], [1.0, -4.0, 5.0], [0.5, 0.5, 0.5], [2.0, 2.0, 2.0]], np.float32)
    term = np.asarray([[0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]], bool)
    trunc = np.asarray([[0, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]], bool)
    # by hand: row 0 runs all 3 steps, row 1 terminates at step 2 (no bootstrap), row 2 is truncated after
    # step 1 (bootstraps with gamma^1), row 3 runs all 3 steps
    hand_ret = [1 + 0.9 * 2 + 0.81 * 3, 1 + 0.9 * -4, 0.5, 2 + 1.8 + 0.81 * 2]
    hand_disc = [0.729, 0.0, 0.9, 0.729]
    ret, disc, _ = n_step_window(jnp.asarray(rewards), jnp.asarray(term), jnp.asarray(trunc), gamma)
    np.testing.assert_allclose(ret, hand_ret, rtol=1e-6)
    np.testing.assert_allclose(disc, hand_disc, rtol=1e-6)
    logits = jax.random.normal(jax.random.PRNGKey(0), (4, K))
    y = d4pg.categorical_target(atoms)(logits[None], _batch(ret, disc), {})
    probs = jax.nn.softmax(logits, -1)
    for b in range(4):
        oracle = rlax.categorical_l2_project(hand_ret[b] + hand_disc[b] * atoms, probs[b], atoms)
        np.testing.assert_allclose(y[b], oracle, atol=1e-6)
    loss, priority = d4pg.categorical_loss(logits[None], y, jnp.ones(4))
    assert float(loss) == pytest.approx(float(priority.mean()), rel=1e-6) and (np.asarray(priority) > 0).all()


# ----------------------------------------------------------------------------- the agents on the core
@pytest.mark.parametrize("algo", ["ddpg", "sac"])  # TD3 and D4PG act as DDPG does
def test_greedy_actions_lie_in_the_env_box_and_random_warmup_covers_it(algo):
    from jaxrl import agents

    module, _ = agents.get(algo)
    cfg = module.Config(total_steps=64, buffer_size=64, batch_size=8, learning_starts=32, hidden=8, layers=1)
    env = envs.make("gymnax:Pendulum-v1", num_envs=1)  # actions in [-2, 2]
    agent = module.make_agent(cfg, env)
    hp = cfg.hparams()
    state = agent.init(jax.random.PRNGKey(0), hp)
    state, _ = jax.lax.scan(lambda s, _: (agent.update(s, hp)[0], None), state, None, length=32)
    stored = np.asarray(state.buffer.data["action"][:32, 0, 0])  # the warm-up's uniformly random actions
    assert stored.min() < -0.8 and stored.max() > 0.8 and np.abs(stored).max() <= 1.0  # normalised box
    a = np.asarray(agent.act(state, jnp.asarray([[1.0, 0.0, 8.0], [-1.0, 0.0, -8.0]]), None))
    assert a.shape == (2, 1) and np.all(np.abs(a) <= 2.0)


def test_normalize_obs_keeps_stats_in_the_state_and_refuses_integer_observations():
    cfg = sac.Config(total_steps=64, buffer_size=64, batch_size=8, learning_starts=16, hidden=8, layers=1,
                     normalize_obs=True)
    env = envs.make("gymnax:Pendulum-v1", num_envs=1)
    agent = sac.make_agent(cfg, env)
    hp = cfg.hparams()
    state = agent.init(jax.random.PRNGKey(0), hp)
    state, _ = jax.lax.scan(lambda s, _: (agent.update(s, hp)[0], None), state, None, length=20)
    seen = np.asarray(state.buffer.data["obs"][:20, 0])
    assert float(state.obs_stats.count) == 20
    np.testing.assert_allclose(state.obs_stats.mean, seen.mean(0), rtol=1e-4, atol=1e-5)
    from jaxrl.config import ConfigError

    with pytest.raises(ConfigError, match="normalize_obs"):
        from jaxrl.agents import dqn

        dqn.make_agent(dqn.Config(normalize_obs=True, num_envs=1),
                       envs.make("gymnax:FrozenLake-misc", num_envs=1))
