"""PQN beside DQN and PPO: env steps/s of whole training runs, 1 and 8 vmapped seeds, interleaved.

    python benchmarks/pqn_throughput.py                                   # CartPole-v1 and Breakout-MinAtar
    python benchmarks/pqn_throughput.py --envs gymnax:CartPole-v1 --seeds 1 --total-steps 100000

Comparable settings: every algorithm runs ``--num-envs`` envs (default 32) with its own defaults otherwise
(PQN: 64-step rollouts, 16 minibatches x 4 epochs, 64-64 LayerNorm; PPO: 128-step rollouts, 4 x 4,
64-64 tanh; DQN: one gradient step per step of all envs, see ``jaxrl train ALGO --help``), the same
``--total-steps`` per seed. Seeds are sharded over the local devices as ``jaxrl train --devices all`` does.
For each (env, seeds) the three algorithms run back to back, so their ratio is taken under the same
load. Columns: ``compile_s`` (AOT compile of ``jit(vmap(train))``), ``train_sps`` (env steps per second
over all seeds, compilation excluded, one timed run after a warm-up), ``final_return`` (median over seeds
of the last logging point's training return).

Writes ``benchmarks/results/pqn_throughput.json``.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from _common import compile_timed, print_table, timed_run, write_results  # noqa: E402

import jaxrl.envs as envs  # noqa: E402
from jaxrl import agents, parallel  # noqa: E402
from jaxrl.core.program import make_train  # noqa: E402


def bench(algo: str, env_id: str, num_envs: int, seeds: int, total_steps: int) -> dict:
    module, preset = agents.get(algo)
    cfg = module.Config.from_dict(dict(preset or {}, num_envs=num_envs, total_steps=total_steps))
    env = envs.make(env_id, num_envs=num_envs, num_seeds=seeds)
    agent = module.make_agent(cfg, env)
    placement = parallel.plan("all", batch=seeds, shardable=env.spec.backend != "envpool", stream=False)
    keys = placement.put(jax.random.split(jax.random.PRNGKey(0), seeds))
    train = jax.jit(parallel.vmap(make_train(agent, num_log_points=10)), **placement.jit_kwargs(1))
    compiled, compile_s = compile_timed(train, keys)
    timed_run(compiled, keys)  # warm-up
    t, (_, m) = timed_run(compiled, keys)
    steps = agent.num_updates * agent.steps_per_update * seeds
    ret = np.asarray(m["episode_return_sum"][:, -1] / np.maximum(m["episodes"][:, -1], 1))
    return dict(env=env_id.split(":")[-1], algo=algo, seeds=seeds, devices=placement.num_devices,
                compile_s=round(compile_s, 2), train_sps=round(steps / t), final_return=round(float(np.median(ret)), 1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", nargs="+", default=["gymnax:CartPole-v1", "gymnax:Breakout-MinAtar"])
    p.add_argument("--algos", nargs="+", default=["pqn", "dqn", "ppo"])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    p.add_argument("--num-envs", type=int, default=32)
    p.add_argument("--total-steps", type=int, default=200_000)
    p.add_argument("--name", default="pqn_throughput", help="results file name")
    a = p.parse_args(argv)
    cols = ["env", "algo", "seeds", "devices", "compile_s", "train_sps", "final_return"]
    rows = []
    for env_id in a.envs:
        for s in a.seeds:
            for algo in a.algos:
                rows.append(bench(algo, env_id, a.num_envs, s, a.total_steps))
                print_table(rows[-1:], cols)
    print(f"\n{a.num_envs} envs, {a.total_steps:,} steps per seed")
    print_table(rows, cols)
    path = write_results(a.name, rows, {"num_envs": a.num_envs, "total_steps": a.total_steps})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
