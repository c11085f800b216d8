"""A user's own JAX environment, by id: ``path/to/my_env.py:MyEnv`` or ``my_package.my_env:MyEnv``.

The id is ``SOURCE:ATTR`` (``custom:SOURCE:ATTR`` also works): ``SOURCE`` is a ``.py`` file
(a relative path resolves against the current directory) or an importable dotted module path, and
``ATTR`` is a name defined there.  ``ATTR`` is one of two kinds:

* a **gymnax-style environment**: a class, instantiated with the env options as keyword arguments,
  or an instance; it has ``default_params``, ``reset_env(key, params)``,
  ``step_env(key, state, action, params) -> (obs, state, reward, terminated, info)``,
  ``action_space(params)`` and ``observation_space(params)`` (Discrete or Box spaces of gymnax or
  jaxrl).  Subclassing ``gymnax.environments.environment.Environment`` is the easy way.  It is
  batched by :func:`jaxrl.envs.gymnax_env.wrap_gymnax` exactly like gymnax's own envs.  Time limit:
  ``is_truncated(state, params)`` when the class has it (gymnax's base class does), else
  ``state.time >= params.max_steps_in_episode`` when both exist, else episodes are never
  truncated.  The option ``max_episode_steps`` sets ``params.max_steps_in_episode`` instead of
  going to the constructor.
* a **factory function** ``ATTR(num_envs, **options) -> jaxrl.envs.Env`` (plus ``num_seeds=`` when
  it accepts that parameter), for full control: pure ``reset``/``step`` of the jaxrl interface.

Either way the env must be pure JAX: the driver vmaps, jits, shards and checkpoints it like a
gymnax env.  A file is executed once per process (modules are cached by absolute path), and a
file that fails to execute leaves nothing behind in ``sys.modules``.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from types import ModuleType
from typing import Any

from jaxrl.config import ConfigError
from jaxrl.envs.registry import Backend

PREFIX = "custom:"
GYMNAX_METHODS = ("reset_env", "step_env", "action_space", "observation_space")
_MODULE_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_FILES: dict[str, ModuleType] = {}  # absolute path -> module executed from it


def split_id(env_id: str) -> tuple[str, str] | None:
    """``(SOURCE, ATTR)`` of a custom env id, or None when ``env_id`` is not of that form."""
    rest = env_id[len(PREFIX):] if env_id.startswith(PREFIX) else env_id
    source, sep, attr = rest.rpartition(":")
    if not sep or not attr.isidentifier() or not source:
        return None
    if source.endswith(".py") or _MODULE_PATH.match(source):
        return source, attr
    return None


def is_custom_id(env_id: str) -> bool:
    return split_id(env_id) is not None


def _is_file(source: str) -> bool:
    return source.endswith(".py")


def canonical_id(env_id: str) -> str:
    """``env_id`` with a relative file path made absolute (against the current directory), so the
    id works from any directory; every other id is returned unchanged."""
    parts = split_id(env_id)
    if parts is None or not _is_file(parts[0]) or os.path.isabs(parts[0]):
        return env_id
    prefix = PREFIX if env_id.startswith(PREFIX) else ""
    return f"{prefix}{os.path.abspath(parts[0])}:{parts[1]}"


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def _already_imported(path: str) -> ModuleType | None:
    """A module that was imported from ``path`` by its module name (do not execute it again)."""
    for module in list(sys.modules.values()):
        f = getattr(module, "__file__", None)
        if f and os.path.abspath(f) == path:
            return module
    return None


def load_file(path: str, env_id: str) -> ModuleType:
    """Execute the file at (absolute) ``path`` once per process and return its module."""
    module = _FILES.get(path) or _already_imported(path)
    if module is not None:
        _FILES[path] = module
        return module
    if not os.path.isfile(path):
        raise ConfigError("env", f"{env_id}: no such file {path}; give a .py file (relative to the current "
                                 f"directory) or an importable module, as in my_package.my_env:MyEnv")
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    name = f"jaxrl_user_env_{stem}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up while it executes
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        sys.modules.pop(name, None)
        if not isinstance(e, Exception):
            raise
        raise ConfigError("env", f"{env_id}: executing {path} failed: {_first_line(e)}") from e
    _FILES[path] = module
    return module


def load_module(source: str, env_id: str) -> ModuleType:
    """Import the dotted module ``source`` (from ``sys.path``)."""
    try:
        return importlib.import_module(source)
    except Exception as e:  # noqa: BLE001 - any failure is reported in one line
        if isinstance(e, ModuleNotFoundError) and "." not in source and e.name == source:
            from jaxrl.envs.registry import names

            raise ConfigError("env", f"unknown environment {env_id!r}: {source!r} is neither an env backend "
                                     f"({', '.join(names())}) nor an importable module") from e
        missing = isinstance(e, ModuleNotFoundError) and e.name and (source + ".").startswith(e.name + ".")
        hint = "; is its folder on PYTHONPATH (or the current directory, with python -m jaxrl)?" if missing else ""
        raise ConfigError("env", f"{env_id}: cannot import module {source!r}: {_first_line(e)}{hint}") from e


def load(env_id: str) -> Any:
    """The object an id names (module or file loaded once per process)."""
    parts = split_id(env_id)
    if parts is None:
        raise ConfigError("env", f"{env_id!r} is not a custom env id; use path/to/my_env.py:MyEnv or "
                                 f"my_package.my_env:MyEnv")
    source, attr = parts
    module = load_file(os.path.abspath(source), env_id) if _is_file(source) else load_module(source, env_id)
    if not hasattr(module, attr):
        public = [n for n in vars(module) if not n.startswith("_")]
        close = difflib.get_close_matches(attr, public, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}?" if close else f"it defines {', '.join(public[-8:]) or 'nothing'}"
        raise ConfigError("env", f"{env_id}: {source} has no {attr!r}; {hint}")
    return getattr(module, attr)


def kind(obj: Any) -> str | None:
    """``"gymnax_class"``, ``"gymnax_instance"``, ``"factory"``, or None for anything else."""
    gymnax_like = all(callable(getattr(obj, m, None)) for m in GYMNAX_METHODS) and hasattr(obj, "default_params")
    if inspect.isclass(obj):
        return "gymnax_class" if gymnax_like else None
    if gymnax_like:
        return "gymnax_instance"
    return "factory" if callable(obj) else None


def checked(name: str) -> tuple[Any, str]:
    """Load ``name``; (the object, its kind), or a one-line error saying what was expected."""
    obj = load(name)
    k = kind(obj)
    if k is None:
        what = f"class {obj.__name__}" if inspect.isclass(obj) else f"a {type(obj).__name__}"
        lacks = [m for m in ("default_params",) + GYMNAX_METHODS if not hasattr(obj, m)]
        partly = f" (this one lacks {', '.join(lacks)})" if len(lacks) < len(GYMNAX_METHODS) + 1 else ""
        raise ConfigError("env", f"{name} is {what}; expected a gymnax-style environment class or instance with "
                                 f"default_params, reset_env, step_env, action_space, observation_space{partly}, "
                                 f"or a factory function (num_envs, **options) -> jaxrl.envs.Env")
    return obj, k


def validate(name: str) -> None:
    """The registry's check of an id: it loads and is one of the supported kinds."""
    checked(name)


def make(name: str, num_envs: int, num_seeds: int = 1, **options):
    """The user's env ``name`` (an id without the ``custom:`` prefix), ``num_envs`` copies."""
    obj, k = checked(name)
    if k == "factory":
        return from_factory(obj, name, num_envs, num_seeds, options)
    return from_gymnax_style(obj, name, num_envs, options, instantiate=(k == "gymnax_class"))


def _check_call(fn, env_id: str, *args, **kwargs) -> None:
    """A one-line error when ``fn`` does not take these arguments (the user's options)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to check (a builtin): let the call speak
        return
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        label = getattr(fn, "__name__", type(fn).__name__)
        raise ConfigError("env", f"{env_id}: {label}{sig} does not take these options ({e}); pass the ones "
                                 f"it accepts with --env-option KEY=VALUE") from e


def from_factory(fn, env_id: str, num_envs: int, num_seeds: int, options: dict):
    """``fn(num_envs, **options)`` (and ``num_seeds=`` when ``fn`` has that parameter), checked."""
    from jaxrl.envs.core import Env

    kwargs = dict(options)
    try:
        if "num_seeds" in inspect.signature(fn).parameters:
            kwargs["num_seeds"] = num_seeds
    except (TypeError, ValueError):
        pass
    _check_call(fn, env_id, num_envs, **kwargs)
    env = fn(num_envs, **kwargs)
    if not isinstance(env, Env):
        raise ConfigError("env", f"{env_id}: the factory returned a {type(env).__name__}; it must return "
                                 f"jaxrl.envs.Env(spec, reset, step)")
    if env.spec.num_envs != num_envs:
        raise ConfigError("env", f"{env_id}: the factory was asked for {num_envs} envs but its spec has "
                                 f"num_envs={env.spec.num_envs}")
    return env._replace(spec=env.spec._replace(env_id=env_id, backend=BACKEND.name))


def from_gymnax_style(obj, env_id: str, num_envs: int, options: dict, instantiate: bool):
    """Instantiate (a class, with ``options``) and batch with the gymnax adapter."""
    from jaxrl.envs.gymnax_env import wrap_gymnax

    opts = dict(options)
    limit = opts.pop("max_episode_steps", None)
    if instantiate:
        _check_call(obj, env_id, **opts)
        genv = obj(**opts)
    elif opts:
        raise ConfigError("env", f"{env_id} is an instance, so the options {', '.join(opts)} cannot reach its "
                                 f"constructor; name the class instead")
    else:
        genv = obj
    return wrap_gymnax(genv, genv.default_params, num_envs, env_id, backend=BACKEND.name,
                       max_episode_steps=limit)


BACKEND = Backend(name="custom", make=make, ids=lambda: [], validate=validate)
