"""Environments: one functional batched interface over registered backends and a user's own envs.

    env = jaxrl.envs.make("gymnax:CartPole-v1", num_envs=8)
    env = jaxrl.envs.make("envpool:Pong-v5", num_envs=8, num_seeds=4, episodic_life=True)
    env = jaxrl.envs.make("path/to/my_env.py:MyEnv", num_envs=8)       # jaxrl.envs.custom
    env = jaxrl.envs.make("pgx:connect_four", num_envs=8)              # env.game: the rules, for planning

Backends (gymnax, envpool, pgx, custom) are entries of :mod:`jaxrl.envs.registry`, imported on first
use: ``import jaxrl.envs`` imports neither gymnax nor envpool.
"""
from __future__ import annotations

from jaxrl.config import ConfigError
from jaxrl.envs.core import Box, Discrete, Env, EnvSpec, EpisodeStats, Game, TimeStep, require_discrete
from jaxrl.envs.registry import Backend, backend, backend_of, known_ids, register_backend, resolve


def parse_id(env_id: str) -> tuple[str, str]:
    """Split and validate an env id: ``(backend name, name)``; a bad id is a one-line
    :class:`ConfigError` that names close matches.  A user's env gives ``("custom", env_id)``."""
    b, name = resolve(env_id)
    return b.name, name


def canonical_id(env_id: str) -> str:
    """``env_id`` as it should be stored: a user env's relative file path made absolute (against the
    current directory), so ``--resume`` and ``jaxrl eval`` work from any directory."""
    from jaxrl.envs.custom import canonical_id as _canonical

    return _canonical(env_id)


def make(env_id: str, num_envs: int = 1, num_seeds: int = 1, **options) -> Env:
    """Make a batched env of ``num_envs`` copies.

    ``num_seeds`` matters only for envpool: the pool holds ``num_envs * num_seeds`` envs so that
    ``jax.vmap`` over ``num_seeds`` agents steps it once per step (see :mod:`jaxrl.envs.envpool_env`).
    Extra ``options`` go to the backend (``gymnax.make``, ``envpool.make``, a user env's constructor),
    except the wrapper options of :mod:`jaxrl.envs.wrappers` (``mask=velocity``), which apply to any backend.
    """
    if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
        raise ConfigError("num_envs", f"must be a positive integer; got {num_envs!r}")
    from jaxrl.envs.wrappers import split_options

    b, name = resolve(env_id)
    options, wrap = split_options(name, options)
    return wrap(b.make(name, num_envs, num_seeds=num_seeds, **options))


__all__ = ["make", "parse_id", "known_ids", "Env", "EnvSpec", "TimeStep", "EpisodeStats", "Game", "Discrete", "Box",
           "require_discrete", "register_backend", "backend", "backend_of", "resolve", "canonical_id", "Backend"]
