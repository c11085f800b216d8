"""``jaxrl profile ALGO --env ID [--num-seeds N] [--trace-dir DIR] [--dump-hlo DIR] [--FIELD VALUE ...]``.

Compiles and times a short training and reports compile seconds, env steps/s split into acting and
learning, FLOPs and bytes per update, peak memory and host interactions; optionally writes a
``jax.profiler`` trace and the optimized HLO.  See :mod:`jaxrl.profiling` for what each number means.
"""
from __future__ import annotations

import argparse
import json

HELP = "compile and time a short training: compile s, acting vs learning steps/s, FLOPs, memory, trace"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("argv", nargs=argparse.REMAINDER, help="ALGO followed by its options")


def _parser(algo: str, module, defaults: dict):
    from jaxrl.cli import Parser

    p = Parser(prog=f"jaxrl profile {algo}", description=HELP, argument_default=argparse.SUPPRESS,
               allow_abbrev=False)
    g = p.add_argument_group("profile")
    g.add_argument("--env", help=f"environment id (default {getattr(module, 'DEFAULT_ENV', 'gymnax:CartPole-v1')})")
    g.add_argument("--num-seeds", type=int, help="seeds in the vmapped program (default 1)")
    g.add_argument("--seed", type=int, help="base PRNG seed (default 0)")
    g.add_argument("--updates", type=int, help="updates per timed call (default 4)")
    g.add_argument("--reps", type=int, help="timed calls; the best is reported (default 3)")
    g.add_argument("--trace-dir", help="write a jax.profiler trace here (TensorBoard / Perfetto)")
    g.add_argument("--dump-hlo", metavar="DIR", help="write the optimized HLO of update, acting and init here")
    g.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    g.add_argument("--env-option", action="append", metavar="KEY=VALUE", help="option for the env backend")
    c = p.add_argument_group(f"{algo} config ({module.Config.__module__}.Config)")
    for name, f in module.Config.field_specs().items():
        flag = "--" + name.replace("_", "-")
        helptext = f"{f.metadata.get('help', '')} (default {defaults.get(name, f.default)})"
        if isinstance(f.default, bool):
            c.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=helptext)
        else:
            c.add_argument(flag, dest=name, metavar=type(f.default).__name__.upper(), help=helptext)
    return p


PROFILE_ARGS = ("env", "num_seeds", "seed", "updates", "reps", "trace_dir", "dump_hlo", "json", "env_option")


def parse(argv: list[str]) -> dict:
    """argv after ``profile`` -> keyword arguments of :func:`jaxrl.profiling.profile` (+ ``json``)."""
    from jaxrl import agents
    from jaxrl.cli import UsageError
    from jaxrl.commands.train import _env_value, _parse_kv

    if not argv or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help"):
            print("usage: jaxrl profile ALGO [options]\n\nalgorithms: " + ", ".join(sorted(agents.algorithms())))
            raise SystemExit(0)
        raise UsageError("jaxrl profile needs an algorithm: jaxrl profile ALGO (one of "
                         + ", ".join(sorted(agents.algorithms())) + ")")
    algo, rest = argv[0], argv[1:]
    module, preset = agents.get(algo)
    args = vars(_parser(algo, module, preset).parse_args(rest))
    overrides = {k: v for k, v in args.items() if k not in PROFILE_ARGS}
    module.Config.from_dict({**preset, **overrides})  # validate before compiling anything
    env_options = {k: _env_value(v) for k, v in _parse_kv(args.get("env_option"), "env_option").items()}
    return dict(algo=algo, env_id=args.get("env"), overrides=overrides, num_seeds=args.get("num_seeds", 1),
                seed=args.get("seed", 0), updates=args.get("updates", 4), reps=args.get("reps", 3),
                trace_dir=args.get("trace_dir"), dump_hlo=args.get("dump_hlo"), env_options=env_options,
                json=args.get("json"))


def run(args) -> int:
    from jaxrl import profiling

    kw = parse(list(args.argv))
    json_path = kw.pop("json")
    report = profiling.profile(**kw)
    print(profiling.format_report(report))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=2, default=str)
    return 0
