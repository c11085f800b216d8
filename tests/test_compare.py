"""IQM, bootstrap CIs and probability of improvement (rliable): ``jaxrl compare`` and ``jaxrl plot --aggregate iqm``."""
import csv
import json

import numpy as np
import pytest
from scipy.stats import trim_mean

from jaxrl import aggregate, cli
from jaxrl.commands.compare import compare
from jaxrl.commands.plot import plot_runs

pytest.importorskip("rliable", reason="optional dependency: pip install 'jaxrl[stats]'")


def test_iqm_matches_trim_mean_and_a_hand_computation():
    x = np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0], [100.0]])  # 8 runs, 1 task
    assert aggregate.iqm(x) == pytest.approx(4.5)  # middle half: 3, 4, 5, 6
    y = np.random.default_rng(0).normal(size=(7, 3))
    assert aggregate.iqm(y) == pytest.approx(trim_mean(y.ravel(), 0.25))
    curves = np.random.default_rng(1).normal(size=(5, 2, 4))  # [runs, tasks, points]
    np.testing.assert_allclose(aggregate.iqm(curves), [trim_mean(curves[..., t].ravel(), 0.25) for t in range(4)])


def test_iqm_ci_brackets_the_point_and_shrinks_with_more_runs():
    rng = np.random.default_rng(2)
    few, many = rng.normal(10, 2, size=(4, 1)), rng.normal(10, 2, size=(64, 1))
    m, lo, hi = aggregate.iqm_with_ci(few, reps=200)
    assert m == pytest.approx(trim_mean(few.ravel(), 0.25)) and few.min() <= lo <= m <= hi <= few.max()
    m2, lo2, hi2 = aggregate.iqm_with_ci(many, reps=200)
    assert hi2 - lo2 < hi - lo and lo2 < 10 < hi2
    assert aggregate.iqm_with_ci(few, reps=200, seed=3) == aggregate.iqm_with_ci(few, reps=200, seed=3)


def test_probability_of_improvement_counts_pairs():
    x, y = np.array([[3.0], [5.0]]), np.array([[1.0], [4.0], [5.0]])
    # pairs (x > y) + ties / 2 over 2 * 3 pairs: 3 > 1; 5 > 1, 5 > 4, 5 = 5 (1/2) -> 3.5 / 6
    p, lo, hi = aggregate.probability_of_improvement(x, y, reps=300)
    assert p == pytest.approx(3.5 / 6) and 0 <= lo <= p <= hi <= 1
    assert aggregate.probability_of_improvement(y + 100, y, reps=50)[0] == 1.0


def _run(path, eval_returns, final=None, points=1, curve=None):
    path.mkdir()
    summary = {"algo": "dqn", "num_seeds": len(final or eval_returns), "final_return": final or eval_returns,
               "points": [{} for _ in range(points)]}
    if eval_returns is not None:
        summary["eval_return"] = eval_returns
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "config.json").write_text(json.dumps({"algo": "dqn", "sweep": {}}))
    with open(path / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["seed", "update", "env_steps", "wall_time", "episode_return"])
        w.writeheader()
        for i, seeds in enumerate(curve or []):
            for s, r in enumerate(seeds):
                w.writerow(dict(seed=s, update=i + 1, env_steps=100 * (i + 1), wall_time=i, episode_return=r))
    return str(path)


def test_compare_prints_iqm_ci_and_probability(tmp_path, capsys):
    a = _run(tmp_path / "a", [10.0, 20.0, 30.0, 40.0])
    b = _run(tmp_path / "b", [1.0, 2.0, 3.0, 400.0])
    res = compare(a, b, reps=200)
    assert res["score"] == "eval_return"
    assert res["a"]["iqm"] == pytest.approx(25.0) and res["b"]["iqm"] == pytest.approx(2.5)  # 400 is trimmed
    assert res["p_improvement"]["p"] == pytest.approx(12 / 16)  # each of 10..40 beats 1, 2, 3, not 400
    assert cli.main(["compare", a, b, "--reps", "200"]) == 0
    out = capsys.readouterr().out
    assert "IQM 25.00" in out and "IQM 2.50" in out and "P(A > B) = 0.750" in out
    # two games per side: scores [seeds, games]
    a2, b2 = _run(tmp_path / "a2", [0.0, 1.0, 2.0, 3.0]), _run(tmp_path / "b2", [5.0, 6.0, 7.0, 8.0])
    two = compare(f"{a},{a2}", f"{b},{b2}", reps=200)
    assert two["a"]["games"] == 2 and two["p_improvement"]["p"] == pytest.approx((12 / 16 + 0.0) / 2)
    assert two["a"]["iqm"] == pytest.approx(trim_mean([10, 20, 30, 40, 0, 1, 2, 3], 0.25))


@pytest.mark.parametrize("make, msg", [
    (lambda t: [str(t / "missing"), _run(t / "b", [1.0, 2.0])], "no summary.json"),
    (lambda t: [_run(t / "a", [1.0, None]), _run(t / "b", [1.0, 2.0])], "no finished episode"),
    (lambda t: [_run(t / "a", [1.0, 2.0], points=2), _run(t / "b", [1.0, 2.0])], "is a sweep"),
    (lambda t: [_run(t / "a", [1.0]) + "," + _run(t / "c", [2.0]), _run(t / "b", [1.0])], "same games"),
    (lambda t: [_run(t / "a", None, final=[1.0, 2.0]), _run(t / "b", [1.0]), "--score", "eval_return"],
     "has no eval_return"),
])
def test_compare_bad_input_is_one_line_exit_2(tmp_path, capsys, make, msg):
    assert cli.main(["compare", *make(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxrl: error:") and msg in err[0], err


def test_plot_aggregate_iqm_draws_iqm_with_bootstrap_band(tmp_path):
    curve = [[1.0, 2.0, 3.0, 100.0], [4.0, 4.0, 4.0, 4.0], [0.0, 10.0, 20.0, 30.0]]
    a = _run(tmp_path / "a", [1.0], curve=curve)
    ax = plot_runs([a], aggregate="iqm").axes[0]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [2.5, 4.0, 15.0])  # trimmed means of 4 seeds
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() >= 0.0 and band.max() <= 100.0 and band.max() > 15.0
    assert "IQM" in ax.get_title()
