"""Aggregate scores that hold up over few seeds (Agarwal et al. 2021, arXiv:2108.13264), via rliable.

* **IQM**, the interquartile mean: the mean of the middle 50% of all (run, task) scores
  (``scipy.stats.trim_mean(x, 0.25)`` over the flattened scores).
* **95% stratified bootstrap CIs**: runs are resampled with replacement within each task
  (percentile intervals, ``reps`` replications).
* **Probability of improvement** ``P(X > Y)``: the Mann-Whitney U statistic over the runs of each
  task divided by ``n_x * n_y`` (ties count 1/2), averaged over tasks; its CI bootstraps X's and Y's
  runs independently.

Scores are ``[runs, tasks]`` arrays (``[runs, tasks, points]`` for curves), raw returns: games with
different reward scales should be normalised before they are pooled. rliable (1.2.0, with
``pandas<3``) is an optional dependency: ``pip install 'jaxrl[stats]'``.
"""
from __future__ import annotations

import warnings

import numpy as np

from jaxrl.config import ConfigError

DEFAULT_REPS = 2000  # bootstrap replications (rliable's default of 50000 moves the CI ends by < 1% here)


def _rliable():
    try:
        from rliable import library, metrics
    except ImportError as e:
        raise ConfigError("aggregate", f"needs rliable ({e}); install it with pip install 'jaxrl[stats]' "
                                       f"(rliable==1.2.0, pandas<3)") from None
    return library, metrics


def iqm(scores) -> np.ndarray:
    """IQM of ``scores [runs, tasks, *points]`` over runs and tasks -> ``[*points]`` (a scalar for 2-D scores)."""
    from scipy.stats import trim_mean

    s = np.asarray(scores, np.float64)
    return trim_mean(s.reshape((-1,) + s.shape[2:]), 0.25, axis=0)


def _state(seed: int):
    return np.random.RandomState(seed)


def _estimates(library, scores: dict, func, reps: int, seed: int):
    saved = np.random.get_state()  # arch may draw from numpy's global generator instead of random_state
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():  # arch deprecates the RandomState that rliable 1.2.0 passes on
            warnings.simplefilter("ignore", FutureWarning)
            return library.get_interval_estimates(scores, func, reps=reps, random_state=_state(seed))
    finally:
        np.random.set_state(saved)


def iqm_with_ci(scores, reps: int = DEFAULT_REPS, seed: int = 0):
    """``(iqm, lo, hi)`` of ``scores [runs, tasks]`` or ``[runs, tasks, points]`` (then each is ``[points]``)."""
    library, _ = _rliable()
    s = np.asarray(scores, np.float64)
    _check(s, "scores")
    point, ci = _estimates(library, {"x": s}, lambda x: np.atleast_1d(iqm(x)), reps, seed)
    p, (lo, hi) = point["x"], ci["x"]
    return (p, lo, hi) if s.ndim == 3 else (float(p[0]), float(lo[0]), float(hi[0]))


def probability_of_improvement(x, y, reps: int = DEFAULT_REPS, seed: int = 0):
    """``(P(X > Y), lo, hi)`` for ``x [runs_x, tasks]`` and ``y [runs_y, tasks]`` (same tasks, in order)."""
    library, metrics = _rliable()
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    _check(x, "x")
    _check(y, "y")
    point, ci = _estimates(library, {"p": [x, y]},
                           lambda a, b: np.array([metrics.probability_of_improvement(a, b)]), reps, seed)
    return float(point["p"][0]), float(ci["p"][0][0]), float(ci["p"][1][0])


def _check(s: np.ndarray, name: str) -> None:
    if s.ndim not in (2, 3) or s.shape[0] < 1 or s.size == 0:
        raise ConfigError(name, f"expected scores of shape [runs, tasks(, points)], got {s.shape}")
    if not np.isfinite(s).all():
        raise ConfigError(name, "scores contain NaN or inf (a seed with no finished episode?)")
