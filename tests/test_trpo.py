"""TRPO: learns CartPole (through ``jaxrl train``) and Pendulum; every update inside the KL bound; seeds
vmap; bit-exact resume; one-line config errors."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as envs
from _small_runs import jaxrl_cli
from jaxrl.agents import trpo
from jaxrl.config import ConfigError
from jaxrl.core.program import make_train


def _returns(m):
    return np.asarray(m["episode_return_sum"] / jnp.maximum(m["episodes"], 1))


def test_trpo_solves_cartpole_8_seeds_through_jaxrl_train(tmp_path):
    """Defaults (8 envs x 256 steps, max_kl 0.01), 250k of the issue's 500k steps, 8 seeds: the final return
    (last 5% of training) measured 500 / 500 / 411 / 500 / 500 / 500 / 500 / 500 (jax 0.10.2) and 500 / 500 /
    500 / 490 / 500 / 461 / 500 / 500 (jax 0.12), greedy evaluation 472-500 (2026-12-04). With 4 seeds the
    median fell to 453 on jax 0.12 (416 / 455 / 451 / 500): TRPO's last window on CartPole dips on some seeds,
    and which ones depends on the float rounding, so the median is taken over 8."""
    out = tmp_path / "run"
    p = jaxrl_cli("train", "trpo", "--num-seeds", "8", "--total-steps", "250000", "--out", str(out), "--quiet",
                  timeout=600)
    assert p.returncode == 0, p.stderr
    s = json.loads((out / "summary.json").read_text())
    final, greedy = np.asarray(s["final_return"]), np.asarray(s["eval_return"])
    assert s["finished"] and len(final) == 8
    assert np.median(final) >= 475 and final.min() >= 400, final
    assert np.median(greedy) >= 475, greedy


def test_trpo_learns_pendulum():
    """Continuous actions, 200k of the issue's 1M steps, gamma 0.9, 4 vmapped seeds: a random policy scores
    about -1,200; the last logging point measured -263 / -326 / -232 / -218 (the first -1,216 median)."""
    cfg = trpo.Config(total_steps=200_000, gamma=0.9)
    agent = trpo.make_agent(cfg, envs.make("gymnax:Pendulum-v1", num_envs=cfg.num_envs))
    _, m = jax.jit(jax.vmap(make_train(agent, 10)))(jax.random.split(jax.random.PRNGKey(0), 4))
    r = _returns(m)
    assert (r[:, 0] < -900).all(), r[:, 0]
    assert np.median(r[:, -1]) >= -500 and r[:, -1].min() >= -800, r[:, -1]


def _small(**kw):
    cfg = trpo.Config(**dict(dict(num_envs=4, num_steps=64, total_steps=4096, vf_minibatches=4), **kw))
    return trpo.make_agent(cfg, envs.make("gymnax:CartPole-v1", num_envs=cfg.num_envs))


def test_every_update_stays_within_the_kl_bound_and_vmapped_seeds_match_single_runs():
    agent = _small(max_kl=0.005)
    train = make_train(agent, num_log_points=agent.num_updates)  # one logging point per update
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    _, batched = jax.jit(jax.vmap(train))(keys)
    kl, accepted = np.asarray(batched["kl"]), np.asarray(batched["accepted"])
    assert kl.shape == (2, 16) and (kl <= 0.005 * (1 + 1e-5)).all(), kl
    assert (kl[accepted == 1] > 0).all() and accepted.mean() > 0.8  # steps are taken, and measured
    frac = np.asarray(batched["step_fraction"])
    assert set(np.unique(frac[accepted == 1])) <= {0.5 ** k for k in range(10)}
    _, single = jax.jit(train)(keys[1])
    for k in ("kl", "value_loss", "improvement"):
        np.testing.assert_allclose(batched[k][1], single[k], rtol=2e-3, atol=1e-6)
    assert not np.allclose(batched["kl"][0], batched["kl"][1])


def test_resume_is_bit_exact(tmp_path):
    from _small_runs import assert_resumes_bit_exact
    from jaxrl.driver import RunSpec

    cfg = trpo.Config(num_envs=4, num_steps=64, total_steps=2048, vf_minibatches=4, hidden=16)

    def spec(out):
        return RunSpec("trpo", "gymnax:CartPole-v1", cfg, num_seeds=2, out=str(out), eval_episodes=2)

    resumed, full = assert_resumes_bit_exact(spec, tmp_path, stop_after=3)
    assert resumed["final_return"] == full["final_return"]


@pytest.mark.parametrize("kw,field", [
    (dict(vf_minibatches=3), "vf_minibatches"),
    (dict(max_kl=0.0), "max_kl"),
    (dict(total_steps=100), "total_steps"),
    (dict(cg_iters=0), "cg_iters"),
    (dict(num_envs=1, num_steps=1, vf_minibatches=1), "normalize_advantages"),
])
def test_config_errors_name_the_field(kw, field):
    with pytest.raises(ConfigError) as e:
        trpo.Config(**kw).validate()
    assert e.value.field == field and "\n" not in str(e.value)
