"""Bad input: one line on stderr, exit status 2, no traceback, nothing written or overwritten.

A few cases go through a real ``python -m jaxrl`` subprocess (the whole path, traceback check
included); the rest call ``jaxrl.cli.main`` in-process (the same code, minus the interpreter start).
Property-based tests throw random configs and argument lists at validation.
"""
import json
import math
import string

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from _small_runs import assert_one_line_error, jaxrl_cli
from jaxrl import agents, cli
from jaxrl.cli import UsageError
from jaxrl.commands.train import parse
from jaxrl.config import ConfigError


@pytest.mark.parametrize("args, expect", [
    (["train", "ppo", "--lrr", "0.1", "--out", "{tmp}/out"], "unknown option --lrr; did you mean --lr"),
    (["train", "ppoo", "--out", "{tmp}/out"], "unknown algorithm 'ppoo'; did you mean ppo"),
    (["train", "--resume", "{tmp}/missing"], "missing does not exist"),
])
def test_subprocess_one_line_exit_2(tmp_path, args, expect):
    p = jaxrl_cli(*[a.format(tmp=tmp_path) for a in args], cwd=tmp_path)
    assert_one_line_error(p.returncode, p.stderr, expect)
    assert p.stdout == ""
    assert sorted(x.name for x in tmp_path.iterdir()) == []  # nothing written anywhere


SMALL = ["--total-steps", "4096", "--num-envs", "4", "--num-steps", "64"]
TRAIN_CASES = [
    (["--env", "gymnax:CartPol-v1"], "unknown environment 'gymnax:CartPol-v1'; did you mean gymnax:CartPole-v1"),
    (["--gamma", "1.5"], "gamma: must be <= 1.0"),
    (["--num-envs", "0"], "num_envs: must be >= 1"),
    (["--num-steps", "-5"], "num_steps: must be >= 1"),
    (["--lr", "abc"], "lr: expected a number"),
    (["--lr", "nan"], "lr: must be finite"),
    (["--num-seeds", "0"], "num_seeds: must be an integer >= 1"),
    (["--sweep", "num_envs=2,4"], "num_envs is a static field"),
    (["--sweep", "lr=0.1,-1"], "lr: must be > 0.0"),
    (["--sweep", "lrr=0.1"], "unknown field 'lrr'; did you mean lr"),
    (["--log-every", "0"], "log_every: must be an integer >= 1"),
    (["--eval-episodes", "0"], "eval_episodes: must be an integer >= 1"),
    (["--memory-budget", "0.000001"], "memory: the training state needs"),
    (["--num-minibatches", "5"], "is not divisible by num_minibatches"),
    (["--total-steps", "4096", "extra"], "unexpected argument 'extra'"),
    # one flag per field: a repeated --sweep or --env-option is a mistake, not a silent override
    (["--sweep", "lr=1e-3", "--sweep", "lr=3e-4"], "sweep: lr is given twice"),
    (["--sweep", "lr=1e-3,1e-3"], "sweep: lr lists a value twice"),
    (["--sweep", "lr=1e-3,0.001"], "sweep: lr lists a value twice"),  # the same number, spelled twice
    (["--env-option", "a=1", "--env-option", "a=2"], "env_option: a is given twice"),
    (["--seed", "1.5"], "--seed"),
    (["--num-seeds", "2.5"], "--num-seeds"),
]


@pytest.mark.parametrize("flags, expect", TRAIN_CASES, ids=[c[1][:30] for c in TRAIN_CASES])
def test_train_config_mistakes(tmp_path, capsys, flags, expect):
    out = tmp_path / "out"
    rc = cli.main(["train", "ppo", *SMALL, *flags, "--out", str(out), "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, expect)
    assert not out.exists()


def test_c51_on_continuous_actions(tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["train", "dqn", "--env", "gymnax:Pendulum-v1", "--distributional", "--out", str(out)])
    assert_one_line_error(rc, capsys.readouterr().err, "needs a discrete action space")
    assert not out.exists()


CONTINUOUS = ["ddpg", "td3", "sac", "d4pg"]


@pytest.mark.parametrize("algo", CONTINUOUS)
def test_continuous_control_on_a_discrete_env(tmp_path, capsys, algo):
    out = tmp_path / "out"
    rc = cli.main(["train", algo, "--env", "gymnax:CartPole-v1", "--out", str(out), "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, "needs a continuous action space")
    assert not out.exists()


def test_dqn_on_continuous_actions(tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["train", "dqn", "--env", "gymnax:Pendulum-v1", "--out", str(out), "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, "dqn needs a discrete action space")
    assert not out.exists()


@pytest.mark.parametrize("algo, flags, expect", [
    ("sac", ["--tau", "0"], "tau: must be > 0.0"),
    ("td3", ["--tau", "1.5"], "tau: must be <= 1.0"),
    ("ddpg", ["--tau", "-0.1"], "tau: must be > 0.0"),
    ("sac", ["--batch-size", "512", "--buffer-size", "256"], "batch_size: 512 exceeds buffer_size 256"),
    ("d4pg", ["--batch-size", "4096", "--buffer-size", "1000"], "batch_size: 4096 exceeds buffer_size 1000"),
    ("td3", ["--target-update-every", "2"], "target_update_every: 2: the targets move with each actor update"),
    ("d4pg", ["--v-min", "5", "--v-max", "5"], "v_max: must exceed v_min"),
    ("ddpg", ["--noise", "pink"], "noise: must be one of ou, gaussian"),
], ids=["sac-tau0", "td3-tau>1", "ddpg-tau<0", "sac-batch", "d4pg-batch", "td3-target-every", "d4pg-support",
        "ddpg-noise"])
def test_continuous_control_config_mistakes(tmp_path, capsys, algo, flags, expect):
    out = tmp_path / "out"
    rc = cli.main(["train", algo, *flags, "--out", str(out), "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, expect)
    assert not out.exists()


# settings that would run but never learn: refused before anything compiles, naming the field
DEGENERATE = [
    ("ppo", ["--num-envs", "1", "--num-minibatches", "128"], "num_minibatches", "leave 1 row per minibatch"),
    ("dqn", ["--total-steps", "5000", "--learning-starts", "5000"], "learning_starts", "would never learn"),
    ("dqn", ["--total-steps", "5000", "--learning-starts", "9000"], "learning_starts", "would never learn"),
    ("dqn", ["--total-steps", "5000", "--learning-starts", "100", "--target-update-every", "5001"],
     "target_update_every", "no target update would happen"),
    ("cem", ["--num-envs", "1"], "num_envs", "can never be an elite"),
    ("a2c", ["--normalize-advantages", "--num-envs", "1", "--num-steps", "1"], "normalize_advantages",
     "nothing to normalise"),
]


@pytest.mark.parametrize("algo, flags, field, expect", DEGENERATE, ids=[f"{c[0]}-{c[2]}" for c in DEGENERATE])
def test_degenerate_settings_are_refused(tmp_path, capsys, algo, flags, field, expect):
    out = tmp_path / "out"
    rc = cli.main(["train", algo, *flags, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert_one_line_error(rc, err, f"{field}: ")
    assert expect in err
    assert not out.exists()


def test_degenerate_settings_have_valid_neighbours():
    """One step away from each refused setting parses fine: the checks are not blanket refusals."""
    for algo, ok in [("ppo", ["--num-envs", "1", "--num-minibatches", "64"]),
                     ("dqn", ["--total-steps", "5000", "--learning-starts", "4999", "--target-update-every", "5000"]),
                     ("cem", ["--num-envs", "1", "--keep-elites", "1"]),
                     ("a2c", ["--normalize-advantages", "--num-envs", "1", "--num-steps", "2"])]:
        spec, _, _ = parse([algo, *ok])
        assert spec.algo == algo


# DQN runs num_updates * num_envs * train_every env steps, which can be less than total_steps; the
# checks above compare with total_steps, so these pass validation and then never learn:
NEVER_LEARN_IN_THE_STEPS_RUN = [
    # 100 updates of 10 envs = 1000 steps < learning_starts 1001 < total_steps 1005: `learning` is 0 in every row
    (["--num-envs", "10", "--total-steps", "1005", "--learning-starts", "1001", "--buffer-size", "500",
      "--batch-size", "32"], "learning_starts"),
    # learning from step 600, the only multiple of 500 before 999 is 500: the target stays at its random init
    (["--num-envs", "1", "--total-steps", "999", "--learning-starts", "600", "--target-update-every", "500",
      "--buffer-size", "500", "--batch-size", "32"], "target_update_every"),
]


@pytest.mark.parametrize("flags, field", NEVER_LEARN_IN_THE_STEPS_RUN, ids=[c[1] for c in NEVER_LEARN_IN_THE_STEPS_RUN])
def test_dqn_settings_that_never_learn_in_the_steps_actually_run(flags, field):
    with pytest.raises(ConfigError) as e:
        parse(["dqn", *flags])
    assert e.value.field == field, str(e.value)


@pytest.mark.parametrize("algo", ["reinforce", "cem", "es", "ga", "q_learning", "value_iteration"])
def test_iterations_and_total_steps_together_are_refused(tmp_path, capsys, algo):
    out = tmp_path / "out"
    rc = cli.main(["train", algo, "--iterations", "3", "--total-steps", "1000", "--out", str(out), "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, "total_steps: give total_steps or iterations, not both")
    assert not out.exists()


@pytest.mark.parametrize("under", ["afile/out", "afile/deeper/out"])
def test_out_under_a_file_is_refused_before_compiling(tmp_path, capsys, under):
    """``--out`` whose parent is a file: one line naming ``out``, exit 2, in well under a compile's time
    and with no XLA compilation at all; nothing written."""
    import time

    import jax

    (tmp_path / "afile").write_text("not a folder")
    parse(["ppo", *SMALL])  # imports the env backend, so the timing below is the check alone
    compiles = []

    def on_duration(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    try:
        t0 = time.perf_counter()
        rc = cli.main(["train", "ppo", *SMALL, "--out", str(tmp_path / under), "--quiet"])
        seconds = time.perf_counter() - t0
    finally:
        jax.monitoring.unregister_event_duration_listener(on_duration)
    assert_one_line_error(rc, capsys.readouterr().err, "out: ")
    assert seconds < 2.0, seconds  # a compile of this config takes several seconds
    assert compiles == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_existing_results_folder_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.csv").write_text("precious")
    rc = cli.main(["train", "ppo", *SMALL, "--out", str(out)])
    assert_one_line_error(rc, capsys.readouterr().err, "already exists and is not empty")
    assert [p.name for p in out.iterdir()] == ["metrics.csv"] and (out / "metrics.csv").read_text() == "precious"


@pytest.mark.parametrize("content, expect", [
    (None, "no config.json"),
    ("{not json", "config.json is damaged"),
    (json.dumps({"algo": "ppo", "env": "gymnax:CartPole-v1", "num_seeds": 1, "seed": 0,
                 "config": {"gamma": 7}}), "invalid config (gamma: must be <= 1.0"),
    (json.dumps({"algo": "ppo", "env": "gymnax:CartPole-v1", "num_seeds": 1, "seed": 0, "config": {}}),
     "has no checkpoint"),
])
def test_resume_of_a_bad_folder(tmp_path, capsys, content, expect):
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        (run / "config.json").write_text(content)
    before = sorted(p.name for p in run.iterdir())
    rc = cli.main(["train", "--resume", str(run)])
    assert_one_line_error(rc, capsys.readouterr().err, expect)
    assert sorted(p.name for p in run.iterdir()) == before


def test_resume_takes_no_other_options(tmp_path, capsys):
    rc = cli.main(["train", "--resume", str(tmp_path), "--lr", "0.1"])
    assert_one_line_error(rc, capsys.readouterr().err, "drop --lr")


def test_experiment_file_mistakes(tmp_path, capsys):
    exp = tmp_path / "exp.json"
    exp.write_text(json.dumps({"algo": "ppo", "config": {"lrr": 0.1}}))
    rc = cli.main(["train", "--experiment", str(exp), "--out", str(tmp_path / "out")])
    assert_one_line_error(rc, capsys.readouterr().err, "lrr: unknown field for Config (did you mean lr")
    exp.write_text(json.dumps({"algo": "ppo", "config": [1, 2]}))
    rc = cli.main(["train", "--experiment", str(exp), "--out", str(tmp_path / "out")])
    assert_one_line_error(rc, capsys.readouterr().err, "'config' must be a JSON dict")
    exp.write_text(json.dumps({"algo": "ppo", "eval_evry": 100}))  # a misspelt run setting is not ignored
    rc = cli.main(["train", "--experiment", str(exp), "--out", str(tmp_path / "out")])
    assert_one_line_error(rc, capsys.readouterr().err, "unknown key 'eval_evry'")
    exp.write_text(json.dumps({"algo": "ppo", "eval_every": "often"}))
    rc = cli.main(["train", "--experiment", str(exp), "--out", str(tmp_path / "out")])
    assert_one_line_error(rc, capsys.readouterr().err, "'eval_every' must be a JSON int")
    assert not (tmp_path / "out").exists()


def test_eval_of_a_missing_folder(tmp_path, capsys):
    rc = cli.main(["eval", str(tmp_path / "nope")])
    assert_one_line_error(rc, capsys.readouterr().err, "does not exist")


# ---- property-based ---------------------------------------------------------------------------

ALGOS = sorted(agents.algorithms())
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(string.printable, max_size=8),
                 st.lists(st.integers(), max_size=2), st.sampled_from(["1e400", "nan", "-0", "1.5", "true", " 3 "]))


@st.composite
def random_config(draw):
    algo = draw(st.sampled_from(ALGOS))
    module, _ = agents.get(algo)
    names = list(module.Config.field_specs())
    keys = draw(st.lists(st.one_of(st.sampled_from(names), st.text(string.ascii_lowercase + "_", min_size=1,
                                                                    max_size=12)), max_size=5))
    return module, {k: draw(JUNK) for k in keys}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_config())
def test_random_configs_raise_only_config_error(case):
    module, values = case
    try:
        cfg = module.Config.from_dict(values)
    except ConfigError as e:
        assert "\n" not in str(e) and str(e).split(":")[0]
        return
    cfg.validate()  # what passed once passes again
    assert cfg == module.Config.from_dict(cfg.to_dict())


def _valid_value(draw, f):
    m, d = f.metadata, f.default
    if m.get("choices") is not None:
        return draw(st.sampled_from(list(m["choices"])))
    if isinstance(d, bool):
        return draw(st.booleans())
    lo, hi = m.get("low"), m.get("high")
    if isinstance(d, int):
        lo_i = -1000 if lo is None else int(math.floor(lo)) + (1 if m.get("low_open") else 0)
        return draw(st.integers(lo_i, lo_i + 2000 if hi is None else int(hi)))
    if isinstance(d, float):
        lo_f = -1e3 if lo is None else lo
        return draw(st.floats(lo_f, lo_f + 1e3 if hi is None else hi, exclude_min=bool(m.get("low_open")),
                              allow_nan=False, width=32))
    return d


@st.composite
def per_field_valid_config(draw):
    algo = draw(st.sampled_from(ALGOS))
    module, _ = agents.get(algo)
    specs = module.Config.field_specs()
    names = draw(st.lists(st.sampled_from(list(specs)), max_size=4, unique=True))
    return module, {n: _valid_value(draw, specs[n]) for n in names}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(per_field_valid_config())
def test_valid_values_pass_as_values_and_as_cli_strings(case):
    """Values within every field's bounds either pass, or fail only a cross-field rule; the CLI
    spelling (strings) of the same values gives the same result."""
    module, values = case
    as_strings = {k: (str(v).lower() if isinstance(v, bool) else repr(v) if isinstance(v, float) else str(v))
                  for k, v in values.items()}
    try:
        native = module.Config.from_dict(values)
    except ConfigError as e:
        with pytest.raises(ConfigError) as e2:
            module.Config.from_dict(as_strings)
        assert str(e2.value) == str(e)
        return
    assert module.Config.from_dict(as_strings) == native
    for k, v in values.items():
        assert getattr(native, k) == v


VOCAB = ["ppo", "dqn", "a2c", "reinforce", "bogus", "--lr", "--gamma", "--num-envs", "--num-steps", "--sweep",
         "--env", "--num-seeds", "--seed", "--log-every", "--eval-every", "--eval-episodes", "--checkpoint-every",
         "--memory-budget", "--resume", "--experiment", "--lrr", "-x", "--no-anneal-lr", "--anneal-lr",
         "--env-option", "--devices", "--quiet", "--tensorboard", "0", "-1", "1.5", "abc", "nan", "inf", "1e400",
         "gamma=0.5,2", "lr=", "lr=0.1,0.2", "gymnax:CartPole-v1", "envpool:Nope", "x=y", "", "=", "4096"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(VOCAB), max_size=7))
@example(["--experiment", ""])  # found by hypothesis: reading a folder as the experiment file
def test_random_command_lines_raise_only_usage_or_config_errors(argv):
    try:
        spec, quiet, _ = parse(list(argv))
    except (UsageError, ConfigError) as e:
        assert "\n" not in str(e)
        return
    assert spec.config == type(spec.config).from_dict(spec.config.to_dict())
    assert spec.num_seeds >= 1


def test_every_help_text_formats():
    """argparse %-formats help strings: a stray % in any command's help crashes ``jaxrl --help``."""
    parser = cli.build_parser()
    assert all(name in parser.format_help() for name in cli.COMMANDS)
    sub = next(a for a in parser._actions if hasattr(a, "choices") and a.choices)
    for name, p in sub.choices.items():
        assert p.format_help()
    from jaxrl.commands.train import _algo_parser

    for algo, (module, preset) in agents.algorithms().items():
        assert "--eval-every" in _algo_parser(algo, module, preset).format_help()


def test_a_config_field_named_like_a_run_option_gets_a_cfg_flag():
    import dataclasses
    import types

    from jaxrl.agents import ppo
    from jaxrl.commands.train import _algo_parser, _parse_strict
    from jaxrl.config import field

    @dataclasses.dataclass(frozen=True)
    class Config(ppo.Config):
        eval_episodes: int = field(20, low=1, help="collides with the run option --eval-episodes")

    p = _algo_parser("x", types.SimpleNamespace(Config=Config, __doc__="x"), {})
    args = _parse_strict(p, ["--eval-episodes", "3", "--cfg-eval-episodes", "7"])
    assert args["eval_episodes"] == "3" or args["eval_episodes"] == 3
    assert args["cfg__eval_episodes"] == "7"
