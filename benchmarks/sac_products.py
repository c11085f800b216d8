"""SAC's matrix products timed on their own, beside the whole step of jaxrl's SAC and rejax 0.1.3's.

    .venv/bin/python benchmarks/sac_products.py --peer-python /work/peers/rejax/bin/python

Issue 15 asks for 2x rejax's SAC throughput on Pendulum-v1 (1 env, one gradient step of batch 256 per
env step, 64-64 networks, 10,000 steps, learning from step 1,000). Both programs multiply the same
matrices in each gradient step; this script asks how long those products take with nothing else around
them. It lists every product of one SAC gradient step (as ``jaxrl.agents.sac`` computes it; XLA's
``cost_analysis()`` gives rejax's program 39.1 MFLOP per step against jaxrl's 40.8, the same work),
times each kind alone in a ``lax.scan`` loop of ``--iters`` iterations (a loop with the same
bookkeeping and no product is timed too and subtracted), and sums them per env
step: ``(gradient steps x products per gradient step + env steps x the acting forward pass) / env
steps``. Half of rejax's time per env step minus that sum is what 2x would leave for every other kernel
of the step (replay, three optimizers, Polyak averaging, the tanh-Gaussian, the env): printed as
``goal_leaves_for_the_rest_us`` beside what the rest takes in jaxrl's SAC now (``jaxrl_rest_us``).
Products that XLA folds into the loop's bookkeeping time as 0, so the sum errs low.

Passes per gradient step (twin critics run as one batched product, as XLA runs them):

* target: actor forward on s'; twin critic forward on (s', a');
* critic update: twin forward on (s, a); backward: weight gradients of every layer, input gradients of
  every layer but the first;
* actor update: actor forward on s; twin forward on (s, a~pi) with the updated critics; backward through
  the critics to the action (input gradients only); actor backward (weight gradients of every layer,
  input gradients of every layer but the first).

Writes ``benchmarks/results/sac_products.json``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from _common import print_table, timed_run, write_results  # noqa: E402
from continuous_throughput import PENDULUM, ours, peer  # noqa: E402  (imports jaxrl: its XLA:CPU defaults apply)

FORMS = {  # dot_general dimension numbers of a dense layer's three products, x [B, in], W [in, out], g [B, out]
    "forward": lambda B, i, o: ((B, i), (i, o), (((1,), (0,)), ((), ()))),      # x @ W
    "input_grad": lambda B, i, o: ((B, o), (i, o), (((1,), (1,)), ((), ()))),   # g @ W^T
    "weight_grad": lambda B, i, o: ((B, i), (B, o), (((0,), (0,)), ((), ()))),  # x^T @ g
}


def layers(sizes):
    return list(zip(sizes[:-1], sizes[1:]))


def products(obs_dim: int, action_dim: int, hidden: int, batch: int, num_envs: int = 1):
    """``[(pass, form, batch, in, out, twin, per)]``: every product of a SAC step; ``per`` is ``"grad"`` (once
    per gradient step) or ``"env"`` (once per env step: acting). The actor's two heads (mean, log_std) are
    separate ``hidden -> A`` layers, as in ``GaussianActor``."""
    actor = layers([obs_dim, hidden, hidden]) + [(hidden, action_dim)] * 2
    critic = layers([obs_dim + action_dim, hidden, hidden, 1])
    out = []

    def add(name, form, net, twin, skip_first=False, per="grad", rows=batch):
        for k, (i, o) in enumerate(net):
            if not (skip_first and k == 0):
                out.append((name, form, rows, i, o, twin, per))

    add("act", "forward", actor, False, per="env", rows=num_envs)
    add("target actor", "forward", actor, False)
    add("target critics", "forward", critic, True)
    add("critics", "forward", critic, True)
    add("critics", "weight_grad", critic, True)
    add("critics", "input_grad", critic, True, skip_first=True)
    add("actor", "forward", actor, False)
    add("critics at pi", "forward", critic, True)
    add("critics at pi", "input_grad", critic, True)
    # the actor's backward: both heads feed the last hidden layer, whose input gradient is their sum
    add("actor", "weight_grad", actor, False)
    add("actor", "input_grad", actor, False, skip_first=True)
    return out


def time_product(form: str, B: int, i: int, o: int, twin: bool, iters: int, repeats: int) -> float:
    """Seconds per product, the loop's own cost subtracted."""
    lhs_shape, rhs_shape, dims = FORMS[form](B, i, o)
    if twin:
        (lc, rc), _ = dims
        dims = (((lc[0] + 1,), (rc[0] + 1,)), ((0,), (0,)))
        lhs_shape, rhs_shape = (2,) + lhs_shape, (2,) + rhs_shape
    key = jax.random.PRNGKey(0)
    lhs, rhs = jax.random.normal(key, lhs_shape), jax.random.normal(jax.random.fold_in(key, 1), rhs_shape)

    def loop(with_product):
        def body(c, _):
            x = lhs + c  # each iteration depends on the last, so nothing is hoisted out of the loop
            y = jax.lax.dot_general(x, rhs, dims) if with_product else x
            return c + jnp.max(y) * 1e-12, None
        return jax.jit(lambda: jax.lax.scan(body, jnp.float32(0), None, length=iters)[0])

    def best(fn):
        fn().block_until_ready()  # compile
        return min(timed_run(fn)[0] for _ in range(repeats)) / iters

    return max(best(loop(True)) - best(loop(False)), 0.0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=PENDULUM["batch_size"])
    ap.add_argument("--obs-dim", type=int, default=3, help="Pendulum-v1: 3")
    ap.add_argument("--action-dim", type=int, default=1, help="Pendulum-v1: 1")
    ap.add_argument("--steps", type=int, default=PENDULUM["total_steps"], help="env steps of the measured run")
    ap.add_argument("--learning-starts", type=int, default=PENDULUM["learning_starts"])
    ap.add_argument("--iters", type=int, default=5_000, help="loop iterations per product timing")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-python", default=None, help="Python of a virtualenv with rejax 0.1.3")
    ap.add_argument("--no-jaxrl", action="store_true", help="time the products only, not jaxrl's SAC")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of jaxrl's SAC and rejax's")
    ap.add_argument("--name", default="sac_products")
    a = ap.parse_args(argv)
    for name in ("hidden", "batch", "obs_dim", "action_dim", "steps", "iters", "repeats", "rounds"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 <= a.learning_starts < a.steps:
        ap.error("--learning-starts must be in [0, --steps)")
    issue = (64, PENDULUM["batch_size"], 3, 1, PENDULUM["total_steps"], PENDULUM["learning_starts"])
    if a.peer_python and (a.hidden, a.batch, a.obs_dim, a.action_dim, a.steps, a.learning_starts) != issue:
        ap.error("--peer-python measures rejax on the issue's configuration only; drop the size options")

    grad_steps = a.steps - a.learning_starts
    cache, rows = {}, []
    for name, form, B, i, o, twin, per in products(a.obs_dim, a.action_dim, a.hidden, a.batch):
        k = (form, B, i, o, twin)
        if k not in cache:
            cache[k] = time_product(form, B, i, o, twin, a.iters, a.repeats)
        count = grad_steps if per == "grad" else a.steps
        rows.append({"pass": name, "form": form, "shape": f"{'2x' if twin else ''}[{B},{i}]->[{B},{o}]"
                     if form != "weight_grad" else f"{'2x' if twin else ''}[{i},{o}] over {B}",
                     "us": cache[k] * 1e6, "mflop": 2 * B * i * o * (2 if twin else 1) / 1e6,
                     "us_per_env_step": cache[k] * 1e6 * count / a.steps})
    print_table(rows, ["pass", "form", "shape", "us", "mflop", "us_per_env_step"])
    floor = sum(r["us_per_env_step"] for r in rows)
    mflop = sum(r["mflop"] for r in rows if r["pass"] != "act")
    summary = {"products_us_per_env_step": floor, "products_mflop_per_gradient_step": mflop}

    overrides = dict(PENDULUM, batch_size=a.batch, learning_starts=a.learning_starts, total_steps=a.steps,
                     hidden=a.hidden)
    mine, theirs = [], []
    for r in range(a.rounds if a.peer_python or not a.no_jaxrl else 0):  # interleaved: both see the same load
        if not a.no_jaxrl:
            mine.append(1e6 / ours("sac", "gymnax:Pendulum-v1", overrides)["steps_per_s"])
        if a.peer_python:
            theirs.append(1e6 / peer(a.peer_python, "sac", a.hidden)["steps_per_s"])
        print(f"round {r}, us per env step: jaxrl {mine[-1] if mine else float('nan'):.1f}, "
              f"rejax {theirs[-1] if theirs else float('nan'):.1f}", flush=True)
    if mine:  # the fastest jaxrl round and the slowest rejax round: the goal at its most generous
        summary.update(jaxrl_us_per_env_step=min(mine), jaxrl_rounds_us=mine, jaxrl_rest_us=min(mine) - floor)
    if theirs:
        goal = max(theirs) / 2
        summary.update(rejax_us_per_env_step=max(theirs), rejax_rounds_us=theirs, goal_2x_us_per_env_step=goal,
                       goal_leaves_for_the_rest_us=goal - floor)  # for replay, optimizers, elementwise work
    print()
    for k, v in summary.items():
        print(f"{k:30s} {v:.1f}" if isinstance(v, float) else f"{k:30s} {[round(x, 1) for x in v]}")
    path = write_results(a.name, rows, meta=dict(vars(a), **summary))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
