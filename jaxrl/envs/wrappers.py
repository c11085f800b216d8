"""Wrappers over any backend's :class:`~jaxrl.envs.core.Env`, chosen by env options.

``jaxrl.envs.make`` takes the options named in :data:`OPTIONS` for itself and passes the rest to
the backend, so a wrapper works the same for gymnax, envpool and a user's env, in training,
evaluation and profiling (``--env-option KEY=VALUE`` reaches all three):

* ``mask=velocity``: the velocity components of the observation are zeroed (a partially observed
  task, on which a feed-forward policy is at a disadvantage and a recurrent one is not). The
  components are listed per task in :data:`VELOCITY`; ``mask=1,3`` (indices into the last axis of a
  vector observation) masks any other env.
"""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
import numpy as np

from jaxrl.config import ConfigError
from jaxrl.envs.core import Env

# task name (without the backend prefix) -> indices of its velocity components in the observation
VELOCITY = {
    "CartPole-v1": (1, 3),  # [x, x_dot, theta, theta_dot]
    "Pendulum-v1": (2,),  # [cos theta, sin theta, theta_dot]
}
OPTIONS = ("mask",)  # env options the env layer handles itself


def mask_observation(env: Env, indices) -> Env:
    """``env`` with the components ``indices`` of the last observation axis set to 0 in ``obs`` and
    ``final_obs`` (reset and step alike). Shapes and dtypes are unchanged."""
    keep = np.ones(env.spec.obs_shape[-1], bool)
    keep[list(indices)] = False

    def masked(ts):
        return ts._replace(obs=jnp.where(keep, ts.obs, 0), final_obs=jnp.where(keep, ts.final_obs, 0))

    def reset(key):
        env_state, ts = env.reset(key)
        return env_state, masked(ts)

    def step(env_state, action, key):
        env_state, ts = env.step(env_state, action, key)
        return env_state, masked(ts)

    return Env(env.spec, reset, step)


def _mask_indices(value, name: str) -> tuple:
    """The observation components that ``mask=value`` zeroes for task ``name`` (a one-line error otherwise)."""
    if value == "velocity":
        if name not in VELOCITY:
            raise ConfigError("env_option", f"mask=velocity knows the velocity components of "
                                            f"{', '.join(VELOCITY)}, not of {name}; give indices instead "
                                            f"(mask=1,3)")
        return VELOCITY[name]
    parts = str(value).split(",")
    try:
        indices = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError("env_option", f"mask must be 'velocity' or observation indices like 1,3; "
                                        f"got {value!r}") from None
    if len(set(indices)) != len(indices) or min(indices) < 0:
        raise ConfigError("env_option", f"mask indices must be distinct and >= 0; got {value!r}")
    return indices


def split_options(name: str, options: dict) -> tuple[dict, Callable[[Env], Env]]:
    """``(backend options, wrap)``: the options for the backend, and the wrapper the rest ask for.

    Options are checked here, before the backend makes anything; indices beyond the observation are
    refused once its shape is known.
    """
    rest = {k: v for k, v in options.items() if k not in OPTIONS}
    if "mask" not in options:
        return rest, lambda env: env
    indices = _mask_indices(options["mask"], name)

    def wrap(env: Env) -> Env:
        shape = env.spec.obs_shape
        if len(shape) != 1 or not np.issubdtype(np.dtype(env.spec.obs_dtype), np.floating):
            raise ConfigError("env_option", f"mask needs a vector of float observations; {env.spec.env_id} "
                                            f"gives {np.dtype(env.spec.obs_dtype).name} {shape}")
        if max(indices) >= shape[0]:
            raise ConfigError("env_option", f"mask index {max(indices)} is outside {env.spec.env_id}'s "
                                            f"observation of {shape[0]} components")
        return mask_observation(env, indices)

    return rest, wrap
