"""``jaxrl profile ALGO --env ID [--num-seeds N] [--trace-dir DIR] [--dump-hlo DIR] [--FIELD VALUE ...]``.

Compiles and times a short training and reports compile seconds, env steps/s split into acting and
learning, FLOPs and bytes per update, peak memory and host interactions; optionally writes a
``jax.profiler`` trace and the optimized HLO.  See :mod:`jaxrl.profiling` for what each number means.
"""
from __future__ import annotations

import argparse
import json
from typing import Optional

HELP = "compile and time a short training: compile s, acting vs learning steps/s, FLOPs, memory, trace"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("argv", nargs=argparse.REMAINDER, help="ALGO followed by its options")


def _parser(algo: str, module, defaults: dict):
    from jaxrl.cli import Parser, typed

    p = Parser(prog=f"jaxrl profile {algo}", description=HELP, argument_default=argparse.SUPPRESS,
               allow_abbrev=False)
    g = p.add_argument_group("profile")
    g.add_argument("--env", help=f"environment id (default {getattr(module, 'DEFAULT_ENV', 'gymnax:CartPole-v1')})")
    g.add_argument("--num-seeds", type=typed(int, "num_seeds"), help="seeds in the vmapped program (default 1)")
    g.add_argument("--seed", type=typed(int, "seed"), help="base PRNG seed (default 0)")
    g.add_argument("--updates", type=typed(int, "updates"), help="updates per timed call (default 4)")
    g.add_argument("--reps", type=typed(int, "reps"), help="timed calls; the best is reported (default 3)")
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
    print(format_report(report))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=2, default=str)
    return 0


# ----------------------------------------------------------------------------------- the report
def _bytes(n: Optional[float]) -> str:
    if n is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024


def _si(x: float) -> str:
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.2f} {unit}"
    return f"{x:.0f}"


def format_report(r: dict) -> str:
    """The report as text, one fact per line."""
    t, s, c, m = r["time"], r["steps_per_second"], r["cost_per_update"], r["memory"]
    hi = r["host_interactions"]
    pol = "greedy policy (Agent.act)" if r["acting_policy"] == "act" else "random actions (agent has no act)"
    calls = ", ".join(f"{k} x{v}" for k, v in hi["custom_calls"].items()) or "none"
    lines = [
        f"jaxrl profile: {r['algo']} on {r['env']}  ({r['num_seeds']} seed(s) x {r['num_envs']} envs, "
        f"{r['steps_per_update']} env steps per update per seed; {r['backend']}: {r['device']})",
        f"compile        {r['compile']['total_seconds']:8.2f} s   (trace+lower {r['compile']['lower_seconds']:.2f} s, "
        f"XLA {r['compile']['xla_compile_seconds']:.2f} s{'; ' + r['compile']['cache'] if r['compile'].get('cache') else ''})",
        f"update         {t['update_seconds'] * 1e3:10.3f} ms  {s['training']:>14,.0f} env steps/s   (best of {r['reps']} x "
        f"{r['updates_per_call']} updates)",
        f"  acting       {t['acting_seconds'] * 1e3:10.3f} ms  {s['acting']:>14,.0f} env steps/s   "
        f"{100 * t['acting_fraction']:5.1f}%  env.step + {pol}",
        f"  learning     {t['learning_seconds'] * 1e3:10.3f} ms  {s['learning']:>14,.0f} env steps/s   "
        f"{100 * (1 - t['acting_fraction']):5.1f}%  update - acting",
        f"env only       {t['env_only_seconds'] * 1e3:10.3f} ms  {s['env_only']:>14,.0f} env steps/s   random actions, no network",
        f"FLOPs/update   {_si(c['flops'])}FLOP (jaxpr count, scans x length{'' if c['flops_exact_loops'] else '; while loops once'}); "
        f"{_si(c['flops_per_env_step'])}FLOP per env step",
        f"XLA cost       {_si(c['xla_flops'])}FLOP, {_bytes(c['xla_bytes_accessed'])} accessed (loop bodies counted once)",
        f"memory         peak {_bytes(m.get('peak_bytes'))} (arguments {_bytes(m.get('argument_size_bytes'))}, "
        f"outputs {_bytes(m.get('output_size_bytes'))}, temporaries {_bytes(m.get('temp_size_bytes'))})"
        + (f"; device peak in use {_bytes(m['device_peak_bytes_in_use'])}" if "device_peak_bytes_in_use" in m else ""),
        f"host calls     custom calls: {calls}; host transfer ops: {hi['host_ops'] or 'none'}",
    ]
    if "platform" in r:
        pf = r["platform"]
        lines.append(f"platform       jax {pf['jax']}, jaxlib {pf['jaxlib']}; CPU Threefry lowering: "
                     f"{pf['threefry']['lowering']} ({pf['threefry']['reason']})")
    if r["trace_dir"]:
        lines.append(f"trace          {r['trace_dir']}  (tensorboard --logdir {r['trace_dir']}, or open "
                     f"plugins/profile/*/perfetto_trace.json.gz at https://ui.perfetto.dev)")
    if r["hlo_files"]:
        lines.append(f"HLO            {', '.join(r['hlo_files'])}")
    return "\n".join(lines)
