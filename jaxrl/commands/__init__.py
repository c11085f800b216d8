"""CLI subcommands. Each module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.

Register a new one by adding its name to ``COMMANDS`` in :mod:`jaxrl.cli`.
"""
