"""trading:stocks throughput: the env alone and DQN training on it, 1 and 8 seeds, beside CartPole.

    .venv/bin/python benchmarks/trading_throughput.py            # a few minutes
    .venv/bin/python benchmarks/trading_throughput.py --env-steps 2000 --dqn-steps 100000

Rows (each one compiled program, compile excluded, run ``--repeats`` times, best kept):

* ``env``: ``num_envs`` copies of the env stepped with uniform random actions in a ``lax.scan`` of
  ``--env-steps`` steps (auto-reset included), vmapped over the seeds; ``trading:stocks`` (GOOGL, the
  defaults: 10 bars, episodes of 250 bars, reset on close) beside ``gymnax:CartPole-v1``, interleaved.
* ``dqn``: ``jaxrl.core.program.make_train`` of DQN in ``experiments/dqn_stocks_googl.json``'s
  configuration (16 envs, batch 64, 128-128 MLP, dueling, double, 2-step; one gradient step per 16
  env steps), learning from the first update, ``--dqn-steps`` env steps per seed, on the trading env
  and, with the same config, on CartPole.

Writes ``benchmarks/results/trading_throughput.json``.  The figures depend on the machine's load
(printed beside them): compare rows of one run, interleaved, not runs.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from _common import compile_timed, print_table, timed_run, write_results  # noqa: E402
from jaxrl import envs, parallel  # noqa: E402
from jaxrl.agents import dqn  # noqa: E402
from jaxrl.core.program import make_train  # noqa: E402

ENVS = {"trading:stocks": dict(split="2017-01-01"), "gymnax:CartPole-v1": {}}
DQN = dict(num_envs=16, batch_size=64, buffer_size=100_000, learning_starts=64, target_update_every=1000,
           n_step=2, double=True, dueling=True, lr=1e-4, anneal_lr=False, eps_decay_steps=50_000, hidden=128,
           layers=2)


def env_program(env_id: str, num_envs: int, seeds: int, steps: int):
    env = envs.make(env_id, num_envs=num_envs, num_seeds=seeds, **ENVS[env_id])
    n = env.spec.action_space.n

    def run(key):
        state, ts = env.reset(key)

        def body(carry, k):
            state, total = carry
            k_act, k_step = jax.random.split(k)
            state, ts = env.step(state, jax.random.randint(k_act, (num_envs,), 0, n), k_step)
            return (state, total + ts.reward.sum()), None

        return jax.lax.scan(body, (state, jnp.zeros(())), jax.random.split(key, steps))[0][1]

    return jax.jit(parallel.vmap(run)), jax.random.split(jax.random.PRNGKey(0), seeds)


def dqn_program(env_id: str, seeds: int, steps: int):
    cfg = dqn.Config().replace(total_steps=steps, **DQN)
    env = envs.make(env_id, num_envs=cfg.num_envs, num_seeds=seeds, **ENVS[env_id])
    train = make_train(dqn.make_agent(cfg, env), num_log_points=10)
    return jax.jit(parallel.vmap(train)), jax.random.split(jax.random.PRNGKey(0), seeds)


def measure(kind: str, env_id: str, seeds: int, args) -> dict:
    if kind == "env":
        fn, keys = env_program(env_id, args.num_envs, seeds, args.env_steps)
        total = args.env_steps * args.num_envs * seeds
    else:
        fn, keys = dqn_program(env_id, seeds, args.dqn_steps)
        total = args.dqn_steps * seeds
    compiled, compile_s = compile_timed(fn, keys)
    best = min(timed_run(compiled, keys)[0] for _ in range(args.repeats))
    row = {"what": kind, "env": env_id, "seeds": seeds, "steps_per_s": total / best, "seconds": best,
           "compile_s": compile_s, "load_1m": os.getloadavg()[0]}
    print_table([row], list(row))
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-envs", type=int, default=16, help="envs per seed in the env rows (default 16)")
    p.add_argument("--env-steps", type=int, default=5000, help="steps of the env rows (default 5000)")
    p.add_argument("--dqn-steps", type=int, default=200_000, help="env steps per seed of the dqn rows")
    p.add_argument("--repeats", type=int, default=2, help="runs per row, best kept (default 2)")
    args = p.parse_args(argv)
    rows = []
    for kind in ("env", "dqn"):
        for seeds in (1, 8):
            for env_id in ENVS:  # interleaved: trading, then CartPole, under the same load
                rows.append(measure(kind, env_id, seeds, args))
    print()
    print_table(rows, ["what", "env", "seeds", "steps_per_s", "compile_s", "load_1m"])
    write_results("trading_throughput", rows, {"argv": sys.argv, "dqn_config": DQN, "num_envs": args.num_envs,
                                               "env_steps": args.env_steps, "dqn_steps": args.dqn_steps})
    return 0


if __name__ == "__main__":
    sys.exit(main())
