"""The results folder: atomic JSON, ``metrics.csv`` rows, the metric history kept in checkpoints.

``metrics.csv`` has one row per batch member (seed and sweep point) per logging point. Its header
names are unique: ``seed``, one ``sweep.<field>`` column per swept field (the point's value on every
row), ``update``, ``env_steps`` (per seed), ``wall_time``, ``episode_return``, ``episode_length``,
``eval_return`` (when evaluation is on) and every metric the agent reports, under its own name (so a
swept ``lr`` and the logged, annealed ``lr`` are two columns: ``sweep.lr`` and ``lr``).
"""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Optional

import numpy as np

SWEEP_PREFIX = "sweep."


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


def nan_to_none(x):
    return None if (x is None or (isinstance(x, float) and not math.isfinite(x))) else x


def fmt(x):
    x = float(x)
    return "" if not math.isfinite(x) else (int(x) if x.is_integer() and abs(x) < 2**53 else float(f"{x:.7g}"))


def derived(m: dict) -> dict:
    """Per-member means from summed episode statistics: ``episode_return``, ``episode_length`` (NaN
    when no episode finished), ``train_episode_return`` on envpool Atari."""
    with np.errstate(invalid="ignore", divide="ignore"):
        eps = m.get("episodes")
        out = {}
        if eps is not None:
            out["episode_return"] = np.where(eps > 0, m["episode_return_sum"] / eps, np.nan)
            out["episode_length"] = np.where(eps > 0, m["episode_length_sum"] / eps, np.nan)
        else:
            out["episode_return"] = np.full(np.shape(next(iter(m.values()))), np.nan)
            out["episode_length"] = out["episode_return"]
        if "train_episodes_sum" in m:
            te = m["train_episodes_sum"]
            out["train_episode_return"] = np.where(te > 0, m["train_episode_return_sum"] / te, np.nan)
    return out


class MetricsCSV:
    """Appends logging points to ``metrics.csv`` (header from the first point)."""

    def __init__(self, path: Path, rows_meta: list[dict], sweep: list[str], with_eval: bool, append=False):
        self.path, self.rows_meta, self.sweep, self.with_eval = path, rows_meta, sweep, with_eval
        self.file = open(path, "a" if append else "w", newline="")
        self.writer = None
        self.header: Optional[list] = None

    def _header(self, m: dict, d: dict) -> list:
        keys = ["seed", *(SWEEP_PREFIX + k for k in self.sweep), "update", "env_steps", "wall_time",
                "episode_return", "episode_length"] + (["eval_return"] if self.with_eval else [])
        keys += sorted(k for k in m if k not in keys)
        keys += [k for k in d if k not in keys]
        return keys

    def rows(self, end: int, steps: int, wall: float, m: dict, evals) -> list[dict]:
        d = derived(m)
        out = []
        for b, meta in enumerate(self.rows_meta):
            row = {"seed": meta["seed"], "update": end, "env_steps": steps, "wall_time": round(wall, 4)}
            row.update({SWEEP_PREFIX + k: meta[k] for k in self.sweep})
            row.update({k: fmt(v[b]) for k, v in m.items()})
            row.update({k: fmt(v[b]) for k, v in d.items()})
            if evals is not None:
                row["eval_return"] = fmt(evals[b])
            out.append(row)
        return out

    def write(self, end: int, steps: int, wall: float, m: dict, evals, header_only=False) -> None:
        if self.writer is None:
            self.header = self._header(m, derived(m))
            self.writer = csv.DictWriter(self.file, fieldnames=self.header, extrasaction="ignore")
            if self.file.tell() == 0:
                self.writer.writeheader()
        self.writer.writerows(self.rows(end, steps, wall, m, evals))
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def rewrite_csv(path: Path, history: list, evals: dict, rows_meta, sweep, with_eval, spu: int) -> None:
    """``metrics.csv`` rebuilt from a checkpoint's history (resume): rows past the checkpoint are dropped."""
    tmp = path.with_name(path.name + ".tmp")
    w = MetricsCSV(tmp, rows_meta, sweep, with_eval)
    for end, wall, m in history:
        w.write(end, end * spu, wall, m, eval_mean(evals.get(end)))
    w.file.flush()
    os.fsync(w.file.fileno())
    w.close()
    os.replace(tmp, path)


def eval_mean(ev):
    return None if ev is None else np.asarray(ev).mean(-1)


# ------------------------------------------------------------------ history kept in checkpoints
def history_to_extras(history: list, evals: dict) -> dict:
    out = {}
    if history:
        keys = sorted(history[0][2])
        out = {"hist_end": np.asarray([e for e, _, _ in history], np.int64),
               "hist_wall": np.asarray([w for _, w, _ in history], np.float64)}
        for k in keys:
            out[f"hist/{k}"] = np.stack([m[k] for _, _, m in history])
    if evals:
        ends = sorted(evals)
        out["eval_end"] = np.asarray(ends, np.int64)
        out["eval_returns"] = np.stack([evals[e] for e in ends])
    return out


def history_from_extras(extras: dict) -> tuple[list, dict]:
    history = []
    if "hist_end" in extras:
        keys = [k[5:] for k in extras if k.startswith("hist/")]
        history = [(int(e), float(w), {k: extras[f"hist/{k}"][i] for k in keys})
                   for i, (e, w) in enumerate(zip(extras["hist_end"], extras["hist_wall"]))]
    evals = {int(e): r for e, r in zip(extras.get("eval_end", []), extras.get("eval_returns", []))}
    return history, evals


def final_returns(history: list, num_updates: int, frac: float = 0.05) -> list[float]:
    """Mean return of episodes finished in the last ``frac`` of training, per batch member.

    Uses every logging point that ends after ``(1 - frac) * num_updates`` (logging points are at most
    1% of the run by default); falls back to the latest point with finished episodes.
    """
    if not history:
        return []
    cut = (1.0 - frac) * num_updates
    window = [m for end, _, m in history if end > cut] or [history[-1][2]]
    s = sum(m["episode_return_sum"] for m in window)
    n = sum(m["episodes"] for m in window)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(n > 0, s / n, np.nan)
    if np.isnan(r).any():
        for _, _, m in reversed(history):
            r = np.where(np.isnan(r), derived(m)["episode_return"], r)
            if not np.isnan(r).any():
                break
    return [float(x) for x in r]
