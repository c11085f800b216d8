"""``jaxrl eval RUN_DIR --episodes N [--epsilon E]``: mean and std of greedy (or epsilon-greedy) returns of the
last saved policy.

Rebuilds the agent from ``RUN_DIR/config.json``, loads the newest checkpoint, and plays ``N``
greedy episodes per seed (and sweep value) in one compiled program (:mod:`jaxrl.evaluation`).
Needs an agent with a greedy policy (``Agent.act``).  When the run's env backend has its own
evaluation (:class:`jaxrl.envs.registry.Report`, e.g. ``trading``), it runs too, and ``jaxrl eval RUN``
accepts that backend's options (``--split``, ``--plot`` for trading; listed by ``jaxrl eval RUN --help``).
"""
from __future__ import annotations

import json
import math
import sys

from jaxrl.config import ConfigError

HELP = "evaluate the saved policy of a results folder (greedy episodes, mean and std of returns)"
RAW_ARGV = True  # parsed here: the options of the run's env backend join the common ones


def _int(name):
    from jaxrl.cli import typed

    return typed(int, name)


def _float(name):
    from jaxrl.cli import typed

    return typed(float, name)


def add_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="results folder of jaxrl train")
    p.add_argument("--episodes", type=_int("episodes"), default=10, help="greedy episodes per seed (default 10)")
    p.add_argument("--seed", type=_int("seed"), default=0, help="PRNG seed of the evaluation episodes (default 0)")
    p.add_argument("--max-steps", type=_int("max_steps"), default=0,
                   help="cut episodes at this length (default: the env's limit)")
    p.add_argument("--epsilon", type=_float("epsilon"), default=0.0,
                   help="epsilon-greedy evaluation: a random action with this probability each step (discrete "
                        "actions; default 0: greedy)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _backend_of_run(argv: list[str]):
    """The env backend of the first argument that is a results folder (None if none loads)."""
    from pathlib import Path

    from jaxrl import envs

    for a in argv:
        cfg = Path(a) / "config.json"
        if not a.startswith("-") and cfg.is_file():
            try:
                return envs.resolve(json.loads(cfg.read_text())["env"])[0]
            except (ConfigError, ValueError, KeyError, TypeError, OSError):
                return None
    return None


def parse(argv: list[str]):
    """argv after ``eval`` -> (Namespace, {backend option: value}): the common options, plus those of the
    run's env backend report."""
    from jaxrl.cli import Parser

    p = Parser(prog="jaxrl eval", description=HELP)
    add_arguments(p)
    backend = _backend_of_run(argv)
    report = backend.report if backend is not None else None
    dests = []
    if report is not None and report.options:
        g = p.add_argument_group(f"{backend.name} env")
        dests = [g.add_argument(flag, **kw).dest for flag, kw in report.options]
    args = p.parse_args(argv)
    return args, {d: getattr(args, d) for d in dests}


def load_run(run_dir: str):
    """-> (spec, checkpoint meta, agent, the restored batch of agent states ``[B, ...]``)."""
    import jax

    from jaxrl import agents, checkpoint, envs, parallel
    from jaxrl.core.program import empty_accumulator, hparams_batch, seed_keys
    from jaxrl.driver.spec import from_run_dir

    spec = from_run_dir(run_dir, what="run_dir")
    if not checkpoint.list_checkpoints(run_dir):
        raise ConfigError("run_dir", f"{run_dir} has no checkpoint ({checkpoint.CKPT_DIR}/ckpt-*.npz) to evaluate")
    module, _ = agents.get(spec.algo)
    batch = len(spec.sweep_points()) * spec.num_seeds
    env = envs.make(spec.env_id, num_envs=getattr(spec.config, "num_envs", 1), num_seeds=batch, **spec.env_options)
    agent = module.make_agent(spec.config, env)
    points = spec.sweep_points()
    keys = seed_keys(spec.seed, spec.num_seeds, len(points))
    hp = hparams_batch(spec.config, points, spec.num_seeds)
    template = jax.jit(parallel.vmap(agent.init))(keys, hp)
    acc = jax.jit(parallel.vmap(lambda k: empty_accumulator(agent)))(keys)
    restored, meta, _, _ = checkpoint.load_latest(run_dir, {"agent": template, "acc": acc})
    return spec, meta, agent, restored["agent"]


def evaluate_run(run_dir: str, episodes: int, seed: int = 0, max_steps: int = 0, state_too: bool = False,
                 epsilon: float = 0.0):
    """-> (spec, checkpoint meta, returns [batch, episodes] as NumPy); with ``state_too`` also the agent,
    the restored batch of states and the evaluation env.  ``epsilon``: epsilon-greedy episodes
    (:func:`jaxrl.evaluation.make_evaluate`)."""
    import jax
    import numpy as np

    from jaxrl import parallel
    from jaxrl.evaluation import check_epsilon, make_eval_env, make_evaluate

    if episodes < 1:
        raise ConfigError("episodes", f"must be >= 1; got {episodes}")
    if max_steps < 0:
        raise ConfigError("max_steps", f"must be >= 0; got {max_steps}")
    check_epsilon(epsilon)  # before loading the checkpoint
    spec, meta, agent, state = load_run(run_dir)
    batch = len(spec.sweep_points()) * spec.num_seeds
    env = make_eval_env(spec.env_id, episodes, batch, spec.env_options)
    evaluate = make_evaluate(env, agent, max_steps or None, epsilon)
    eval_keys = jax.random.split(jax.random.PRNGKey(seed), batch)
    returns = jax.jit(parallel.vmap(evaluate))(state, eval_keys)
    if state_too:
        return spec, meta, np.asarray(returns), agent, state, env
    return spec, meta, np.asarray(returns)


def run(args) -> int:
    from jaxrl.evaluation import backend_report, plays_games, report_lines

    args, backend_options = parse(list(args.argv))
    spec, meta, returns, agent, state, env = evaluate_run(args.run_dir, args.episodes, args.seed, args.max_steps,
                                                          state_too=True, epsilon=args.epsilon)
    extra = backend_report(spec.env_id, spec.env_options, agent, state, seed=args.seed, **backend_options)
    labels = [", ".join([f"seed={s}"] + [f"{k}={p[k]}" for k in spec.sweep])
              for p in spec.sweep_points() for s in range(spec.num_seeds)]
    result = {
        "run_dir": args.run_dir, "algo": spec.algo, "env": spec.env_id, "update": meta["update"],
        "env_steps_per_seed": meta.get("env_steps"), "episodes_per_seed": args.episodes, "epsilon": args.epsilon,
        "mean_return": float(returns.mean()), "std_return": float(returns.std()),
        "per_seed": [{"label": lab, "mean_return": float(r.mean()), "std_return": float(r.std())}
                     for lab, r in zip(labels, returns)],
    }
    result.update(extra)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{spec.algo} on {spec.env_id}: checkpoint at update {meta['update']} "
          f"({meta.get('env_steps', 0):,} env steps per seed), " + (
              f"{returns.shape[-1]} games per seed against a random player (win +1, draw 0, loss -1)"
              if plays_games(env, agent) else
              f"{args.episodes} {'greedy' if not args.epsilon else f'epsilon-greedy ({args.epsilon:g})'} "
              "episodes per seed"))
    w = max(len(lab) for lab in labels)
    print(f"{'':<{w}}  {'mean':>10}  {'std':>10}")
    for row in result["per_seed"]:
        print(f"{row['label']:<{w}}  {row['mean_return']:>10.2f}  {row['std_return']:>10.2f}")
    n = returns.size
    print(f"{'all':<{w}}  {result['mean_return']:>10.2f}  {result['std_return']:>10.2f}   ({n} episodes; "
          f"95% CI of the mean +- {1.96 * returns.std(ddof=1) / math.sqrt(n) if n > 1 else 0.0:.2f})")
    for line in report_lines(spec.env_id, result):
        print(line)
    sys.stdout.flush()
    return 0
