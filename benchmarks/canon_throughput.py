"""Throughput of the classic canon: REINFORCE, A2C, CEM, ES, GA on CartPole, tabular methods on FrozenLake.

    python benchmarks/canon_throughput.py             # default table + ES/GA population scaling (~3-4 min, 2 cores)
    python benchmarks/canon_throughput.py --quick     # fewer updates, two population sizes
    python benchmarks/canon_throughput.py --seeds 4 --populations 16 64 256

For each method (default config, ``--seeds`` vmapped seeds, one compiled ``jit(vmap(train))``):

* ``compile_s``: AOT compile of the whole program;
* ``sim_steps_per_s``: env steps simulated per second, all seeds (``num_updates * steps_per_update``
  per seed).  Episode-based methods roll a fixed ``max_steps`` with masks, so this counts masked steps;
* ``env_steps_per_s``: steps that belonged to episodes (A2C: the same as simulated);
* ``episodes_per_s``: episodes played per second (the black-box methods' natural unit: every
  member of the population plays ``num_envs`` episodes per generation; ES also plays its centre).

Then ES and GA generations/s and episodes/s against population size.  Writes
``benchmarks/results/canon_throughput.json`` and ``benchmarks/results/canon_population_scaling.png``.
Tabular methods include their greedy evaluation episodes in the time (that is most of it).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from _common import RESULTS_DIR, compile_timed, print_table, timed_run, write_results  # noqa: E402

import jaxrl.envs as envs  # noqa: E402
from jaxrl import parallel  # noqa: E402
from jaxrl.agents import a2c, cem, es, ga, q_learning, reinforce, value_iteration  # noqa: E402
from jaxrl.core.program import make_train  # noqa: E402

CARTPOLE, LAKE = "gymnax:CartPole-v1", "gymnax:FrozenLake-misc"


def episodes_per_update(name, cfg):
    return {"es": (getattr(cfg, "population", 0) + 1) * cfg.num_envs,
            "ga": getattr(cfg, "population", 0) * cfg.num_envs}.get(name)


def measure(name, mod, env_id, cfg, seeds):
    env = envs.make(env_id, num_envs=cfg.num_envs)
    agent = mod.make_agent(cfg, env)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    compiled, compile_s = compile_timed(jax.jit(parallel.vmap(make_train(agent, 10))), keys)
    seconds, (_, m) = timed_run(compiled, keys)
    m = {k: np.asarray(v) for k, v in m.items()}
    sim = agent.num_updates * agent.steps_per_update * seeds
    valid = m["env_steps_sum"].sum() if "env_steps_sum" in m else sim
    per_upd = episodes_per_update(name, cfg)
    eps = per_upd * agent.num_updates * seeds if per_upd else m["episodes"].sum()
    last = m["episode_return_sum"][:, -1] / np.maximum(m["episodes"][:, -1], 1)
    return {
        "algo": name, "env": env_id, "seeds": seeds, "updates": agent.num_updates,
        "compile_s": round(compile_s, 2), "run_s": round(seconds, 3),
        "sim_steps_per_s": sim / seconds, "env_steps_per_s": float(valid) / seconds,
        "episodes_per_s": float(eps) / seconds, "updates_per_s": agent.num_updates * seeds / seconds,
        "final_return": float(np.median(last)),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=1, help="vmapped seeds per program")
    ap.add_argument("--populations", type=int, nargs="+", default=[16, 64, 256], help="ES/GA population sizes")
    ap.add_argument("--quick", action="store_true", help="fewer updates and populations 16 64")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    q = args.quick
    methods = [
        ("reinforce", reinforce, CARTPOLE, reinforce.Config(iterations=40 if q else 150)),
        ("a2c", a2c, CARTPOLE, a2c.Config(total_steps=40_000 if q else 200_000)),
        ("cem", cem, CARTPOLE, cem.Config(iterations=20 if q else 60)),
        ("es", es, CARTPOLE, es.Config(iterations=10 if q else 50)),
        ("ga", ga, CARTPOLE, ga.Config(iterations=10 if q else 20)),
        ("value_iteration", value_iteration, LAKE, value_iteration.Config(iterations=50 if q else 100)),
        ("q_learning", q_learning, LAKE, q_learning.Config(iterations=500 if q else 2000)),
    ]
    rows = []
    for name, mod, env_id, cfg in methods:
        rows.append(measure(name, mod, env_id, cfg, args.seeds))
        print(f"  {name}: {rows[-1]['sim_steps_per_s']:,.0f} sim steps/s", file=sys.stderr)
    cols = ["algo", "env", "seeds", "updates", "compile_s", "run_s", "sim_steps_per_s", "env_steps_per_s",
            "episodes_per_s", "final_return"]
    print_table(rows, cols)

    pops = [16, 64] if q else args.populations
    scaling = []
    for name, mod, make_cfg in [("es", es, lambda p: es.Config(population=p, iterations=5 if q else 10)),
                                ("ga", ga, lambda p: ga.Config(population=p, parents=max(1, p // 5),
                                                               iterations=5 if q else 10))]:
        for p in pops:
            r = measure(name, mod, CARTPOLE, make_cfg(p), args.seeds)
            r["population"] = p
            scaling.append(r)
            print(f"  {name} population {p}: {r['episodes_per_s']:,.0f} episodes/s", file=sys.stderr)
    print()
    print_table(scaling, ["algo", "population", "updates_per_s", "episodes_per_s", "sim_steps_per_s", "compile_s"])

    path = write_results("canon_throughput", rows + scaling, {
        "command": "python benchmarks/canon_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "note": "sim_steps include masked steps of finished episodes (fixed-length masked rollouts); "
                "tabular rows include greedy evaluation time; rows with 'population' are the ES/GA scaling",
    })
    print(f"\nwrote {path}")
    if not args.no_plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        for name in ("es", "ga"):
            pts = [r for r in scaling if r["algo"] == name]
            ax.plot([r["population"] for r in pts], [r["episodes_per_s"] for r in pts], "o-", label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("population size")
        ax.set_ylabel("CartPole episodes / s (500-step masked)")
        ax.set_title(f"ES/GA population scaling ({jax.default_backend()}, {args.seeds} seed(s))")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        png = RESULTS_DIR / "canon_population_scaling.png"
        fig.savefig(png, dpi=120)
        print(f"wrote {png}")


if __name__ == "__main__":
    main()
