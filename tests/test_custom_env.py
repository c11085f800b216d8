"""A user's own environment by id (jaxrl.envs.custom) and the env backend registry (jaxrl.envs.registry)."""
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.envs as envs
from jaxrl.config import ConfigError
from jaxrl.envs import registry

from _small_runs import jaxrl_cli

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
ENV_FILE = TESTS / "user_envs" / "signal_env.py"
REL_ID = "tests/user_envs/signal_env.py:SignalEnv"


def _rollout(env, steps, policy, key=jax.random.PRNGKey(0)):
    """``steps`` batched steps with ``policy(obs, key) -> actions``; the stacked TimeSteps."""
    def run(key):
        st, ts = env.reset(key)

        def body(carry, k):
            st, obs = carry
            st, ts = env.step(st, policy(obs, k), k)
            return (st, ts.obs), (ts, obs)

        return jax.lax.scan(body, (st, ts.obs), jax.random.split(key, steps))[1]

    return jax.jit(run)(key)


def _one_line_env_error(env_id, **options):
    with pytest.raises(ConfigError) as e:
        envs.make(env_id, num_envs=2, **options)
    msg = str(e.value)
    assert e.value.field == "env" and "\n" not in msg, msg
    return msg


def _write(folder, name, text):
    path = Path(folder) / name
    path.write_text(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------------------- the CLI learns it
def test_ppo_learns_a_user_env_through_the_cli(tmp_path):
    # SignalEnv: 20-step episodes, reward 1 when the action matches the one-hot observation.
    # Optimal return 20; random play 20/3 = 6.7 (a per-episode sd of 2.1, so the mean over the ~40
    # episodes of final_return's window stays within 6.7 +- 1.5).  This budget (16,384 steps per
    # seed, 128 updates) reached 18.6 and 17.5 (greedy eval 20, 20) in about 15 s wall on 2 cores.
    out = tmp_path / "run"
    proc = jaxrl_cli("train", "ppo", "--env", REL_ID, "--num-seeds", "2", "--total-steps", "16384",
                     "--num-envs", "4", "--num-steps", "32", "--out", str(out), "--quiet", cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    final = summary["final_return"]
    assert len(final) == 2
    assert statistics.median(final) >= 14.0 and min(final) >= 12.0, final
    assert min(summary["eval_return"]) >= 14.0, summary["eval_return"]


# ------------------------------------------------------------------------------- the two kinds
def test_gymnax_style_class_with_options_and_time_limit(monkeypatch):
    monkeypatch.chdir(REPO)  # a relative path resolves against the current directory
    env = envs.make(REL_ID, num_envs=3, num_actions=2, max_episode_steps=7)
    assert env.spec.backend == "custom" and env.spec.env_id == REL_ID
    assert env.spec.action_space == envs.Discrete(2) and env.spec.obs_shape == (2,)
    assert env.spec.max_episode_steps == 7
    ts, obs = _rollout(env, 21, lambda obs, k: jnp.argmax(obs, -1))  # the optimal policy
    assert (np.asarray(ts.reward) == 1).all()
    # the inherited is_truncated (time >= max_steps_in_episode) ends episodes; never terminal
    assert not np.asarray(ts.terminated).any()
    assert (np.asarray(ts.truncated).nonzero()[0] == np.repeat([6, 13, 20], 3)).all()
    assert (np.asarray(ts.episode_return)[-1] == 7).all() and (np.asarray(ts.episode_length)[-1] == 7).all()


def test_factory_function_kind_through_make():
    env = envs.make(f"{ENV_FILE}:signal_factory", num_envs=4, num_actions=3)
    assert env.spec.backend == "custom" and env.spec.env_id == f"{ENV_FILE}:signal_factory"
    ts, obs = _rollout(env, 40, lambda obs, k: jax.random.randint(k, (4,), 0, 3))
    assert ts.obs.shape == (40, 4, 3)
    assert (np.asarray(ts.truncated).nonzero()[0] == np.repeat([19, 39], 4)).all()
    assert (np.asarray(ts.episode_length)[-1] == 20).all()
    r = np.asarray(ts.episode_return)[-1]
    assert (r >= 0).all() and (r <= 20).all() and 2 < r.mean() < 12  # random play: about 6.7


def test_module_path_id_and_gymnax_instance(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(TESTS))  # tests/user_envs is a package
    assert envs.parse_id("user_envs.signal_env:SignalEnv") == ("custom", "user_envs.signal_env:SignalEnv")
    assert envs.make("user_envs.signal_env:SignalEnv", num_envs=2).spec.action_space == envs.Discrete(3)
    assert envs.make("custom:user_envs.signal_env:SignalEnv", num_envs=2).spec.backend == "custom"
    _write(tmp_path, "inst.py", """
        import user_envs.signal_env as s
        ENV = s.SignalEnv(num_actions=4)
    """)
    assert envs.make(f"{tmp_path}/inst.py:ENV", num_envs=2).spec.action_space == envs.Discrete(4)
    msg = _one_line_env_error(f"{tmp_path}/inst.py:ENV", num_actions=2)
    assert "instance" in msg and "num_actions" in msg


def test_a_file_runs_once_per_process(tmp_path, monkeypatch):
    log = tmp_path / "runs.log"
    _write(tmp_path, "counted.py", f"""
        open({str(log)!r}, "a").write("x")
        from user_envs.signal_env import SignalEnv
    """)
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.chdir(tmp_path)
    for env_id in ("counted.py:SignalEnv", f"{tmp_path}/counted.py:SignalEnv", "./counted.py:SignalEnv"):
        envs.make(env_id, num_envs=1)
    assert log.read_text() == "x"


def test_canonical_id(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert envs.canonical_id("my_env.py:MyEnv") == f"{tmp_path}/my_env.py:MyEnv"
    assert envs.canonical_id("custom:sub/my_env.py:MyEnv") == f"custom:{tmp_path}/sub/my_env.py:MyEnv"
    for same in ("/abs/my_env.py:MyEnv", "my_pkg.my_env:MyEnv", "gymnax:CartPole-v1", "envpool:Pong-v5"):
        assert envs.canonical_id(same) == same


# ------------------------------------------------------------------------------- errors: one line
def test_error_file_not_found():
    msg = _one_line_env_error("no/such/env.py:MyEnv")
    assert "no/such/env.py:MyEnv" in msg and "no such file" in msg


def test_error_module_not_importable_and_nothing_left_behind(tmp_path):
    path = _write(tmp_path, "broken.py", """
        import jax
        raise RuntimeError("boom: the env file is broken\\nsecond line")
    """)
    before = set(sys.modules)
    msg = _one_line_env_error(f"{path}:MyEnv")
    assert "boom: the env file is broken" in msg and "second line" not in msg
    assert not [m for m in set(sys.modules) - before if "broken" in m]
    msg = _one_line_env_error("no_such_pkg.my_env:MyEnv")
    assert "no_such_pkg" in msg and "PYTHONPATH" in msg


def test_error_missing_attribute_lists_close_names():
    msg = _one_line_env_error(f"{ENV_FILE}:SignalEnvv")
    assert "SignalEnvv" in msg and "did you mean SignalEnv" in msg


def test_error_object_of_neither_kind(tmp_path):
    path = _write(tmp_path, "neither.py", """
        X = 3
        class HalfEnv:
            default_params = None
            def reset_env(self, key, params): ...
    """)
    msg = _one_line_env_error(f"{path}:X")
    assert "gymnax-style" in msg and "factory function" in msg and "int" in msg
    assert "lacks step_env, action_space, observation_space" in _one_line_env_error(f"{path}:HalfEnv")


def test_error_unsupported_space_and_bad_options(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    path = _write(tmp_path, "dict_obs.py", """
        from gymnax.environments import spaces
        from user_envs.signal_env import SignalEnv

        class DictObs(SignalEnv):
            def observation_space(self, params):
                return spaces.Dict({"a": spaces.Discrete(2)})
    """)
    msg = _one_line_env_error(f"{path}:DictObs")
    assert "unsupported observation space Dict" in msg and f"{path}:DictObs" in msg
    msg = _one_line_env_error(f"{ENV_FILE}:SignalEnv", bogus=1)
    assert "bogus" in msg and "num_actions" in msg


def test_error_factory_must_return_an_env(tmp_path):
    path = _write(tmp_path, "bad_factory.py", """
        def make(num_envs):
            return "not an env"
    """)
    assert "jaxrl.envs.Env" in _one_line_env_error(f"{path}:make")


# ------------------------------------------------------------------------------- the registry
@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_a_registered_toy_backend_module(tmp_path, monkeypatch, clean_registry):
    _write(tmp_path, "toy_backend_mod.py", """
        from jaxrl.envs.registry import Backend
        from user_envs.signal_env import signal_factory

        def make(name, num_envs, num_seeds=1, **options):
            env = signal_factory(num_envs, num_actions=len(name) + 1)
            return env._replace(spec=env.spec._replace(env_id="toy:" + name, backend="toy"))

        BACKEND = Backend(name="toy", make=make, ids=lambda: ["x", "xyz"], shardable=False)
    """)
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.syspath_prepend(str(tmp_path))
    envs.register_backend("toy_backend_mod", name="toy")
    assert "toy_backend_mod" not in sys.modules  # imported on first use only
    env = envs.make("toy:xyz", num_envs=2)
    assert env.spec.env_id == "toy:xyz" and env.spec.action_space == envs.Discrete(4)
    assert envs.parse_id("toy:x") == ("toy", "x")
    assert envs.backend_of(env.spec) is envs.backend("toy") and not envs.backend("toy").shardable
    assert {"toy:x", "toy:xyz"} <= set(envs.known_ids())
    with pytest.raises(ConfigError) as e:
        envs.make("toy:xy", num_envs=1)
    msg = str(e.value)
    assert "did you mean" in msg and ("toy:x?" in msg or "toy:x or" in msg) and "\n" not in msg, msg


def test_register_a_backend_object(clean_registry):
    toy = registry.Backend(name="toy2", make=lambda name, n, num_seeds=1: envs.make(f"{ENV_FILE}:SignalEnv", n),
                           ids=lambda: ["only"])
    envs.register_backend(toy)
    assert envs.resolve("toy2:only") == (toy, "only")
    assert envs.make("toy2:only", num_envs=2).spec.num_envs == 2


def test_unknown_backend_is_one_line():
    for call in (lambda: envs.backend("gymnx"), lambda: envs.make("nope:Foo"), lambda: envs.make("nope:Foo-v1")):
        with pytest.raises(ConfigError) as e:
            call()
        msg = str(e.value)
        assert e.value.field == "env" and "\n" not in msg and ("gymnax" in msg or "not an env backend" in msg), msg


def test_builtin_backends_declare_what_the_driver_needs():
    gymnax, envpool = envs.backend("gymnax"), envs.backend("envpool")
    assert gymnax.shardable and gymnax.restorable and gymnax.eval_options("CartPole-v1") == {}
    assert not envpool.shardable and not envpool.restorable
    assert envpool.eval_options("Pong-v5") == dict(episodic_life=False, reward_clip=False)
    assert envpool.eval_options("CartPole-v1") == {}
    custom = envs.backend("custom")
    assert custom.shardable and custom.restorable
    assert envs.backend_of(envs.make(f"{ENV_FILE}:SignalEnv", num_envs=1).spec) is custom


def test_import_is_cheap_and_backends_load_on_use():
    code = ("import sys, jaxrl.envs as e; before = {'gymnax', 'envpool'} & set(sys.modules); "
            "e.parse_id('gymnax:CartPole-v1'); print(sorted(before), 'envpool' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert out.stdout.split() == ["[]", "False"], out.stderr[-1000:]
