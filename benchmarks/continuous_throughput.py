"""Throughput of the continuous-control agents (SAC, TD3, DDPG, D4PG), and rejax 0.1.3's SAC and TD3 beside them.

    .venv/bin/python benchmarks/continuous_throughput.py --peer-python /work/peers/rejax/bin/python
    .venv/bin/python benchmarks/continuous_throughput.py --only pendulum --rounds 3 --algos sac,td3

Rows (env steps/s of the whole compiled training program, compile excluded, best of ``--repeats``):

* ``pendulum``: gymnax Pendulum-v1, 1 env, one gradient step (batch 256) per env step, buffer 10,000,
  learning from step 1,000, 10,000 steps, at 64-64 and 256-256 networks (DDPG and D4PG with the
  same widths and the action at the critic's second layer, D4PG with 51 atoms), 1 seed. This is the
  issue's configuration for the comparison with rejax (its TD3 has 64-64 networks only).
* ``rejax``: the same configuration in rejax 0.1.3 (``benchmarks/peer_rejax.py``, run by the Python
  of a separate virtualenv given with ``--peer-python``), interleaved with jaxrl's rows of the same
  algorithm, ``--rounds`` times: ours, rejax, ours, rejax ... so both see the same machine load.
* ``halfcheetah``: envpool HalfCheetah-v5 at the agents' defaults (256-256; DDPG and D4PG 400-300),
  ``--cheetah-steps`` steps with learning from step 500, 1 seed and 8 seeds in one program.

Writes ``benchmarks/results/continuous_throughput.json`` (machine info included). The machine these
figures come from was shared with other jobs: compare only rows of the same round.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402

import jaxrl.envs  # noqa: E402
from _common import print_table, write_results  # noqa: E402
from jaxrl import agents  # noqa: E402
from jaxrl.core.program import make_train  # noqa: E402

PENDULUM = dict(num_envs=1, train_every=1, gradient_steps=1, batch_size=256, buffer_size=10_000,
                learning_starts=1_000, total_steps=10_000)


def ours(algo: str, env_id: str, overrides: dict, seeds: int = 1, repeats: int = 2) -> dict:
    module, _ = agents.get(algo)
    cfg = module.Config().replace(**overrides)
    env = jaxrl.envs.make(env_id, num_envs=cfg.num_envs, num_seeds=seeds)
    agent = module.make_agent(cfg, env)
    train = make_train(agent, 1)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    fn, arg = (jax.jit(train), keys[0]) if seeds == 1 else (jax.jit(jax.vmap(train)), keys)
    t0 = time.perf_counter()
    compiled = fn.lower(arg).compile()
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(arg))
        best = min(best, time.perf_counter() - t0)
    steps = agent.num_updates * agent.steps_per_update * seeds
    return {"who": "jaxrl", "algo": algo, "env": env_id, "seeds": seeds, "steps_per_s": steps / best,
            "compile_s": compile_s, "load": os.getloadavg()[0]}


def nets(algo: str, hidden: int) -> dict:
    out = dict(hidden=hidden)
    if algo in ("ddpg", "d4pg"):
        out["last_hidden"] = 0
    if algo == "d4pg":
        out.update(v_min=-1000.0, v_max=0.0)
    return out


def peer(python: str, algo: str, hidden: int) -> dict:
    script = Path(__file__).resolve().parent / "peer_rejax.py"
    p = subprocess.run([python, str(script), algo, "--hidden", str(hidden)], capture_output=True, text=True,
                       env=dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS") or "cpu",
                                PYTHONPATH=os.environ.get("PEER_PYTHONPATH", "")), timeout=1200)
    if p.returncode != 0:
        raise SystemExit(f"peer failed: {p.stderr.strip().splitlines()[-1:]}")
    row = json.loads(p.stdout.strip().splitlines()[-1])
    return {"who": "rejax 0.1.3", "algo": algo, "env": "gymnax:Pendulum-v1", "seeds": 1,
            "steps_per_s": row["steps_per_s"], "compile_s": row["compile_s"], "load": os.getloadavg()[0]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--algos", default="sac,td3,ddpg,d4pg")
    ap.add_argument("--only", choices=["pendulum", "halfcheetah", "all"], default="all")
    ap.add_argument("--hidden", default="64,256", help="network widths of the Pendulum rows")
    ap.add_argument("--seeds", default="1", help="vmapped seeds of the Pendulum rows (comma-separated: 1,8)")
    ap.add_argument("--peer-python", default=None, help="Python of a virtualenv with rejax 0.1.3 (SAC, TD3 at 64)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of jaxrl vs rejax")
    ap.add_argument("--cheetah-steps", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args(argv)
    algos = a.algos.split(",")
    rows = []

    def add(row, **kw):
        row.update(kw)
        rows.append(row)
        print(json.dumps(row), flush=True)

    if a.only in ("pendulum", "all"):
        for hidden in map(int, a.hidden.split(",")):
            for algo in algos:
                vs_peer = a.peer_python and algo in ("sac", "td3") and hidden == 64
                for r in range(a.rounds if vs_peer else 1):
                    for seeds in map(int, a.seeds.split(",")):
                        add(ours(algo, "gymnax:Pendulum-v1", dict(PENDULUM, **nets(algo, hidden)), seeds=seeds,
                                 repeats=a.repeats), hidden=hidden, round=r)
                    if vs_peer:
                        add(peer(a.peer_python, algo, hidden), hidden=hidden, round=r)
    if a.only in ("halfcheetah", "all"):
        cheetah = dict(num_envs=1, total_steps=a.cheetah_steps, learning_starts=500, buffer_size=10_000)
        for algo in algos:
            for seeds in (1, 8):
                add(ours(algo, "envpool:HalfCheetah-v5", cheetah, seeds=seeds, repeats=1), hidden="default", round=0)
    print()
    print_table(rows, ["who", "algo", "env", "hidden", "seeds", "round", "steps_per_s", "compile_s", "load"])
    for algo in ("sac", "td3"):
        for r in range(a.rounds):
            pair = [x for x in rows if x["algo"] == algo and x.get("round") == r and x["hidden"] == 64
                    and x["env"] == "gymnax:Pendulum-v1" and x["seeds"] == 1]
            if len(pair) == 2:
                print(f"{algo} round {r}: jaxrl / rejax = {pair[0]['steps_per_s'] / pair[1]['steps_per_s']:.2f}")
    path = write_results("continuous_throughput", rows, {"pendulum": PENDULUM, "argv": argv or sys.argv[1:],
                                                         "note": "shared 2-core machine: compare rows of one round"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
