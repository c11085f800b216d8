"""The benchmark scripts still run against the current code (tiny sizes, results redirected to a temporary folder).

scaling.py imported a helper that the driver split had removed, and nothing ran it until an accelerator run
found it broken; these smoke runs catch that kind of drift. They check that rows come back measured, not speed.
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def script_env(**extra):
    """The environment a benchmark script runs in: CPU, and this checkout first on the import path."""
    return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                **extra)


def run_script(name, args, tmp_path):
    env = script_env(JAXRL_BENCH_RESULTS=str(tmp_path))
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def test_scaling_measures_every_point(tmp_path):
    run_script("scaling.py", ["--algos", "ppo", "dqn", "--envs", "gymnax:CartPole-v1", "--num-envs", "4",
                              "--num-seeds", "2", "--min-seconds", "0.05", "--name", "s"], tmp_path)
    rows = json.loads((tmp_path / "s.json").read_text())["rows"]
    assert {(r["algo"], r["sweep"]) for r in rows} == {(a, s) for a in ("ppo", "dqn") for s in ("num_envs", "num_seeds")}
    for r in rows:
        assert "note" not in r, r
        assert r["steps_per_s"] > 0 and r["env_steps"] > 0
    assert (tmp_path / "s.png").stat().st_size > 0


def test_alphazero_throughput_rows_name_their_batch(tmp_path):
    out = run_script("alphazero_throughput.py", ["--sims", "2", "--games", "4", "--updates", "1", "--repeats", "1",
                                                 "--search", "gumbel"], tmp_path)
    rows = json.loads((tmp_path / "alphazero_throughput.json").read_text())["rows"]
    assert [(r["what"], r["games"], r["sims"]) for r in rows] == [("update", 4, 2), ("search_only", 4, 2)]
    assert all(r["moves_per_s"] > 0 for r in rows)
    assert rows[1]["net_ms"] > 0 and rows[1]["net_share"] > 0  # the network's part of the search time
    assert out.count('"what"') == 2  # each row printed as it is measured


def test_accelerator_script_parses():
    p = subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "accelerator.sh")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_")))
def test_benchmark_script_help(script):
    """Every script parses its arguments (and so imports what it needs at the top) without running."""
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--help"], env=script_env(), cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "usage" in p.stdout.lower()


def test_sac_products_lists_every_product_of_a_gradient_step():
    """The list is SAC's step: 16 of the 64x64 products per gradient step (target actor 1, target twin 2, twin 2,
    twin backward 4, actor 1, twin at pi 2, twin input gradients 2, actor backward 2), and its FLOPs are the
    hand count of the 64-64 Pendulum networks (actor 3-64-64-(1+1), critics 4-64-64-1)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from sac_products import products
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    grad = [p for p in products(3, 1, 64, 256) if p[-1] == "grad"]
    assert sum((2 if twin else 1) for _, _, _, i, o, twin, _ in grad if (i, o) == (64, 64)) == 16
    actor_macs, critic_macs = 3 * 64 + 64 * 64 + 2 * 64, 4 * 64 + 64 * 64 + 64
    # actor: forward x2, weight gradients, input gradients of all but the first layer
    actor = 256 * (2 * actor_macs + actor_macs + (actor_macs - 3 * 64))
    # twin critics: forward x3, weight gradients, input gradients (all but the first layer, then all layers)
    critic = 2 * 256 * (3 * critic_macs + critic_macs + (critic_macs - 4 * 64) + critic_macs)
    assert sum(2 * B * i * o * (2 if twin else 1) for _, _, B, i, o, twin, _ in grad) == 2 * (actor + critic)


def test_sac_products_times_each_product(tmp_path):
    out = run_script("sac_products.py", ["--no-jaxrl", "--hidden", "8", "--batch", "16", "--iters", "20",
                                         "--repeats", "1", "--name", "p"], tmp_path)
    payload = json.loads((tmp_path / "p.json").read_text())
    assert len(payload["rows"]) == 36
    assert payload["meta"]["products_us_per_env_step"] == pytest.approx(sum(r["us_per_env_step"] for r in payload["rows"]))
    assert payload["meta"]["products_us_per_env_step"] > 0
    assert "products_us_per_env_step" in out


def test_sac_products_rejects_rejax_on_another_configuration(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sac_products.py"), "--peer-python", sys.executable,
                        "--hidden", "8"], env=script_env(JAXRL_BENCH_RESULTS=str(tmp_path)), cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "--peer-python measures rejax on the issue's configuration only" in p.stderr
    assert not list(tmp_path.iterdir())
