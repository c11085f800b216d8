"""TRPO and ACKTR beside PPO: env steps/s at the same rollout size (1 and 8 seeds), and the cost split.

    python benchmarks/natural_throughput.py                       # CartPole-v1, 8 envs x 256 steps
    python benchmarks/natural_throughput.py --env gymnax:Pendulum-v1 --seeds 1

Every algorithm collects the same rollout per learning step, ``--num-envs`` x ``--num-steps``
transitions with a 64-64 tanh actor and critic, and then learns from it:

* ``ppo``: its defaults, 4 epochs x 4 minibatches of Adam steps;
* ``trpo``: its defaults: one natural-gradient policy step (10 conjugate-gradient iterations on
  Fisher-vector products of every 5th state, up to 10 line-search evaluations on the whole batch)
  and 5 x 8 Adam steps of the critic;
* ``acktr``: one K-FAC step per rollout, the factor inverses refreshed every step
  (``inverse_every 1``: the most a K-FAC step can cost);
* ``acktr defaults``: ACKTR as it trains CartPole (16 envs x 20 steps, inverses every 10 steps).

Figures per row (compile excluded; each the median of ``--repeats`` runs after a warm-up):
``train_sps``, env steps/s of the whole training program (all seeds, wall clock); ``cpu_sps``,
env steps per CPU second of the same runs (both cores' seconds count when 8 seeds are sharded); ``update_ms``,
one update (one rollout and one learning step; 10 of each for ``acktr defaults``);
``rollout_ms``, the same rollouts with bootstrap values and GAE alone, timed as their own program
with the same network right after the training runs; ``learn_ms = update_ms - rollout_ms``, the
learning step. The three ``_ms`` figures are *process CPU time* (``time.process_time``, all of
this process's threads), which other processes on a shared machine disturb far less than wall
time; ``train_sps`` is wall time and moves with the machine's load (recorded in the JSON).

Writes ``benchmarks/results/natural_throughput.json``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from _common import compile_timed, print_table, timed_run, write_results  # noqa: E402

import jaxrl.envs as envs  # noqa: E402
from jaxrl import parallel  # noqa: E402
from jaxrl.agents import acktr, ppo, trpo  # noqa: E402
from jaxrl.core import onpolicy  # noqa: E402
from jaxrl.core.program import make_train  # noqa: E402


def configs(num_envs: int, num_steps: int, updates: int):
    """``(label, module, Config, rollouts per update)`` of each row; ``updates`` learning steps per seed."""
    total = num_envs * num_steps * updates
    return [
        ("ppo", ppo, ppo.Config(num_envs=num_envs, num_steps=num_steps, total_steps=total), 1),
        ("trpo", trpo, trpo.Config(num_envs=num_envs, num_steps=num_steps, total_steps=total), 1),
        ("acktr", acktr, acktr.Config(num_envs=num_envs, num_steps=num_steps, inverse_every=1, total_steps=total), 1),
        ("acktr defaults", acktr, acktr.Config(total_steps=16 * 20 * 10 * max(1, updates // 4)), 10),
    ]


def compiled_for(fn, keys, placement):
    """``(compiled jit(vmap(fn)), compile seconds)``, warmed up by one run."""
    compiled, compile_s = compile_timed(jax.jit(parallel.vmap(fn), **placement.jit_kwargs(1)), keys)
    timed_run(compiled, keys)
    return compiled, compile_s


def run_times(compiled, keys, repeats: int):
    """``(wall seconds, process CPU seconds)`` of ``repeats`` runs of ``compiled(keys)``."""
    wall, cpu = [], []
    for _ in range(repeats):
        c0 = time.process_time()
        wall.append(timed_run(compiled, keys)[0])
        cpu.append(time.process_time() - c0)
    return wall, cpu


def rollout_program(env, num_steps: int, num_rollouts: int):
    """``key ->`` ``num_rollouts`` rollouts with bootstrap values and GAE, a PPO actor-critic at its init."""
    net, head, apply, _, value_only = ppo.actor_critic(ppo.Config(), env.spec)
    policy = onpolicy.Policy(lambda p, obs, memory, noise: (*apply(p, obs), memory), head, value_only)

    def fn(key):
        params = net.init(key, jnp.zeros(env.spec.obs_shape, env.spec.obs_dtype))
        env_state, ts = env.reset(key)

        def body(c, k):
            env_state, obs, acc = c
            env_state, obs, _, traj, _ = onpolicy.rollout(env, policy, params, env_state, obs, (), k, num_steps)
            adv, _ = onpolicy.advantages(traj, onpolicy.bootstrap_values(policy, params, traj), 0.99, 0.95)
            return (env_state, obs, acc + adv.sum()), None

        return jax.lax.scan(body, (env_state, ts.obs, 0.0), jax.random.split(key, num_rollouts))[0][2]

    return fn


def bench(label, module, cfg, rollouts, seeds: int, env_id: str, repeats: int, rollout_cache: dict) -> dict:
    env = envs.make(env_id, num_envs=cfg.num_envs, num_seeds=seeds)
    agent = module.make_agent(cfg, env)
    placement = parallel.plan("all", batch=seeds, shardable=env.spec.backend != "envpool", stream=False)
    keys = placement.put(jax.random.split(jax.random.PRNGKey(0), seeds))
    compiled, compile_s = compiled_for(make_train(agent, num_log_points=1), keys, placement)
    wall, cpu = run_times(compiled, keys, repeats)
    n = agent.num_updates * rollouts
    shape = (cfg.num_envs, cfg.num_steps, seeds, n)
    if shape not in rollout_cache:
        rollout_cache[shape] = compiled_for(rollout_program(env, cfg.num_steps, n), keys, placement)[0]
    _, r_cpu = run_times(rollout_cache[shape], keys, repeats)  # re-timed beside every row
    steps = agent.num_updates * agent.steps_per_update * seeds
    update_ms = 1e3 * float(np.median(cpu)) / agent.num_updates
    rollout_ms = 1e3 * float(np.median(r_cpu)) / agent.num_updates
    return dict(algo=label, seeds=seeds, rollout=f"{cfg.num_envs}x{cfg.num_steps}", compile_s=round(compile_s, 1),
                train_sps=round(steps / float(np.median(wall))), cpu_sps=round(steps / float(np.median(cpu))), update_ms=round(update_ms, 2),
                rollout_ms=round(rollout_ms, 2), learn_ms=round(update_ms - rollout_ms, 2),
                learn_share=f"{1 - rollout_ms / update_ms:.0%}", train_sps_runs=[round(steps / x) for x in wall],
                load_average_1m=round(os.getloadavg()[0], 1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="gymnax:CartPole-v1")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--num-steps", type=int, default=256)
    p.add_argument("--updates", type=int, default=40, help="learning steps per seed per timed run")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    p.add_argument("--algos", nargs="+", default=["ppo", "trpo", "acktr", "acktr defaults"])
    p.add_argument("--repeats", type=int, default=3, help="timed runs per row (the median is reported)")
    p.add_argument("--name", default="natural_throughput", help="results file name")
    a = p.parse_args(argv)
    if a.repeats < 1 or a.updates < 4:
        p.error("--repeats must be >= 1 and --updates >= 4")
    rows, cache = [], {}
    for seeds in a.seeds:
        for label, module, cfg, rollouts in configs(a.num_envs, a.num_steps, a.updates):
            if label in a.algos:
                rows.append(bench(label, module, cfg, rollouts, seeds, a.env, a.repeats, cache))
                print_table(rows[-1:], [c for c in rows[-1] if c != "train_sps_runs"], stream=sys.stdout)
                sys.stdout.flush()
    cols = ["algo", "seeds", "rollout", "compile_s", "train_sps", "cpu_sps", "update_ms", "rollout_ms", "learn_ms", "learn_share"]
    print(f"\n{a.env}: env steps/s (wall) and one update's cost split (CPU ms; 64-64 tanh)")
    print_table(rows, cols)
    path = write_results(a.name, rows, {"env": a.env, "num_envs": a.num_envs, "num_steps": a.num_steps,
                                        "updates": a.updates})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
