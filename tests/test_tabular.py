"""Tabular methods on FrozenLake: value/Q iteration on a counted model, and Q-learning."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl.agents import q_learning as ql
from jaxrl.agents import value_iteration as vi
from jaxrl.core.program import make_train
from jaxrl.config import ConfigError

GAMMA = 0.9
# Tiny MDP. State 0: action 0 stays (reward 1); action 1 moves to state 1 with prob 1/2, else stays
# (reward 0).  State 1 is absorbing with reward 2 for either action.  By hand, gamma = 0.9:
#   V(1) = 2 / (1 - 0.9) = 20
#   stay:  V(0) = 1 + 0.9 V(0)                   -> 10
#   move:  V(0) = 0.45 V(0) + 0.45 * 20          -> 9 / 0.55 = 16.3636...   (optimal)
#   Q(0, 0) = 1 + 0.9 * 16.3636 = 15.7273,  Q(0, 1) = 16.3636,  Q(1, .) = 20
P = np.zeros((2, 2, 2), np.float32)
P[0, 0, 0] = 1.0
P[0, 1] = [0.5, 0.5]
P[1, :, 1] = 1.0
R = np.zeros((2, 2, 2), np.float32)
R[0, 0, 0] = 1.0
R[1, :, 1] = 2.0
V_STAR = np.array([9 / 0.55, 20.0])
Q_STAR = np.array([[1 + 0.9 * 9 / 0.55, 9 / 0.55], [20.0, 20.0]])


def _iterate(backup, x, n=400):
    return jax.jit(lambda x: jax.lax.fori_loop(0, n, lambda _, t: backup(P, R, t, GAMMA), x))(x)


def test_value_iteration_fixed_point_matches_hand_computed_mdp():
    np.testing.assert_allclose(_iterate(vi.bellman_v, jnp.zeros(2)), V_STAR, rtol=1e-5)
    np.testing.assert_allclose(_iterate(vi.bellman_q, jnp.zeros((2, 2))), Q_STAR, rtol=1e-5)


def test_model_from_counts_recovers_the_mdp():
    # counts proportional to P, rewards recorded per transition
    s, a, s2, r = [], [], [], []
    for (i, j, k), p in np.ndenumerate(P):
        for _ in range(int(p * 8)):
            s.append(i), a.append(j), s2.append(k), r.append(R[i, j, k])
    z = jnp.zeros((2, 2, 2))
    model = vi.Model(z, z).record(jnp.array(s), jnp.array(a), jnp.array(r, jnp.float32), jnp.array(s2))
    p, rr = vi.model_from_counts(model)
    np.testing.assert_allclose(p, P)
    np.testing.assert_allclose(rr, R)
    np.testing.assert_allclose(_iterate(vi.bellman_v, jnp.zeros(2)), _iterate(
        lambda _p, _r, v, g: vi.bellman_v(p, rr, v, g), jnp.zeros(2)), rtol=1e-6)


@pytest.mark.parametrize("mode", ["v", "q"])
def test_value_iteration_solves_frozenlake_like_the_reference(mode):
    # Reference: a greedy 20-episode test reached 0.8 success in 36 iterations (100 random steps
    # per iteration, gamma 0.9).  Same criterion here; median over 8 seeds within 60 iterations.
    # The greedy policy of the exact gamma=0.9 model succeeds ~0.70 of the time, so a 20-episode
    # test passes 0.8 only by luck: also require a mean success >= 0.6 over the last 20 iterations.
    cfg = vi.Config(mode=mode, iterations=100)
    env = E.make("gymnax:FrozenLake-misc", num_envs=1)
    agent = vi.make_agent(cfg, env)
    _, m = jax.jit(jax.vmap(make_train(agent, cfg.iterations)))(jax.random.split(jax.random.PRNGKey(0), 8))
    succ = np.asarray(m["episode_return_sum"] / m["episodes"])
    first = [int(np.argmax(x >= 0.8)) + 1 if (x >= 0.8).any() else np.inf for x in succ]
    assert np.median(first) <= 60, first
    assert np.median(succ[:, -20:].mean(1)) >= 0.6, succ[:, -20:].mean(1)
    assert succ[:, 0].max() < 0.3


@pytest.mark.parametrize("mod", [ql, vi], ids=["q_learning", "value_iteration"])
def test_frozenlake_8x8_infers_64_states_and_checks_the_override(mod):
    def num_states(env):
        state = mod.make_agent(mod.Config(), env).init(jax.random.PRNGKey(0), mod.Config().hparams())
        table = state.q if mod is ql else state.model.counts  # [S, A] or [S, A, S]
        return table.shape[0]

    env = E.make("gymnax:FrozenLake-misc", num_envs=1, map_name="8x8")
    assert num_states(env) == 64
    assert num_states(E.make("gymnax:FrozenLake-misc", num_envs=1)) == 16
    mod.make_agent(mod.Config(num_states=64), env)  # a correct override is accepted
    with pytest.raises(ConfigError) as e:
        mod.make_agent(mod.Config(num_states=16), env)
    msg = str(e.value)
    assert msg.startswith("num_states:") and "64" in msg and "\n" not in msg, msg


def test_value_iteration_runs_on_frozenlake_8x8_without_num_states():
    # 100 iterations of 100 random steps: too few to find the 8x8 goal reliably, so this checks the
    # plumbing: a 64-state model whose states beyond the 4x4 range fill in, and valid success rates.
    env = E.make("gymnax:FrozenLake-misc", num_envs=1, map_name="8x8")
    agent = vi.make_agent(vi.Config(iterations=100), env)
    state, m = jax.jit(jax.vmap(make_train(agent, 20)))(jax.random.split(jax.random.PRNGKey(0), 2))
    visited = np.asarray(state.model.counts).sum((-1, -2)) > 0  # [seeds, 64]
    assert visited.shape == (2, 64) and (visited[:, 16:].sum(1) > 16).all(), visited.sum(1)
    succ = np.asarray(m["episode_return_sum"] / m["episodes"])
    assert succ.shape == (2, 20) and ((succ >= 0) & (succ <= 1)).all()


def test_q_update_by_hand():
    q = jnp.array([[0.0, 1.0], [2.0, 4.0]])
    q2, td = ql.q_update(q, 0, 1, 1.0, 1, jnp.array(False), 0.5, 0.9)
    assert float(td) == pytest.approx(1.0 + 0.9 * 4.0 - 1.0)
    assert float(q2[0, 1]) == pytest.approx(1.0 + 0.5 * 3.6)
    q3, td = ql.q_update(q, 0, 1, 1.0, 1, jnp.array(True), 0.5, 0.9)  # terminal: no bootstrap
    assert float(td) == pytest.approx(0.0) and float(q3[0, 1]) == pytest.approx(1.0)


def test_q_learning_solves_deterministic_frozenlake():
    cfg = ql.Config(iterations=200, steps_per_iteration=10)
    env = E.make("gymnax:FrozenLake-misc", num_envs=1, is_slippery=False)
    _, m = jax.jit(jax.vmap(make_train(ql.make_agent(cfg, env), 20)))(jax.random.split(jax.random.PRNGKey(0), 4))
    succ = np.asarray(m["episode_return_sum"] / m["episodes"])
    assert (succ[:, -1] == 1.0).all(), succ  # every seed ends with the shortest safe path
    assert (succ[:, 0] < 1.0).all()


def test_q_learning_iterations_to_solve_slippery_frozenlake():
    # Lapan ch. 6 (02_frozenlake_q_learning.py): alpha 0.2, gamma 0.9, one uniformly random step per
    # iteration (the env reset only when an episode ends), then 20 greedy test episodes that do not
    # update Q; solved at the first iteration whose test mean is > 0.8 (17 or more successes of 20).
    # The reference reports one run: 1,860 iterations.  Over 64 seeds (30,000 iterations at most)
    # iterations-to-solve measured here: median 6,428, 10th/90th percentiles 2,543 / 12,780, 3 of
    # 64 seeds within 1,860.  Resampling those 64, the median of 8 seeds exceeds 12,500 with
    # probability < 0.1%: assert that bound.  The run stops once the median of 8 is known.
    seeds, chunk, limit = 8, 1000, 12_500
    cfg = ql.Config(iterations=limit)
    agent = ql.make_agent(cfg, E.make("gymnax:FrozenLake-misc", num_envs=1))
    hp = cfg.hparams()

    def run(state):
        def body(s, _):
            s, m = agent.update(s, hp)
            return s, m["episode_return_sum"]  # successes of the 20 test episodes

        return jax.lax.scan(body, state, None, chunk)

    state = jax.jit(jax.vmap(lambda k: agent.init(k, hp)))(jax.random.split(jax.random.PRNGKey(0), seeds))
    run = jax.jit(jax.vmap(run), donate_argnums=0)
    first = np.full(seeds, np.inf)
    for start in range(0, limit, chunk):
        state, wins = run(state)
        wins = np.asarray(wins)
        if start == 0:
            assert (wins[:, 0] <= 2).all(), wins[:, 0]  # the all-zero table's greedy policy: ~1.5% success
        hit = (wins > 16).any(1) & np.isinf(first)
        first[hit] = start + 1 + np.argmax(wins[hit] > 16, 1)
        if np.isfinite(first).sum() > seeds // 2:
            break
    assert np.median(first) <= limit, first


def test_tabular_config_errors_are_one_line():
    for cls, bad, name in [(vi.Config, {"mode": "pi"}, "mode"), (vi.Config, {"random_steps": 3, "num_envs": 2},
                                                                  "random_steps"),
                           (ql.Config, {"alpha": 0}, "alpha"), (ql.Config, {"epsilon": 1.5}, "epsilon")]:
        with pytest.raises(ConfigError) as e:
            cls.from_dict(bad)
        assert "\n" not in str(e.value) and str(e.value).startswith(name + ":"), str(e.value)
    cart = E.make("gymnax:CartPole-v1", num_envs=1)
    with pytest.raises(ConfigError) as e:
        ql.make_agent(ql.Config(), cart)
    assert "\n" not in str(e.value) and "tabular" in str(e.value)
