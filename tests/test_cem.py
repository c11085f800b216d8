"""Cross-entropy method: CartPole at the reference pace; elite selection; elites carried over."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as E
from jaxrl.agents import cem
from jaxrl.core.program import make_train
from jaxrl.config import ConfigError


def test_cem_solves_cartpole_like_the_reference():
    # Reference: batch 16, 70th percentile, 128 hidden, lr .01: batch mean > 199 after ~40 batches.
    cfg = cem.Config(iterations=60)
    env = E.make("gymnax:CartPole-v1", num_envs=cfg.num_envs)
    agent = cem.make_agent(cfg, env)
    _, m = jax.jit(jax.vmap(make_train(agent, cfg.iterations)))(jax.random.split(jax.random.PRNGKey(0), 4))
    ret = np.asarray(m["episode_return_sum"] / m["episodes"])
    first = [np.argmax(r > 199) + 1 if (r > 199).any() else np.inf for r in ret]
    assert np.median(first) <= 50, first
    assert ret[:, 0].max() < 60  # it started from a random policy


def test_elite_mask():
    score = jnp.array([0.0, 0.0, 0.0, 1.0, 0.5, 2.0, 3.0, 9.0])
    valid = jnp.array([True] * 7 + [False])
    elite, bound = cem.elite_mask(score, valid, 70.0)
    np.testing.assert_allclose(bound, np.percentile(np.asarray(score[:7]), 70), rtol=1e-5)
    assert elite.tolist() == [False, False, False, False, False, True, True, False]
    # a batch of all-equal scores has no elite; a 0/1 batch keeps only its successes
    assert not cem.elite_mask(jnp.ones(5), jnp.ones(5, bool), 70.0)[0].any()
    e01 = cem.elite_mask(jnp.array([0.0, 0, 0, 0, 1]), jnp.ones(5, bool), 30.0)[0]
    assert e01.tolist() == [False] * 4 + [True]


def test_keep_elites_carries_the_best_episodes():
    cfg = cem.Config(num_envs=8, keep_elites=4, gamma=0.9, max_steps=60, iterations=3)
    env = E.make("gymnax:CartPole-v1", num_envs=8)
    agent = cem.make_agent(cfg, env)
    hp = cfg.hparams()
    s = agent.init(jax.random.PRNGKey(0), hp)
    seen = []
    for _ in range(3):
        s, m = jax.jit(agent.update)(s, hp)
        e = s.elites
        v = np.asarray(e.valid)
        assert v.sum() >= 2  # 70th percentile of 8 (+ carried) episodes: at least 2 elite
        # the carried scores are the discounted returns of the carried episodes
        disc = 0.9 ** np.arange(60)[:, None]
        np.testing.assert_allclose(np.asarray(e.score)[v], (np.asarray(e.mask) * disc).sum(0)[v], rtol=1e-5)
        seen.append(np.sort(np.where(v, np.asarray(e.score), -1.0)))
    # carried elites only ever improve: the k-th best never decreases
    assert (np.diff(np.stack(seen), axis=0) >= -1e-6).all()


def test_cem_config_errors_are_one_line():
    for bad, name in [({"percentile": 120}, "percentile"), ({"keep_elites": -1}, "keep_elites"),
                      ({"iterations": "many"}, "iterations")]:
        with pytest.raises(ConfigError) as e:
            cem.Config.from_dict(bad)
        assert "\n" not in str(e.value) and str(e.value).startswith(name + ":"), str(e.value)
