"""DQN-family throughput on this machine: one compiled program per configuration.

    .venv/bin/python benchmarks/dqn_throughput.py            # a few minutes
    .venv/bin/python benchmarks/dqn_throughput.py --switch-steps 500000 --pong-steps 5000

Rows:
* ``dqn``: the defaults (double-Q on) in the reference configuration (CartPole-v1, 10 envs, one gradient step every 10 env
  steps, batch 128, buffer 10k, 500k steps, 1 seed): env steps/s of the whole run (compile
  excluded) and the final training return, to show that it still solves the task.
* one row per switch (double, n_step=3, dueling, distributional, noisy, prioritized) and
  ``rainbow`` (all on): steps/s over ``--switch-steps`` steps, relative to plain DQN (every switch
  off, ``double=False``) over the
  same steps (learning from the first update so every row times the same gradient work).
* ``pong``: agent steps/s and frames/s (x4, frame skip) of DQN with the classic Pong settings
  (1 env, batch 32, Nature CNN) over ``--pong-steps`` agent steps, learning from the start.

Writes ``benchmarks/results/dqn_throughput.json``.  Timings depend on the load of the machine:
the script prints ``os.getloadavg()`` next to them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import jaxrl.envs  # noqa: E402
from jaxrl.agents import dqn  # noqa: E402
from jaxrl.core.program import make_train  # noqa: E402

REFERENCE = dict(num_envs=10, train_every=1, batch_size=128, buffer_size=10_000, total_steps=500_000)
SWITCHES = {
    "double": dict(double=True),
    "n_step=3": dict(n_step=3),
    "dueling": dict(dueling=True),
    "distributional": dict(distributional=True),
    "noisy": dict(noisy=True),
    "prioritized": dict(prioritized=True),
    "rainbow": dict(dqn.PRESETS["rainbow"]),
}


def timed_run(env_id: str, overrides: dict, repeats: int = 1, num_log_points: int = 20):
    cfg = dqn.Config().replace(**overrides)
    env = jaxrl.envs.make(env_id, num_envs=cfg.num_envs)
    agent = dqn.make_agent(cfg, env)
    train = jax.jit(make_train(agent, num_log_points))
    key = jax.random.key(0)
    t0 = time.perf_counter()
    compiled = train.lower(key).compile()
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, metrics = compiled(key)
        jax.block_until_ready(metrics)
        best = min(best, time.perf_counter() - t0)
    steps = agent.num_updates * agent.steps_per_update
    ret = np.asarray(metrics["episode_return_sum"]) / np.maximum(np.asarray(metrics["episodes"]), 1)
    return dict(steps=steps, seconds=best, steps_per_s=steps / best, compile_s=compile_s,
                final_return=float(ret[-1]), config=overrides)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2, help="timed runs of the reference row (best is kept)")
    p.add_argument("--switch-steps", type=int, default=100_000, help="env steps per switch row")
    p.add_argument("--pong-steps", type=int, default=1_000, help="agent steps of the Pong row (0: skip)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "dqn_throughput.json"))
    args = p.parse_args(argv)

    rows = {}
    load0 = os.getloadavg()
    ref = timed_run("gymnax:CartPole-v1", REFERENCE, args.repeats)
    rows["dqn (reference, 500k steps)"] = ref
    print(f"{'configuration':34s} {'steps/s':>10s} {'relative':>9s} {'final return':>13s}", flush=True)
    print(f"{'dqn (reference, 500k steps)':34s} {ref['steps_per_s']:10,.0f} {'':>9s} {ref['final_return']:13.1f}",
          flush=True)

    short = dict(REFERENCE, total_steps=args.switch_steps, learning_starts=0, double=False)  # plain DQN
    base = timed_run("gymnax:CartPole-v1", short, 2)
    rows["plain dqn (short)"] = base
    print(f"{'plain dqn (short)':34s} {base['steps_per_s']:10,.0f} {1.0:9.2f}", flush=True)
    for name, sw in SWITCHES.items():
        r = timed_run("gymnax:CartPole-v1", dict(short, **sw), 2)
        r["relative_to_dqn"] = r["steps_per_s"] / base["steps_per_s"]
        rows[name] = r
        print(f"{name:34s} {r['steps_per_s']:10,.0f} {r['relative_to_dqn']:9.2f}", flush=True)

    if args.pong_steps:
        pong = dict(json.load(open(os.path.join(os.path.dirname(__file__), "..", "experiments", "dqn_pong.json")))
                    ["config"])
        pong.update(total_steps=args.pong_steps, learning_starts=0)
        r = timed_run("envpool:Pong-v5", pong, 1, num_log_points=1)
        r["frames_per_s"] = 4 * r["steps_per_s"]
        rows["pong (classic DQN, 1 env)"] = r
        print(f"{'pong (classic DQN, 1 env)':34s} {r['steps_per_s']:10,.0f} agent steps/s = "
              f"{r['frames_per_s']:,.0f} frames/s", flush=True)

    out = dict(machine=dict(cpus=os.cpu_count(), processor=platform.processor() or platform.machine(),
                            jax=jax.__version__, loadavg_before=load0, loadavg_after=os.getloadavg()),
               command=" ".join([os.path.basename(sys.executable), "benchmarks/dqn_throughput.py"] + (argv or sys.argv[1:])),
               rows=rows)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    print(f"load average {load0} -> {os.getloadavg()}; wrote {args.out}")


if __name__ == "__main__":
    main()
