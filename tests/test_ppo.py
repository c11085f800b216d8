"""PPO: learning (through ``jaxrl train``), determinism, vmapped seeds and sweeps, continuous actions, config validation."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as envs
from jaxrl.agents import ppo
from jaxrl.core.program import make_train
from jaxrl.config import ConfigError
from _small_runs import jaxrl_cli


def _returns(metrics):
    return np.asarray(metrics["episode_return_sum"] / jnp.maximum(metrics["episodes"], 1))


def test_ppo_solves_cartpole_4_seeds_through_jaxrl_train(tmp_path):
    """The command users run, with defaults (4 envs x 128 steps, 4 epochs x 4 minibatches, 500k steps):
    the median and the worst of 4 seeds' final return (last 5% of training) and greedy evaluation."""
    out = tmp_path / "run"
    p = jaxrl_cli("train", "ppo", "--num-seeds", "4", "--seed", "42", "--out", str(out), "--quiet", timeout=400)
    assert p.returncode == 0, p.stderr
    summary = json.loads((out / "summary.json").read_text())
    final, greedy = np.asarray(summary["final_return"]), np.asarray(summary["eval_return"])
    assert summary["finished"] and len(final) == 4
    assert np.median(final) >= 475 and final.min() >= 400, final
    assert np.median(greedy) >= 475, greedy


def _short(total=8192, **kw):
    cfg = ppo.Config(total_steps=total, **kw)
    return ppo.make_agent(cfg, envs.make("gymnax:CartPole-v1", num_envs=cfg.num_envs))


def test_same_key_same_metrics_different_seeds_differ():
    train = jax.jit(jax.vmap(make_train(_short(), num_log_points=4)))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    s1, m1 = train(keys)
    s2, m2 = train(keys)
    for k in m1:
        np.testing.assert_array_equal(m1[k], m2[k])
    jax.tree_util.tree_map(np.testing.assert_array_equal, s1.params, s2.params)
    assert not np.array_equal(m1["loss"][0], m1["loss"][1])
    assert not np.array_equal(np.asarray(jax.tree_util.tree_leaves(s1.params)[0][0]),
                              np.asarray(jax.tree_util.tree_leaves(s1.params)[0][1]))


def test_vmapped_seed_equals_single_seed_run():
    train = make_train(_short(), num_log_points=2)
    keys = jax.random.split(jax.random.PRNGKey(5), 2)
    _, batched = jax.jit(jax.vmap(train))(keys)
    _, single = jax.jit(train)(keys[1])
    np.testing.assert_allclose(batched["loss"][1], single["loss"], rtol=2e-4, atol=1e-5)


def test_hyperparameter_sweep_is_a_batch_axis():
    agent = _short(anneal_lr=False)
    train = make_train(agent, num_log_points=2)
    hp = agent.config.hparams()
    lrs = jnp.array([1e-5, 1e-3, 1e-2])
    hp_b = {k: (lrs if k == "lr" else jnp.broadcast_to(v, (3,))) for k, v in hp.items()}
    keys = jnp.stack([jax.random.PRNGKey(0)] * 3)
    _, m = jax.jit(jax.vmap(train))(keys, hp_b)
    np.testing.assert_allclose(m["lr"][:, 0], lrs, rtol=1e-6)
    assert len({float(x) for x in m["approx_kl"][:, -1]}) == 3  # same key, different lr, different run


def test_continuous_ppo_learns_pendulum():
    """Pendulum-v1, 300k steps, 4 vmapped seeds (README's row): a random policy scores about -1200; the
    last logging point measured -245, -228, -332, -282 (median -264)."""
    cfg = ppo.Config(num_envs=16, num_steps=256, num_epochs=10, num_minibatches=32, total_steps=300_000, anneal_lr=False,
                     lr=1e-3, gamma=0.9, ent_coef=0.0)
    agent = ppo.make_agent(cfg, envs.make("gymnax:Pendulum-v1", num_envs=cfg.num_envs))
    _, m = jax.jit(jax.vmap(make_train(agent, num_log_points=10)))(jax.random.split(jax.random.PRNGKey(0), 4))
    r = _returns(m)
    assert np.isfinite(m["loss"]).all()
    assert (r[:, 0] < -900).all(), r[:, 0]
    assert np.median(r[:, -1]) >= -350 and r[:, -1].min() >= -450, r[:, -1]


@pytest.mark.parametrize("kw,field", [
    (dict(num_minibatches=3), "num_minibatches"),
    (dict(num_envs=0), "num_envs"),
    (dict(gamma=1.5), "gamma"),
    (dict(lr=0.0), "lr"),
    (dict(total_steps=10), "total_steps"),
    (dict(activation="sigmoid"), "activation"),
])
def test_config_validation_names_the_field(kw, field):
    with pytest.raises(ConfigError) as e:
        ppo.Config(**kw).validate()
    assert e.value.field == field and "\n" not in str(e.value)


def test_config_from_dict_rejects_unknown_and_malformed():
    with pytest.raises(ConfigError, match="did you mean num_envs"):
        ppo.Config.from_dict({"num_env": 4})
    with pytest.raises(ConfigError, match="lr: expected a number"):
        ppo.Config.from_dict({"lr": "fast"})
    assert ppo.Config.from_dict({"lr": "1e-3", "anneal_lr": "false"}).anneal_lr is False
    assert dataclasses.is_dataclass(ppo.Config())


@pytest.mark.parametrize("env_id,torso,kw", [
    ("gymnax:Breakout-MinAtar", "mlp", dict(total_steps=1024)),  # [10, 10, 4] observations, flattened
    ("envpool:Pong-v5", "nature_cnn", dict(num_envs=2, num_steps=16, num_minibatches=2, total_steps=64)),
])
def test_ppo_picks_a_torso_for_image_observations(env_id, torso, kw):
    cfg = ppo.Config(**kw)
    env = envs.make(env_id, num_envs=cfg.num_envs)
    agent = ppo.make_agent(cfg, env)
    state, m = jax.jit(make_train(agent, 2))(jax.random.PRNGKey(0))
    assert np.isfinite(np.asarray(m["loss"])).all()
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
    assert (n_params > 1_000_000) == (torso == "nature_cnn"), n_params  # the CNN's 3136x512 dense layer


def test_nature_cnn_on_small_observations_is_a_config_error():
    cfg = ppo.Config(torso="nature_cnn", total_steps=1024)
    with pytest.raises(ConfigError, match="torso"):
        ppo.make_agent(cfg, envs.make("gymnax:Breakout-MinAtar", num_envs=cfg.num_envs))
