"""jaxrl's PQN against rejax 0.1.3's PQN on CartPole-v1, same configuration, interleaved rounds.

    python benchmarks/pqn_vs_rejax.py --peer-python /work/peers/rejax/bin/python
    python benchmarks/pqn_vs_rejax.py --peer-python PEER/bin/python --seeds 1 --rounds 3

Configuration of both sides: 32 envs x 64 steps, 16 minibatches x 4 epochs, 64-64 Q-network with
LayerNorm, Adam (lr 1e-3, no annealing, clip 10), gamma 0.99, lambda 0.9, ``--total-steps`` per seed
(a multiple of 2,048 so both run the same number of updates), seeds vmapped. jaxrl runs
``make_train`` (10 logging points, metrics accumulated) with its defaults (seeds sharded over the CPU
cores as ``jaxrl train --devices all`` does); rejax runs ``jit(vmap(PQN.train))`` in its own
virtualenv (``benchmarks/peer_rejax.py pqn --serve``, a process that stays up so its program is
compiled once), its evaluation replaced by a no-op. Each round runs each side once (compiled, after
a warm-up), alternating which goes first, so that a ratio is taken under the same machine load.
Prints per-round env steps/s, ratios (jaxrl / rejax) and their geometric mean per seed count,
with the 1-minute load average, and each side's CPU seconds (process time, all threads) per run:
on a shared machine the CPU-time ratio says how much work each program does, the wall-time ratio
what a user gets under that load. Writes ``benchmarks/results/pqn_vs_rejax.json``.

``--peer-jaxrl-flags`` gives the peer the XLA flags jaxrl sets on import (``jaxrl/_platform.py``), a
control for how much of the ratio comes from those flags rather than from the program.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402

from _common import compile_timed, print_table, timed_run, write_results  # noqa: E402

import jaxrl.envs as envs  # noqa: E402
from jaxrl import parallel  # noqa: E402
from jaxrl.agents import pqn  # noqa: E402
from jaxrl.core.program import make_train  # noqa: E402

CONFIG = dict(num_envs=32, num_steps=64, num_minibatches=16, num_epochs=4, lr=1e-3, anneal_lr=False,
              optimizer="adam", max_grad_norm=10.0, gamma=0.99, q_lambda=0.9, eps_end=0.05, layer_norm=True,
              hidden=64, layers=2)


def jaxrl_program(seeds: int, total_steps: int):
    """``(run, env steps per run)``: jaxrl's compiled PQN training program over ``seeds`` seeds."""
    cfg = pqn.Config(**CONFIG, total_steps=total_steps)
    env = envs.make("gymnax:CartPole-v1", num_envs=cfg.num_envs, num_seeds=seeds)
    agent = pqn.make_agent(cfg, env)
    placement = parallel.plan("all", batch=seeds, shardable=True, stream=False)
    keys = placement.put(jax.random.split(jax.random.PRNGKey(0), seeds))
    compiled, _ = compile_timed(jax.jit(parallel.vmap(make_train(agent, num_log_points=10)),
                                        **placement.jit_kwargs(1)), keys)
    timed_run(compiled, keys)  # warm-up

    def run():
        c0 = time.process_time()
        seconds = timed_run(compiled, keys)[0]
        return {"seconds": seconds, "cpu_seconds": time.process_time() - c0}

    return run, agent.num_updates * agent.steps_per_update * seeds


class Peer:
    """rejax's compiled PQN in a process of its own virtualenv; ``run()`` -> wall and CPU seconds of one run."""

    def __init__(self, python: str, seeds: int, total_steps: int, jaxrl_flags: bool):
        script = Path(__file__).resolve().parent / "peer_rejax.py"
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        env.pop("XLA_FLAGS", None)
        if jaxrl_flags:
            env["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "")
        self.p = subprocess.Popen([python, str(script), "pqn", "--serve", "--seeds", str(seeds),
                                   "--steps", str(total_steps)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=env)
        self.info = json.loads(self.p.stdout.readline())

    def run(self) -> dict:
        self.p.stdin.write("run\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def geomean(xs) -> float:
    return math.exp(sum(map(math.log, xs)) / len(xs))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", required=True, help="Python of a virtualenv with rejax 0.1.3")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--total-steps", type=int, default=102_400, help="env steps per seed (a multiple of 2,048)")
    ap.add_argument("--peer-jaxrl-flags", action="store_true", help="run the peer with jaxrl's XLA flags")
    ap.add_argument("--name", default="pqn_vs_rejax", help="results file name")
    a = ap.parse_args(argv)
    if a.total_steps % 2048:
        raise SystemExit("pqn_vs_rejax: --total-steps must be a multiple of 2048 (32 envs x 64 steps); change it")
    rows, summary = [], []
    for seeds in a.seeds:
        peer = Peer(a.peer_python, seeds, a.total_steps, a.peer_jaxrl_flags)
        run, steps = jaxrl_program(seeds, a.total_steps)
        assert peer.info["env_steps"] == steps, (peer.info, steps)
        ratios, cpu_ratios = [], []
        for r in range(a.rounds):
            order = ("jaxrl", "rejax") if r % 2 == 0 else ("rejax", "jaxrl")
            t = {side: (run() if side == "jaxrl" else peer.run()) for side in order}
            ratios.append(t["rejax"]["seconds"] / t["jaxrl"]["seconds"])
            cpu_ratios.append(t["rejax"]["cpu_seconds"] / t["jaxrl"]["cpu_seconds"])
            rows.append(dict(seeds=seeds, round=r, load_1m=round(os.getloadavg()[0], 2),
                             jaxrl_sps=round(steps / t["jaxrl"]["seconds"]), rejax_sps=round(steps / t["rejax"]["seconds"]),
                             ratio=round(ratios[-1], 2), jaxrl_cpu_s=round(t["jaxrl"]["cpu_seconds"], 2),
                             rejax_cpu_s=round(t["rejax"]["cpu_seconds"], 2), cpu_ratio=round(cpu_ratios[-1], 2)))
            print_table(rows[-1:], list(rows[-1]))
        peer.close()
        summary.append(dict(seeds=seeds, rounds=a.rounds, geomean_ratio=round(geomean(ratios), 2),
                            min_ratio=round(min(ratios), 2), max_ratio=round(max(ratios), 2),
                            geomean_cpu_ratio=round(geomean(cpu_ratios), 2)))
    print(f"\nCartPole-v1, {a.total_steps:,} steps per seed, jaxrl / rejax 0.1.3 (env steps/s)")
    print_table(rows, list(rows[0]))
    print_table(summary, list(summary[0]))
    path = write_results(a.name, rows + summary, {"total_steps": a.total_steps, "config": CONFIG,
                                                  "peer_jaxrl_flags": a.peer_jaxrl_flags})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
