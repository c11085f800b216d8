"""The environment layer: one interface over gymnax and envpool."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as envs
from jaxrl.config import ConfigError


def _rollout(env, steps, key=jax.random.PRNGKey(0), action_fn=None):
    def run(key):
        st, ts0 = env.reset(key)

        def body(st, k):
            if action_fn is None:
                a = jax.random.randint(k, (env.spec.num_envs,), 0, env.spec.action_space.n)
            else:
                a = action_fn(k)
            st, ts = env.step(st, a, k)
            return st, ts

        _, traj = jax.lax.scan(body, st, jax.random.split(key, steps))
        return ts0, traj

    return jax.jit(run)(key)


@pytest.mark.parametrize("env_id", ["gymnax:CartPole-v1", "envpool:CartPole-v1"])
def test_timestep_structure_matches_across_backends(env_id):
    env = envs.make(env_id, num_envs=3)
    assert env.spec.obs_shape == (4,) and env.spec.action_space == envs.Discrete(2)
    ts0, traj = _rollout(env, 50)
    ref = envs.make("gymnax:CartPole-v1", num_envs=3)
    _, ref_traj = _rollout(ref, 50)
    strip = lambda t: t._replace(info={})
    shapes = jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), strip(traj))
    ref_shapes = jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), strip(ref_traj))
    assert shapes == ref_shapes
    assert traj.obs.shape == (50, 3, 4) and traj.reward.dtype == jnp.float32
    assert bool(traj.episode_done.any()), "random CartPole play must end episodes within 50 steps"


@pytest.mark.parametrize("env_id", ["gymnax:CartPole-v1", "envpool:CartPole-v1"])
def test_truncation_and_termination_are_told_apart(env_id):
    # A 5-step time limit: random play almost never falls within 5 steps, so episodes are truncated.
    env = envs.make(env_id, num_envs=4, max_episode_steps=5)
    _, traj = _rollout(env, 40)
    trunc, term = np.asarray(traj.truncated), np.asarray(traj.terminated)
    assert trunc.any()
    assert not (trunc & term).any()
    # Truncated episodes are exactly 5 steps long with return 5 (reward 1 per step).
    lengths = np.asarray(traj.episode_length)[trunc]
    returns = np.asarray(traj.episode_return)[trunc]
    assert (lengths == 5).all() and (returns == 5.0).all()


def test_termination_and_episode_stats_hand_checked():
    # Always push right: CartPole falls over in a deterministic-ish handful of steps.
    env = envs.make("gymnax:CartPole-v1", num_envs=1)
    ts0, traj = _rollout(env, 60, action_fn=lambda k: jnp.ones((1,), jnp.int32))
    done = np.asarray(traj.episode_done[:, 0])
    term = np.asarray(traj.terminated[:, 0])
    first = int(np.argmax(done))
    assert done.any() and term[first], "pushing right must terminate the episode"
    # Hand check: the episode length is the number of steps up to and including the end; every
    # step paid reward 1, so the return equals the length, and the stats hold until the next end.
    assert int(traj.episode_length[first, 0]) == first + 1
    assert float(traj.episode_return[first, 0]) == first + 1
    assert float(traj.episode_return[first - 1, 0]) == 0.0
    # final_obs is the terminal observation (pole past the limit); obs is the reset one.
    theta_final = float(traj.final_obs[first, 0, 2])
    assert abs(theta_final) > 0.2095 or abs(float(traj.final_obs[first, 0, 0])) > 2.4
    assert abs(float(traj.obs[first, 0, 2])) < 0.06


def test_envpool_steps_inside_jit_scan_and_vmaps_over_seeds():
    S = 3
    env = envs.make("envpool:CartPole-v1", num_envs=2, num_seeds=S)

    def run(key):
        st, ts = env.reset(key)

        def body(st, k):
            a = jax.random.randint(k, (2,), 0, 2)
            st, ts = env.step(st, a, k)
            return st, ts.reward.sum()

        _, r = jax.lax.scan(body, st, jax.random.split(key, 30))
        return r.sum()

    out = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(0), S))
    assert out.shape == (S,)
    assert (np.asarray(out) > 0).all()
    # calling the compiled program again resets the pool and runs again (no deadlock)
    out2 = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(1), S))
    assert out2.shape == (S,)


def test_envpool_atari_obs_are_hwc_uint8():
    env = envs.make("envpool:Pong-v5", num_envs=2)
    assert env.spec.obs_shape == (84, 84, 4) and env.spec.obs_dtype == np.uint8
    _, traj = _rollout(env, 3)
    assert traj.obs.shape == (3, 2, 84, 84, 4) and traj.obs.dtype == jnp.uint8


@pytest.mark.parametrize("bad,expect", [("gymnax:CartPol-v1", "gymnax:CartPole-v1"),
                                        ("Pong-v5", "envpool:Pong-v5"),
                                        ("nope:CartPole-v1", "gymnax:CartPole-v1")])
def test_unknown_env_names_close_matches(bad, expect):
    with pytest.raises(ConfigError) as e:
        envs.make(bad, num_envs=1)
    msg = str(e.value)
    assert expect in msg and "\n" not in msg and msg.startswith("env:")


def test_bad_num_envs():
    with pytest.raises(ConfigError, match="num_envs"):
        envs.make("gymnax:CartPole-v1", num_envs=0)


def test_spec_records_the_size_of_a_discrete_observation_space():
    assert envs.make("gymnax:FrozenLake-misc", num_envs=1).spec.obs_num_states == 16
    assert envs.make("gymnax:FrozenLake-misc", num_envs=1, map_name="8x8").spec.obs_num_states == 64
    assert envs.make("gymnax:CartPole-v1", num_envs=1).spec.obs_num_states is None
    assert envs.make("envpool:CartPole-v1", num_envs=1).spec.obs_num_states is None


@pytest.mark.parametrize("map_name", ["4x4", "8x8"])
def test_gymnax_frozenlake_dynamics_match_gymnasium(map_name):
    # Tabular results are compared with references run on gym's FrozenLake (slippery: the intended
    # move and the two perpendicular ones, 1/3 each).  Sample every (non-terminal state, action)
    # of gymnax's step 3,000 times and compare with gymnasium's exact transition table; rewards
    # and termination of each sampled transition must match exactly.
    import gymnasium
    import gymnax
    from gymnax.environments.misc.frozen_lake import EnvState

    env = envs.make("gymnax:FrozenLake-misc", num_envs=1, map_name=map_name)
    ref = gymnasium.make("FrozenLake-v1", map_name=map_name, is_slippery=True).unwrapped
    S, n = env.spec.obs_num_states, 3000
    assert S == ref.observation_space.n
    live = [s for s, c in enumerate(ref.desc.ravel()) if c not in b"HG"]
    P, R, D = np.zeros((S, 4, S)), np.zeros((S, 4, S)), np.zeros((S, 4, S), bool)
    for s in live:
        for a in range(4):
            for p, s2, r, d in ref.P[s][a]:
                P[s, a, s2] += p
                R[s, a, s2], D[s, a, s2] = r, d

    genv, params = gymnax.make("FrozenLake-misc", map_name=map_name)
    sa = np.array([(s, a) for s in live for a in range(4)])

    def one(k, s, a):
        obs, _, r, d, _ = genv.step_env(k, EnvState(position=s, time=0), a, params)
        return obs, r, d

    keys = jax.random.split(jax.random.PRNGKey(0), len(sa) * n).reshape(len(sa), n, 2)
    obs, r, d = map(np.asarray, jax.jit(jax.vmap(jax.vmap(one, (0, None, None))))(keys, sa[:, 0], sa[:, 1]))
    for i, (s, a) in enumerate(sa):
        freq = np.bincount(obs[i], minlength=S) / n
        np.testing.assert_allclose(freq, P[s, a], atol=5 * np.sqrt(2 / 9 / n), err_msg=f"state {s} action {a}")
        assert (r[i] == R[s, a, obs[i]]).all() and (d[i] == D[s, a, obs[i]]).all(), (s, a)
