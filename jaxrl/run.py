"""The thin Python driver around the compiled training program.

``jax.jit(jax.vmap(train))(keys)`` is the whole run as one program (``jaxrl.agents.base.make_train``).
The driver runs the *same* pure pieces, ``agent.init`` and ``agent.update``, but compiles the
update loop in **chunks**: one ``jit(vmap(scan(update, n)))`` call per logging point.  Why chunks
rather than ``io_callback``:

* progress, metrics rows, checkpoints and Ctrl-C all happen at chunk boundaries, on the host,
  with nothing inside the compiled code that a JAX transformation could drop or reorder;
* device memory for metrics is one reduced row per chunk: bounded by the number of logging
  points, never by the number of steps;
* the next chunk is dispatched before the previous chunk's metrics are read, so the host work
  overlaps device work; the cost of chunking is one dispatch per logging point.

At chunk boundaries the driver also runs **evaluation** (greedy episodes, its own compiled
``jit(vmap(evaluate))``, ``--eval-every``), writes **checkpoints** (``--checkpoint-every``, atomic,
see :mod:`jaxrl.checkpoint`), applies the **NaN guard** (a non-finite metric or state value stops
the run, naming the metric, the update and the seed; the last good checkpoint is kept) and handles
**SIGINT/SIGTERM** (finish the current chunk, save, stop).  A checkpoint is written only after its
chunk passed the NaN guard.

Exit statuses of ``jaxrl train``: 0 finished; 2 bad input (nothing written); 3 diverged (NaN
guard); 130 SIGINT / 143 SIGTERM (checkpoint saved, continue with ``--resume RUN_DIR``).

Resume is bit-exact on gymnax: the chunk schedule is a function of the config, the state is
restored from raw bytes, and evaluation keys depend only on the seed key and the update count.
On envpool the env state lives in a C++ pool and cannot be saved: a resumed run restores
everything else and starts fresh episodes (:func:`jaxrl.checkpoint.splice_env`).

Seeds and sweep values are one flat batch axis ``B = num_sweep_points * num_seeds``; every sweep
point uses the same ``num_seeds`` keys (common random numbers across settings).
"""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from jaxrl.config import ConfigError


@dataclasses.dataclass
class RunSpec:
    """Everything that defines a run, validated before anything is compiled or written."""

    algo: str
    env_id: str
    config: Any  # the agent's Config instance
    num_seeds: int = 1
    seed: int = 0
    sweep: dict = dataclasses.field(default_factory=dict)  # traced field -> list of values
    out: Optional[str] = None
    log_every: Optional[int] = None  # env steps per seed between logging points
    env_options: dict = dataclasses.field(default_factory=dict)
    devices: Any = "all"  # "all" or N: shard the batch axis over devices (jaxrl.parallel)
    eval_every: Optional[int] = None  # env steps per seed between evaluations; None: 10% of the run; 0: off
    eval_episodes: int = 10  # greedy episodes per seed per evaluation
    checkpoint_every: Optional[int] = None  # env steps per seed; None: 10% of the run; 0: only at the end/stop
    tensorboard: bool = False
    memory_budget_gb: Optional[float] = None  # None: the device's memory (80% of RAM on CPU)
    resume: bool = False  # continue ``out`` from its last checkpoint (see spec_from_run_dir)

    def sweep_points(self) -> list[dict]:
        if not self.sweep:
            return [{}]
        names = list(self.sweep)
        return [dict(zip(names, vals)) for vals in itertools.product(*(self.sweep[n] for n in names))]


def validate_spec(spec: RunSpec, module) -> None:
    """Cross-checks that need the algorithm module; raises one-line ConfigErrors."""
    from jaxrl.envs import parse_id

    if not isinstance(spec.num_seeds, int) or isinstance(spec.num_seeds, bool) or spec.num_seeds < 1:
        raise ConfigError("num_seeds", f"must be >= 1; got {spec.num_seeds}")
    parse_id(spec.env_id)
    from jaxrl.parallel import parse_devices

    parse_devices(spec.devices)
    traced = spec.config.traced_fields()
    for name, values in spec.sweep.items():
        if name not in spec.config.field_specs():
            raise ConfigError("sweep", f"unknown field {name!r}")
        if name not in traced:
            raise ConfigError("sweep", f"{name} is a static field (it changes shapes or program structure), so it "
                                       f"cannot be a batch axis; sweepable fields: {', '.join(traced)}")
        for v in values:  # every swept value must itself be valid
            spec.config.replace(**{name: v})
    for name, low in (("log_every", 1), ("eval_every", 0), ("checkpoint_every", 0), ("eval_episodes", 1),
                      ("seed", 0)):
        v = getattr(spec, name)
        if v is None and name in ("log_every", "eval_every", "checkpoint_every"):
            continue
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ConfigError(name, f"must be an integer >= {low}; got {v!r}")
    if spec.memory_budget_gb is not None and not (isinstance(spec.memory_budget_gb, (int, float))
                                                  and spec.memory_budget_gb > 0
                                                  and math.isfinite(spec.memory_budget_gb)):
        raise ConfigError("memory_budget", f"must be a positive number of GiB; got {spec.memory_budget_gb!r}")


def prepare_out_dir(out: str) -> Path:
    """Refuse to overwrite: an existing non-empty folder is a ConfigError (exit 2)."""
    p = Path(out)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise ConfigError("out", f"{out} already exists and is not empty; pick a new --out "
                                 f"(or --resume {out} to continue it)")
    return p


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=_json_default)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _nan_to_none(x):
    return None if (x is None or (isinstance(x, float) and not math.isfinite(x))) else x


class Progress:
    """One status line per logging point on stderr (rewritten in place on a terminal)."""

    def __init__(self, label: str, total: int, enabled: bool = True, stream=None):
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last_print = 0.0

    def update(self, done: int, sps: float, ret: Optional[float], force: bool = False):
        if not self.enabled:
            return
        now = time.time()
        if not force and not self.tty and now - self.last_print < 2.0 and done < self.total:
            return
        self.last_print = now
        pct = 100.0 * done / max(self.total, 1)
        eta = (self.total - done) / sps if sps > 0 else float("nan")
        r = "  n/a" if ret is None or not math.isfinite(ret) else f"{ret:8.2f}"
        line = (f"[{self.label}] {done:>12,}/{self.total:,} steps ({pct:5.1f}%) | {sps:>10,.0f} steps/s"
                f" | return {r} | eta {eta:6.1f}s")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done >= self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


class RunStopped(Exception):
    """The run stopped before the end; ``str(e)`` is one line and ``exit_code`` the CLI status."""

    exit_code = 1


class Interrupted(RunStopped):
    """SIGINT/SIGTERM: the current chunk finished and a checkpoint was saved. Exit 128 + signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


class Diverged(RunStopped):
    """A non-finite metric or state value. The last good checkpoint is kept. Exit status 3."""

    exit_code = 3


class _StopFlag:
    """SIGINT/SIGTERM handler: the first signal asks the loop to stop at the next chunk boundary;
    a second SIGINT aborts at once (KeyboardInterrupt, no checkpoint)."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        import signal

        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\njaxrl: {signal.Signals(signum).name}: finishing the current chunk and saving a checkpoint "
              f"(Ctrl-C again aborts without saving)", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def memory_budget_bytes(gb: Optional[float]) -> float:
    """``gb`` GiB, or what the default device can hold: its memory limit, or 80% of host RAM on CPU."""
    if gb is not None:
        return gb * 2**30
    import jax

    try:
        stats = jax.devices()[0].memory_stats() or {}
        if stats.get("bytes_limit"):
            return float(stats["bytes_limit"])
    except Exception:  # backends without memory_stats
        pass
    try:
        return 0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return float("inf")


def tree_bytes(tree) -> int:
    import jax

    return int(sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize if not _is_prng(x) else math.prod(x.shape) * 8
                   for x in jax.tree_util.tree_leaves(tree)))


def _is_prng(x) -> bool:
    import jax

    return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def check_memory(state_shape, batch: int, budget_gb: Optional[float]) -> None:
    need = tree_bytes(state_shape)
    budget = memory_budget_bytes(budget_gb)
    if need > budget:
        raise ConfigError("memory", f"the training state needs {need / 2**30:.2f} GiB for {batch} seed(s) x sweep "
                                    f"value(s) ({need / batch / 2**30:.3f} GiB each), more than the budget of "
                                    f"{budget / 2**30:.2f} GiB; lower the buffer size, num_envs or num_seeds "
                                    f"(or set --memory-budget GiB)")


EVAL_SALT = 0x6576616C  # folded into each seed key: evaluation keys never collide with training keys


def make_chunk(agent, n: int):
    """``(state, hp) -> (state, reduced metrics, first bad update per metric, finite flag per state leaf)``.

    ``n`` updates as one ``lax.scan``.  Metrics are stacked only within the chunk and reduced to one
    row, so memory is bounded by the chunk, not the run.  The NaN guard needs two cheap extras:
    the index of the first update with a non-finite value of each metric, and a finite flag per
    floating-point leaf of the state after the chunk.
    """
    import jax
    import jax.numpy as jnp

    from jaxrl.agents.base import reduce_metrics

    def run(state, hp):
        state, stacked = jax.lax.scan(lambda s, _: agent.update(s, hp), state, None, length=n)
        first_bad = {}
        for k, v in stacked.items():
            bad = ~jnp.isfinite(v.reshape(n, -1)).all(1)
            first_bad[k] = jnp.where(bad.any(), jnp.argmax(bad), -1).astype(jnp.int32)
        finite = jnp.stack([jnp.isfinite(x).all() if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.asarray(True)
                            for x in jax.tree_util.tree_leaves(state)] or [jnp.asarray(True)])
        return state, (reduce_metrics(stacked), first_bad, finite)

    return run


def _crossed(prev_steps: int, steps: int, every: int) -> bool:
    return every > 0 and steps // every > prev_steps // every


def spec_from_run_dir(run_dir: str, what: str = "resume") -> "RunSpec":
    """The RunSpec of an existing results folder (for ``--resume`` and ``jaxrl eval``); one-line errors."""
    from jaxrl import agents

    p = Path(run_dir)
    if not p.is_dir():
        raise ConfigError(what, f"{run_dir} does not exist or is not a folder")
    cfg_path = p / "config.json"
    if not cfg_path.is_file():
        raise ConfigError(what, f"{run_dir} is not a jaxrl results folder (no config.json)")
    try:
        c = json.loads(cfg_path.read_text())
        if not isinstance(c, dict):
            raise ValueError("not an object")
        module, preset = agents.get(c["algo"])
        config = module.Config.from_dict(c["config"])
        spec = RunSpec(algo=c["algo"], env_id=c["env"], config=config, num_seeds=int(c["num_seeds"]),
                       seed=int(c["seed"]), sweep=dict(c.get("sweep") or {}), out=str(p),
                       log_every=c.get("log_every"), env_options=dict(c.get("env_options") or {}),
                       eval_every=c.get("eval_every"), eval_episodes=int(c.get("eval_episodes", 10)),
                       checkpoint_every=c.get("checkpoint_every"), tensorboard=bool(c.get("tensorboard", False)),
                       memory_budget_gb=c.get("memory_budget_gb"), resume=True)
    except ConfigError as e:
        raise ConfigError(what, f"{cfg_path} holds an invalid config ({e})")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ConfigError(what, f"{cfg_path} is damaged ({type(e).__name__}: {e})")
    return spec


class _TensorBoard:
    """One event-file run per seed and sweep value (``tensorboard/seed0_lr=0.001``), so curves overlay."""

    def __init__(self, out: Path, spec: "RunSpec", rows_meta: list[dict], purge_step: Optional[int]):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ConfigError("tensorboard", "needs the tensorboardX package: pip install tensorboardX")
        self.writers = []
        for meta in rows_meta:
            name = f"seed{meta['seed']}" + "".join(f"_{k}={meta[k]}" for k in spec.sweep)
            self.writers.append(SummaryWriter(str(out / "tensorboard" / name), purge_step=purge_step))

    def write(self, step: int, m_np: dict, derived: dict, sps: float, eval_ret) -> None:
        from jaxrl.agents.base import is_summed

        for b, w in enumerate(self.writers):
            for k, v in derived.items():
                if math.isfinite(float(v[b])):
                    w.add_scalar(f"charts/{k}", float(v[b]), step)
            for k, v in m_np.items():
                if not is_summed(k):
                    w.add_scalar(f"losses/{k}" if "loss" in k else f"metrics/{k}", float(v[b]), step)
            w.add_scalar("charts/steps_per_second", sps, step)
            if eval_ret is not None:
                w.add_scalar("charts/eval_return", float(eval_ret[b]), step)
            w.flush()

    def close(self):
        for w in self.writers:
            w.close()


def _rows(spec, rows_meta, end, steps, elapsed, m_np, derived, eval_ret):
    for b, meta in enumerate(rows_meta):
        row = dict(meta, update=end, env_steps=steps, wall_time=round(elapsed, 4))
        row.update({k: _fmt(v[b]) for k, v in m_np.items()})
        row.update({k: _fmt(v[b]) for k, v in derived.items()})
        if eval_ret is not None:
            row["eval_return"] = _fmt(eval_ret[b])
        yield row


def train_run(spec: RunSpec, progress: bool = True, stop_after: Optional[int] = None) -> dict:
    """Run a training job end to end and fill the results folder. Returns the summary dict.

    ``spec.resume``: continue ``spec.out`` from its last checkpoint (see :func:`spec_from_run_dir`).
    ``stop_after``: behave as if SIGTERM arrived once ``stop_after`` updates are done (for tests).
    Raises :class:`Interrupted` (SIGINT/SIGTERM, checkpoint saved) or :class:`Diverged` (NaN guard).
    """
    import jax
    import jax.numpy as jnp

    from jaxrl import agents, checkpoint, envs
    from jaxrl.agents.base import is_summed

    from jaxrl import parallel

    module, _ = agents.get(spec.algo)
    validate_spec(spec, module)
    resume = spec.resume

    def check_folder():
        if resume:
            if spec.out is None or not (Path(spec.out) / "config.json").is_file():
                raise ConfigError("resume", f"{spec.out} is not a jaxrl results folder (no config.json)")
            if (Path(spec.out) / "summary.json").exists():
                raise ConfigError("resume", f"{spec.out} already finished (summary.json exists); nothing to resume")
            if not checkpoint.list_checkpoints(spec.out):
                raise ConfigError("resume", f"{spec.out} has no checkpoint ({checkpoint.CKPT_DIR}/ckpt-*.npz) "
                                            f"to resume from")
        elif spec.out and parallel.is_main_process():
            prepare_out_dir(spec.out)

    # Every process takes the same decision: one that stopped here alone would leave the others
    # waiting in their first collective until the coordinator timed out.
    parallel.agree(check_folder)
    # run_dir: the same on every process, which all gather checkpoints (a collective); out: where
    # results are written, only on process 0 (jaxrl.parallel: multi-host)
    run_dir = Path(spec.out) if spec.out else None
    out = run_dir if parallel.is_main_process() else None

    points = spec.sweep_points()
    batch = len(points) * spec.num_seeds
    env = envs.make(spec.env_id, num_envs=getattr(spec.config, "num_envs", 1), num_seeds=batch, **spec.env_options)
    agent = module.make_agent(spec.config, env)

    # ---- batch of keys and hyperparameters: [points x seeds] flattened -----------------------
    seed_keys = jax.random.split(jax.random.PRNGKey(spec.seed), spec.num_seeds)
    keys = jnp.concatenate([seed_keys] * len(points))
    base_hp = spec.config.hparams()
    hp = {k: jnp.asarray([p.get(k, getattr(spec.config, k)) for p in points for _ in range(spec.num_seeds)],
                         jnp.float32) for k in base_hp}
    rows_meta = [dict(seed=s, **p) for p in points for s in range(spec.num_seeds)]
    # ---- devices: shard the batch axis over a Mesh (jaxrl.parallel; a no-op on one device) -----
    placement = parallel.plan(spec.devices, batch, env.spec.backend)
    keys, hp = placement.put((keys, hp))
    shard = placement.jit_kwargs(2)

    n_upd = agent.num_updates
    spu = agent.steps_per_update
    per_seed_total = n_upd * spu
    log_every = spec.log_every or max(1, per_seed_total // 100)
    chunk = max(1, min(max(1, log_every // spu), math.ceil(n_upd / 20)))
    sizes = [chunk] * (n_upd // chunk) + ([n_upd % chunk] if n_upd % chunk else [])
    default_every = max(1, per_seed_total // 10)
    eval_every = default_every if spec.eval_every is None else spec.eval_every
    ckpt_every = default_every if spec.checkpoint_every is None else spec.checkpoint_every

    init_fn = jax.jit(parallel.vmap(agent.init), **shard)
    state_shape = jax.eval_shape(init_fn, keys, hp)
    check_memory(state_shape, batch, spec.memory_budget_gb)

    evaluate = None
    if eval_every > 0 and agent.act is not None:
        from jaxrl.evaluation import make_eval_env, make_evaluate

        eval_env = make_eval_env(spec.env_id, spec.eval_episodes, batch, spec.env_options)
        evaluate = make_evaluate(eval_env, agent.act)
    elif eval_every > 0 and agent.evaluate is not None:
        evaluate = agent.evaluate
    eval_fn = None
    if evaluate is not None:
        def eval_one(s, k, end):
            return jnp.atleast_1d(evaluate(s, jax.random.fold_in(jax.random.fold_in(k, EVAL_SALT), end)))

        eval_fn = jax.jit(parallel.vmap(eval_one, in_axes=(0, 0, None)))

    # ---- compile ahead of time, timed --------------------------------------------------------
    t0 = time.perf_counter()
    init_c = init_fn.lower(keys, hp).compile()
    compiled = {n: jax.jit(parallel.vmap(make_chunk(agent, n)), donate_argnums=0, **shard).lower(state_shape, hp).compile()
                for n in sorted(set(sizes))}
    eval_c = eval_fn.lower(state_shape, keys, jnp.int32(0)).compile() if eval_fn is not None else None
    compile_seconds = time.perf_counter() - t0

    state = init_c(keys, hp)
    done_updates, wall_offset = 0, 0.0
    history = []  # (end_update, wall_time, metrics dict of np arrays [B])
    evals = {}  # end_update -> np array [B, episodes]
    if resume:
        # every process reads the same file; each leaf takes the template's sharding (its shards)
        state, meta, extras, ck_path = checkpoint.load_latest(run_dir, state)
        if env.spec.backend == "envpool":  # the C++ pool's state cannot be saved: fresh episodes
            state = checkpoint.splice_env(state, init_c(keys, hp))
        done_updates, wall_offset = int(meta["update"]), float(meta["wall_time"])
        bounds = list(itertools.accumulate(sizes))
        if done_updates not in bounds and done_updates != 0:
            raise checkpoint.CheckpointError("resume", f"{ck_path} is at update {done_updates}, not a chunk "
                                                       f"boundary of this config; was config.json edited?")
        history = _history_from_extras(extras)
        evals = {int(e): r for e, r in zip(extras.get("eval_end", []), extras.get("eval_returns", []))}
    elif out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "config.json", {
            "algo": spec.algo, "env": spec.env_id, "num_seeds": spec.num_seeds, "seed": spec.seed,
            "sweep": spec.sweep, "log_every": log_every, "env_options": spec.env_options,
            "eval_every": eval_every, "eval_episodes": spec.eval_episodes, "checkpoint_every": ckpt_every,
            "tensorboard": spec.tensorboard, "memory_budget_gb": spec.memory_budget_gb,
            "config": spec.config.to_dict(), "argv": sys.argv, "jax_version": jax.__version__,
            "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "devices_used": placement.num_devices,
        })

    # ---- results files ------------------------------------------------------------------------
    derived_keys = list(_derived({"episodes": np.zeros(1), "episode_return_sum": np.zeros(1),
                                  "episode_length_sum": np.zeros(1)}))
    csv_file, writer = None, None
    tb = None

    def csv_header(m_np, derived):
        keys_ = ["seed", *spec.sweep, "update", "env_steps", "wall_time", "episode_return", "episode_length"]
        keys_ += (["eval_return"] if eval_c is not None else [])
        keys_ += sorted(k for k in m_np if k not in derived)
        return keys_ + [k for k in derived if k not in keys_]

    if out is not None:
        if resume and history:  # rewrite metrics.csv from the checkpointed history: no rows past it
            tmp = out / "metrics.csv.tmp"
            with open(tmp, "w", newline="") as f:
                w = None
                for end, wall, m_np in history:
                    d = _derived(m_np)
                    w = w or csv.DictWriter(f, fieldnames=csv_header(m_np, d), extrasaction="ignore")
                    if f.tell() == 0:
                        w.writeheader()
                    w.writerows(_rows(spec, rows_meta, end, end * spu, wall, m_np, d, _eval_mean(evals.get(end))))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, out / "metrics.csv")
            csv_file = open(out / "metrics.csv", "a", newline="")
            writer = csv.DictWriter(csv_file, fieldnames=csv_header(history[0][2], _derived(history[0][2])),
                                    extrasaction="ignore")
        else:
            csv_file = open(out / "metrics.csv", "w", newline="")
        if spec.tensorboard:
            tb = _TensorBoard(out, spec, rows_meta, purge_step=done_updates * spu + 1 if resume else None)

    label = f"{spec.algo} {spec.env_id} x{batch}"
    prog = Progress(label, per_seed_total * batch, enabled=progress)
    jax.block_until_ready(state)
    t_start = time.perf_counter()
    session_start_updates = done_updates
    last_saved = None
    ret_recent = None

    def elapsed():
        return wall_offset + time.perf_counter() - t_start

    def process(item):
        """Host side of one finished chunk: NaN guard, rows, TensorBoard, progress."""
        nonlocal writer, ret_recent
        start, end, (m_dev, first_bad_dev, finite_dev), ev_dev = item
        m_dev, first_bad_dev, finite_dev, ev_dev = parallel.to_host((m_dev, first_bad_dev, finite_dev, ev_dev))
        m_np = {k: np.asarray(v) for k, v in m_dev.items()}
        _nan_guard(m_np, {k: np.asarray(v) for k, v in first_bad_dev.items()}, np.asarray(finite_dev),
                   start, end, rows_meta, state_shape, run_dir, last_saved)
        ev = np.asarray(ev_dev) if ev_dev is not None else None
        if ev is not None:
            evals[end] = ev
        now = elapsed()
        history.append((end, now, m_np))
        steps_done = end * spu
        d = _derived(m_np)
        finite = d["episode_return"][np.isfinite(d["episode_return"])]
        ret_recent = float(finite.mean()) if finite.size else ret_recent
        sps = (end - session_start_updates) * spu * batch / max(time.perf_counter() - t_start, 1e-9)
        prog.update(steps_done * batch, sps, ret_recent)
        if csv_file is not None:
            if writer is None:
                writer = csv.DictWriter(csv_file, fieldnames=csv_header(m_np, d), extrasaction="ignore")
                writer.writeheader()
            writer.writerows(_rows(spec, rows_meta, end, steps_done, now, m_np, d, _eval_mean(ev)))
            csv_file.flush()
        if tb is not None:
            tb.write(steps_done, m_np, d, sps, _eval_mean(ev))

    def save(state_, end):
        nonlocal last_saved
        extras = _history_to_extras(history)
        if evals:
            ends = sorted(evals)
            extras["eval_end"] = np.asarray(ends, np.int64)
            extras["eval_returns"] = np.stack([evals[e] for e in ends])
        last_saved = checkpoint.save(run_dir, end, state_, {"wall_time": elapsed(), "env_steps": end * spu}, extras)

    remaining = []
    acc = 0
    for n in sizes:
        if acc >= done_updates:
            remaining.append(n)
        acc += n
    try:
        with _StopFlag() as stop:
            pending = None
            for n in remaining:
                start, end = done_updates, done_updates + n
                state, aux = compiled[n](state, hp)
                ev = eval_c(state, keys, jnp.int32(end)) if eval_c is not None and (
                    end == n_upd or _crossed(start * spu, end * spu, eval_every)) else None
                if pending is not None:
                    process(pending)  # overlaps with the chunk just dispatched
                pending = (start, end, aux, ev)
                done_updates = end
                stop_now = stop.signum is not None or (stop_after is not None and end >= stop_after)
                stop_now = parallel.any_process(stop_now)  # multi-host: all stop at the same chunk
                if run_dir is not None and (stop_now or end == n_upd or _crossed(start * spu, end * spu, ckpt_every)):
                    process(pending)
                    pending = None
                    save(state, end)
                if stop_now and end < n_upd:
                    import signal

                    signum = stop.signum or signal.SIGTERM
                    where = f"; checkpoint {last_saved}" if run_dir is not None else ""
                    hint = f"; continue with: jaxrl train --resume {run_dir}" if run_dir is not None else ""
                    raise Interrupted(f"{signal.Signals(signum).name}: stopped after update {end} of {n_upd}"
                                      f"{where}{hint}", signum)
            if pending is not None:
                process(pending)
        jax.block_until_ready(state)
    finally:
        if csv_file is not None:
            csv_file.close()
        if tb is not None:
            tb.close()
    wall = time.perf_counter() - t_start

    steps_session = (n_upd - session_start_updates) * spu * batch
    summary = {
        "algo": spec.algo, "env": spec.env_id, "num_seeds": spec.num_seeds,
        "final_return": [_nan_to_none(x) for x in final_returns([(e, m) for e, _, m in history], n_upd)],
        "steps_per_second": steps_session / wall if wall > 0 else float("nan"),
        "compile_seconds": compile_seconds,
        "wall_seconds": wall,
        "env_steps_per_seed": per_seed_total,
        "points": [dict(p, seeds=list(range(spec.num_seeds))) for p in points],
    }
    if evals:
        last = evals[max(evals)]
        summary["eval_return"] = [_nan_to_none(float(x)) for x in last.mean(-1)]
        summary["eval_return_std"] = [_nan_to_none(float(x)) for x in last.std(-1)]
        summary["eval_episodes"] = int(last.shape[-1])
    if resume:
        summary["resumed_from_update"] = session_start_updates
    if out is not None:
        write_json_atomic(out / "summary.json", summary)
    summary["_state"] = state
    return summary


def _eval_mean(ev):
    return None if ev is None else ev.mean(-1)


def _history_to_extras(history) -> dict:
    if not history:
        return {}
    keys_ = sorted(history[0][2])
    out = {"hist_end": np.asarray([e for e, _, _ in history], np.int64),
           "hist_wall": np.asarray([w for _, w, _ in history], np.float64)}
    for k in keys_:
        out[f"hist/{k}"] = np.stack([m[k] for _, _, m in history])
    return out


def _history_from_extras(extras: dict) -> list:
    if "hist_end" not in extras:
        return []
    keys_ = [k[5:] for k in extras if k.startswith("hist/")]
    return [(int(e), float(w), {k: extras[f"hist/{k}"][i] for k in keys_})
            for i, (e, w) in enumerate(zip(extras["hist_end"], extras["hist_wall"]))]


def _nan_guard(m_np, first_bad, finite, start, end, rows_meta, state_shape, out, last_saved) -> None:
    """Raise :class:`Diverged` naming the metric (or state array), the update and the seed."""
    import jax

    bad = [(int(first_bad[k].max()), k) for k in sorted(m_np) if (first_bad[k] >= 0).any()]
    keep = f"; last good checkpoint {last_saved}" if last_saved else ("; no checkpoint was saved yet"
                                                                       if out is not None else "")
    if bad:
        # the earliest bad update over the batch, and which member
        k = min(bad)[1]
        idx = np.where(first_bad[k] >= 0, first_bad[k], np.iinfo(np.int32).max)
        b = int(idx.argmin())
        upd = start + int(idx[b]) + 1
        raise Diverged(f"non-finite {k} at update {upd} ({_member(rows_meta[b])}); stopped{keep}")
    if not finite.all():
        b, leaf = (int(i) for i in np.argwhere(~finite)[0])
        paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(state_shape)[0]]
        name = paths[leaf] if leaf < len(paths) else f"leaf {leaf}"
        raise Diverged(f"non-finite state value {name} after update {end} ({_member(rows_meta[b])}); stopped{keep}")


def _member(meta: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in meta.items())


def _fmt(x):
    x = float(x)
    return "" if not math.isfinite(x) else (int(x) if x.is_integer() and abs(x) < 2**53 else round(x, 6))


def _derived(m: dict) -> dict:
    """Per-batch-member means from summed episode statistics."""
    with np.errstate(invalid="ignore", divide="ignore"):
        eps = m.get("episodes")
        out = {}
        if eps is not None:
            out["episode_return"] = np.where(eps > 0, m["episode_return_sum"] / eps, np.nan)
            out["episode_length"] = np.where(eps > 0, m["episode_length_sum"] / eps, np.nan)
        else:
            out["episode_return"] = np.full(next(iter(m.values())).shape, np.nan)
            out["episode_length"] = out["episode_return"]
        if "train_episodes_sum" in m:
            te = m["train_episodes_sum"]
            out["train_episode_return"] = np.where(te > 0, m["train_episode_return_sum"] / te, np.nan)
    return out


def final_returns(history, num_updates: int, frac: float = 0.05) -> list[float]:
    """Mean return of episodes finished in the last ``frac`` of training, per batch member.

    Uses every logging chunk that ends after ``(1 - frac) * num_updates``; chunks are at most 5% of
    the run, so the window is the last 5% to within one chunk.  Falls back to the last chunk with
    finished episodes when none finished in the window (very long episodes).
    """
    if not history:
        return []
    cut = (1.0 - frac) * num_updates
    window = [m for end, m in history if end > cut] or [history[-1][1]]
    s = sum(m["episode_return_sum"] for m in window)
    n = sum(m["episodes"] for m in window)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(n > 0, s / n, np.nan)
    if np.isnan(r).any():
        for _, m in reversed(history):
            alt = _derived(m)["episode_return"]
            r = np.where(np.isnan(r), alt, r)
            if not np.isnan(r).any():
                break
    return [float(x) for x in r]
