"""I2A throughput against A2C at the same rollout size, and the share of time spent imagining.

    python benchmarks/i2a_throughput.py                    # 16 envs x 5 steps, 200 updates, 1 seed
    python benchmarks/i2a_throughput.py --updates 50 --repeats 1

Interleaved in one process (the machine may be shared: compare the ratios, not the absolutes), each a
whole ``jit(train)`` program of ``--updates`` updates on gymnax Breakout-MinAtar:

* ``a2c``: ``jaxrl train a2c`` (64-64 MLP);
* ``i2a_model_free``: the I2A network and loss with ``imagination=false`` (the model-free path and the
  distilled rollout policy: A2C at I2A's architecture);
* ``i2a``: I2A with ``rollout_steps`` imagined steps per action through an env model of the default size.

``imagining_share`` = 1 - time(i2a_model_free) / time(i2a): the share of I2A's time spent on imagined
rollouts and their encoding (acting and learning). Writes ``benchmarks/results/i2a_throughput.json``.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402

from _common import compile_timed, print_table, timed_run, write_results  # noqa: E402

import jaxrl.envs as envs  # noqa: E402
from jaxrl.agents import a2c, i2a  # noqa: E402
from jaxrl.core.program import make_train  # noqa: E402

ENV = "gymnax:Breakout-MinAtar"


def agents(num_envs, num_steps, updates, rollout_steps):
    env = envs.make(ENV, num_envs=num_envs)
    total = updates * num_envs * num_steps
    common = dict(num_envs=num_envs, num_steps=num_steps, total_steps=total)
    return {
        "a2c": a2c.make_agent(a2c.Config(**common), env),
        "i2a_model_free": i2a.make_agent(i2a.Config(**common, env_model="random", imagination=False), env),
        "i2a": i2a.make_agent(i2a.Config(**common, env_model="random", rollout_steps=rollout_steps), env),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--num-envs", type=int, default=16)
    ap.add_argument("--num-steps", type=int, default=5)
    ap.add_argument("--updates", type=int, default=200)
    ap.add_argument("--rollout-steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    progs, compile_s = {}, {}
    key = jax.random.PRNGKey(0)
    for name, agent in agents(a.num_envs, a.num_steps, a.updates, a.rollout_steps).items():
        progs[name], compile_s[name] = compile_timed(jax.jit(make_train(agent, num_log_points=1)), key)
    times = {name: [] for name in progs}
    for _ in range(a.repeats):  # interleaved: each round times every program once
        for name, prog in progs.items():
            times[name].append(timed_run(prog, key)[0])
    steps = a.updates * a.num_envs * a.num_steps
    rows = [{"algo": name, "compile_s": round(compile_s[name], 1), "steps_per_s": round(steps / min(t)),
             "runs_s": [round(x, 2) for x in t]} for name, t in times.items()]
    share = 1 - min(times["i2a_model_free"]) / min(times["i2a"])
    ratio = min(times["a2c"]) / min(times["i2a"])
    print_table(rows, ["algo", "compile_s", "steps_per_s", "runs_s"])
    print(f"imagining share of I2A's time: {share:.0%}; I2A runs at 1/{1 / ratio:.1f} of A2C's steps/s")
    path = write_results("i2a_throughput", rows, dict(vars(a), env=ENV, imagining_share=share,
                                                      i2a_over_a2c=ratio, note="machine shared with other jobs"))
    print(f"wrote {path}")



if __name__ == "__main__":
    main()
