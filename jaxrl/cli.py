"""Command line: ``jaxrl train ALGO --env ID --num-seeds N ...`` (also ``python -m jaxrl``).

Every mistake in the input is reported as one line on stderr with exit status 2, before anything
is compiled or written.  A run that stops early reports one line and its own status: 3 when the
NaN guard fires, 128 + signal (130 SIGINT, 143 SIGTERM) after saving a checkpoint.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from jaxrl.config import ConfigError

# name -> module in jaxrl.commands; each has HELP, add_arguments(parser), run(args) -> int
COMMANDS = {"train": "jaxrl.commands.train", "eval": "jaxrl.commands.eval", "plot": "jaxrl.commands.plot",
            "compare": "jaxrl.commands.compare", "profile": "jaxrl.commands.profile",
            "play": "jaxrl.commands.play"}


class UsageError(Exception):
    """A one-line CLI error (exit status 2)."""


def typed(t: type, name: str):
    """An argparse ``type=`` that accepts what config fields accept (integers: ``1e3``, ``1_000``, ``10.0``)
    and reports a bad value as ``name: expected ...``."""
    from jaxrl.config import coerce

    def parse(value):
        try:
            return coerce(t, value, name)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e))

    parse.__name__ = name
    return parse


class Parser(argparse.ArgumentParser):
    """argparse that reports errors as a single line instead of usage + message."""

    def error(self, message):
        raise UsageError(message)


def build_parser() -> Parser:
    p = Parser(prog="jaxrl", description="High-throughput reinforcement learning in JAX.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, modname in COMMANDS.items():
        mod = importlib.import_module(modname)
        sp = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        if not argv:
            parser.print_help()
            return 2
        if argv[0] in COMMANDS and getattr(importlib.import_module(COMMANDS[argv[0]]), "RAW_ARGV", False):
            # the command parses its own arguments (``train`` builds per-algorithm flags)
            mod = importlib.import_module(COMMANDS[argv[0]])
            args = argparse.Namespace(argv=argv[1:], _run=mod.run)
        else:
            args = parser.parse_args(argv)
        if not getattr(args, "_run", None):
            raise UsageError("choose a command: " + ", ".join(COMMANDS))
        return int(args._run(args) or 0)
    except (UsageError, ConfigError) as e:
        print(f"jaxrl: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # RunStopped (NaN guard, SIGINT/SIGTERM): one line, its own status
        from jaxrl.driver.guards import RunStopped

        if not isinstance(e, RunStopped):
            raise
        print(f"\njaxrl: stopped: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("jaxrl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
