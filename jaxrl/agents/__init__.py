"""Algorithm registry: every module in this package with ``Config`` and ``make_agent`` is an algorithm.

Aliases (e.g. ``rainbow`` for DQN with every extension on) are module-level ``PRESETS``
dicts: ``{"rainbow": {"double": True, ...}}`` inside ``dqn.py``.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from types import ModuleType

from jaxrl.config import ConfigError

_SKIP = {"base"}


def _modules() -> dict[str, ModuleType]:
    mods = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name in _SKIP:
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "Config") and hasattr(mod, "make_agent"):
            mods[info.name] = mod
    return mods


def algorithms() -> dict[str, tuple[ModuleType, dict]]:
    """Map of algorithm name -> (module, preset overrides)."""
    out = {}
    for name, mod in _modules().items():
        out[name] = (mod, {})
        for alias, overrides in getattr(mod, "PRESETS", {}).items():
            out[alias] = (mod, dict(overrides))
    return out


def get(name: str) -> tuple[ModuleType, dict]:
    algos = algorithms()
    if name not in algos:
        close = difflib.get_close_matches(name, list(algos), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else f"; choose from {', '.join(sorted(algos))}"
        raise ConfigError("algorithm", f"unknown algorithm {name!r}{hint}")
    return algos[name]
