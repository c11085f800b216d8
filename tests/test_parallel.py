"""Devices and hosts (jaxrl.parallel): sharded training equals unsharded training, and the batch
really is sharded.  Multi-device runs happen in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` set before JAX is imported."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from jaxrl import parallel
from jaxrl.config import ConfigError

SCRIPT = textwrap.dedent("""
    import json, os
    import jax, numpy as np
    from jax.sharding import PartitionSpec as P
    from jaxrl import agents
    from jaxrl.driver import RunSpec, train_run

    assert len(jax.devices()) == 4, jax.devices()
    module, _ = agents.get("ppo")
    cfg = module.Config(num_envs=4, num_steps=16, num_minibatches=2, num_epochs=1, total_steps=256)

    def run(devices, seeds):
        spec = RunSpec(algo="ppo", env_id="gymnax:CartPole-v1", config=cfg, num_seeds=seeds, devices=devices,
                       log_every=128, eval_every=0, checkpoint_every=0)
        s = train_run(spec, progress=False)
        return s, jax.tree_util.tree_leaves(s["_state"])

    s1, leaves1 = run(1, 4)
    s4, leaves4 = run(4, 4)
    out = {
        "exact_nonfloat": all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(leaves1, leaves4)
                              if np.asarray(a).dtype.kind != "f"),
        "close_float": all(np.allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
                           for a, b in zip(leaves1, leaves4) if np.asarray(a).dtype.kind == "f"),
        "max_abs_diff": max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
                            for a, b in zip(leaves1, leaves4) if np.asarray(a).dtype.kind == "f"),
        "returns_1": s1["final_return"], "returns_4": s4["final_return"],
        "all_batch_spec_4": all(x.sharding.spec == P("batch") for x in leaves4),
        "ndev_4": sorted({len(x.sharding.device_set) for x in leaves4}),
        "shard_rows_4": sorted({x.addressable_shards[0].data.shape[0] for x in leaves4}),
        "ndev_1": sorted({len(x.sharding.device_set) for x in leaves1}),
    }
    s6, leaves6 = run("all", 6)  # 6 seeds on 4 devices: 'all' falls back to 3
    out["ndev_all_6"] = sorted({len(x.sharding.device_set) for x in leaves6})
    print("RESULT " + json.dumps(out))
""")


@pytest.fixture(scope="module")
def sharded_result():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=280)
    assert p.returncode == 0, p.stderr[-3000:]
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[7:]), p.stderr


def test_sharded_training_equals_unsharded(sharded_result):
    """Same keys, 4 devices vs 1: identical episodes, returns, counters and keys; float leaves equal
    up to float32 reassociation (XLA vectorises a per-device batch of 1 differently from 4)."""
    r, _ = sharded_result
    assert r["returns_1"] == r["returns_4"]
    assert r["exact_nonfloat"]
    assert r["close_float"] and r["max_abs_diff"] < 1e-4, r["max_abs_diff"]


def test_state_is_sharded_over_the_batch_axis(sharded_result):
    r, _ = sharded_result
    assert r["all_batch_spec_4"]
    assert r["ndev_4"] == [4] and r["shard_rows_4"] == [1]  # 4 seeds, one per device
    assert r["ndev_1"] == [1]


def test_all_uses_the_largest_divisor_and_says_so(sharded_result):
    r, err = sharded_result
    assert r["ndev_all_6"] == [3]
    assert "using 3 of 4 devices" in err


# ---------------------------------------------------------------------------- argument handling
class _Dev:
    platform = "cpu"


@pytest.mark.parametrize("value, expect", [(None, "all"), ("all", "all"), ("ALL", "all"), ("3", 3), (2, 2)])
def test_parse_devices(value, expect):
    assert parallel.parse_devices(value) == expect


@pytest.mark.parametrize("value", ["0", "-1", "two", 0, True, 1.5])
def test_parse_devices_rejects(value):
    with pytest.raises(ConfigError, match="devices"):
        parallel.parse_devices(value)


def test_plan_errors_are_one_line():
    four = [_Dev()] * 4
    with pytest.raises(ConfigError, match="not divisible by 4 devices; use --devices 1 or 2 or 3"):
        parallel.plan(4, batch=6, available=four)
    with pytest.raises(ConfigError, match="only 4 are visible"):
        parallel.plan(8, batch=8, available=four)
    with pytest.raises(ConfigError, match="runs on one device"):
        parallel.plan(2, batch=8, shardable=False, available=four)
    pl = parallel.plan("all", batch=8, shardable=False, available=four, stream=False)
    assert pl.num_devices == 1 and pl.mesh is None and pl.note is None  # silent: the common CPU case
    assert parallel.plan("all", batch=7, available=four, stream=False).num_devices == 1
    assert parallel.plan(1, batch=8, available=four).jit_kwargs(2) == {}


def test_distributed_args_from_environment():
    assert parallel.distributed_args({}) is None
    assert parallel.distributed_args({"JAXRL_DISTRIBUTED": "1"}) == {}
    env = {"JAXRL_COORDINATOR": "host0:1234", "JAXRL_NUM_PROCESSES": "2", "JAXRL_PROCESS_ID": "1",
           "JAXRL_LOCAL_DEVICE_IDS": "0,1"}
    assert parallel.distributed_args(env) == {"coordinator_address": "host0:1234", "num_processes": 2,
                                              "process_id": 1, "local_device_ids": [0, 1]}
    bad = [({"JAXRL_COORDINATOR": "host0"}, "host:port"),
           ({"JAXRL_COORDINATOR": "h:1", "JAXRL_NUM_PROCESSES": "2"}, "JAXRL_PROCESS_ID is required"),
           ({"JAXRL_COORDINATOR": "h:1", "JAXRL_NUM_PROCESSES": "2", "JAXRL_PROCESS_ID": "2"}, r"in \[0, 2\)"),
           ({"JAXRL_COORDINATOR": "h:1", "JAXRL_NUM_PROCESSES": "x", "JAXRL_PROCESS_ID": "0"}, "integer"),
           ({"JAXRL_PROCESS_ID": "0"}, "without JAXRL_COORDINATOR")]
    for env, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            parallel.distributed_args(env)
    assert parallel.initialize_distributed({}) is False  # nothing set: single process, no-op


def test_cli_devices_flag_reaches_the_spec():
    from jaxrl.commands.train import parse

    spec, *_ = parse(["ppo", "--devices", "2", "--out", "/tmp/unused-jaxrl-test"])
    assert spec.devices == 2
    spec, *_ = parse(["ppo", "--out", "/tmp/unused-jaxrl-test"])
    assert spec.devices == "all"
    with pytest.raises(ConfigError, match="devices"):
        parse(["ppo", "--devices", "zero", "--out", "/tmp/unused-jaxrl-test"])


def test_vmap_of_one_member_runs_unbatched_and_matches_jax_vmap():
    """``parallel.vmap`` gives ``jax.vmap``'s shapes and values; a batch of one is traced unbatched."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    def f(key, scale, offset):
        x = jax.random.normal(key, (3, 4)) * scale
        return {"sum": x.sum() + offset, "x": x}

    for n in (1, 3):
        keys = jax.random.split(jax.random.PRNGKey(0), n)
        scale = jnp.arange(1.0, n + 1.0)
        want = jax.vmap(f, in_axes=(0, 0, None))(keys, scale, 2.0)
        got = jax.jit(parallel.vmap(f, in_axes=(0, 0, None)))(keys, scale, 2.0)
        assert jax.tree_util.tree_map(jnp.shape, got) == jax.tree_util.tree_map(jnp.shape, want)
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)

    def dot_operand_shapes(fn, x):
        eqns = jax.make_jaxpr(fn)(x).jaxpr.eqns
        return [tuple(v.aval.shape) for e in eqns if e.primitive.name == "dot_general" for v in e.invars]

    x1, x2 = jnp.ones((1, 2, 3)), jnp.ones((2, 2, 3))
    mm = lambda x: x @ x.T  # noqa: E731
    assert dot_operand_shapes(parallel.vmap(mm), x1) == [(2, 3), (3, 2)]  # no batch dimension
    assert dot_operand_shapes(jax.vmap(mm), x1) == [(1, 2, 3), (1, 3, 2)]  # what jax.vmap compiles
    assert dot_operand_shapes(parallel.vmap(mm), x2) == dot_operand_shapes(jax.vmap(mm), x2)
    with pytest.raises(ValueError, match="leading batch axes"):
        parallel.vmap(f, in_axes=(1, 0, None))


def test_single_seed_ppo_through_parallel_vmap_matches_jax_vmap():
    """The unbatched single-run program trains the same run as the vmapped one (up to float rounding)."""
    import jax
    import numpy as np

    from jaxrl import envs
    from jaxrl.agents import ppo
    from jaxrl.core.program import make_train

    cfg = ppo.Config(num_envs=4, num_steps=16, num_minibatches=2, num_epochs=2, total_steps=16 * 4 * 6)
    agent = ppo.make_agent(cfg, envs.make("gymnax:CartPole-v1", num_envs=4))
    keys = jax.random.split(jax.random.PRNGKey(3), 1)
    train = make_train(agent, num_log_points=6)
    a = jax.jit(parallel.vmap(train))(keys)
    b = jax.jit(jax.vmap(train))(keys)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert x.shape == y.shape
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=1e-4, atol=1e-5)
