"""``jaxrl plot RUN_DIR... -o curves.png``: learning curves, mean over seeds with a 95% confidence band.

One line per run, or per sweep value of a run (a sweep run holds several settings).  The x axis is
env steps per seed, or wall-clock seconds with ``--wall-clock``.  The band is the t-interval of the
mean over seeds (``mean +- t(0.975, n-1) * sd / sqrt(n)``); a line with one seed has no band.
``--metric`` picks any column of ``metrics.csv`` (``eval_return``, ``loss``, ``entropy`` ...).
``--aggregate iqm`` draws the interquartile mean over seeds instead, with a 95% stratified-bootstrap
band (rliable, :mod:`jaxrl.aggregate`), at the points where every seed has a value.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from jaxrl.config import ConfigError
from jaxrl.driver.results import SWEEP_PREFIX

HELP = "plot learning curves of results folders (mean and 95 pct. confidence band over seeds)"

# two-sided 95% quantiles of Student's t, df = 1..30; 1.96 beyond
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def t975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


def add_arguments(p) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="results folders of jaxrl train")
    p.add_argument("-o", "--output", default="curves.png", help="image file to write (default curves.png)")
    p.add_argument("--metric", default="episode_return", help="column of metrics.csv (default episode_return)")
    p.add_argument("--wall-clock", action="store_true", help="x axis in wall-clock seconds instead of env steps")
    p.add_argument("--title", help="figure title")
    p.add_argument("--aggregate", choices=("mean", "iqm"), default="mean",
                   help="mean with a t-interval (default), or IQM with a 95%% stratified-bootstrap band (rliable)")


def _read_run(run_dir: str, metric: str, x_col: str):
    """-> {sweep label: {x: [values over seeds]}} of one results folder."""
    p = Path(run_dir)
    if not (p / "metrics.csv").is_file():
        raise ConfigError("runs", f"{run_dir} is not a jaxrl results folder (no metrics.csv)")
    sweep_keys = []
    try:
        cfg = json.loads((p / "config.json").read_text())
        sweep_keys = list(cfg.get("sweep") or {})
    except (OSError, ValueError, AttributeError):
        pass  # a folder without config.json still plots, one line per folder
    with open(p / "metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        # a sweep point's value is in its ``sweep.<field>`` column (the column ``<field>`` may be a logged
        # metric of the same name, e.g. the annealed ``lr``); folders written before that use ``<field>``
        point_cols = [SWEEP_PREFIX + k if SWEEP_PREFIX + k in cols else k for k in sweep_keys]
        if metric not in cols:
            names = ", ".join(c for c in cols if c not in ("seed", "update", "env_steps", "wall_time", *point_cols))
            raise ConfigError("metric", f"{run_dir}/metrics.csv has no column {metric!r}; it has {names}")
        groups: dict[str, dict[float, list[float]]] = {}
        for row in reader:
            label = ", ".join(f"{k}={row.get(c, '')}" for k, c in zip(sweep_keys, point_cols))
            try:
                y, x = float(row[metric]), float(row[x_col])
            except (TypeError, ValueError):
                continue  # empty cell: no finished episode / no evaluation at this point
            if math.isfinite(y):
                groups.setdefault(label, {}).setdefault(x, []).append(y)
    return groups


def _iqm_series(series: dict):
    """-> (x, iqm, lo, hi) at the points where every seed has a value (IQM over seeds, bootstrap CI)."""
    import numpy as np

    from jaxrl import aggregate

    n = max(len(v) for v in series.values())
    xs = np.asarray(sorted(x for x, v in series.items() if len(v) == n))
    scores = np.asarray([series[x] for x in xs], np.float64).T[:, None, :]  # [seeds, 1 task, points]
    if n == 1:
        m = scores[0, 0]
        return xs, m, m, m
    return (xs, *aggregate.iqm_with_ci(scores))


def plot_runs(run_dirs, metric: str = "episode_return", wall_clock: bool = False, title: str | None = None,
              aggregate: str = "mean"):
    """Build the figure; returns it (one ``Line2D`` per run or sweep value)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x_col = "wall_time" if wall_clock else "env_steps"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = [Path(r).resolve().name for r in run_dirs]
    for run_dir, name in zip(run_dirs, names):
        groups = _read_run(run_dir, metric, x_col)
        if not groups:
            raise ConfigError("runs", f"{run_dir}/metrics.csv has no finite {metric} values to plot")
        for label, series in groups.items():
            if aggregate == "iqm":
                xs, mean, lo, hi = _iqm_series(series)
            else:
                xs = np.asarray(sorted(series))
                ys = [np.asarray(series[x]) for x in xs]
                mean = np.asarray([y.mean() for y in ys])
                half = np.asarray([t975(len(y) - 1) * y.std(ddof=1) / math.sqrt(len(y)) if len(y) > 1 else 0.0
                                   for y in ys])
                lo, hi = mean - half, mean + half
            text = name if not label else (f"{name}: {label}" if len(run_dirs) > 1 else label)
            (line,) = ax.plot(xs, mean, label=text)
            if (hi > lo).any():
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("wall-clock seconds" if wall_clock else "env steps (per seed)")
    ax.set_ylabel(metric.replace("_", " "))
    how = "IQM and 95% bootstrap CI" if aggregate == "iqm" else "mean and 95% CI"
    ax.set_title(title or f"{metric.replace('_', ' ')}: {how} over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def run(args) -> int:
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".pdf", ".svg", ".jpg", ".jpeg"):
        raise ConfigError("output", f"{args.output}: use a .png, .pdf, .svg or .jpg file name")
    if not out.parent.is_dir():
        raise ConfigError("output", f"folder {out.parent} does not exist")
    fig = plot_runs(args.runs, args.metric, args.wall_clock, args.title, args.aggregate)
    fig.savefig(out, dpi=120)
    print(f"wrote {out} ({len(fig.axes[0].get_lines())} lines)")
    return 0
