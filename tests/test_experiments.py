"""Every configuration in experiments/ is a valid run: it parses, validates and names a real algorithm and env."""
import pathlib

import pytest

from jaxrl.commands.train import parse

FILES = sorted(pathlib.Path(__file__).resolve().parents[1].joinpath("experiments").glob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_experiment_file_parses(path, tmp_path):
    spec, _, _ = parse(["--experiment", str(path), "--out", str(tmp_path / "out")])
    assert spec.config == type(spec.config).from_dict(spec.config.to_dict())
    assert spec.num_seeds >= 1


def test_run_settings_of_an_experiment_file_apply_and_flags_override_them(tmp_path):
    import json

    exp = tmp_path / "exp.json"
    exp.write_text(json.dumps({"algo": "ppo", "eval_every": 4096, "eval_episodes": 6, "log_every": 2048,
                               "checkpoint_every": 8192, "seed": 3, "max_minutes": 1.5}))
    spec, _, _ = parse(["--experiment", str(exp), "--out", str(tmp_path / "a")])
    assert (spec.eval_every, spec.eval_episodes, spec.log_every, spec.checkpoint_every, spec.seed,
            spec.max_minutes) == (4096, 6, 2048, 8192, 3, 1.5)
    spec, _, _ = parse(["--experiment", str(exp), "--out", str(tmp_path / "b"), "--eval-episodes", "2", "--seed", "0"])
    assert (spec.eval_every, spec.eval_episodes, spec.seed) == (4096, 2, 0)


def test_there_are_experiment_files():
    assert len(FILES) >= 10
