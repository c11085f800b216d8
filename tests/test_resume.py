"""Checkpoint/resume of whole runs: bit-exact on gymnax, metrics rows past the checkpoint dropped,
SIGTERM finishes the chunk, saves and exits 143, ``--resume`` refuses finished runs."""
import json
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from _small_runs import ENV, SMALL_FLAGS, cli_env, read_rows, small_spec
from jaxrl.checkpoint import list_checkpoints
from jaxrl.config import ConfigError
from jaxrl.driver import Interrupted, from_run_dir, train_run


def _strip_wall(rows):
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]


def _assert_same_state(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "full"
    summary = train_run(small_spec(out), progress=False)
    return out, summary


def test_interrupted_then_resumed_is_bit_exact(uninterrupted, tmp_path):
    full, ref = uninterrupted
    out = tmp_path / "cut"
    with pytest.raises(Interrupted) as e:
        train_run(small_spec(out), progress=False, stop_after=6)
    assert e.value.exit_code == 128 + signal.SIGTERM
    assert "update 6 of 16" in str(e.value) and "--resume" in str(e.value)
    assert list_checkpoints(out)[-1].name == "ckpt-000000000006.npz"
    stopped = json.loads((out / "summary.json").read_text())
    assert stopped["finished"] is False and stopped["stopped_by"] == "SIGTERM" and stopped["updates"] == 6
    assert len(stopped["eval_return"]) == 2  # the policy as it was when the run stopped
    assert max(int(r["update"]) for r in read_rows(out / "metrics.csv")) == 6

    resumed = train_run(from_run_dir(str(out)), progress=False)
    assert resumed["resumed_from_update"] == 6
    _assert_same_state(resumed["_state"], ref["_state"])
    assert _strip_wall(read_rows(out / "metrics.csv")) == _strip_wall(read_rows(full / "metrics.csv"))
    assert resumed["final_return"] == ref["final_return"]
    assert resumed["eval_return"] == ref["eval_return"]


def test_rows_after_the_last_checkpoint_are_replayed_not_duplicated(uninterrupted, tmp_path):
    """A kill after checkpoint 15 but after row 16 was written: resume drops row 16 and redoes it."""
    full, ref = uninterrupted
    out = tmp_path / "killed"
    shutil.copytree(full, out)
    (out / "summary.json").unlink()
    last = list_checkpoints(out)[-1]
    assert last.name == "ckpt-000000000016.npz"
    last.unlink()
    assert list_checkpoints(out)[-1].name == "ckpt-000000000015.npz"
    resumed = train_run(from_run_dir(str(out)), progress=False)
    assert resumed["resumed_from_update"] == 15
    rows = read_rows(out / "metrics.csv")
    assert [int(r["update"]) for r in rows] == [u for u in range(1, 17) for _ in range(2)]
    assert _strip_wall(rows) == _strip_wall(read_rows(full / "metrics.csv"))
    _assert_same_state(resumed["_state"], ref["_state"])


@pytest.fixture(scope="module")
def coarse(tmp_path_factory):
    """The same run with logging points every 4 updates (1024 env steps)."""
    out = tmp_path_factory.mktemp("coarse") / "full"
    return out, train_run(small_spec(out, log_every=1024), progress=False)


def test_a_stop_inside_a_logging_interval_resumes_bit_exact(coarse, tmp_path):
    full, ref = coarse
    out = tmp_path / "mid"
    with pytest.raises(Interrupted):
        train_run(small_spec(out, log_every=1024), progress=False, stop_after=6)  # between points 4 and 8
    assert [int(r["update"]) for r in read_rows(out / "metrics.csv")] == [4, 4]
    resumed = train_run(from_run_dir(str(out)), progress=False)
    _assert_same_state(resumed["_state"], ref["_state"])
    assert _strip_wall(read_rows(out / "metrics.csv")) == _strip_wall(read_rows(full / "metrics.csv"))


def test_max_minutes_stops_cleanly_and_resume_finishes_the_run(uninterrupted, tmp_path):
    full, ref = uninterrupted
    out = tmp_path / "budget"
    stopped = train_run(small_spec(out, max_minutes=1e-9), progress=False)  # spent after the first chunk
    assert stopped["finished"] is False and stopped["stopped_by"] == "max_minutes" and stopped["updates"] < 16
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["finished"] is False and len(on_disk["eval_return"]) == 2
    assert int(list_checkpoints(out)[-1].stem.split("-")[1]) == stopped["updates"]
    resumed = train_run(from_run_dir(str(out)), progress=False)
    assert resumed["finished"] is True
    _assert_same_state(resumed["_state"], ref["_state"])
    assert _strip_wall(read_rows(out / "metrics.csv")) == _strip_wall(read_rows(full / "metrics.csv"))


def test_resume_refuses_a_finished_run(uninterrupted):
    full, _ = uninterrupted
    before = (full / "metrics.csv").read_bytes()
    with pytest.raises(ConfigError, match="already finished"):
        train_run(from_run_dir(str(full)), progress=False)
    assert (full / "metrics.csv").read_bytes() == before


def test_sigterm_saves_and_cli_resume_finishes(tmp_path):
    """The real signal path through the CLI: SIGTERM -> exit 143 with a checkpoint; --resume -> exit 0."""
    out = tmp_path / "sig"
    flags = [a if a != "4096" else "400000" for a in SMALL_FLAGS]  # a long run, same compiled chunk
    cmd = [sys.executable, "-m", "jaxrl", "train", "ppo", "--env", ENV, *flags, "--num-seeds", "2",
           "--log-every", "256", "--eval-episodes", "4", "--out", str(out), "--quiet"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        deadline = time.time() + 200
        while time.time() < deadline and p.poll() is None:
            if (out / "metrics.csv").exists() and len(read_rows(out / "metrics.csv")) >= 4:
                break
            time.sleep(0.2)
        assert p.poll() is None, p.communicate()[1]
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143, err
    assert "Traceback" not in err and "stopped: SIGTERM" in err
    ckpts = list_checkpoints(out)
    assert ckpts and json.loads((out / "summary.json").read_text())["finished"] is False
    saved_update = int(ckpts[-1].stem.split("-")[1])
    assert max(int(r["update"]) for r in read_rows(out / "metrics.csv")) == saved_update

    # --resume continues from the checkpoint (stopped again after a few chunks to keep the test short)
    p2 = subprocess.Popen([sys.executable, "-m", "jaxrl", "train", "--resume", str(out), "--quiet"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        deadline = time.time() + 200
        while time.time() < deadline and p2.poll() is None:
            rows = read_rows(out / "metrics.csv") if (out / "metrics.csv").exists() else []
            if rows and max(int(r["update"]) for r in rows) >= saved_update + 3:
                break
            time.sleep(0.2)
        p2.send_signal(signal.SIGTERM)
        _, err2 = p2.communicate(timeout=120)
    finally:
        if p2.poll() is None:
            p2.kill()
    assert p2.returncode == 143, err2
    updates = [int(r["update"]) for r in read_rows(out / "metrics.csv")]
    assert updates == sorted(updates) and len(updates) == 2 * len(set(updates))  # no duplicated rows
    assert int(list_checkpoints(out)[-1].stem.split("-")[1]) > saved_update
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["total_steps"] == 400000
