"""ACKTR: learns CartPole (through ``jaxrl train``) and Pendulum; K-FAC state inside the agent; seeds vmap;
bit-exact resume; one-line config errors."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as envs
from _small_runs import jaxrl_cli
from jaxrl.agents import acktr
from jaxrl.config import ConfigError
from jaxrl.core.program import make_train


def _returns(m):
    return np.asarray(m["episode_return_sum"] / jnp.maximum(m["episodes"], 1))


def test_acktr_solves_cartpole_4_seeds_through_jaxrl_train(tmp_path):
    """Defaults (16 envs x 20 steps, 10 K-FAC steps per inverse, max_kl 0.01, no momentum), 300k of the
    issue's 500k steps: the final return of 4 seeds measured 500 / 500 / 483 / 500 at 300k (500k: 500 / 498
    / 495 / 491), greedy evaluation 500 for all."""
    out = tmp_path / "run"
    p = jaxrl_cli("train", "acktr", "--num-seeds", "4", "--total-steps", "300000", "--out", str(out), "--quiet",
                  timeout=600)
    assert p.returncode == 0, p.stderr
    s = json.loads((out / "summary.json").read_text())
    final, greedy = np.asarray(s["final_return"]), np.asarray(s["eval_return"])
    assert s["finished"] and len(final) == 4
    assert np.median(final) >= 475 and final.min() >= 400, final
    assert np.median(greedy) >= 475, greedy


def test_acktr_learns_pendulum():
    """Continuous actions, 500k of the issue's 1M steps, gamma 0.9, 8 vmapped seeds: a random policy scores
    about -1,200; the last logging point measured -203 / -318 / -447 / -178 / -179 / -188 / -182 / -735
    (2026-12-04, 18 s). At 300k steps with 4 seeds one seed ended near -760 on one VM and stuck at -1,600 (a
    local optimum it never left) on another: which seed gets stuck depends on the CPU's float rounding, so
    the test uses the longer budget and 8 seeds."""
    cfg = acktr.Config(total_steps=500_000, gamma=0.9)
    agent = acktr.make_agent(cfg, envs.make("gymnax:Pendulum-v1", num_envs=cfg.num_envs))
    _, m = jax.jit(jax.vmap(make_train(agent, 10)))(jax.random.split(jax.random.PRNGKey(0), 8))
    r = _returns(m)
    assert (r[:, 0] < -900).all(), r[:, 0]
    assert np.median(r[:, -1]) >= -500 and r[:, -1].min() >= -1000, r[:, -1]


def _small(**kw):
    cfg = acktr.Config(**dict(dict(num_envs=4, num_steps=8, inverse_every=4, total_steps=1024), **kw))
    return acktr.make_agent(cfg, envs.make("gymnax:CartPole-v1", num_envs=cfg.num_envs))


def test_kfac_state_is_kept_in_the_agent_and_vmapped_seeds_match_single_runs():
    agent = _small()
    assert agent.num_updates == 8 and agent.steps_per_update == 4 * 4 * 8
    train = make_train(agent, num_log_points=agent.num_updates)
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    states, batched = jax.jit(jax.vmap(train))(keys)
    ks = jax.tree_util.tree_map(lambda x: x[0], states.kfac)
    assert int(ks.count) == 8 * 4  # one statistics batch per K-FAC step
    assert not np.allclose(ks.A["MLP_0/Dense_0"], np.eye(5))  # statistics replaced the initial identities
    inv = np.asarray(ks.A_inv["MLP_0/Dense_0"])
    assert not np.allclose(inv, inv[0, 0] * np.eye(5))  # and the inverses were refreshed from them
    assert sorted(ks.A) == ["Dense_0", "Dense_1", "MLP_0/Dense_0", "MLP_0/Dense_1", "MLP_1/Dense_0", "MLP_1/Dense_1"]
    for key in ks.A:  # symmetric PSD factors
        for f in (ks.A[key], ks.G[key]):
            np.testing.assert_allclose(f, f.T, atol=1e-5)
            assert np.linalg.eigvalsh(np.asarray(f, np.float64)).min() > -1e-5
    scale = np.asarray(batched["trust_scale"])
    assert ((scale > 0) & (scale <= 1)).all() and np.isfinite(np.asarray(batched["loss"])).all()
    _, single = jax.jit(train)(keys[1])
    for k in ("loss", "kl", "trust_scale"):
        np.testing.assert_allclose(batched[k][1], single[k], rtol=2e-3, atol=1e-6)


def test_resume_is_bit_exact(tmp_path):
    from _small_runs import assert_resumes_bit_exact
    from jaxrl.driver import RunSpec

    cfg = acktr.Config(num_envs=4, num_steps=8, inverse_every=2, total_steps=512, hidden=16)

    def spec(out):
        return RunSpec("acktr", "gymnax:CartPole-v1", cfg, num_seeds=2, out=str(out), eval_episodes=2)

    resumed, full = assert_resumes_bit_exact(spec, tmp_path, stop_after=3)
    assert resumed["final_return"] == full["final_return"]


@pytest.mark.parametrize("kw,field", [
    (dict(total_steps=100), "total_steps"),
    (dict(max_kl=0.0), "max_kl"),
    (dict(momentum=1.5), "momentum"),
    (dict(damping=0.0), "damping"),
    (dict(returns="td"), "returns"),
])
def test_config_errors_name_the_field(kw, field):
    with pytest.raises(ConfigError) as e:
        acktr.Config(**kw).validate()
    assert e.value.field == field and "\n" not in str(e.value)
