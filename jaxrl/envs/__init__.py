"""Environments: one functional batched interface over gymnax and envpool.

    env = jaxrl.envs.make("gymnax:CartPole-v1", num_envs=8)
    env = jaxrl.envs.make("envpool:Pong-v5", num_envs=8, num_seeds=4, episodic_life=True)
"""
from __future__ import annotations

import difflib

from jaxrl.config import ConfigError
from jaxrl.envs.core import Box, Discrete, Env, EnvSpec, EpisodeStats, TimeStep, require_discrete

BACKENDS = ("gymnax", "envpool")


def known_ids() -> list[str]:
    from jaxrl.envs.envpool_env import envpool_ids
    from jaxrl.envs.gymnax_env import gymnax_ids

    return [f"gymnax:{i}" for i in gymnax_ids()] + [f"envpool:{i}" for i in envpool_ids()]


def parse_id(env_id: str) -> tuple[str, str]:
    """Split ``"backend:Name"``; a bad id is a :class:`ConfigError` that names close matches."""
    backend, sep, name = env_id.partition(":")
    if sep and backend in BACKENDS:
        if backend == "gymnax":
            from jaxrl.envs.gymnax_env import gymnax_ids as ids
        else:
            from jaxrl.envs.envpool_env import envpool_ids as ids
        if name in ids():
            return backend, name
    close = difflib.get_close_matches(env_id, known_ids(), n=3, cutoff=0.5)
    if not close and not sep:
        close = [k for k in known_ids() if k.split(":", 1)[1] == env_id][:3]
    hint = f"; did you mean {' or '.join(close)}?" if close else "; ids look like gymnax:CartPole-v1 or envpool:Pong-v5"
    raise ConfigError("env", f"unknown environment {env_id!r}{hint}")


def make(env_id: str, num_envs: int = 1, num_seeds: int = 1, **options) -> Env:
    """Make a batched env of ``num_envs`` copies.

    ``num_seeds`` matters only for envpool: the pool holds ``num_envs * num_seeds`` envs so that
    ``jax.vmap`` over ``num_seeds`` agents steps it once per step (see :mod:`jaxrl.envs.envpool_env`).
    Extra ``options`` go to ``gymnax.make`` or ``envpool.make``.
    """
    if not isinstance(num_envs, int) or num_envs < 1:
        raise ConfigError("num_envs", f"must be a positive integer; got {num_envs!r}")
    backend, name = parse_id(env_id)
    if backend == "gymnax":
        from jaxrl.envs.gymnax_env import make_gymnax

        return make_gymnax(name, num_envs, **options)
    from jaxrl.envs.envpool_env import make_envpool

    return make_envpool(name, num_envs, num_seeds=num_seeds, **options)


__all__ = ["make", "parse_id", "known_ids", "Env", "EnvSpec", "TimeStep", "EpisodeStats", "Discrete", "Box",
           "require_discrete"]
