"""PPO throughput: compile time, steps/s for 1 and 8 vmapped seeds, env-only and acting-only rates.

    python benchmarks/ppo_throughput.py                 # full table (a few minutes on 2 cores)
    python benchmarks/ppo_throughput.py --quick         # num_envs 4 only
    python benchmarks/ppo_throughput.py --num-envs 4 16 --seeds 1 8 --total-steps 500000

For each ``num_envs`` (``num_steps=128``, 4 epochs x 4 minibatches, 64-64 tanh MLP) it reports:

* ``compile_s``: AOT compile of the whole ``jit(vmap(train))`` program (``jaxrl.parallel.vmap``:
  one seed runs unbatched, as ``jaxrl train`` does);
* ``train_sps``: env steps per second of the full PPO run (all seeds, excluding compile), the
  median of ``--repeats`` timed runs after one warm-up run (single runs on the 2-core VM vary
  by up to 7%); every run's figure is kept in the JSON as ``train_sps_runs``;
* ``env_sps``: the env alone, random actions, same num_envs and seeds;
* ``act_sps``: policy forward + sampling + env step, no learning;
* ``final_return``: median over seeds of the return in the last 5% of training (does it still solve?).

Writes ``benchmarks/results/ppo_throughput.json``.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from _common import compile_timed, print_table, timed_run, write_results  # noqa: E402

import jaxrl.envs as envs  # noqa: E402
from jaxrl.agents import ppo  # noqa: E402
from jaxrl.core.program import make_train  # noqa: E402
from jaxrl.networks import ActorCritic  # noqa: E402
from jaxrl import parallel  # noqa: E402


def rollout_fns(env, steps: int):
    """(env_only, acting) programs of ``steps`` batched env steps each, for one seed."""
    n = env.spec.num_envs
    net = ActorCritic(env.spec.action_space.n)

    def env_only(key):
        st, ts = env.reset(key)

        def body(c, k):
            st, acc = c
            st, ts = env.step(st, jax.random.randint(k, (n,), 0, env.spec.action_space.n), k)
            return (st, acc + ts.reward.sum()), None

        return jax.lax.scan(body, (st, 0.0), jax.random.split(key, steps))[0][1]

    def acting(key):
        params = net.init(key, jnp.zeros(env.spec.obs_shape))
        st, ts = env.reset(key)

        def body(c, k):
            st, obs, acc = c
            k1, k2 = jax.random.split(k)
            logits, _, _ = net.apply(params, obs)
            st, ts = env.step(st, jax.random.categorical(k1, logits), k2)
            return (st, ts.obs, acc + ts.reward.sum()), None

        return jax.lax.scan(body, (st, ts.obs, 0.0), jax.random.split(key, steps))[0][2]

    return env_only, acting


def bench(num_envs: int, seeds: int, total_steps: int, env_id: str, repeats: int = 3) -> dict:
    cfg = ppo.Config(num_envs=num_envs, total_steps=max(total_steps, num_envs * 128))
    env = envs.make(env_id, num_envs=num_envs, num_seeds=seeds)
    agent = ppo.make_agent(cfg, env)
    # Seeds are sharded over the local devices exactly as `jaxrl train --devices all` does; on CPU,
    # jaxrl makes every core an XLA device (jaxrl/_platform.py).
    placement = parallel.plan("all", batch=seeds, shardable=env.spec.backend != "envpool", stream=False)
    keys = placement.put(jax.random.split(jax.random.PRNGKey(0), seeds))
    train = jax.jit(parallel.vmap(make_train(agent, num_log_points=20)), **placement.jit_kwargs(1))
    compiled, compile_s = compile_timed(train, keys)
    timed_run(compiled, keys)  # warm-up: first-call allocations
    runs = [timed_run(compiled, keys) for _ in range(repeats)]
    _, (_, m) = runs[-1]  # metrics: every run trains the same seeds identically
    steps = agent.num_updates * agent.steps_per_update * seeds
    sps_runs = [round(steps / t) for t, _ in runs]
    ret = np.asarray(m["episode_return_sum"][:, -1] / np.maximum(m["episodes"][:, -1], 1))
    row = dict(num_envs=num_envs, seeds=seeds, devices=placement.num_devices, compile_s=round(compile_s, 2),
               train_sps=round(float(np.median(sps_runs))), final_return=float(np.median(ret)), train_sps_runs=sps_runs)
    n_roll = max(1, 200_000 // num_envs)
    for name, fn in zip(("env_sps", "act_sps"), rollout_fns(env, n_roll)):
        c, _ = compile_timed(jax.jit(parallel.vmap(fn), **placement.jit_kwargs(1)), keys)
        timed_run(c, keys)
        s, _ = timed_run(c, keys)
        row[name] = round(n_roll * num_envs * seeds / s)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-envs", type=int, nargs="+", default=[4, 16, 256, 1024])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    p.add_argument("--total-steps", type=int, default=500_000)
    p.add_argument("--env", default="gymnax:CartPole-v1")
    p.add_argument("--quick", action="store_true", help="num_envs 4 only")
    p.add_argument("--name", default="ppo_throughput", help="results file name")
    p.add_argument("--repeats", type=int, default=3, help="timed training runs per row (the median is reported)")
    a = p.parse_args(argv)
    if a.repeats < 1:
        p.error("--repeats must be at least 1")
    sizes = [4] if a.quick else a.num_envs
    rows = []
    for n in sizes:
        for s in a.seeds:
            rows.append(bench(n, s, a.total_steps, a.env, a.repeats))
            print_table(rows[-1:], [c for c in rows[-1] if c != "train_sps_runs"])
    cols = ["num_envs", "seeds", "devices", "compile_s", "train_sps", "env_sps", "act_sps", "final_return"]
    print("\nPPO on", a.env, f"({a.total_steps:,} steps per seed, 128 steps x num_envs per update)")
    print_table(rows, cols)
    path = write_results(a.name, rows, {"env": a.env, "total_steps": a.total_steps})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
