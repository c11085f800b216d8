"""The env backend's own evaluation (``Backend.report``): run by the driver at the end of ``jaxrl train``
into ``summary.json`` under the backend's name (its ``promote`` keys also at the top level), and by
``jaxrl eval``, which accepts its options."""
import json
import sys
from pathlib import Path

import jax
import pytest

from _small_runs import small_spec
from jaxrl import cli, envs
from jaxrl.driver import train_run
from jaxrl.envs import registry

TESTS = Path(__file__).resolve().parent
CALLS = []


def _run(name, env_options, agent, state, out=None, seed=0, toy_flag=3):
    """Records the call; reports the batch size and the greedy actions of every member on a fixed obs."""
    CALLS.append(dict(name=name, env_options=env_options, out=out, seed=seed, toy_flag=toy_flag))
    obs = jax.numpy.eye(name.count("x") + 1)[:1]
    actions = jax.vmap(lambda s: agent.act(s, obs, None))(state)
    return {"batch": int(actions.shape[0]), "toy_flag": toy_flag, "out": None if out is None else str(out)}


def _make(name, num_envs, num_seeds=1, **options):
    sys.path.insert(0, str(TESTS))
    from user_envs.signal_env import signal_factory

    env = signal_factory(num_envs, num_actions=name.count("x") + 1)
    return env._replace(spec=env.spec._replace(env_id="toyr:" + name, backend="toyr"))


TOY = registry.Backend(name="toyr", make=_make, ids=lambda: ["xx"],
                       report=registry.Report(_run, lambda r: [f"toy report: batch {r['batch']}"],
                                              (("--toy-flag", dict(type=int, default=3, help="a toy option")),),
                                              promote=("toy_flag", "absent")))


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    envs.register_backend(TOY)
    CALLS.clear()
    yield


def _spec(out, **kw):
    spec = small_spec(out, num_seeds=2, **kw)
    spec.env_id = "toyr:xx"
    return spec


def test_train_puts_the_report_in_summary_json_under_the_backend_name(toy, tmp_path, capsys):
    out = tmp_path / "run"
    summary = train_run(_spec(out), progress=False)
    assert summary["toyr"] == {"batch": 2, "toy_flag": 3, "out": str(out)}
    assert json.loads((out / "summary.json").read_text())["toyr"] == summary["toyr"]
    assert summary["toy_flag"] == 3 and "absent" not in summary and "batch" not in summary  # promote: only its keys
    assert CALLS == [dict(name="xx", env_options={}, out=out, seed=0, toy_flag=3)]
    # jaxrl eval: the backend's option is accepted, listed, and reaches the report (no results folder)
    rc = cli.main(["eval", str(out), "--episodes", "2", "--toy-flag", "7", "--seed", "5", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert rc == 0 and result["toyr"] == {"batch": 2, "toy_flag": 7, "out": None} and CALLS[-1]["seed"] == 5
    assert result["toy_flag"] == 7
    assert cli.main(["eval", str(out), "--episodes", "2"]) == 0
    assert "toy report: batch 2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["eval", str(out), "--help"])
    assert "--toy-flag" in capsys.readouterr().out


def test_no_report_when_evaluation_is_off_or_the_backend_has_none(toy, tmp_path, capsys):
    out = tmp_path / "off"
    summary = train_run(_spec(out, eval_every=0), progress=False)
    assert "toyr" not in summary and CALLS == [] and "eval_return" not in summary
    config = json.loads((out / "config.json").read_text())
    other = tmp_path / "gymnax"  # a run of a backend without a report: the option is not one of its
    other.mkdir()
    (other / "config.json").write_text(json.dumps(dict(config, env="gymnax:CartPole-v1")))
    rc = cli.main(["eval", str(other), "--episodes", "1", "--toy-flag", "7"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "unrecognized arguments: --toy-flag 7" in err[0]
    assert envs.backend("gymnax").report is None and envs.backend("envpool").report is None
