"""``jaxrl compare RUN_A RUN_B``: IQM of each with its 95% stratified-bootstrap CI, and P(A > B).

Each side is a results folder of ``jaxrl train``, or several joined by commas (one per game, the
same games in the same order on both sides). A run's score per seed is ``eval_return`` from its
``summary.json`` (greedy episodes at the end of training), or ``final_return`` (episodes finished in
the last 5% of training) with ``--score final_return`` or when a run has no evaluation. Statistics:
:mod:`jaxrl.aggregate` (rliable; Agarwal et al. 2021).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from jaxrl.aggregate import DEFAULT_REPS
from jaxrl.config import ConfigError

HELP = "IQM with 95 pct. bootstrap CIs of two runs (or groups of runs, one per game) and P(A > B)"


def add_arguments(p) -> None:
    p.add_argument("run_a", metavar="RUN_A", help="results folder, or folders joined by commas (one per game)")
    p.add_argument("run_b", metavar="RUN_B", help="results folder(s) to compare with, the same games in order")
    p.add_argument("--score", choices=("auto", "eval_return", "final_return"), default="auto",
                   help="per-seed score from summary.json (auto: eval_return where every run has it)")
    p.add_argument("--reps", type=int, default=DEFAULT_REPS, help=f"bootstrap replications (default {DEFAULT_REPS})")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")


def read_summary(run_dir: str) -> dict:
    p = Path(run_dir) / "summary.json"
    if not p.is_file():
        raise ConfigError("runs", f"{run_dir} is not a finished jaxrl results folder (no summary.json)")
    try:
        summary = json.loads(p.read_text())
    except ValueError as e:
        raise ConfigError("runs", f"{p} is not valid JSON ({e})") from None
    if len(summary.get("points") or [{}]) > 1:
        raise ConfigError("runs", f"{run_dir} is a sweep ({len(summary['points'])} settings); compare runs of "
                                  f"one setting each")
    return summary


def scores_of(run_dirs: list[str], score: str):
    """``[seeds, games]`` scores of one side (the seed counts of its games must agree)."""
    import numpy as np

    cols = []
    for d in run_dirs:
        values = read_summary(d).get(score)
        if not values:
            raise ConfigError("score", f"{d}/summary.json has no {score}; use --score final_return")
        if any(v is None or not math.isfinite(v) for v in values):
            raise ConfigError("score", f"{d}: a seed has no {score} (no finished episode); train longer")
        cols.append(values)
    if len({len(c) for c in cols}) > 1:
        raise ConfigError("runs", f"{','.join(run_dirs)}: games have different seed counts {[len(c) for c in cols]}")
    return np.asarray(cols, np.float64).T


def pick_score(run_dirs: list[str], score: str) -> str:
    if score != "auto":
        return score
    return "eval_return" if all(read_summary(d).get("eval_return") for d in run_dirs) else "final_return"


def _split(arg: str) -> list[str]:
    dirs = [d for d in arg.split(",") if d]
    if not dirs:
        raise ConfigError("runs", f"{arg!r} names no results folder")
    return dirs


def compare(run_a: str, run_b: str, score: str = "auto", reps: int = DEFAULT_REPS, seed: int = 0) -> dict:
    """The comparison as a dict: ``score``, ``a``/``b`` = {iqm, ci, seeds, games}, ``p_improvement`` = {p, ci}."""
    from jaxrl import aggregate

    a, b = _split(run_a), _split(run_b)
    if len(a) != len(b):
        raise ConfigError("runs", f"RUN_A has {len(a)} games and RUN_B {len(b)}; give the same games on both sides")
    if reps < 1:
        raise ConfigError("reps", f"must be at least 1, got {reps}")
    score = pick_score(a + b, score)
    out = {"score": score}
    for name, dirs in (("a", a), ("b", b)):
        s = scores_of(dirs, score)
        m, lo, hi = aggregate.iqm_with_ci(s, reps, seed)
        out[name] = {"runs": dirs, "iqm": m, "ci": [lo, hi], "seeds": s.shape[0], "games": s.shape[1]}
    p, lo, hi = aggregate.probability_of_improvement(scores_of(a, score), scores_of(b, score), reps, seed)
    out["p_improvement"] = {"p": p, "ci": [lo, hi]}
    return out


def run(args) -> int:
    res = compare(args.run_a, args.run_b, args.score, args.reps, args.seed)
    print(f"score: {res['score']} per seed; IQM and 95% stratified-bootstrap CI ({args.reps} reps)")
    for key in ("a", "b"):
        r = res[key]
        print(f"  {key.upper()} {','.join(r['runs'])}: IQM {r['iqm']:.2f}  95% CI [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]"
              f"  ({r['seeds']} seeds x {r['games']} game{'s' if r['games'] > 1 else ''})")
    p = res["p_improvement"]
    print(f"  P(A > B) = {p['p']:.3f}  95% CI [{p['ci'][0]:.3f}, {p['ci'][1]:.3f}]")
    return 0
