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


def test_there_are_experiment_files():
    assert len(FILES) >= 10
