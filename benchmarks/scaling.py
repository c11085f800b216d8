"""Scaling: env steps/s of the training program against num_envs and against num_seeds.

    python benchmarks/scaling.py                  # full sweep (see --help for the grid)
    python benchmarks/scaling.py --quick          # a few points per curve, about a minute per curve
    python benchmarks/scaling.py --algos ppo --envs gymnax:CartPole-v1 --num-envs 1 16 256

For each algorithm (PPO; DQN when ``jaxrl.agents.dqn`` is importable) and environment
(gymnax CartPole, gymnax MinAtar Breakout, envpool Pong) it measures the compiled driver program,
``jit(vmap(scan(update, n)))``, exactly as ``jaxrl train`` runs it:

* **vs num_envs** (1 to 4096, powers of 4) at one seed;
* **vs num_seeds** (1 to 64, powers of 4) at the algorithm's default num_envs.

Each point: AOT compile (reported, not timed into steps/s), one warm-up call, then calls until at
least ``--min-seconds`` have passed; ``steps_per_s = env steps (all seeds) / seconds``.  Settings
that change only the cost per step are fixed so points are comparable: DQN learns from the
first step (``learning_starts=0``) with a 4096-transition buffer per seed (4 rows per env
beyond 1024 envs).  Points whose state or
rollout would exceed ``--max-gb`` are skipped with a note; MinAtar observations are flattened by
the agents' MLP torsos; PPO uses its Nature CNN torso on Pong; envpool Pong is capped at
``--envpool-max`` envs x seeds by default (each Atari env is a C++ emulator on a host thread).

Writes ``benchmarks/results/scaling.json`` and ``scaling.png`` and prints a table.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RESULTS_DIR, compile_timed, print_table, timed_run, write_results  # noqa: E402

ENVS = ("gymnax:CartPole-v1", "gymnax:Breakout-MinAtar", "envpool:Pong-v5")
FIXED = {"dqn": {"learning_starts": 0, "buffer_size": 4096}, "ppo": {}}
UPDATES_PER_CALL = {"ppo": 1, "dqn": 32}
def available_algos(wanted):
    out = []
    for a in wanted:
        try:
            __import__(f"jaxrl.agents.{a}")
            out.append(a)
        except ImportError as e:
            print(f"note: skipping {a}: jaxrl.agents.{a} is not importable ({e})")
    return out


def measure(algo: str, env_id: str, num_envs: int, num_seeds: int, min_seconds: float, max_gb: float) -> dict:
    import jax
    import jax.numpy as jnp

    from jaxrl import agents, envs, parallel
    from jaxrl.core.program import run_updates
    from jaxrl.driver.guards import tree_bytes

    module, _ = agents.get(algo)
    row = {"algo": algo, "env": env_id, "num_envs": num_envs, "num_seeds": num_seeds}
    fixed = dict(FIXED.get(algo, {}))
    if "buffer_size" in fixed:  # at least 4 rows per env, so that 4096 envs still have a buffer
        fixed["buffer_size"] = max(fixed["buffer_size"], 4 * num_envs)
    # a generous total_steps so that a large num_envs passes validation (one rollout must fit);
    # the timed config sets its own total_steps below
    base = module.Config.from_dict({**fixed, "num_envs": num_envs, "total_steps": 10**9})
    env = envs.make(env_id, num_envs=num_envs, num_seeds=num_seeds)
    n = UPDATES_PER_CALL.get(algo, 1)
    probe = module.make_agent(base, env)
    config = base.replace(total_steps=probe.steps_per_update * n * 1000)
    agent = module.make_agent(config, env)
    # seeds sharded over the local devices (on CPU: the cores) exactly as `jaxrl train` does
    placement = parallel.plan("all", batch=num_seeds, shardable=env.spec.backend != "envpool", stream=False)
    keys = placement.put(jax.random.split(jax.random.PRNGKey(0), num_seeds))
    hp = placement.put({k: jnp.full((num_seeds,), v, jnp.float32) for k, v in config.hparams().items()})
    init = jax.jit(parallel.vmap(agent.init), **placement.jit_kwargs(2))
    state_shape = jax.eval_shape(init, keys, hp)
    chunk = jax.jit(parallel.vmap(lambda s, h: run_updates(agent, s, h, n)), donate_argnums=0,
                    **placement.jit_kwargs(2))
    obs_bytes = 4 * math.prod(env.spec.obs_shape)
    rollout = getattr(config, "num_steps", 1) * num_envs * num_seeds * obs_bytes * 3  # obs + minibatch gathers
    need = tree_bytes(state_shape) + rollout
    if need > max_gb * 2**30:
        row["note"] = f"skipped: needs ~{need / 2**30:.1f} GiB > --max-gb {max_gb}"
        return row
    init_c, c0 = compile_timed(init, keys, hp)
    chunk_c, c1 = compile_timed(chunk, state_shape, hp)
    state = init_c(keys, hp)
    _, (state, _) = timed_run(chunk_c, state, hp)  # warm-up
    calls, seconds = 0, 0.0
    while seconds < min_seconds or calls < 2:
        dt, (state, _) = timed_run(chunk_c, state, hp)
        seconds += dt
        calls += 1
    steps = calls * n * agent.steps_per_update * num_seeds
    row.update(compile_s=round(c0 + c1, 2), seconds=round(seconds, 4), env_steps=steps,
               steps_per_s=steps / seconds, steps_per_s_per_seed=steps / seconds / num_seeds)
    return row


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, sweep, xkey in ((axes[0], "num_envs", "num_envs"), (axes[1], "num_seeds", "num_seeds")):
        curves = {}
        for r in rows:
            if r.get("sweep") == sweep and r.get("steps_per_s"):
                curves.setdefault((r["algo"], r["env"]), []).append((r[xkey], r["steps_per_s"]))
        for (algo, env), pts in sorted(curves.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{algo} {env}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xkey + (" (1 seed)" if sweep == "num_envs" else " (default num_envs)"))
        ax.set_ylabel("env steps / s (all seeds)")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"throughput vs {xkey}")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 points per curve, shorter timing")
    p.add_argument("--algos", nargs="+", default=["ppo", "dqn"])
    p.add_argument("--envs", nargs="+", default=list(ENVS))
    p.add_argument("--num-envs", nargs="+", type=int, help="default: 1 4 16 ... 4096")
    p.add_argument("--num-seeds", nargs="+", type=int, help="default: 1 4 16 64")
    p.add_argument("--min-seconds", type=float, help="timed seconds per point (default 1.0; quick 0.3)")
    p.add_argument("--max-gb", type=float, default=2.0, help="skip points needing more memory than this")
    p.add_argument("--envpool-max", type=int, default=64, help="cap on num_envs x num_seeds for envpool envs")
    p.add_argument("--name", default="scaling", help="results file stem")
    args = p.parse_args(argv)

    env_grid = args.num_envs or ([1, 16, 256] if args.quick else [4 ** i for i in range(7)])
    seed_grid = args.num_seeds or ([1, 8] if args.quick else [1, 4, 16, 64])
    min_s = args.min_seconds or (0.3 if args.quick else 1.0)
    algos = available_algos(args.algos)
    rows = []
    t_all = time.perf_counter()
    for env_id in args.envs:
        for algo in algos:
            from jaxrl import agents

            default_envs = agents.get(algo)[0].Config().num_envs
            points = [("num_envs", e, 1) for e in env_grid] + [("num_seeds", default_envs, s) for s in seed_grid]
            for sweep, ne, ns in points:
                if env_id.startswith("envpool:") and ne * ns > args.envpool_max:
                    rows.append({"sweep": sweep, "algo": algo, "env": env_id, "num_envs": ne, "num_seeds": ns,
                                 "note": f"skipped: envpool capped at {args.envpool_max} envs x seeds"})
                    continue
                try:
                    r = measure(algo, env_id, ne, ns, min_s, args.max_gb)
                except Exception as e:  # record and go on: one bad point must not lose the sweep
                    traceback.print_exc(limit=2)
                    r = {"algo": algo, "env": env_id, "num_envs": ne, "num_seeds": ns,
                         "note": f"error: {type(e).__name__}: {str(e).splitlines()[0][:120]}"}
                r["sweep"] = sweep
                rows.append(r)
                sps = r.get("steps_per_s")
                print(f"  {algo:4s} {env_id:26s} {sweep:9s} envs={ne:<5d} seeds={ns:<3d} "
                      + (f"{sps:>12,.0f} steps/s  (compile {r['compile_s']:.1f}s)" if sps else r.get("note", "")),
                      flush=True)
    elapsed = time.perf_counter() - t_all
    meta = {"quick": args.quick, "num_envs_grid": env_grid, "num_seeds_grid": seed_grid, "min_seconds": min_s,
            "fixed_overrides": FIXED, "updates_per_call": UPDATES_PER_CALL, "total_seconds": round(elapsed, 1),
            "envpool_max": args.envpool_max}
    path = write_results(args.name, rows, meta)
    png = RESULTS_DIR / f"{args.name}.png"
    plot(rows, png)
    print()
    print_table(rows, ["sweep", "algo", "env", "num_envs", "num_seeds", "steps_per_s", "steps_per_s_per_seed",
                       "compile_s", "note"])
    print(f"\nwrote {path} and {png} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
