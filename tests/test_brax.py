"""The optional brax backend: a clear error without the extra; with it, batched pure-JAX physics with
time-limit truncation and auto-reset, trained by an agent through ``jaxrl train`` (a very short run:
Brax compiles for tens of seconds on this CPU)."""
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _small_runs import jaxrl_cli
from jaxrl import envs
from jaxrl.config import ConfigError


def test_a_missing_brax_extra_is_one_line_naming_the_install(monkeypatch):
    from jaxrl.envs import brax_env

    monkeypatch.setitem(sys.modules, "brax", None)  # import brax now raises ImportError
    with pytest.raises(ConfigError) as e:
        brax_env._brax_envs()
    assert "pip install 'jaxrl[brax]'" in str(e.value) and "\n" not in str(e.value)


def test_unknown_brax_id_and_pipeline_are_one_line_errors():
    pytest.importorskip("brax", reason="the brax extra is not installed (pip install 'jaxrl[brax]')")
    with pytest.raises(ConfigError, match="did you mean brax:halfcheetah"):
        envs.make("brax:halfcheeta", num_envs=1)
    with pytest.raises(ConfigError, match="brax's pipelines are"):
        envs.make("brax:inverted_pendulum", num_envs=1, backend="bullet")


def test_brax_env_truncates_and_resets_each_env():
    pytest.importorskip("brax", reason="the brax extra is not installed (pip install 'jaxrl[brax]')")
    env = envs.make("brax:inverted_pendulum", num_envs=3, backend="positional", max_episode_steps=4)
    assert env.spec.obs_shape == (4,) and env.spec.action_space.shape == (1,) and env.spec.backend == "brax"
    state, ts = jax.jit(env.reset)(jax.random.PRNGKey(0))

    def step(c, k):
        s, _ = c
        s, ts = env.step(s, jnp.zeros((3, 1)), k)
        return (s, ts), (ts.truncated, ts.episode_done, ts.reward, ts.obs, ts.final_obs)

    _, (trunc, done, reward, obs, final) = jax.jit(lambda s, ts: jax.lax.scan(
        step, (s, ts), jax.random.split(jax.random.PRNGKey(1), 6)))(state, ts)
    assert np.asarray(trunc).tolist() == [[False] * 3] * 3 + [[True] * 3] + [[False] * 3] * 2
    assert np.asarray(done).tolist() == np.asarray(trunc).tolist()
    assert (np.asarray(reward) == 1.0).all()  # the pole is up: +1 per step
    assert not np.allclose(obs[3], final[3])  # reset after the 4th step; final_obs keeps where it went
    assert np.allclose(obs[2], final[2])


@pytest.mark.slow
def test_sac_trains_on_brax_through_jaxrl_train(tmp_path):
    pytest.importorskip("brax", reason="the brax extra is not installed (pip install 'jaxrl[brax]')")
    out = tmp_path / "brax"
    p = jaxrl_cli("train", "sac", "--env", "brax:inverted_pendulum", "--env-option", "backend=positional",
                  "--env-option", "max_episode_steps=50", "--num-seeds", "2", "--total-steps", "300",
                  "--learning-starts", "100", "--batch-size", "16", "--buffer-size", "300", "--hidden", "16",
                  "--eval-episodes", "1", "--eval-every", "300", "--out", str(out), "--quiet", timeout=900)
    assert p.returncode == 0, p.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and len(summary["eval_return"]) == 2
    assert all(1 <= r <= 50 for r in summary["eval_return"])  # +1 per step of a 50-step episode
