"""``jaxrl plot``: one line per run or sweep value, mean over seeds, 95% t-interval band, PNG output."""
import csv
import json

import numpy as np
import pytest

from jaxrl import cli
from jaxrl.commands.plot import plot_runs, t975


def _write_run(path, returns, sweep=None):
    """returns: {sweep value or None: [[per-seed values at point 0], [point 1], ...]}"""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"algo": "ppo", "sweep": {"lr": list(returns)} if sweep else {}}))
    cols = ["seed", *(["lr"] if sweep else []), "update", "env_steps", "wall_time", "episode_return", "loss"]
    with open(path / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for value, points in returns.items():
            for i, seeds in enumerate(points):
                for s, r in enumerate(seeds):
                    row = dict(seed=s, update=i + 1, env_steps=100 * (i + 1), wall_time=0.5 * (i + 1),
                               episode_return="" if r is None else r, loss=1.0)
                    if sweep:
                        row["lr"] = value
                    w.writerow(row)


@pytest.fixture
def runs(tmp_path):
    a = tmp_path / "a"
    _write_run(a, {None: [[1.0, 3.0, 5.0], [2.0, 4.0, None], [10.0, 10.0, 10.0]]})
    b = tmp_path / "b"
    _write_run(b, {0.001: [[0.0, 2.0], [1.0, 1.0]], 0.01: [[5.0, 7.0], [6.0, 8.0]]}, sweep=True)
    return a, b


def test_one_line_per_run_and_sweep_value_with_ci_bands(runs):
    a, b = runs
    fig = plot_runs([str(a), str(b)])
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["a", "b: lr=0.001", "b: lr=0.01"]
    np.testing.assert_allclose(lines[0].get_xdata(), [100, 200, 300])
    np.testing.assert_allclose(lines[0].get_ydata(), [3.0, 3.0, 10.0])  # empty cell skipped at point 1
    np.testing.assert_allclose(lines[2].get_ydata(), [6.0, 7.0])
    assert len(ax.collections) == 3  # one band per line
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    half0 = t975(2) * np.std([1.0, 3.0, 5.0], ddof=1) / np.sqrt(3)  # 3 seeds
    half1 = t975(1) * np.std([2.0, 4.0], ddof=1) / np.sqrt(2)  # 2 seeds with a finished episode
    assert np.isclose(band.min(), 3.0 - half1) and np.isclose(band.max(), 3.0 + half1)
    assert np.isclose(np.sort(np.unique(band.round(6)))[1], round(3.0 - half0, 6))
    assert ax.get_xlabel() == "env steps (per seed)" and ax.get_ylabel() == "episode return"
    assert ax.get_legend() is not None


def test_wall_clock_axis_and_other_metric(runs):
    a, _ = runs
    ax = plot_runs([str(a)], metric="loss", wall_clock=True).axes[0]
    assert ax.get_xlabel() == "wall-clock seconds" and ax.get_ylabel() == "loss"
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [0.5, 1.0, 1.5])


def test_cli_writes_a_png(runs, tmp_path, capsys):
    a, b = runs
    out = tmp_path / "curves.png"
    assert cli.main(["plot", str(a), str(b), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "3 lines" in capsys.readouterr().out


@pytest.mark.parametrize("args, msg", [
    (["plot", "{a}", "--metric", "nope"], "has no column 'nope'"),
    (["plot", "{missing}"], "no metrics.csv"),
    (["plot", "{a}", "-o", "{tmp}/x.txt"], "use a .png"),
])
def test_cli_errors_are_one_line_exit_2(runs, tmp_path, capsys, args, msg):
    a, _ = runs
    args = [x.format(a=a, missing=tmp_path / "missing", tmp=tmp_path) for x in args]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0], err
    assert not (tmp_path / "x.txt").exists()
