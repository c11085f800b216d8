"""envpool backend through its XLA interface, so env steps run inside ``jit`` + ``lax.scan``.

envpool's XLA handle cannot be vmapped: the pool is one C++ object.  jaxrl makes
``jax.vmap(train)`` work anyway with :func:`jax.custom_batching.custom_vmap`:

* one pool holds ``pool_envs = num_envs * batch`` environments (``batch`` is the number of
  seeds times sweep values, given as ``num_seeds`` to :func:`make_envpool`);
* unbatched, ``step`` takes ``[num_envs]`` actions: it tiles them to the pool and returns the
  first ``num_envs`` results (exact when the pool holds a single batch);
* under ``vmap`` over ``B`` members, actions ``[B, num_envs]`` are flattened to one pool step
  and the results are reshaped to ``[B, num_envs, ...]``.  The rule recurses, so nested
  vmaps (seeds x sweep values) flatten too.  The handle stays unbatched.  When ``init`` and
  ``update`` are vmapped as separate programs (the driver's chunks), the state carries the handle
  stacked ``[B, ...]``: B copies of the same pool handle; the rule uses the first.

Semantics that differ from gymnax, documented for users:

* envpool auto-resets on the step *after* an episode ends; that step ignores its action and
  returns the first observation of the new episode with reward 0.  jaxrl flags it in
  ``ts.info["reset_step"]``; agents may mask it.  At the terminal step ``obs == final_obs``.
* The env state (inside the C++ pool) cannot be saved or restored; a resumed run starts
  fresh episodes.  ``reset`` ignores its key (the pool is seeded at construction, ``seed=``).
* Observations of Atari come channel-first from envpool and are transposed to ``84x84x4``.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from jaxrl.envs import envpool_f64
from jaxrl.envs.core import Box, Discrete, Env, EnvSpec, EpisodeStats, TimeStep
from jaxrl.envs.registry import Backend

ATARI_TRAINING_DEFAULTS = dict(episodic_life=True, reward_clip=True)
ATARI_EVAL_OPTIONS = dict(episodic_life=False, reward_clip=False)  # the true task: full games, unclipped


class EnvpoolState(NamedTuple):
    handle: jax.Array  # envpool's XLA handle (unbatched under vmap)
    stats: EpisodeStats  # per env, full-game unclipped
    train_stats: EpisodeStats  # per env, on the training reward / done
    prev_done: jax.Array  # the previous step ended an episode: this step is a reset step


class _Pool(NamedTuple):
    """One envpool pool and its XLA entry points."""

    pool: Any
    recv: Callable
    xla_step: Callable
    size: int  # envs in the pool: num_envs * num_seeds
    channel_first: bool  # Atari frames: transposed to HWC


def _spec_of(name: str, num_envs: int, pool) -> EnvSpec:
    obs_space, act_space = pool.observation_space, pool.action_space
    obs_shape = tuple(obs_space.shape)
    if len(obs_shape) == 3:
        obs_shape = obs_shape[1:] + obs_shape[:1]
    if hasattr(act_space, "n"):
        action_space = Discrete(int(act_space.n))
    else:
        action_space = Box(np.asarray(act_space.low, np.float32), np.asarray(act_space.high, np.float32),
                           tuple(act_space.shape))
    obs_n = int(obs_space.n) if hasattr(obs_space, "n") else None  # a Discrete observation space
    return EnvSpec(f"envpool:{name}", num_envs, obs_shape, np.dtype(obs_space.dtype), action_space,
                   int(getattr(pool.spec.config, "max_episode_steps", 0)) or None, "envpool", obs_n)


def _fix_obs(p: _Pool, obs):
    return jnp.moveaxis(obs, -3, -1) if p.channel_first else obs


def _unpack(p: _Pool, out):
    obs, rew, term, trunc, info = out
    raw = info.get("reward", rew)
    game_over = info["terminated"].astype(bool) if "terminated" in info else term
    return _fix_obs(p, obs), rew.astype(jnp.float32), term, trunc, raw.astype(jnp.float32), game_over


def _pool_reset(p: _Pool, handle):
    # The recv consumes the handle the host reset returns: a data dependency XLA cannot fold
    # away (an integer ``handle + 0 * token`` was folded, and the memory-optimizing
    # scheduler then ran the recv before the reset).
    def host_reset(h):
        p.pool.async_reset()
        return np.asarray(h)

    handle = jax.experimental.io_callback(host_reset, jax.ShapeDtypeStruct(handle.shape, handle.dtype), handle,
                                          ordered=True)
    handle, out = p.recv(handle)
    return handle, _fix_obs(p, out[0])


def _reset_fn(p: _Pool, n_local: int):
    """``reset(handle, key) -> (handle, obs [n_local])``, whose vmap flattens into one pool reset."""
    @custom_vmap
    def f(handle, key):
        del key
        handle, obs = _pool_reset(p, handle)
        return handle, obs[:n_local]

    @f.def_vmap
    def rule(axis_size, in_batched, handle, key):
        if in_batched[0]:  # stacked by an outer vmap: B copies of the one pool handle
            handle = handle[0]
        handle, obs = _reset_fn(p, n_local * axis_size)(handle, key[0])
        return (handle, obs.reshape((axis_size, n_local) + obs.shape[1:])), (False, True)

    return f


def _step_fn(p: _Pool, n_local: int):
    """``step(handle, action [n_local]) -> (handle, outputs [n_local])``, whose vmap flattens into one pool step."""
    reps = p.size // n_local

    @custom_vmap
    def f(handle, action):
        full = jnp.tile(action, (reps,) + (1,) * (action.ndim - 1)) if reps > 1 else action
        handle, out = p.xla_step(handle, full)
        return handle, tuple(x[:n_local] for x in _unpack(p, out))

    @f.def_vmap
    def rule(axis_size, in_batched, handle, action):
        if in_batched[0]:  # stacked by an outer vmap: B copies of the one pool handle
            handle = handle[0]
        if not in_batched[1]:
            action = jnp.broadcast_to(action, (axis_size,) + action.shape)
        flat = action.reshape((axis_size * n_local,) + action.shape[2:])
        handle, out = _step_fn(p, n_local * axis_size)(handle, flat)
        out = tuple(x.reshape((axis_size, n_local) + x.shape[1:]) for x in out)
        return (handle, out), (False, (True,) * len(out))

    return f


def make_envpool(name: str, num_envs: int, num_seeds: int = 1, seed: int = 0, **options) -> Env:
    import envpool

    opts = dict(ATARI_TRAINING_DEFAULTS) if name in _atari_ids() else {}
    opts.update(options)
    size = num_envs * num_seeds
    with warnings.catch_warnings():  # gymnasium's float64->float32 Box casts: harmless noise
        warnings.simplefilter("ignore", UserWarning)
        pool = envpool.make(name, env_type="gym", num_envs=size, batch_size=size, seed=seed, **opts)
    wide = envpool_f64.has_float64(pool)  # MuJoCo: float64 buffers, carried as uint32 words
    handle0, recv, _send, xla_step = envpool_f64.xla(pool) if wide else pool.xla()
    p = _Pool(pool, recv, xla_step, size, len(pool.observation_space.shape) == 3)
    spec = _spec_of(name, num_envs, pool)
    if wide and spec.obs_dtype == np.float64:
        spec = spec._replace(obs_dtype=np.dtype(np.float32))
    reset_local, step_local = _reset_fn(p, num_envs), _step_fn(p, num_envs)
    handle_const = jnp.asarray(handle0)
    discrete = spec.discrete

    def reset(key):
        handle, obs = reset_local(handle_const, key)
        z = EpisodeStats.zeros(num_envs)
        zf = jnp.zeros((num_envs,), jnp.float32)
        zb = jnp.zeros((num_envs,), bool)
        info = {"reset_step": zb, "train_episode_return": zf, "train_episode_done": zb}
        return EnvpoolState(handle, z, z, zb), TimeStep(obs, zf, zb, zb, obs, zb, zf, z.last_length, info)

    def step(state: EnvpoolState, action, key):
        del key
        action = action.astype(jnp.int32) if discrete else action.astype(jnp.float32)
        handle, (obs, rew, term, trunc, raw, game_over) = step_local(state.handle, action)
        term, trunc = term.astype(bool), trunc.astype(bool)
        trunc = trunc & ~term
        done = term | trunc
        valid = ~state.prev_done
        game_done = (game_over | trunc) & valid
        stats = state.stats.update(jnp.where(valid, raw, 0.0), game_done, valid)
        train_stats = state.train_stats.update(jnp.where(valid, rew, 0.0), done & valid, valid)
        info = {"reset_step": state.prev_done, "train_episode_return": train_stats.last_return,
                "train_episode_done": done & valid}
        ts = TimeStep(obs, rew, term, trunc, obs, game_done, stats.last_return, stats.last_length, info)
        return EnvpoolState(handle, stats, train_stats, done & valid), ts

    return Env(spec, reset, step)


def _atari_ids() -> set[str]:
    import envpool

    specs = envpool.registration.registry.specs
    return {i for i, entry in specs.items() if str(entry[0]).startswith("envpool.atari")}


def envpool_ids() -> list[str]:
    import envpool

    return list(envpool.list_all_envs())


def eval_options(name: str) -> dict:
    """Options of the evaluation env of ``name``: Atari plays full games with unclipped rewards."""
    return dict(ATARI_EVAL_OPTIONS) if name in _atari_ids() else {}


# One C++ pool stepped by an XLA custom call: not partitionable over devices, state not saveable.
BACKEND = Backend(name="envpool", make=make_envpool, ids=envpool_ids, shardable=False, restorable=False,
                  eval_options=eval_options)
