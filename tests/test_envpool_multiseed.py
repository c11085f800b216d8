"""Multi-seed training on envpool in one compiled program: one pool of num_seeds x num_envs envs."""
import csv

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import agents, envs
from jaxrl.core.program import make_train

SEEDS = 3


def _config():
    module, _ = agents.get("ppo")
    return module, module.Config(num_envs=4, num_steps=16, num_minibatches=2, num_epochs=1, total_steps=512)


def test_vmapped_make_train_on_envpool_gives_independent_seeds():
    module, cfg = _config()
    env = envs.make("envpool:CartPole-v1", num_envs=cfg.num_envs, num_seeds=SEEDS)
    agent = module.make_agent(cfg, env)
    train = jax.jit(jax.vmap(make_train(agent, num_log_points=4)))
    state, metrics = train(jax.random.split(jax.random.PRNGKey(0), SEEDS))
    assert metrics["episodes"].shape == (SEEDS, 4)
    assert metrics["loss"].shape == (SEEDS, 4)
    assert state.obs.shape == (SEEDS, cfg.num_envs, 4)
    ep = np.asarray(metrics["episode_return_sum"])
    assert np.asarray(metrics["episodes"]).sum(1).min() > 0  # every seed finished episodes
    for a in range(SEEDS):  # each seed steps its own slice of the pool: different trajectories
        for b in range(a + 1, SEEDS):
            assert not np.array_equal(ep[a], ep[b])
            assert not np.array_equal(np.asarray(metrics["loss"][a]), np.asarray(metrics["loss"][b]))


def test_driver_num_seeds_on_envpool_writes_per_seed_rows(tmp_path):
    """``jaxrl train ppo --env envpool:CartPole-v1 --num-seeds 3``: init and update are compiled as
    separate vmapped programs, so the pool handle crosses a program boundary stacked [B]."""
    from jaxrl.driver import RunSpec, train_run

    _, cfg = _config()
    out = tmp_path / "run"
    spec = RunSpec(algo="ppo", env_id="envpool:CartPole-v1", config=cfg, num_seeds=SEEDS, out=str(out),
                   log_every=128, eval_every=0, checkpoint_every=0)
    summary = train_run(spec, progress=False)
    assert len(summary["final_return"]) == SEEDS
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    by_seed = {s: [r for r in rows if int(r["seed"]) == s] for s in range(SEEDS)}
    n_log = len(by_seed[0])
    assert n_log >= 4 and all(len(v) == n_log for v in by_seed.values())
    losses = [tuple(r["loss"] for r in by_seed[s]) for s in range(SEEDS)]
    assert len(set(losses)) == SEEDS  # independent per-seed learning curves


def test_driver_single_seed_on_envpool_runs_unbatched_and_keeps_the_batch_axis(tmp_path):
    """One seed: the driver's programs run unbatched (``parallel.vmap``), the pool handle crosses
    from init to the update chunks without a batch axis, and results still have one row per seed."""
    from jaxrl.driver import RunSpec, train_run

    _, cfg = _config()
    out = tmp_path / "run1"
    spec = RunSpec(algo="ppo", env_id="envpool:CartPole-v1", config=cfg, num_seeds=1, out=str(out),
                   log_every=128, eval_every=0, checkpoint_every=0)
    summary = train_run(spec, progress=False)
    assert len(summary["final_return"]) == 1 and np.isfinite(summary["final_return"][0])
    assert summary["_state"].obs.shape == (1, cfg.num_envs, 4)
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) >= 4 and {r["seed"] for r in rows} == {"0"}
    assert sum(float(r["episodes"]) for r in rows) > 0


def test_envpool_step_accepts_a_handle_stacked_by_an_outer_vmap():
    env = envs.make("envpool:CartPole-v1", num_envs=2, num_seeds=SEEDS)
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)
    env_state, ts = jax.jit(jax.vmap(env.reset))(keys)
    assert env_state.handle.shape[0] == SEEDS  # materialised with the batch axis
    step = jax.jit(jax.vmap(env.step))
    env_state, ts = step(env_state, jnp.zeros((SEEDS, 2), jnp.int32), keys)
    assert ts.obs.shape == (SEEDS, 2, 4)
