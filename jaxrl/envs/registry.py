"""The registry of env backends: each backend is one module that defines ``BACKEND``.

An env id is ``"backend:name"`` (``gymnax:CartPole-v1``), or the id of a user's own environment
(``path/to/my_env.py:MyEnv`` or ``my_package.my_env:MyEnv``, see :mod:`jaxrl.envs.custom`).
A backend module is imported the first time one of its ids is used, so ``import jaxrl.envs``
imports neither gymnax nor envpool.  A new backend is one module plus one registration::

    # my_backend.py
    BACKEND = Backend(name="toy", make=make_toy, ids=lambda: ["x"])

    jaxrl.envs.register_backend("my_backend", name="toy")   # imported when "toy:..." is used
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
from typing import Callable, Optional, Sequence, Union

from jaxrl.config import ConfigError
from jaxrl.envs.core import Env, EnvSpec


def _no_options(name: str) -> dict:
    return {}


@dataclasses.dataclass(frozen=True)
class Report:
    """A backend's own evaluation of trained agents, beside the greedy return (the trading env's profit
    against baselines).  ``jaxrl train`` runs it at the end (when evaluation is on) and stores its dict in
    ``summary.json`` under the backend's name; ``jaxrl eval`` runs it too and accepts its ``options``.

    run:     ``run(name, env_options, agent, state, out=None, seed=0, **options) -> dict`` (JSON-able);
             ``state`` is the batch of agent states ``[B, ...]``; ``out`` is the results folder at the end of
             training (files such as plots go there), None from ``jaxrl eval``; ``seed`` is ``jaxrl eval
             --seed`` (0 at the end of training); ``options`` are the values of ``options`` below, parsed
             by ``jaxrl eval`` (their defaults at the end of training).
    text:    ``text(result) -> list[str]``: the dict as lines for the terminal.
    options: ``(flag, argparse keyword arguments)`` pairs that ``jaxrl eval RUN`` accepts for a run of this backend.
    promote: keys of the result also written at the top level of ``summary.json`` and of ``jaxrl eval --json``
             (the dialogue env's ``bleu``, pgx's ``eval_vs_random``), beside the whole dict under the name.
    """

    run: Callable[..., dict]
    text: Callable[[dict], list] = lambda result: []
    options: tuple = ()
    promote: tuple = ()


@dataclasses.dataclass(frozen=True)
class Backend:
    """One env backend.

    name:         the id prefix, e.g. ``"gymnax"``.
    make:         ``make(name, num_envs, num_seeds=1, **options) -> Env``; ``num_seeds`` is the size of
                  the batch the env will be vmapped over (only a host-side pool needs it).
    ids:          the known names (without prefix), for validation and "did you mean" suggestions.
    shardable:    False when the env is one host object (envpool): the driver keeps it on one device.
    restorable:   False when the env state cannot be checkpointed: a resumed run resets the env fields.
    eval_options: ``eval_options(name) -> dict``: options for the evaluation env of ``name`` that
                  override the training options (envpool Atari: full games, unclipped rewards).
    validate:     ``validate(name)`` raises a one-line :class:`ConfigError` for a name this backend
                  cannot make; None means "``name`` must be in ``ids()``" (a backend whose names are
                  open-ended, like user environments, supplies its own).
    report:       an extra evaluation of trained agents (:class:`Report`), or None.
    """

    name: str
    make: Callable[..., Env]
    ids: Callable[[], Sequence[str]]
    shardable: bool = True
    restorable: bool = True
    eval_options: Callable[[str], dict] = _no_options
    validate: Optional[Callable[[str], None]] = None
    report: Optional[Report] = None


# name -> Backend, or the path of a module that defines BACKEND (imported on first use)
_REGISTRY: dict[str, Union[Backend, str]] = {
    "gymnax": "jaxrl.envs.gymnax_env",
    "envpool": "jaxrl.envs.envpool_env",
    "brax": "jaxrl.envs.brax_env",  # optional: pip install 'jaxrl[brax]'
    "pgx": "jaxrl.envs.pgx_env",  # board games (connect four, go, chess ...)
    "custom": "jaxrl.envs.custom",  # a user's own env; also reached without the prefix
    "trading": "jaxrl.envs.trading",  # one stock, Lapan ch. 8
    "dialogue": "jaxrl.envs.dialogue",  # one reply per episode, BLEU reward (seq2seq, scst)
}


def register_backend(backend: Union[Backend, str], name: Optional[str] = None) -> None:
    """Register a :class:`Backend`, or the module path of a module whose ``BACKEND`` is one.

    With a module path and ``name``, the module is imported the first time an id with that prefix
    is used; without ``name`` it is imported now to read ``BACKEND.name``.  Registering a name
    again replaces the earlier backend.
    """
    if isinstance(backend, Backend):
        _REGISTRY[name or backend.name] = backend
    elif isinstance(backend, str) and name is not None:
        _REGISTRY[name] = backend
    elif isinstance(backend, str):
        loaded = _import_backend(backend, None)
        _REGISTRY[loaded.name] = loaded
    else:
        raise TypeError(f"register_backend takes a Backend or a module path; got {backend!r}")


def names() -> list[str]:
    """The registered backend names (prefixes), in registration order."""
    return list(_REGISTRY)


def backend(name: str) -> Backend:
    """The backend registered as ``name`` (its module is imported now if it was registered lazily)."""
    entry = _REGISTRY.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, names(), n=2)
        hint = f"did you mean {' or '.join(close)}?" if close else f"backends: {', '.join(names())}"
        raise ConfigError("env", f"unknown env backend {name!r}; {hint}")
    if isinstance(entry, str):
        entry = _import_backend(entry, name)
        _REGISTRY[name] = entry
    return entry


def backend_of(spec: EnvSpec) -> Backend:
    """The backend that made an env, from its spec: ``backend_of(env.spec).shardable``."""
    return backend(spec.backend)


def _import_backend(module_path: str, name: Optional[str]) -> Backend:
    try:
        module = importlib.import_module(module_path)
    except Exception as e:  # noqa: BLE001 - any import failure is reported in one line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError("env", f"cannot import the env backend module {module_path!r}: {first}") from e
    found = getattr(module, "BACKEND", None)
    if not isinstance(found, Backend):
        raise ConfigError("env", f"env backend module {module_path!r} must define BACKEND = "
                                 f"jaxrl.envs.registry.Backend(...); it defines {type(found).__name__}")
    if name is not None and found.name != name:
        raise ConfigError("env", f"env backend module {module_path!r} was registered as {name!r} but its "
                                 f"BACKEND.name is {found.name!r}")
    return found


def _backend_ids(b: Backend) -> list[str]:
    """``b.ids()``; a backend whose package is not installed has none (and says so when asked directly)."""
    try:
        return list(b.ids())
    except (ImportError, ConfigError):  # e.g. brax without the brax extra
        return []


def known_ids() -> list[str]:
    """Every known ``backend:name`` id, over all registered backends (imports them all)."""
    out = []
    for n in names():
        try:
            b = backend(n)
        except ConfigError:
            continue
        out += [f"{n}:{i}" for i in _backend_ids(b)]
    return out


def resolve(env_id: str) -> tuple[Backend, str]:
    """``env_id`` -> (its backend, the name that backend's ``make`` takes); a bad id is a one-line
    :class:`ConfigError` naming close matches."""
    if not isinstance(env_id, str) or not env_id.strip():
        raise ConfigError("env", f"an env id is a string like gymnax:CartPole-v1; got {env_id!r}")
    prefix, sep, name = env_id.partition(":")
    if sep and prefix in _REGISTRY:
        b = backend(prefix)
        _validate(b, name, env_id)
        return b, name
    from jaxrl.envs import custom  # cheap: imports no simulator package

    if custom.is_custom_id(env_id):
        b = backend(custom.BACKEND.name)
        _validate(b, env_id, env_id)
        return b, env_id
    raise unknown_id_error(env_id)


def _validate(b: Backend, name: str, env_id: str) -> None:
    if b.validate is not None:
        b.validate(name)
        return
    try:
        ids = list(b.ids())
    except ImportError as e:
        raise ConfigError("env", f"{env_id}: the {b.name} backend needs a package that is not installed "
                                 f"({e}); install it or pick another backend") from e
    if name not in ids:
        raise unknown_id_error(env_id)


def unknown_id_error(env_id: str) -> ConfigError:
    """The one-line error for an id that names nothing known, with close matches."""
    known = known_ids()
    close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.5)
    prefix, sep, name = env_id.partition(":")
    if not close and not sep:  # a bare name: the backends that have it
        close = [k for k in known if k.split(":", 1)[1] == env_id][:3]
    if close:
        hint = f"did you mean {' or '.join(close)}?"
    elif sep and prefix not in _REGISTRY:
        hint = f"{prefix!r} is not an env backend ({', '.join(names())})"
    else:
        hint = "ids look like gymnax:CartPole-v1, envpool:Pong-v5 or path/to/my_env.py:MyEnv"
    return ConfigError("env", f"unknown environment {env_id!r}; {hint}")
