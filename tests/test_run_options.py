"""What the issue "One core" asked of the driver and the CLI, pinned down: integer flags in every
form, a sweep's ``metrics.csv`` and plot, progress early in a huge run that ``--max-minutes`` stops,
every algorithm trained on ``total_steps`` and evaluated, the agent contract checked at registration,
and the persistent compilation cache (on, redirected, off).

The plain bad-input lines (repeated ``--sweep``, degenerate settings, ``--out`` under a file ...)
are in ``test_bad_input.py``.
"""
import csv
import dataclasses
import json
import math
import re
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest

from _small_runs import ENV, SMALL_FLAGS, assert_one_line_error, cli_env, read_rows
from jaxrl import agents, cli, envs
from jaxrl.cli import UsageError
from jaxrl.commands.train import parse
from jaxrl.config import ConfigError, coerce
from jaxrl.core.agent import ContractError, check_module
from jaxrl.driver import RunSpec, train_run


# ------------------------------------------------------------------ 4. integer flags, every form
INT_FORMS = ["1000", "1e3", "1E3", "1_000", "1000.0", " 1000 ", "+1000"]


@pytest.mark.parametrize("form", INT_FORMS)
def test_integer_run_options_and_config_fields_accept_the_same_forms(form):
    """A run option (``--seed``, ``--log-every`` ...) and a config field (``--total-steps``) read the
    same spellings as :func:`jaxrl.config.coerce` does."""
    assert coerce(int, form, "x") == 1000
    spec, _, _ = parse(["ppo", "--num-envs", "4", "--num-steps", "64", "--seed", form, "--total-steps", form,
                        "--log-every", form, "--eval-every", form, "--checkpoint-every", form])
    assert (spec.seed, spec.config.total_steps, spec.log_every, spec.eval_every, spec.checkpoint_every) == \
        (1000,) * 5
    assert all(type(v) is int for v in (spec.seed, spec.config.total_steps, spec.log_every, spec.eval_every))


def test_integer_flags_parse_to_the_same_run_as_plain_integers():
    forms = parse(["ppo", "--seed", "1e3", "--num-seeds", "2.0", "--total-steps", "1e4", "--log-every", "1_000",
                   "--eval-episodes", "3.0", "--num-envs", "4.0", "--num-steps", "64", "--out", "x"])[0]
    plain = parse(["ppo", "--seed", "1000", "--num-seeds", "2", "--total-steps", "10000", "--log-every", "1000",
                   "--eval-episodes", "3", "--num-envs", "4", "--num-steps", "64", "--out", "x"])[0]
    assert (forms.seed, forms.num_seeds, forms.config.total_steps, forms.log_every, forms.eval_episodes) == \
        (1000, 2, 10_000, 1000, 3)
    assert forms.to_json() == plain.to_json()
    assert json.dumps(forms.to_json()) == json.dumps(plain.to_json())  # ints, not floats, in config.json


@pytest.mark.parametrize("flag", ["--seed", "--num-seeds", "--log-every", "--eval-episodes", "--total-steps",
                                  "--num-envs"])
@pytest.mark.parametrize("bad", ["1.5", "1e-3", "abc", "1e400"])
def test_a_non_integer_is_refused_by_every_integer_flag(flag, bad):
    with pytest.raises((UsageError, ConfigError)) as e:
        parse(["ppo", flag, bad])
    msg = str(e.value)
    assert "\n" not in msg and (flag in msg or flag[2:].replace("-", "_") in msg), msg


def test_a_bad_integer_run_option_is_reported_like_a_bad_config_field(capsys):
    """``--seed 1.5`` and ``--total-steps 1.5`` are the same mistake; the message should say so alike
    (``seed: expected an integer, got '1.5'``), not ``invalid parse value``."""
    rc = cli.main(["train", "ppo", "--total-steps", "1.5"])
    assert_one_line_error(rc, capsys.readouterr().err, "total_steps: expected an integer, got '1.5'")
    rc = cli.main(["train", "ppo", "--seed", "1.5"])
    assert_one_line_error(rc, capsys.readouterr().err, "seed: expected an integer, got '1.5'")


def test_eval_integer_flags_accept_the_same_forms():
    args = cli.build_parser().parse_args(["eval", "RUN", "--episodes", "1e1", "--seed", "1_000", "--max-steps",
                                          "20.0"])
    assert (args.episodes, args.seed, args.max_steps) == (10, 1000, 20)
    with pytest.raises(UsageError, match="episodes: expected an integer, got '1.5'"):
        cli.build_parser().parse_args(["eval", "RUN", "--episodes", "1.5"])


# ------------------------------------------------------------------ 5. a sweep's metrics.csv and plot
SWEEP_LR = [1e-2, 2.5e-4]


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    """``--sweep lr=1e-2,2.5e-4`` with the default ``--anneal-lr``, 2 seeds (the CLI's parse, in-process)."""
    out = tmp_path_factory.mktemp("sweep") / "run"
    flags = [f for f in SMALL_FLAGS if f != "--no-anneal-lr"]
    spec, _, _ = parse(["ppo", "--env", ENV, *flags, "--num-seeds", "2", "--sweep", "lr=1e-2,2.5e-4",
                        "--eval-every", "0", "--out", str(out)])
    assert spec.config.anneal_lr is True and spec.sweep == {"lr": SWEEP_LR}
    return out, train_run(spec, progress=False)


def test_sweep_metrics_csv_has_unique_columns_and_the_point_value(sweep_run):
    out, _ = sweep_run
    with open(out / "metrics.csv", newline="") as f:
        header = next(csv.reader(f))
    assert len(header) == len(set(header)), [h for h in header if header.count(h) > 1]
    assert "sweep.lr" in header and "lr" in header
    rows = read_rows(out / "metrics.csv")
    updates = sorted({int(r["update"]) for r in rows})
    assert updates == list(range(1, 17))
    for u in updates:
        at = [r for r in rows if int(r["update"]) == u]
        assert [float(r["sweep.lr"]) for r in at] == [1e-2, 1e-2, 2.5e-4, 2.5e-4]  # points x seeds
        assert [int(r["seed"]) for r in at] == [0, 1, 0, 1]


def test_sweep_logged_lr_is_the_annealed_rate(sweep_run):
    out, _ = sweep_run
    rows = read_rows(out / "metrics.csv")
    for value in SWEEP_LR:
        for seed in (0, 1):
            mine = sorted((int(r["update"]), float(r["lr"])) for r in rows
                          if float(r["sweep.lr"]) == value and int(r["seed"]) == seed)
            lrs = np.asarray([lr for _, lr in mine])
            assert (lrs <= value * (1 + 1e-6)).all()
            assert (np.diff(lrs) < 0).all()  # annealed: strictly decreasing
            assert not np.isclose(lrs[1:], value, rtol=1e-3).any()  # differs from the point after the first row
            assert lrs[-1] < 0.2 * value


def test_sweep_small_logged_values_keep_their_significant_digits(sweep_run):
    """The annealing schedule is the same fraction of each point's rate, so ``lr / sweep.lr`` must agree
    between ``lr=1e-2`` and ``lr=2.5e-4``: ``metrics.csv`` must keep significant digits of small values
    (a rate of 2.34375e-4 written as 0.000234 is off by 0.2%; 1e-7 would be written as 0)."""
    out, _ = sweep_run
    rows = read_rows(out / "metrics.csv")
    frac = {v: [float(r["lr"]) / v for r in rows if float(r["sweep.lr"]) == v and r["seed"] == "0"]
            for v in SWEEP_LR}
    np.testing.assert_allclose(frac[SWEEP_LR[0]], frac[SWEEP_LR[1]], rtol=1e-5)


def test_plot_of_a_sweep_draws_one_line_per_sweep_value(sweep_run, tmp_path, capsys):
    from jaxrl.commands.plot import plot_runs

    out, _ = sweep_run
    ax = plot_runs([str(out)]).axes[0]
    assert [ln.get_label() for ln in ax.get_lines()] == ["lr=0.01", "lr=0.00025"]
    ax = plot_runs([str(out)], metric="lr").axes[0]  # the annealed column is still a metric to plot
    assert len(ax.get_lines()) == 2
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata()[0] / ax.get_lines()[1].get_ydata()[0], 40.0,
                               rtol=1e-4)
    png = tmp_path / "c.png"
    assert cli.main(["plot", str(out), "-o", str(png)]) == 0
    assert "(2 lines)" in capsys.readouterr().out and png.stat().st_size > 0


# ------------------------------------------------------------------ 6. progress early in a huge run
class StderrLines:
    """Reads a subprocess's stderr line by line on a thread, stamping each line on arrival."""

    def __init__(self, proc):
        self.lines = []
        self.thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in iter(stream.readline, ""):
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def first(self, pred):
        return next(((t, s) for t, s in self.lines if pred(s)), (None, None))


def _run_with_stamps(args, timeout=180):
    p = subprocess.Popen([sys.executable, "-m", "jaxrl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=cli_env())
    reader = StderrLines(p)
    try:
        p.wait(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
    end = time.monotonic()
    reader.thread.join(timeout=10)
    return p, reader, end, p.stdout.read()


def test_progress_appears_early_and_max_minutes_stops_a_huge_run(tmp_path):
    out = tmp_path / "huge"
    flags = [a if a != "4096" else "1e10" for a in SMALL_FLAGS]  # the programs of test_resume: cached
    p, err, end, stdout = _run_with_stamps(["train", "ppo", "--env", ENV, *flags, "--num-seeds", "2",
                                            "--eval-episodes", "4", "--max-minutes", "0.05", "--out", str(out)])
    text = "\n".join(s for _, s in err.lines)
    assert p.returncode == 0, text
    t_compiled, _ = err.first(lambda s: s.startswith("jaxrl: compiled in"))
    t_progress, line = err.first(lambda s: "steps/s" in s and "| eta" in s)
    assert t_compiled is not None and t_progress is not None, text
    assert t_progress - t_compiled < 3.0, (t_progress - t_compiled, text)  # not after a 1% logging point
    assert "eta" in line and "n/a" not in line.split("| eta")[1], line
    assert "/20,000,000,000 steps" in line  # 2 seeds x 1e10
    assert end - t_compiled < 3 + 60, end - t_compiled  # stopped by the budget (3 s), not by 1e10 steps
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] is False and summary["stopped_by"] == "max_minutes"
    assert 0 < summary["updates"] < summary["num_updates"]
    assert len(summary["eval_return"]) == 2 and all(math.isfinite(x) for x in summary["eval_return"])
    assert f"continue with: jaxrl train --resume {out}" in stdout

    p2, err2, _, _ = _run_with_stamps(["train", "--resume", str(out), "--max-minutes", "0.02", "--quiet"])
    assert p2.returncode == 0, "\n".join(s for _, s in err2.lines)
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["resumed_from_update"] == summary["updates"]
    assert resumed["updates"] > summary["updates"]
    assert resumed["stopped_by"] == "max_minutes" and resumed["finished"] is False
    assert json.loads((out / "config.json").read_text())["config"]["total_steps"] == 10**10


# ------------------------------------------------------------------ 7. every algorithm: total_steps, eval
# tiny settings per algorithm: a few updates, small networks (tabular ones on their DEFAULT_ENV)
TINY = {
    "seq2seq": dict(total_steps=16, num_envs=4, hidden=8, embed_dim=4),
    "ppo": dict(total_steps=128, num_envs=2, num_steps=32, num_epochs=1, num_minibatches=1, hidden=8, layers=1),
    "a2c": dict(total_steps=64, num_envs=2, num_steps=8, hidden=8, layers=1),
    "i2a": dict(total_steps=16, num_envs=2, num_steps=4, env_model="random", rollout_steps=1, hidden=8, channels=2,
                encoder_hidden=4, rollout_hidden=4, model_channels=2),
    "trpo": dict(total_steps=128, num_envs=2, num_steps=32, vf_epochs=1, vf_minibatches=1, cg_iters=2, hidden=8,
                 layers=1),
    "acktr": dict(total_steps=64, num_envs=2, num_steps=8, inverse_every=2, hidden=8, layers=1),
    "dqn": dict(total_steps=64, num_envs=2, buffer_size=64, batch_size=8, learning_starts=8,
                target_update_every=8, eps_decay_steps=32, hidden=8, layers=1),
    "pqn": dict(total_steps=64, num_envs=2, num_steps=8, num_epochs=1, num_minibatches=2, hidden=8, layers=1),
    "ddpg": dict(total_steps=64, buffer_size=64, batch_size=8, learning_starts=4, hidden=8, layers=1),
    "td3": dict(total_steps=64, buffer_size=64, batch_size=8, learning_starts=4, hidden=8, layers=1),
    "sac": dict(total_steps=64, buffer_size=64, batch_size=8, learning_starts=4, hidden=8, layers=1),
    "d4pg": dict(total_steps=64, buffer_size=64, batch_size=8, learning_starts=4, hidden=8, layers=1, num_atoms=5),
    "reinforce": dict(total_steps=80, num_envs=2, max_steps=20, hidden=8),
    "cem": dict(total_steps=80, num_envs=2, max_steps=20, hidden=8),
    "es": dict(total_steps=120, population=2, max_steps=20, hidden=8),
    "ga": dict(total_steps=80, population=2, parents=1, max_steps=20, hidden=8),
    "q_learning": dict(total_steps=4, test_episodes=2, max_steps=20),
    "value_iteration": dict(total_steps=8, random_steps=4, test_episodes=2, max_steps=20),
    "alphazero": dict(total_steps=16, num_envs=2, moves_per_update=2, num_simulations=2, channels=4, blocks=0,
                      buffer_size=16, batch_size=4, sgd_steps=1, arena_every=4, arena_games=2, eval_games=2,
                      baseline_factor=1),
}
ITERATION_ALGOS = ["reinforce", "cem", "es", "ga", "q_learning", "value_iteration"]


def _algorithms():
    """Every registered algorithm except presets (``rainbow``: DQN with other defaults)."""
    return sorted(name for name, (_, preset) in agents.algorithms().items() if not preset)


def test_every_algorithm_has_a_tiny_config_here():
    assert sorted(TINY) == _algorithms()


def _make(algo, values, num_seeds=2):
    module, _ = agents.get(algo)
    cfg = module.Config.from_dict(values)
    env_id = getattr(module, "DEFAULT_ENV", "gymnax:CartPole-v1")
    env = envs.make(env_id, num_envs=getattr(cfg, "num_envs", 1), num_seeds=num_seeds)
    return module, cfg, env_id, module.make_agent(cfg, env)


@pytest.mark.parametrize("algo", sorted(TINY))
def test_total_steps_sets_the_number_of_updates(algo):
    """Every algorithm takes ``total_steps``; its updates are ``total_steps // steps_per_update``."""
    _, _, _, agent = _make(algo, TINY[algo])
    spu = agent.steps_per_update
    _, cfg, _, agent = _make(algo, dict(TINY[algo], total_steps=7 * spu + spu - 1))  # a partial update: dropped
    assert agent.num_updates == 7
    if algo in ITERATION_ALGOS:  # given only total_steps, not the default number of iterations
        assert cfg.iterations == 0 and type(cfg).default_iterations != 7
        _, _, _, by_iterations = _make(algo, {k: v for k, v in TINY[algo].items() if k != "total_steps"}
                                       | {"iterations": 5})
        assert by_iterations.num_updates == 5


@pytest.mark.parametrize("algo", sorted(TINY))
def test_every_algorithm_trains_on_total_steps_and_can_be_evaluated(algo, tmp_path):
    from jaxrl.commands.eval import evaluate_run

    _, cfg, env_id, agent = _make(algo, TINY[algo])
    out = tmp_path / algo
    summary = train_run(RunSpec(algo, env_id, cfg, num_seeds=2, out=str(out), eval_episodes=2), progress=False)
    assert summary["finished"] is True
    assert summary["updates"] == summary["num_updates"] == cfg.total_steps // agent.steps_per_update >= 1
    assert summary["env_steps_per_seed"] <= cfg.total_steps
    ev = summary["eval_return"]
    assert len(ev) == 2 and all(x is not None and math.isfinite(x) for x in ev), ev
    _, meta, returns = evaluate_run(str(out), episodes=2)
    assert returns.shape == (2, 2) and np.isfinite(returns).all()
    assert meta["update"] == summary["updates"]


# ------------------------------------------------------------------ 8. the agent contract at registration
def _ok_config():
    from jaxrl.config import Config, field

    @dataclasses.dataclass(frozen=True)
    class Good(Config):
        total_steps: int = field(1000, low=1)
        lr: float = field(0.1, traced=True, low=0.0, low_open=True)

    return Good


def _bad_modules():
    from jaxrl.config import Config, field

    @dataclasses.dataclass
    class NotFrozen:
        total_steps: int = 1000

    @dataclasses.dataclass(frozen=True)
    class NoBudget(Config):
        lr: float = field(0.1, traced=True, low=0.0, low_open=True)

    def make_agent(config, env):
        raise AssertionError("never called: the module is refused first")

    return {
        "no_make_agent": (dict(Config=_ok_config()), "has no make_agent"),
        "not_frozen": (dict(Config=NotFrozen, make_agent=make_agent), "frozen"),
        "no_total_steps": (dict(Config=NoBudget, make_agent=make_agent), "needs a total_steps field"),
        "bad_preset": (dict(Config=_ok_config(), make_agent=make_agent, PRESETS={"fast": {"lrr": 1.0}}),
                       "preset 'fast' sets unknown field 'lrr'"),
    }


@pytest.mark.parametrize("case", sorted(_bad_modules()))
def test_register_refuses_a_module_that_breaks_the_contract(case):
    attrs, expect = _bad_modules()[case]
    module = types.ModuleType(f"user_{case}")
    module.__dict__.update(attrs)
    try:
        with pytest.raises(ContractError) as e:
            agents.register(f"user_{case}", module)
    finally:
        agents._registered.pop(f"user_{case}", None)
    assert expect in str(e.value) and "\n" not in str(e.value)
    assert f"user_{case}" not in agents.algorithms()


BAD_FILES = {
    "no_make_agent": ("""
import dataclasses
from jaxrl.config import Config, field

@dataclasses.dataclass(frozen=True)
class Config(Config):
    total_steps: int = field(1000, low=1)
""", "has no make_agent"),
    "not_frozen": ("""
import dataclasses

@dataclasses.dataclass
class Config:
    total_steps: int = 1000

def make_agent(config, env):
    raise AssertionError
""", "frozen"),
    "no_total_steps": ("""
import dataclasses
from jaxrl.config import Config, field

@dataclasses.dataclass(frozen=True)
class Config(Config):
    lr: float = field(0.1, traced=True, low=0.0, low_open=True)

def make_agent(config, env):
    raise AssertionError
""", "needs a total_steps field"),
    "bad_preset": ("""
import dataclasses
from jaxrl.config import Config, field

@dataclasses.dataclass(frozen=True)
class Config(Config):
    total_steps: int = field(1000, low=1)

PRESETS = {"fast": {"lrr": 1.0}}

def make_agent(config, env):
    raise AssertionError
""", "preset 'fast' sets unknown field 'lrr'"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_train_refuses_an_algorithm_file_that_breaks_the_contract(tmp_path, capsys, case):
    source, expect = BAD_FILES[case]
    path = tmp_path / f"bad_{case}.py"
    path.write_text(source)
    out = tmp_path / "out"
    try:
        rc = cli.main(["train", str(path), "--out", str(out), "--quiet"])
    finally:
        agents._registered.pop(f"bad_{case}", None)
    err = capsys.readouterr().err
    assert_one_line_error(rc, err, "algorithm: ")
    assert expect in err
    assert not out.exists()


def test_builtin_algorithms_follow_the_contract():
    mods = agents.modules()
    assert set(_algorithms()) <= set(mods)
    for name, module in mods.items():
        check_module(name, module)
        assert module.Config.__dataclass_params__.frozen and "total_steps" in module.Config.field_specs()


# ------------------------------------------------------------------ 9. the persistent compilation cache
CACHE_FLAGS = ["--env", ENV, "--total-steps", "64", "--num-envs", "2", "--num-steps", "32", "--num-epochs", "1",
               "--num-minibatches", "1", "--hidden", "8", "--layers", "1", "--no-anneal-lr", "--eval-every", "0"]


def _clean_env(**extra):
    """The CLI's environment without the test suite's shared cache (JAX_COMPILATION_CACHE_DIR)."""
    env = {k: v for k, v in cli_env().items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env.pop("JAXRL_COMPILE_CACHE", None)
    env.update(JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", **extra)
    return env


def _train(out, env, *extra):
    p = subprocess.run([sys.executable, "-m", "jaxrl", "train", "ppo", *CACHE_FLAGS, *extra, "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=240)
    assert p.returncode == 0, p.stderr
    return p, json.loads((out / "summary.json").read_text())


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_compile_cache_serves_the_second_identical_run(tmp_path):
    cache = tmp_path / "xla"
    env = _clean_env(JAXRL_COMPILE_CACHE=str(cache), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    p1, s1 = _train(tmp_path / "first", env)
    assert _files(cache), "the first run wrote nothing to JAXRL_COMPILE_CACHE"
    assert s1["compile_cache"] == "" and "compilation cache" not in p1.stderr
    p2, s2 = _train(tmp_path / "second", env)
    note = s2["compile_cache"]
    assert note == "served from the compilation cache" or "programs from the compilation cache" in note, note
    assert f"compiled in {s2['compile_seconds']:.1f} s, {note}" in p2.stderr
    assert note in p2.stdout  # the summary table says it too
    assert s2["compile_seconds"] < s1["compile_seconds"], (s1["compile_seconds"], s2["compile_seconds"])
    assert _files(tmp_path / "xdg" / "jaxrl") == []  # the default folder is not touched when one is given


@pytest.mark.parametrize("how", ["env", "flag"])
def test_compile_cache_off_writes_nothing_and_says_nothing(tmp_path, how):
    """``JAXRL_COMPILE_CACHE=off`` (default folder untouched) or ``--compile-cache off`` (the folder of
    JAXRL_COMPILE_CACHE untouched): no cache files, no word about a cache."""
    cache = tmp_path / "xla"
    cache.mkdir()
    if how == "env":
        env, extra = _clean_env(JAXRL_COMPILE_CACHE="off", XDG_CACHE_HOME=str(tmp_path / "xdg")), []
    else:
        env, extra = _clean_env(JAXRL_COMPILE_CACHE=str(cache), XDG_CACHE_HOME=str(tmp_path / "xdg")), \
            ["--compile-cache", "off"]
    p, summary = _train(tmp_path / "run", env, *extra)
    assert _files(cache) == [] and _files(tmp_path / "xdg" / "jaxrl") == []  # (xdg/matplotlib: gymnax's import)
    assert summary["compile_cache"] == ""
    assert re.search(r"^jaxrl: compiled in [0-9.]+ s$", p.stderr, re.M), p.stderr  # nothing after the time
    assert "compilation cache" not in p.stderr + p.stdout
    assert re.search(r"^compile seconds: [0-9.]+ +wall seconds", p.stdout, re.M), p.stdout


_ENABLE_AFTER_JAX_RAN = """
import os, sys
import jax, jax.numpy as jnp
jnp.arange(3.0).sum().block_until_ready()  # JAX computes before the driver decides (gymnax's import does)
from jaxrl.driver import cache
cache.enable(sys.argv[1])
x = jax.ShapeDtypeStruct((7,), jnp.float32)
with cache.CacheHits() as hits:
    jax.jit(lambda x: jnp.sin(x) * 3.0 + 1.0).lower(x).compile()
print(hits.requests, hits.hits)
"""


@pytest.mark.parametrize("choice", ["off", "redirect"])
def test_compile_cache_choice_wins_over_jax_compilation_cache_dir(tmp_path, choice):
    """The documented precedence: ``--compile-cache``/``JAXRL_COMPILE_CACHE`` over a folder given to JAX
    itself, even when JAX already computed something before the choice was applied (``jaxrl train``
    parses the env id, which imports gymnax, before :func:`jaxrl.driver.cache.enable`)."""
    jax_dir, mine = tmp_path / "jax_dir", tmp_path / "mine"
    env = _clean_env(JAX_COMPILATION_CACHE_DIR=str(jax_dir), JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    arg = "off" if choice == "off" else str(mine)
    p = subprocess.run([sys.executable, "-c", _ENABLE_AFTER_JAX_RAN, arg], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    requests, _ = map(int, p.stdout.split())
    assert any(f.startswith("jit_iota") for f in _files(jax_dir))  # JAX did use its folder before the choice
    written = [f for f in _files(jax_dir) if f.startswith("jit__lambda")]
    if choice == "off":
        assert requests == 0 and written == [], (requests, _files(jax_dir))
    else:
        assert requests == 1 and written == [] and [f for f in _files(mine) if f.startswith("jit__lambda")], \
            (_files(jax_dir), _files(mine))
