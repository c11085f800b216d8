"""The stages I2A runs before its agent (Lapan's *Deep RL Hands-On* ch. 17): an A2C baseline, transitions
collected with its policy, and the environment model trained on them. Each stage is one compiled
program. The model is saved as ``RUN/env_model/`` (``model.msgpack``: the flax parameters;
``metrics.json``: held-out quality, the model's sizes and the baseline's return), which
``jaxrl train i2a --env-model RUN`` reuses.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.networks import env_model as em

FOLDER, PARAMS, METRICS = "env_model", "model.msgpack", "metrics.json"


def model_folder(path) -> Path:
    """``RUN`` (an I2A results folder) or ``RUN/env_model`` itself -> the folder holding the model."""
    p = Path(path)
    return p / FOLDER if (p / FOLDER / PARAMS).exists() else p


def save(folder: Path, params, metrics: dict) -> None:
    from flax import serialization

    folder.mkdir(parents=True, exist_ok=True)
    (folder / PARAMS).write_bytes(serialization.to_bytes(params))
    (folder / METRICS).write_text(json.dumps(metrics, indent=1))


def load(path, model: em.EnvModel, obs_shape):
    """The saved parameters of ``model`` (its sizes must be the saved ones) and the saved metrics."""
    from flax import serialization

    folder = model_folder(path)
    template = model.init(jax.random.PRNGKey(0), jnp.zeros((1,) + tuple(obs_shape)), jnp.zeros((1,), jnp.int32))
    params = serialization.from_bytes(template, (folder / PARAMS).read_bytes())
    return params, json.loads((folder / METRICS).read_text())


def saved_metrics(path) -> dict:
    return json.loads((model_folder(path) / METRICS).read_text())


def _baseline(config, env_id, env_options, key, log):
    """Stage 1: A2C (``jaxrl.agents.a2c`` defaults) for ``baseline_steps``; returns its state, policy, return."""
    from jaxrl import envs
    from jaxrl.agents import a2c
    from jaxrl.core.program import make_train

    a_cfg = a2c.Config(num_envs=config.num_envs, num_steps=config.num_steps, total_steps=config.baseline_steps)
    env = envs.make(env_id, num_envs=a_cfg.num_envs, **env_options)
    agent = a2c.make_agent(a_cfg, env)
    t0 = time.perf_counter()
    state, metrics = jax.jit(make_train(agent, num_log_points=10))(key)
    ret = np.asarray(metrics["episode_return_sum"]) / np.maximum(np.asarray(metrics["episodes"]), 1)
    log(f"i2a: stage 1/3 A2C baseline, {config.baseline_steps} steps: return {ret[0]:.2f} -> {ret[-1]:.2f} "
        f"({time.perf_counter() - t0:.0f} s)")
    return env, state, a2c.network(a_cfg, env.spec)[2], float(ret[-1])


def _collect(env, policy, state, key, num_transitions, kind: em.FrameKind = em.PLANES):
    """Stage 1b: ``num_transitions`` transitions (rounded down to whole vector steps) of the A2C policy, sampled;
    ``next_obs`` holds what the model predicts (``kind.target``)."""
    from jaxrl.core import onpolicy

    steps = max(1, num_transitions // env.spec.num_envs)

    def collect(params, env_state, obs, k):
        traj = onpolicy.rollout(env, policy, params, env_state, obs, (), k, steps)[3]
        flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
        return em.Transitions(flat(traj.obs), flat(traj.action).astype(jnp.int32), kind.target(flat(traj.final_obs)),
                              flat(traj.reward).astype(jnp.float32))

    return jax.jit(collect)(state.params, state.env_state, state.obs, key)


def model_for(config, num_actions, kind: em.FrameKind = em.PLANES):
    """The env model for ``kind`` of frames: :class:`em.EnvModel` (planes) or :class:`em.PixelEnvModel`."""
    return kind.model(num_actions, config.model_channels)


def pretrain(config, env_id, env_options, seed: int, folder: Path, log=None) -> dict:
    """Run the three stages and save the model into ``folder``; returns the saved metrics."""
    log = log or (lambda m: print(m, file=sys.stderr))
    k_a2c, k_collect, k_split, k_model = jax.random.split(jax.random.PRNGKey(seed), 4)
    env, state, policy, baseline_return = _baseline(config, env_id, env_options, k_a2c, log)
    kind = em.frame_kind(env.spec.obs_shape, env.spec.obs_dtype)
    data = _collect(env, policy, state, k_collect, config.model_transitions, kind)
    m = data.obs.shape[0]
    perm = np.asarray(jax.random.permutation(k_split, m))
    held_n = max(1, m // 10)
    held, train = (jax.tree_util.tree_map(lambda x: x[perm[s]], data) for s in (slice(0, held_n), slice(held_n, m)))
    model = model_for(config, env.spec.action_space.n, kind)
    t0 = time.perf_counter()
    params, losses = em.make_train_model(model, config.model_updates, config.model_batch)(k_model, train,
                                                                                        config.model_lr)
    metrics = em.evaluate_model(model.apply, params, held, kind=kind)
    pixels = f", pixel MAE {metrics['pixel_mae']:.2f} (no-change frame accuracy " \
             f"{metrics['copy_frame_accuracy']:.3f})" if kind is em.PIXELS else ""
    log(f"i2a: stage 2/3 env model, {m - held_n} transitions, {config.model_updates} updates: held-out cell "
        f"accuracy {metrics['cell_accuracy']:.4f}, frame accuracy {metrics['frame_accuracy']:.3f}{pixels}, reward "
        f"MAE {metrics['reward_mae']:.4f} ({time.perf_counter() - t0:.0f} s)")
    metrics.update(final_loss=float(np.asarray(losses[-10:]).mean()), held_out=held_n, trained_on=m - held_n,
                   channels=config.model_channels, kind=kind.name, env=env_id, baseline_steps=config.baseline_steps,
                   baseline_return=baseline_return, reward_rate=float(np.asarray(data.reward).mean()))
    save(folder, params, metrics)
    return metrics
