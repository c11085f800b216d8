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

    def sweep_points(self) -> list[dict]:
        if not self.sweep:
            return [{}]
        names = list(self.sweep)
        return [dict(zip(names, vals)) for vals in itertools.product(*(self.sweep[n] for n in names))]


def validate_spec(spec: RunSpec, module) -> None:
    """Cross-checks that need the algorithm module; raises one-line ConfigErrors."""
    from jaxrl.envs import parse_id

    if spec.num_seeds < 1:
        raise ConfigError("num_seeds", f"must be >= 1; got {spec.num_seeds}")
    parse_id(spec.env_id)
    traced = spec.config.traced_fields()
    for name, values in spec.sweep.items():
        if name not in spec.config.field_specs():
            raise ConfigError("sweep", f"unknown field {name!r}")
        if name not in traced:
            raise ConfigError("sweep", f"{name} is a static field (it changes shapes or program structure), so it "
                                       f"cannot be a batch axis; sweepable fields: {', '.join(traced)}")
        for v in values:  # every swept value must itself be valid
            spec.config.replace(**{name: v})
    if spec.log_every is not None and spec.log_every < 1:
        raise ConfigError("log_every", f"must be >= 1 env step; got {spec.log_every}")


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


def train_run(spec: RunSpec, progress: bool = True) -> dict:
    """Run a training job end to end and fill the results folder. Returns the summary dict."""
    import jax
    import jax.numpy as jnp

    from jaxrl import agents, envs
    from jaxrl.agents.base import run_updates

    module, _ = agents.get(spec.algo)
    validate_spec(spec, module)
    out = prepare_out_dir(spec.out) if spec.out else None

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

    n_upd = agent.num_updates
    per_seed_total = n_upd * agent.steps_per_update
    log_every = spec.log_every or max(1, per_seed_total // 100)
    chunk = max(1, min(max(1, log_every // agent.steps_per_update), math.ceil(n_upd / 20)))

    init_fn = jax.jit(jax.vmap(agent.init))
    chunk_fns: dict[int, Callable] = {}

    def chunk_fn(n):
        if n not in chunk_fns:
            chunk_fns[n] = jax.jit(jax.vmap(lambda s, h: run_updates(agent, s, h, n)), donate_argnums=0)
        return chunk_fns[n]

    # ---- compile ahead of time, timed --------------------------------------------------------
    t0 = time.perf_counter()
    init_c = init_fn.lower(keys, hp).compile()
    state_shape = jax.eval_shape(init_fn, keys, hp)
    sizes = [chunk] * (n_upd // chunk) + ([n_upd % chunk] if n_upd % chunk else [])
    compiled = {n: chunk_fn(n).lower(state_shape, hp).compile() for n in sorted(set(sizes))}
    compile_seconds = time.perf_counter() - t0

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "config.json", {
            "algo": spec.algo, "env": spec.env_id, "num_seeds": spec.num_seeds, "seed": spec.seed,
            "sweep": spec.sweep, "log_every": log_every, "env_options": spec.env_options,
            "config": spec.config.to_dict(), "argv": sys.argv, "jax_version": jax.__version__,
            "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
        })
    csv_file = open(out / "metrics.csv", "w", newline="") if out is not None else None
    writer = None

    label = f"{spec.algo} {spec.env_id} x{batch}"
    prog = Progress(label, per_seed_total * batch, enabled=progress)
    t_start = time.perf_counter()
    state = init_c(keys, hp)
    jax.block_until_ready(state)
    done_updates = 0
    history = []  # (end_update, metrics dict of np arrays [B])
    pending = None
    ret_recent = None
    for n in sizes + [None]:
        nxt = None
        if n is not None:
            state, m = compiled[n](state, hp)
            nxt = (done_updates + n, m)
        if pending is not None:
            end, m_dev = pending
            m_np = {k: np.asarray(v) for k, v in m_dev.items()}
            history.append((end, m_np))
            elapsed = time.perf_counter() - t_start
            steps_done = end * agent.steps_per_update
            ret = _derived(m_np)
            finite = ret["episode_return"][np.isfinite(ret["episode_return"])]
            ret_recent = float(finite.mean()) if finite.size else ret_recent
            prog.update(steps_done * batch, steps_done * batch / max(elapsed, 1e-9), ret_recent)
            if csv_file is not None:
                row_keys = ["seed", *spec.sweep, "update", "env_steps", "wall_time", "episode_return",
                            "episode_length", *sorted(k for k in m_np if k not in ret)]
                if writer is None:
                    writer = csv.DictWriter(csv_file, fieldnames=row_keys + [k for k in ret if k not in row_keys],
                                            extrasaction="ignore")
                    writer.writeheader()
                for b, meta in enumerate(rows_meta):
                    row = dict(meta, update=end, env_steps=steps_done, wall_time=round(elapsed, 4))
                    row.update({k: _fmt(v[b]) for k, v in m_np.items()})
                    row.update({k: _fmt(v[b]) for k, v in ret.items()})
                    writer.writerow(row)
                csv_file.flush()
        if n is not None:
            done_updates += n
        pending = nxt
    jax.block_until_ready(state)
    wall = time.perf_counter() - t_start
    if csv_file is not None:
        csv_file.close()

    total_steps = per_seed_total * batch
    summary = {
        "algo": spec.algo, "env": spec.env_id, "num_seeds": spec.num_seeds,
        "final_return": [_nan_to_none(x) for x in final_returns(history, n_upd)],
        "steps_per_second": total_steps / wall,
        "compile_seconds": compile_seconds,
        "wall_seconds": wall,
        "env_steps_per_seed": per_seed_total,
        "points": [dict(p, seeds=list(range(spec.num_seeds))) for p in points],
    }
    if out is not None:
        write_json_atomic(out / "summary.json", summary)
    summary["_state"] = state
    return summary


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
