"""Where one PPO update's time goes, and what bounds the single-seed rate on this machine.

    python benchmarks/ppo_breakdown.py                  # CartPole-v1, 4 envs x 128 steps, 4 x 4 minibatches
    python benchmarks/ppo_breakdown.py --num-envs 16

It times whole training programs (one seed, ``--total-steps`` each) that differ in one config
field, so every figure comes from the real PPO program rather than a re-implementation:

* ``update``: the reference configuration, per update;
* ``epoch``: ``(t[4 epochs] - t[1 epoch]) / 3``, the cost of one pass of minibatch steps;
  ``sgd_step`` is that over ``num_minibatches``;
* ``rest``: ``t[1 epoch] - epoch``: rollout, V(s'), GAE, shuffling and logging;
* ``sgd_step hidden=8``: the same with 8 units per layer: almost no matmul work, so this is
  the per-kernel (launch and bookkeeping) part of a gradient step;

and two machine facts that bound the result:

* ``dot 128x64x64``: one [128, 64] x [64, 64] matmul inside a loop, as in every gradient step
  (each step needs six of them: forward, weight gradient and input gradient of the second hidden
  layer of actor and critic), and its GFLOP/s;
* ``psum 2 devices``: latency of one cross-device all-reduce inside a loop. Splitting one seed's
  gradient step over two cores would need one per step (the global grad-norm clip couples actor
  and critic), so it must be well under ``sgd_step / 2`` to pay off.

Prints a table and writes ``benchmarks/results/ppo_breakdown.json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from _common import compile_timed, print_table, timed_run, write_results  # noqa: E402

import jaxrl.envs as envs  # noqa: E402
from jaxrl import parallel  # noqa: E402
from jaxrl.agents import ppo  # noqa: E402
from jaxrl.core.program import make_train  # noqa: E402


def update_seconds(cfg: ppo.Config, env_id: str, repeats: int) -> float:
    """Best-of-``repeats`` wall seconds per update of a 1-seed training run (compile excluded)."""
    env = envs.make(env_id, num_envs=cfg.num_envs, num_seeds=1)
    agent = ppo.make_agent(cfg, env)
    keys = jax.random.split(jax.random.PRNGKey(0), 1)
    return best_seconds(parallel.vmap(make_train(agent, num_log_points=1)), keys, repeats) / agent.num_updates


def best_seconds(fn, x, repeats: int) -> float:
    """Best-of-``repeats`` wall seconds of ``jit(fn)(x)``: compiled ahead, one warm-up call."""
    compiled, _ = compile_timed(jax.jit(fn), x)
    timed_run(compiled, x)
    return min(timed_run(compiled, x)[0] for _ in range(repeats))


def in_loop(body, length: int):
    """``x -> lax.scan`` of ``body`` over ``length`` iterations."""
    return lambda x: jax.lax.scan(lambda c, _: (body(c), None), x, None, length=length)[0]


def dot_seconds(m: int, k: int, n: int, repeats: int) -> float:
    """Seconds per ``[m, k] x [k, n]`` matmul inside a loop."""
    w = jnp.full((k, n), 1e-3)
    return best_seconds(in_loop(lambda c: c + 1e-3 * (c @ w)[:, :k], 20_000), jnp.ones((m, k)), repeats) / 20_000


def psum_seconds(repeats: int) -> float | None:
    """All-reduce latency between the first two devices, or None with fewer than two."""
    devices = jax.devices()
    if len(devices) < 2:
        return None
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    mesh = Mesh(np.array(devices[:2]), ("d",))

    f = jax.shard_map(in_loop(lambda x: x + 1e-6 * jax.lax.psum(x, "d"), 2000),
                      mesh=mesh, in_specs=P("d"), out_specs=P("d"))
    x = jax.device_put(jnp.ones((2, 16)), NamedSharding(mesh, P("d")))
    return best_seconds(f, x, repeats) / 2000


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="gymnax:CartPole-v1")
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--total-steps", type=int, default=500_000, help="env steps per timed run (as ppo_throughput.py)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per figure (best is kept)")
    p.add_argument("--name", default="ppo_breakdown", help="results file name")
    a = p.parse_args(argv)
    if a.repeats < 1 or a.total_steps < a.num_envs * 128:
        p.error("--repeats must be >= 1 and --total-steps at least one rollout (num_envs * 128)")

    base = ppo.Config(num_envs=a.num_envs, total_steps=a.total_steps)
    mb = base.num_minibatches
    t = {}
    for name, cfg in [("update", base), ("update 1 epoch", dataclasses.replace(base, num_epochs=1)),
                      ("update hidden=8", dataclasses.replace(base, hidden=8)),
                      ("update hidden=8, 1 epoch", dataclasses.replace(base, hidden=8, num_epochs=1))]:
        t[name] = update_seconds(cfg, a.env, a.repeats)
        print(f"  {name:26s} {t[name] * 1e6:9.1f} us", flush=True)
    epochs = base.num_epochs
    epoch = (t["update"] - t["update 1 epoch"]) / (epochs - 1) if epochs > 1 else float("nan")
    epoch8 = (t["update hidden=8"] - t["update hidden=8, 1 epoch"]) / (epochs - 1) if epochs > 1 else float("nan")
    steps = base.num_envs * base.num_steps
    mb_rows = steps // mb
    dot = dot_seconds(mb_rows, base.hidden, base.hidden, a.repeats)
    flops = 2 * mb_rows * base.hidden * base.hidden
    psum = psum_seconds(a.repeats)
    rows = [
        dict(what="update", us=t["update"] * 1e6, note=f"{steps / t['update']:,.0f} env steps/s"),
        dict(what="  rollout, GAE, shuffle, logging", us=(t["update 1 epoch"] - epoch) * 1e6,
             note=f"{(t['update 1 epoch'] - epoch) / t['update']:.0%} of an update"),
        dict(what=f"  {epochs} epochs x {mb} minibatch steps", us=epoch * epochs * 1e6,
             note=f"{epoch * epochs / t['update']:.0%} of an update"),
        dict(what="sgd_step", us=epoch / mb * 1e6, note=f"hidden {base.hidden}"),
        dict(what="sgd_step hidden=8", us=epoch8 / mb * 1e6, note="per-kernel part"),
        dict(what=f"dot {mb_rows}x{base.hidden}x{base.hidden}", us=dot * 1e6,
             note=f"{flops / dot / 1e9:.0f} GFLOP/s; x6 = {6 * dot / (epoch / mb):.0%} of sgd_step"),
        dict(what="psum 2 devices", us=None if psum is None else psum * 1e6,
             note="one device only" if psum is None else f"{psum / (epoch / mb):.0%} of sgd_step"),
    ]
    for r in rows:
        r["us"] = None if r["us"] is None else round(r["us"], 1)
    print(f"\nPPO update breakdown: {a.env}, {base.num_envs} envs x {base.num_steps} steps, "
          f"{epochs} epochs x {mb} minibatches, hidden {base.hidden}, 1 seed")
    print_table(rows, ["what", "us", "note"])
    path = write_results(a.name, rows, {"env": a.env, "num_envs": a.num_envs, "total_steps": a.total_steps,
                                        "raw_update_seconds": t})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
