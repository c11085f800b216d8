"""Algorithm registry: every module of this package, plus the ones a user registers.

A module is an algorithm when it follows the contract of :mod:`jaxrl.core.agent` (``Config`` and
``make_agent``; optional ``DEFAULT_ENV`` and ``PRESETS``); a module that does not is refused at
registration with a message naming the missing piece. Aliases such as ``rainbow`` (DQN with every
extension) are entries of a module's ``PRESETS``.

A user's own algorithm, in a file outside this package, is registered in any of three ways:

* ``jaxrl train path/to/my_algo.py ...`` (or ``my_package.my_algo``): the file or module is loaded and
  registered under its file name (``my_algo``); ``config.json`` records where it came from, so
  ``--resume`` and ``jaxrl eval`` find it again;
* ``JAXRL_AGENTS=path/to/a.py:pkg.b`` (``os.pathsep``-separated): registered at start-up, under their
  own names, for ``jaxrl train a`` and ``jaxrl train b``;
* from Python: ``jaxrl.agents.register("my_algo", module)``.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Optional

from jaxrl.config import ConfigError
from jaxrl.core.agent import ContractError, check_module

ENV_VAR = "JAXRL_AGENTS"
_registered: dict[str, ModuleType] = {}
_sources: dict[str, str] = {}  # name -> the file or module it was loaded from (user algorithms)


def _builtin() -> dict[str, ModuleType]:
    mods = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            mods[info.name] = importlib.import_module(f"{__name__}.{info.name}")
            check_module(info.name, mods[info.name])
    return mods


def register(name: str, module: ModuleType, source: Optional[str] = None) -> None:
    """Register ``module`` as algorithm ``name`` after checking the contract (:class:`ContractError`)."""
    check_module(name, module)
    _registered[name] = module
    if source:
        _sources[name] = source


def load_source(source: str) -> ModuleType:
    """Import a user's algorithm from a ``.py`` file path or a dotted module name; one-line errors."""
    path = Path(source)
    if source.endswith(".py"):
        if not path.is_file():
            raise ConfigError("algorithm", f"{source} does not exist")
        name = f"jaxrl_user_agent_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path.resolve())
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            sys.modules.pop(name, None)
            raise ConfigError("algorithm", f"{source} failed to import ({type(e).__name__}: {e})")
        return module
    try:
        return importlib.import_module(source)
    except ImportError as e:
        raise ConfigError("algorithm", f"cannot import {source!r} ({e})")


def register_source(source: str, name: Optional[str] = None) -> str:
    """Load and register a user's algorithm file or module; returns the name it is registered under."""
    name = name or Path(source.split(":")[0]).stem.split(".")[-1]
    if name in _registered and _sources.get(name) == _canonical(source):
        return name
    try:
        register(name, load_source(source), _canonical(source))
    except ContractError as e:
        raise ConfigError("algorithm", str(e))
    return name


def _canonical(source: str) -> str:
    return str(Path(source).resolve()) if source.endswith(".py") else source


def source_of(name: str) -> Optional[str]:
    """Where a user-registered algorithm came from (None for built-in ones)."""
    return _sources.get(name)


def _from_environment() -> None:
    for item in filter(None, os.environ.get(ENV_VAR, "").split(os.pathsep)):
        register_source(item)


def modules() -> dict[str, ModuleType]:
    out = _builtin()
    _from_environment()
    out.update(_registered)
    return out


def algorithms() -> dict[str, tuple[ModuleType, dict]]:
    """Map of algorithm name -> (module, preset overrides)."""
    out = {}
    for name, mod in modules().items():
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
