"""Greedy evaluation: the compiled episode loop against a step-by-step oracle, eval_return in the
results folder, evaluation never changes training, and ``jaxrl eval`` of a saved run."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _small_runs import read_rows, small_spec
from jaxrl import cli, envs
from jaxrl.commands.eval import evaluate_run
from jaxrl.evaluation import make_evaluate
from jaxrl.driver import train_run


def _always_left(state, obs, key=None):
    return jnp.zeros(obs.shape[:1], jnp.int32)


def test_returns_are_first_episode_returns_oracle():
    env = envs.make("gymnax:CartPole-v1", num_envs=5)
    key = jax.random.PRNGKey(3)
    got = np.asarray(jax.jit(make_evaluate(env, _always_left))(None, key))

    # oracle: step one at a time and read the env's own episode statistics at each env's first end
    k_reset, k_run = jax.random.split(key)
    env_state, ts = env.reset(k_reset)
    first = np.full(5, np.nan)
    step = jax.jit(env.step)
    for _ in range(500):
        k_run, _, k = jax.random.split(k_run, 3)
        env_state, ts = step(env_state, _always_left(None, ts.obs), k)
        done = np.asarray(ts.episode_done) & np.isnan(first)
        first[done] = np.asarray(ts.episode_return)[done]
        if not np.isnan(first).any():
            break
    np.testing.assert_array_equal(got, first)
    assert (got < 30).all()  # always pushing left fails fast: only the first episode was counted


def test_episodes_are_cut_at_max_steps():
    env = envs.make("gymnax:CartPole-v1", num_envs=3)
    got = jax.jit(make_evaluate(env, _always_left, max_steps=4))(None, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(got), [4.0, 4.0, 4.0])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("eval")
    with_eval = train_run(small_spec(base / "with", eval_every=1024), progress=False)
    without = train_run(small_spec(base / "without", eval_every=0), progress=False)
    return base, with_eval, without


def test_eval_return_in_metrics_and_summary(runs):
    base, with_eval, without = runs
    rows = read_rows(base / "with" / "metrics.csv")
    evaluated = sorted({int(r["update"]) for r in rows if r["eval_return"] != ""})
    assert evaluated == [4, 8, 12, 16]  # every 1024 env steps = 4 updates of 256
    assert len(with_eval["eval_return"]) == 2 and with_eval["eval_episodes"] == 4
    last = [float(r["eval_return"]) for r in rows if r["update"] == "16"]
    np.testing.assert_allclose(last, with_eval["eval_return"], rtol=1e-5)
    summary = json.loads((base / "with" / "summary.json").read_text())
    assert summary["eval_return"] == with_eval["eval_return"]
    assert "eval_return" not in without and "eval_return" not in read_rows(base / "without" / "metrics.csv")[0]


def test_evaluation_does_not_change_training(runs):
    _, with_eval, without = runs
    for a, b in zip(jax.tree_util.tree_leaves(with_eval["_state"]), jax.tree_util.tree_leaves(without["_state"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert with_eval["final_return"] == without["final_return"]


def test_eval_command_reports_mean_and_std_of_the_saved_policy(runs, capsys):
    base, with_eval, _ = runs
    spec, meta, returns = evaluate_run(str(base / "with"), episodes=3, seed=1)
    assert returns.shape == (2, 3) and meta["update"] == 16
    assert cli.main(["eval", str(base / "with"), "--episodes", "3", "--seed", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mean_return"] == pytest.approx(float(returns.mean()))
    assert out["std_return"] == pytest.approx(float(returns.std()))
    assert [r["label"] for r in out["per_seed"]] == ["seed=0", "seed=1"]
    assert cli.main(["eval", str(base / "with"), "--episodes", "3"]) == 0
    text = capsys.readouterr().out
    assert "checkpoint at update 16" in text and "mean" in text and "std" in text


def test_epsilon_greedy_evaluation_replaces_actions_at_random():
    """Always pushing left ends CartPole in about 9 steps; with epsilon 1 every action is uniform (a random
    policy: about 22 on average), and epsilon 0.5 lands in between."""
    env = envs.make("gymnax:CartPole-v1", num_envs=400)
    key = jax.random.PRNGKey(0)
    mean = {e: float(jax.jit(make_evaluate(env, _always_left, epsilon=e))(None, key).mean()) for e in (0.0, 0.5, 1.0)}
    assert mean[0.0] < 11 and mean[1.0] > 18, mean
    assert mean[0.0] + 2 < mean[0.5] < mean[1.0] - 2, mean


def test_epsilon_greedy_evaluation_refuses_continuous_actions_and_bad_values(runs, capsys):
    from jaxrl.config import ConfigError

    with pytest.raises(ConfigError, match="epsilon.*discrete actions"):
        make_evaluate(envs.make("gymnax:Pendulum-v1", num_envs=2), lambda s, o, k=None: o[:, :1], epsilon=0.1)
    from types import SimpleNamespace

    game_env = SimpleNamespace(game=object(), spec=SimpleNamespace(num_envs=2, max_episode_steps=9))
    game_player = SimpleNamespace(act=_always_left, act_game=lambda s, g, k: None)
    with pytest.raises(ConfigError, match="epsilon.*random player"):  # game players are scored by games
        make_evaluate(game_env, game_player, epsilon=0.1)
    base, _, _ = runs
    assert cli.main(["eval", str(base / "with"), "--epsilon", "1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "epsilon" in err[0] and "[0, 1]" in err[0], err
    assert cli.main(["eval", str(base / "with"), "--episodes", "2", "--epsilon", "0.05", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epsilon"] == 0.05
