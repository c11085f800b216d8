"""PPO and DQN throughput on several Python/JAX installs and Threefry lowerings, interleaved.

    python benchmarks/versions.py --python .venv/bin/python --python .venv-py312/bin/python \\
        --lowering 1 --lowering 0 --rounds 2

Each round runs every (interpreter, ``JAXRL_FAST_THREEFRY``) pair once, in that order, each in its own
process (``--child``), so that all configurations see the same machine load; compare them by the
ratio to the first configuration of the same round. Per configuration and round:

* ``ppo_1``: PPO CartPole-v1, 4 envs x 128 steps, 4x4 minibatches, 64-64 tanh, 1 seed, ``--steps``
  env steps (500k: ``benchmarks/ppo_throughput.py --quick``'s row): env steps/s of the whole compiled
  run after a warm-up run, and its compile seconds;
* ``ppo_8``: the same with 8 seeds sharded over the cores, ``--ppo8-steps`` steps per seed (0 skips it);
* ``dqn``: DQN's reference row of ``benchmarks/dqn_throughput.py`` (CartPole-v1, 10 envs, one
  batch-128 gradient step per 10 env steps, buffer 10k, 1 seed), ``--steps`` env steps, after a warm-up run;
* each rate both per wall second (``sps``) and per CPU second of the process (``cpu_sps``: steadier
  on a shared machine, where the wall clock also counts waiting for a core);
* the final return of each (does it still learn?) and the Threefry lowering actually used.

Writes ``benchmarks/results/versions.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _ppo(seeds: int, total_steps: int) -> dict:
    import jax
    import numpy as np

    from _common import compile_timed, timed_run
    from jaxrl import envs, parallel
    from jaxrl.agents import ppo
    from jaxrl.core.program import make_train

    env = envs.make("gymnax:CartPole-v1", num_envs=4, num_seeds=seeds)
    agent = ppo.make_agent(ppo.Config(num_envs=4, total_steps=total_steps), env)
    placement = parallel.plan("all", batch=seeds, shardable=True, stream=False)
    keys = placement.put(jax.random.split(jax.random.PRNGKey(0), seeds))
    train = jax.jit(parallel.vmap(make_train(agent, num_log_points=20)), **placement.jit_kwargs(1))
    compiled, compile_s = compile_timed(train, keys)
    timed_run(compiled, keys)  # warm-up
    steps = agent.num_updates * agent.steps_per_update * seeds
    row, (_, m) = _timed(compiled, keys, steps=steps)
    ret = np.asarray(m["episode_return_sum"][:, -1] / np.maximum(m["episodes"][:, -1], 1))
    return dict(row, compile_s=round(compile_s, 2), final_return=float(np.median(ret)))


def _dqn(total_steps: int) -> dict:
    import jax
    import numpy as np

    import dqn_throughput as d
    from _common import compile_timed, timed_run
    from jaxrl import envs
    from jaxrl.agents import dqn
    from jaxrl.core.program import make_train

    cfg = dqn.Config().replace(**dict(d.REFERENCE, total_steps=total_steps))
    agent = dqn.make_agent(cfg, envs.make("gymnax:CartPole-v1", num_envs=cfg.num_envs))
    key = jax.random.key(0)
    compiled, compile_s = compile_timed(jax.jit(make_train(agent, 20)), key)
    timed_run(compiled, key)  # warm-up
    row, (_, m) = _timed(compiled, key, steps=agent.num_updates * agent.steps_per_update)
    ret = np.asarray(m["episode_return_sum"]) / np.maximum(np.asarray(m["episodes"]), 1)
    return dict(row, compile_s=round(compile_s, 2), final_return=float(ret[-1]))


def _timed(compiled, *args, steps: int):
    """``({"sps": steps per wall second, "cpu_sps": steps per CPU second of this process}, out)``.
    On a loaded machine the CPU-time rate is the steadier one (it ignores time spent waiting for a core)."""
    from _common import timed_run

    c0 = time.process_time()
    seconds, out = timed_run(compiled, *args)
    cpu = time.process_time() - c0
    return dict(sps=round(steps / seconds), cpu_sps=round(steps / cpu)), out


def child(steps: int, ppo8_steps: int) -> dict:
    import platform

    import flax
    import jaxrl._platform as plat

    rep = plat.report()
    out = dict(python=platform.python_version(), jax=rep["jax"], jaxlib=rep["jaxlib"], flax=flax.__version__,
               threefry=rep["threefry"]["lowering"], setting=os.environ.get(plat.THREEFRY_ENV, "1"))
    out["ppo_1"] = _ppo(1, steps)
    if ppo8_steps:
        out["ppo_8"] = _ppo(8, ppo8_steps)
    out["dqn"] = _dqn(steps)
    return out


def _run_child(python: str, lowering: str, steps: int, ppo8_steps: int, timeout: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAXRL_FAST_THREEFRY=lowering, JAXRL_COMPILE_CACHE="off",
               PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    t0 = time.time()
    p = subprocess.run([python, os.path.abspath(__file__), "--child", "--steps", str(steps),
                        "--ppo8-steps", str(ppo8_steps)], env=env,
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        return dict(error=p.stderr[-2000:], python_path=python, setting=lowering)
    row = json.loads(p.stdout.strip().splitlines()[-1])
    row.update(python_path=python, wall_s=round(time.time() - t0, 1), load_1m=os.getloadavg()[0])
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", action="append", help="interpreter of an install (repeatable; default: this one)")
    p.add_argument("--lowering", action="append", help="JAXRL_FAST_THREEFRY value (repeatable; default 1)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=500_000, help="env steps of the 1-seed PPO and the DQN rows")
    p.add_argument("--ppo8-steps", type=int, default=250_000, help="env steps per seed of the 8-seed PPO row (0: skip it)")
    p.add_argument("--timeout", type=int, default=900, help="seconds per configuration and round")
    p.add_argument("--name", default="versions")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.steps, args.ppo8_steps)), flush=True)
        return
    from _common import print_table, write_results

    pythons, lowerings = args.python or [sys.executable], args.lowering or ["1"]
    rows = []
    for rnd in range(args.rounds):
        base = None
        for py in pythons:
            for low in lowerings:
                row = dict(_run_child(py, low, args.steps, args.ppo8_steps, args.timeout), round=rnd)
                if "error" not in row:
                    base = base or row
                    for k in (k for k in ("ppo_1", "ppo_8", "dqn") if k in row):
                        row[k]["ratio_to_first"] = round(row[k]["sps"] / base[k]["sps"], 3)
                        row[k]["cpu_ratio_to_first"] = round(row[k]["cpu_sps"] / base[k]["cpu_sps"], 3)
                rows.append(row)
                print(json.dumps(row), flush=True)
    write_results(args.name, rows, meta=dict(command=" ".join(sys.argv), pythons=pythons, lowerings=lowerings))
    print_table([_flat(r) for r in rows], ["round", "python", "jax", "threefry", "ppo_1", "ppo_8", "dqn",
                                           "ppo_1_cpu", "ppo_8_cpu", "dqn_cpu", "returns", "error"])


def _flat(row: dict) -> dict:
    """One table line: env steps per wall second and per CPU second, final returns (PPO 1, PPO 8, DQN)."""
    out = {k: row.get(k) for k in ("round", "python", "jax", "threefry")}
    if "error" in row:
        return dict(out, python=row["python_path"], error=row["error"].strip().splitlines()[-1][:60])
    ran = [k for k in ("ppo_1", "ppo_8", "dqn") if k in row]
    for k in ran:
        out[k], out[f"{k}_cpu"] = row[k]["sps"], row[k]["cpu_sps"]
    out["returns"] = "/".join(f"{row[k]['final_return']:.0f}" for k in ran)
    return out


if __name__ == "__main__":
    main()
