"""The compiled programs of a run: ``init``, the update ``chunk`` and greedy ``evaluate``, over the batch.

:func:`build` checks the results folder (on every process of a multi-host job alike), makes the env
and the agent, places keys and hyperparameters on the devices, refuses a state that does not fit in
memory, and compiles the three programs ahead of time (timed, through the persistent compilation
cache). Nothing is written before all of this has succeeded.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Optional

EVAL_SALT = 0x6576616C  # folded into each seed key: evaluation keys never collide with training keys


@dataclasses.dataclass
class Programs:
    agent: Any
    env: Any
    keys: Any
    hp: Any
    acc0: Any  # the empty metric accumulator of the batch
    init_c: Any
    chunk_c: Any  # (state, acc, hp, n, start) -> (state, acc, finite [B, leaves])
    eval_c: Optional[Any]  # (state, keys, end) -> returns [B, episodes]
    leaf_paths: list
    compile_seconds: float
    cache_note: str
    run_dir: Optional[Path]  # the same on every process
    out: Optional[Path]  # where results are written: process 0 only
    env_restorable: bool
    devices_used: int
    environment: dict  # facts for config.json
    init_leaves: Optional[tuple] = None  # ({key path: array [B, ...]}, checkpoint) for --init-from
    spec: Any = None  # the spec trained: the one given, or what the algorithm's ``prepare`` made of it
    summary_extra: dict = dataclasses.field(default_factory=dict)  # ``prepare``'s keys for summary.json

    def compile_note(self) -> str:
        cache = f", {self.cache_note}" if self.cache_note else ""
        return f"jaxrl: compiled in {self.compile_seconds:.1f} s{cache}"


def check_folder(spec) -> None:
    """The results folder check, agreed by every process (one that stopped alone would hang the others)."""
    from jaxrl import parallel
    from jaxrl.driver.spec import check_out_dir, check_resumable

    def check():
        if spec.resume:
            check_resumable(spec)
        elif spec.out and parallel.is_main_process():
            check_out_dir(spec.out)

    parallel.agree(check)


def make_evaluate_program(spec, agent, batch: int):
    import jax
    import jax.numpy as jnp

    from jaxrl import parallel
    from jaxrl.evaluation import make_eval_env, make_evaluate

    evaluate = make_evaluate(make_eval_env(spec.env_id, spec.eval_episodes, batch, spec.env_options), agent)

    def eval_one(s, k, end):
        return jnp.atleast_1d(evaluate(s, jax.random.fold_in(jax.random.fold_in(k, EVAL_SALT), end)))

    return jax.jit(parallel.vmap(eval_one, in_axes=(0, 0, None)))


def build(spec, log=None) -> Programs:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxrl import agents, envs, parallel
    from jaxrl.core.program import empty_accumulator, finite_leaves, hparams_batch, make_chunk, replay_data, seed_keys
    from jaxrl.driver import cache, guards
    from jaxrl.driver.spec import validate

    module, _ = agents.get(spec.algo)
    validate(spec)
    check_folder(spec)
    extra = {}
    if hasattr(module, "prepare"):  # stages before the agent's program (I2A's env model); may write into out
        spec, extra = module.prepare(spec, log)
    run_dir = Path(spec.out) if spec.out else None
    out = run_dir if parallel.is_main_process() else None
    batch = spec.batch
    env = envs.make(spec.env_id, num_envs=getattr(spec.config, "num_envs", 1), num_seeds=batch, **spec.env_options)
    agent = module.make_agent(spec.config, env)
    backend = envs.backend(env.spec.backend)
    points = spec.sweep_points()
    placement = parallel.plan(spec.devices, batch, shardable=backend.shardable)
    keys, hp = placement.put((seed_keys(spec.seed, spec.num_seeds, len(points)),
                              hparams_batch(spec.config, points, spec.num_seeds)))
    acc0 = placement.put(jax.tree_util.tree_map(lambda x: np.broadcast_to(np.asarray(x), (batch,) + x.shape),
                                                empty_accumulator(agent)))
    init_fn = jax.jit(parallel.vmap(agent.init), **placement.jit_kwargs(2))
    state_shape = jax.eval_shape(init_fn, keys, hp)
    guards.check_memory(state_shape, batch, spec.memory_budget_gb)
    init_leaves = None
    if spec.init_from and not spec.resume:  # checked against the state's shapes before compiling
        from jaxrl import checkpoint
        from jaxrl.driver.spec import init_prefixes

        init_leaves = checkpoint.load_leaves(spec.init_from, state_shape, init_prefixes(spec), root="['agent']")
    chunk = make_chunk(agent)

    def chunk_and_check(s, a, h, n, start):
        s, a = chunk(s, a, h, n, start)
        return s, a, finite_leaves(s, skip=replay_data)

    chunk_fn = jax.jit(parallel.vmap(chunk_and_check, in_axes=(0, 0, 0, None, None)), donate_argnums=0,
                       **placement.jit_kwargs(3, replicated=2))
    eval_fn = make_evaluate_program(spec, agent, batch) if _evaluates(spec, agent) else None

    cache.enable()
    t0 = time.perf_counter()
    with cache.CacheHits() as hits:
        init_c = init_fn.lower(keys, hp).compile()
        chunk_c = chunk_fn.lower(state_shape, acc0, hp, jnp.int32(0), jnp.int32(0)).compile()
        eval_c = eval_fn.lower(state_shape, keys, jnp.int32(0)).compile() if eval_fn is not None else None
    seconds = time.perf_counter() - t0
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(state_shape)[0]]
    environment = {"argv": sys.argv, "jax_version": jax.__version__, "backend": jax.default_backend(),
                   "devices": [str(d) for d in jax.devices()], "devices_used": placement.num_devices}
    return Programs(agent, env, keys, hp, acc0, init_c, chunk_c, eval_c, paths, seconds, hits.describe(), run_dir,
                    out, backend.restorable, placement.num_devices, environment, init_leaves, spec, extra)


def _evaluates(spec, agent) -> bool:
    every = spec.eval_every
    return (every is None or every > 0) and agent.act is not None
