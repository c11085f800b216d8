"""``jaxrl train ALGO --env ID [--field-name VALUE ...]``: train, with live progress and a results folder.

``ALGO`` is a registered algorithm (``jaxrl train --help`` lists them), or a user's algorithm file
(``path/to/my_algo.py``) or module (``my_package.my_algo``): see :mod:`jaxrl.agents`.

Results folder (``--out``, default ``runs/ALGO-ENV-TIMESTAMP``):

* ``config.json``   the algorithm, env, seeds, sweep and every config field;
* ``metrics.csv``   one row per seed (and sweep point) per logging point (:mod:`jaxrl.driver.results`);
* ``summary.json``  ``final_return`` (per seed: mean return of episodes finished in the last 5% of
  training), ``eval_return`` (greedy episodes at the end, or where the run stopped),
  ``steps_per_second`` (all seeds, excluding compilation), ``compile_seconds``, ``finished``;
* ``checkpoints/``  the last two checkpoints (``--checkpoint-every``); ``jaxrl train --resume DIR``;
* ``tensorboard/``  with ``--tensorboard``: one event-file run per seed and sweep value.

Exit status: 0 done (or stopped by ``--max-minutes``: resumable), 2 bad input (nothing written),
3 non-finite loss or parameter (NaN guard, last good checkpoint kept), 130/143 stopped by
SIGINT/SIGTERM after saving a checkpoint.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

from jaxrl.commands.experiment_file import read_experiment
from jaxrl.config import ConfigError, coerce

HELP = "train an algorithm (jaxrl train ALGO --help lists its fields)"
CFG_PREFIX = "cfg__"  # dest of a config field whose name collides with a run option (flag --cfg-NAME)
RAW_ARGV = True  # jaxrl.cli hands over the raw arguments: ``--resume DIR`` may come first
RESUME_OPTIONS = ("--quiet", "--max-minutes", "--compile-cache")  # what --resume still takes


def _int(name):
    from jaxrl.cli import typed

    return typed(int, name)


def _number(name):
    from jaxrl.cli import typed

    return typed(float, name)


RUN_OPTIONS = [  # (flag, kwargs): the options every algorithm shares
    ("--env", dict(help="environment id, e.g. gymnax:CartPole-v1, envpool:Pong-v5, or your own "
                        "path/to/my_env.py:MyEnv (default: the algorithm's)")),
    ("--num-seeds", dict(type=_int("num_seeds"), help="seeds trained in one vmapped program (default 1)")),
    ("--seed", dict(type=_int("seed"), help="base PRNG seed (default 0)")),
    ("--out", dict(help="results folder (default runs/ALGO-ENV-TIMESTAMP); never overwritten")),
    ("--sweep", dict(action="append", metavar="FIELD=V1,V2",
                     help="sweep a traced hyperparameter as a batch axis of the same program (repeatable, "
                          "one field each)")),
    ("--log-every", dict(type=_int("log_every"), help="env steps per seed between logging points "
                                                      "(default 1%% of the run)")),
    ("--experiment", dict(help="JSON file with algo, env, num_seeds, config, env_options and run settings "
                                "(seed, log_every, eval_every, eval_episodes, checkpoint_every, max_minutes); "
                                "flags override it")),
    ("--env-option", dict(action="append", metavar="KEY=VALUE",
                          help="option passed to the env backend, e.g. episodic_life=false (repeatable)")),
    ("--quiet", dict(action="store_true", help="no progress line")),
    ("--eval-every", dict(type=_int("eval_every"), help="env steps per seed between greedy evaluations "
                                                        "(default 10%% of the run; 0: off)")),
    ("--eval-episodes", dict(type=_int("eval_episodes"), help="greedy episodes per seed per evaluation "
                                                              "(default 10)")),
    ("--checkpoint-every", dict(type=_int("checkpoint_every"), help="env steps per seed between checkpoints "
                                "(default 10%% of the run; 0: only at the end and on a stop)")),
    ("--tensorboard", dict(action="store_true", help="also write TensorBoard event files")),
    ("--memory-budget", dict(type=_number("memory_budget"), metavar="GIB",
                             help="refuse runs whose state exceeds this many GiB (default: the device's memory)")),
    ("--max-minutes", dict(type=_number("max_minutes"), metavar="M",
                           help="stop cleanly after M minutes of training (checkpoint, summary with eval_return); "
                                "continue with --resume")),
    ("--compile-cache", dict(metavar="DIR|off", help="persistent compilation cache folder (default "
                                                     "~/.cache/jaxrl/xla; env JAXRL_COMPILE_CACHE), or off")),
    ("--resume", dict(metavar="RUN_DIR", help="continue RUN_DIR from its last checkpoint")),
    ("--init-from", dict(metavar="RUN_DIR", help="start from the parameters of RUN_DIR's last checkpoint (the "
                                                 "leaves under --init-keys; the rest is initialised as usual)")),
    ("--init-keys", dict(metavar="KEYPATHS", help="state key paths taken from --init-from, comma-separated "
                                                  "(default .params)")),
    ("--devices", dict(metavar="all|N", help="shard seeds and sweep points over devices (default all; envpool "
                                             "uses 1); multi-host: set JAXRL_COORDINATOR, see jaxrl.parallel")),
]
COMMON = tuple(flag[2:].replace("-", "_") for flag, _ in RUN_OPTIONS)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("argv", nargs=argparse.REMAINDER, help="ALGO followed by its options")


def _algo_parser(algo: str, module, defaults: dict):
    from jaxrl.cli import Parser

    cfg_cls = module.Config
    p = Parser(prog=f"jaxrl train {algo}", description=((module.__doc__ or "").strip().splitlines() or [""])[0],
               argument_default=argparse.SUPPRESS, allow_abbrev=False)
    g = p.add_argument_group("run")
    for flag, kw in RUN_OPTIONS:
        g.add_argument(flag, **kw)
    c = p.add_argument_group(f"{algo} config ({cfg_cls.__module__}.Config)")
    for name, f in cfg_cls.field_specs().items():
        flag, dest = "--" + name.replace("_", "-"), name
        if name in COMMON or flag in p._option_string_actions:  # a field named like a run option
            flag, dest = "--cfg-" + name.replace("_", "-"), CFG_PREFIX + name
        default = defaults.get(name, f.default)
        tag = " [sweepable]" if f.metadata.get("traced") else ""
        helptext = f"{f.metadata.get('help', '')} (default {default}){tag}".replace("%", "%%")
        if isinstance(f.default, bool):
            c.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, help=helptext)
        else:
            c.add_argument(flag, dest=dest, metavar=type(f.default).__name__.upper(), help=helptext)
    return p


def _parse_strict(parser, rest: list[str]) -> dict:
    """``parser.parse_args`` whose unknown-option error names the closest known options."""
    import difflib

    from jaxrl.cli import UsageError

    ns, extra = parser.parse_known_args(rest)
    if extra:
        bad = extra[0]
        if bad.startswith("-"):
            opts = [o for o in parser._option_string_actions if o.startswith("--")]
            close = difflib.get_close_matches(bad.split("=", 1)[0], opts, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; see {parser.prog} --help"
            raise UsageError(f"unknown option {bad}{hint}")
        raise UsageError(f"unexpected argument {bad!r} (options look like --name VALUE)")
    return vars(ns)


def _take(rest: list, flag: str, what: str):
    """Remove ``flag VALUE`` from ``rest``; returns VALUE or None."""
    from jaxrl.cli import UsageError

    if flag not in rest:
        return None
    i = rest.index(flag)
    if i + 1 >= len(rest) or rest[i + 1].startswith("--"):
        raise UsageError(f"{flag} needs {what}")
    value = rest[i + 1]
    del rest[i:i + 2]
    return value


def _parse_resume(argv: list[str]):
    """``--resume RUN_DIR [--quiet] [--max-minutes M] [--compile-cache DIR]``: the saved config, unchanged."""
    from jaxrl.cli import UsageError
    from jaxrl.driver.spec import from_run_dir

    rest = list(argv)
    run_dir = _take(rest, "--resume", "a results folder: jaxrl train --resume RUN_DIR")
    max_minutes = _take(rest, "--max-minutes", "a number of minutes")
    cache = _take(rest, "--compile-cache", "a folder or off")
    quiet = "--quiet" in rest
    rest = [a for a in rest if a != "--quiet"]
    algo = rest.pop(0) if rest and not rest[0].startswith("-") else None
    if rest:
        raise UsageError(f"--resume continues {run_dir} with its saved config; drop {rest[0]} "
                         f"(only {', '.join(RESUME_OPTIONS)} are allowed)")
    spec = from_run_dir(run_dir)
    if algo is not None and algo != spec.algo:
        raise ConfigError("resume", f"{run_dir} is a {spec.algo} run, not {algo}")
    spec.max_minutes = None if max_minutes is None else coerce(float, max_minutes, "max_minutes")
    return spec, quiet, cache


def _parse_kv(items, what):
    out = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not k or not v:
            raise ConfigError(what, f"expected KEY=VALUE, got {item!r}")
        key = k.strip().replace("-", "_")
        if key in out:
            raise ConfigError(what, f"{key} is given twice; give it once (for a sweep, list the values: "
                                    f"--sweep {key}=A,B)")
        out[key] = v.strip()
    return out


def _env_value(v: str):
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    for t in (int, float):
        try:
            return t(v)
        except ValueError:
            pass
    return v


def _algorithm(argv: list[str], experiment: dict):
    """(name, module, preset, remaining argv, source of a user's algorithm or None)."""
    from jaxrl import agents
    from jaxrl.cli import UsageError

    if argv and not argv[0].startswith("-"):
        algo, rest = argv[0], argv[1:]
    elif "algo" in experiment:
        algo, rest = experiment["algo"], argv
    elif argv and argv[0] in ("-h", "--help"):
        names = ", ".join(sorted(agents.algorithms()))
        print(f"usage: jaxrl train ALGO [options]\n\nalgorithms: {names}\n\n"
              f"jaxrl train ALGO --help lists the options of ALGO; ALGO may also be a file path/to/algo.py "
              f"or a module my_package.algo of your own (see docs/variants.md).")
        raise SystemExit(0)
    else:
        raise UsageError("jaxrl train needs an algorithm: jaxrl train ALGO (one of "
                         + ", ".join(sorted(agents.algorithms())) + ")")
    source = None
    if algo.endswith(".py") or ("." in algo and algo not in agents.algorithms()):
        source = algo
        algo = agents.register_source(source)
        source = agents.source_of(algo)
    module, preset = agents.get(algo)
    return algo, module, preset, rest, source


def _sweep(args: dict, module) -> dict:
    sweep = {}
    for name, vals in _parse_kv(args.get("sweep"), "sweep").items():
        if name not in module.Config.field_specs():
            import difflib

            close = difflib.get_close_matches(name, list(module.Config.field_specs()), n=2)
            raise ConfigError("sweep", f"unknown field {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
        t = module.Config.field_type(name)
        sweep[name] = [coerce(t, v, f"sweep {name}") for v in vals.split(",") if v.strip()]
        if not sweep[name]:
            raise ConfigError("sweep", f"{name} needs at least one value")
    return sweep


def parse(argv: list[str]):
    """argv after ``train`` -> (RunSpec, quiet, compile cache choice). Raises ConfigError / UsageError."""
    from jaxrl.driver.spec import RunSpec, validate
    from jaxrl.parallel import parse_devices

    if "--resume" in argv:
        return _parse_resume(argv)
    experiment = read_experiment(argv)
    algo, module, preset, rest, source = _algorithm(argv, experiment)
    defaults = dict(preset)
    defaults.update(experiment.get("config", {}))
    args = _parse_strict(_algo_parser(algo, module, defaults), rest)
    values = dict(defaults)
    values.update({k.removeprefix(CFG_PREFIX): v for k, v in args.items() if k not in COMMON})
    config = module.Config.from_dict(values)
    from jaxrl import envs

    env_id = args.get("env") or experiment.get("env") or getattr(module, "DEFAULT_ENV", "gymnax:CartPole-v1")
    env_id = envs.canonical_id(env_id)
    env_options = dict(experiment.get("env_options", {}))
    env_options.update({k: _env_value(v) for k, v in _parse_kv(args.get("env_option"), "env_option").items()})
    def run(key, default=None):  # a flag, else the experiment file's run setting, else the default
        return args.get(key, experiment.get(key, default))

    out = args.get("out")
    if out is None:
        out = f"runs/{algo}-{env_id.split(':')[-1]}-{time.strftime('%Y%m%d-%H%M%S')}"
    spec = RunSpec(algo=algo, env_id=env_id, config=config, num_seeds=args.get("num_seeds", experiment.get("num_seeds", 1)),
                   seed=run("seed", 0), sweep=_sweep(args, module), out=out, log_every=run("log_every"),
                   env_options=env_options, devices=parse_devices(args.get("devices", experiment.get("devices", "all"))),
                   eval_every=run("eval_every"), eval_episodes=run("eval_episodes", 10),
                   checkpoint_every=run("checkpoint_every"), tensorboard=bool(args.get("tensorboard", False)),
                   memory_budget_gb=args.get("memory_budget"), max_minutes=run("max_minutes"),
                   agent_source=source, init_from=args.get("init_from"), init_keys=args.get("init_keys", ".params"))
    validate(spec)
    return spec, bool(args.get("quiet", False)), args.get("compile_cache")


def print_summary(summary: dict, spec, out: str, stream=sys.stdout) -> None:
    rows, k = [], 0
    for point in summary["points"]:
        label = ", ".join(f"{n}={point[n]}" for n in spec.sweep) if spec.sweep else ""
        for s in point["seeds"]:
            r = summary["final_return"][k] if k < len(summary["final_return"]) else None
            rows.append((str(s), label, "n/a" if r is None else f"{r:.2f}"))
            k += 1
    w0 = max(4, *(len(r[0]) for r in rows))
    w1 = max(len("sweep"), *(len(r[1]) for r in rows)) if spec.sweep else 0
    done = "" if summary.get("finished", True) else (f" (stopped by {summary.get('stopped_by')} after update "
                                                     f"{summary['updates']} of {summary['num_updates']})")
    print(f"\n{spec.algo} on {spec.env_id}: {summary['env_steps_per_seed']:,} env steps per seed{done}", file=stream)
    head = f"{'seed':>{w0}}  " + (f"{'sweep':<{w1}}  " if w1 else "") + "final_return"
    print(head, file=stream)
    print("-" * len(head), file=stream)
    for s, label, r in rows:
        print(f"{s:>{w0}}  " + (f"{label:<{w1}}  " if w1 else "") + f"{r:>12}", file=stream)
    if summary.get("eval_return"):
        ev = [f"{x:.2f}" if x is not None else "n/a" for x in summary["eval_return"]]
        what = (f"{summary['eval_episodes']} games per seed against a random player, both colours: win rate - loss rate"
                if summary.get("eval_opponent") == "random" else f"greedy, {summary['eval_episodes']} episodes per seed")
        print(f"eval_return ({what}): {', '.join(ev)}", file=stream)
    finite = [x for x in summary["final_return"] if x is not None and math.isfinite(x)]
    if finite:
        import statistics

        print(f"{'median':>{w0}}  " + (" " * (w1 + 2) if w1 else "") + f"{statistics.median(finite):>12.2f}", file=stream)
    from jaxrl.evaluation import report_lines

    for line in report_lines(spec.env_id, summary):  # the env backend's own evaluation, if any
        print(line, file=stream)
    sps = summary.get("steps_per_second")
    print(f"env steps/s (all seeds, excl. compile): {sps:,.0f}" if sps else "env steps/s: n/a", file=stream)
    cache = f" ({summary['compile_cache']})" if summary.get("compile_cache") else ""
    print(f"compile seconds: {summary['compile_seconds']:.1f}{cache}   wall seconds: {summary['wall_seconds']:.1f}",
          file=stream)
    print(f"results: {out}/ (config.json, metrics.csv, summary.json)", file=stream)
    if not summary.get("finished", True):
        print(f"continue with: jaxrl train --resume {out}", file=stream)


def run(args) -> int:
    from jaxrl.driver import cache, train_run
    from jaxrl.parallel import initialize_distributed

    # multi-host only when JAXRL_COORDINATOR / JAXRL_DISTRIBUTED is set.  Before parse(): validating
    # the env id imports gymnax, whose import already runs JAX computations (initialises the backend)
    initialize_distributed()
    spec, quiet, cache_choice = parse(list(args.argv))
    cache.enable(cache_choice)
    summary = train_run(spec, progress=not quiet)
    print_summary(summary, spec, spec.out)
    return 0
