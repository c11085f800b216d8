"""Multi-host for real, on one machine: two ``jaxrl train`` processes on localhost form one
2-process ``jax.distributed`` job over loopback (coordinator ``127.0.0.1:<free port>``), each
process with 2 forced CPU devices, so the seeds are sharded over 4 devices in 2 processes and
cross-process collectives go through Gloo.

Checked against a single-process run with 4 forced devices and the same seed (itself checked
against 1 device in ``tests/test_parallel.py``):

* both processes exit 0, and only process 0 writes: each process runs in its own working
  directory with a relative ``--out`` (as two hosts with their own disks), and process 1's
  results folder is never created;
* ``metrics.csv`` (all columns but ``wall_time``), ``summary.json``'s ``final_return`` and
  ``eval_return``, and the checkpointed state arrays are identical to the single-process run's;
* checkpoints of arrays that span both processes: all-gathered, written by process 0; a
  ``--resume`` of a run cut back to its first checkpoint (the folder copied to both "hosts")
  places every process's shards from the file and finishes identical to the uninterrupted run.

Every subprocess runs under a timeout and is killed on expiry, so nothing can hang.
"""
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from _small_runs import cli_env, read_rows

# 8 updates of 4 envs x 32 steps; greedy evaluations (a cross-device all-reduce) and checkpoints
# after updates 4 and 8
FLAGS = ["ppo", "--env", "gymnax:CartPole-v1", "--num-seeds", "4", "--seed", "3", "--devices", "all",
         "--total-steps", "1024", "--num-envs", "4", "--num-steps", "32", "--no-anneal-lr",
         "--log-every", "128", "--eval-every", "512", "--eval-episodes", "2", "--checkpoint-every", "512",
         "--quiet"]
TIMEOUT = 180  # per launch, seconds; a 2-process run takes about 25 s on a busy 2-core machine


def _env(devices: int, **extra) -> dict:
    env = {k: v for k, v in cli_env().items() if not k.startswith("JAXRL_")}  # no inherited launch variables
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args, cwds, devices):
    """``python -m jaxrl train ARGS``: one process per cwd (one cwd: single process; more: a
    ``jax.distributed`` job with process i in ``cwds[i]``).  Returns [(returncode, log text)]."""
    n = len(cwds)
    port = _free_port()
    procs, logs = [], []
    for i, cwd in enumerate(cwds):
        os.makedirs(cwd, exist_ok=True)
        dist = {} if n == 1 else dict(JAXRL_COORDINATOR=f"127.0.0.1:{port}", JAXRL_NUM_PROCESSES=str(n),
                                      JAXRL_PROCESS_ID=str(i))
        log = open(os.path.join(os.path.dirname(cwd), f"{os.path.basename(cwd)}.log"), "w+")
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "jaxrl", "train", *args], cwd=cwd, stdout=log,
                                      stderr=subprocess.STDOUT, env=_env(devices, **dist)))
    try:
        for p in procs:
            p.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
    out = []
    for p, log in zip(procs, logs):
        log.seek(0)
        out.append((p.returncode, log.read()))
        log.close()
    return out


def _check(results):
    for i, (rc, text) in enumerate(results):
        assert rc == 0, f"process {i} exited {rc}:\n{text[-4000:]}"


def _rows(path):
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in read_rows(path)]


def _ckpt_arrays(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k.startswith("state/")}


def _same_checkpoint(a, b):
    xa, xb = _ckpt_arrays(a), _ckpt_arrays(b)
    assert xa.keys() == xb.keys() and xa
    for k in xa:
        np.testing.assert_array_equal(xa[k], xb[k], err_msg=k)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("multihost")
    single = _launch([*FLAGS, "--out", "run"], [str(root / "single")], devices=4)
    _check(single)
    multi = _launch([*FLAGS, "--out", "run"], [str(root / "host0"), str(root / "host1")], devices=2)
    return root, multi


def test_two_processes_train_and_only_process_0_writes(runs):
    root, multi = runs
    _check(multi)
    assert not (root / "host1" / "run").exists(), "process 1 must not write the results folder"
    run = root / "host0" / "run"
    assert {p.name for p in run.iterdir()} == {"config.json", "metrics.csv", "summary.json", "checkpoints"}
    cfg = json.loads((run / "config.json").read_text())
    assert len(cfg["devices"]) == 4 and cfg["devices_used"] == 4  # the mesh spans both processes
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == ["ckpt-000000000004.npz",
                                                                        "ckpt-000000000008.npz"]


def test_two_processes_equal_one_process(runs):
    root, multi = runs
    _check(multi)
    ref, run = root / "single" / "run", root / "host0" / "run"
    assert _rows(run / "metrics.csv") == _rows(ref / "metrics.csv")
    s_ref, s = (json.loads((d / "summary.json").read_text()) for d in (ref, run))
    assert s["final_return"] == s_ref["final_return"] and len(s["final_return"]) == 4
    assert s["eval_return"] == s_ref["eval_return"]
    for name in ("ckpt-000000000004.npz", "ckpt-000000000008.npz"):  # gathered from both processes
        _same_checkpoint(run / "checkpoints" / name, ref / "checkpoints" / name)


def test_two_processes_resume_from_a_gathered_checkpoint(runs):
    root, multi = runs
    _check(multi)
    ref = root / "single" / "run"
    # cut the 2-process run back to its first checkpoint (update 4 of 8) and give each "host" a copy
    hosts = [root / "resume0", root / "resume1"]
    for h in hosts:
        shutil.copytree(root / "host0" / "run", h / "run")
        (h / "run" / "summary.json").unlink()
        (h / "run" / "checkpoints" / "ckpt-000000000008.npz").unlink()
    before1 = {p.name: p.read_bytes() for p in (hosts[1] / "run").rglob("*") if p.is_file()}
    resumed = _launch(["--resume", "run", "--quiet"], [str(h) for h in hosts], devices=2)
    _check(resumed)
    run = hosts[0] / "run"
    s = json.loads((run / "summary.json").read_text())
    s_ref = json.loads((ref / "summary.json").read_text())
    assert s["resumed_from_update"] == 4
    assert s["final_return"] == s_ref["final_return"] and s["eval_return"] == s_ref["eval_return"]
    assert _rows(run / "metrics.csv") == _rows(ref / "metrics.csv")
    last = "ckpt-000000000008.npz"
    _same_checkpoint(run / "checkpoints" / last, ref / "checkpoints" / last)
    after1 = {p.name: p.read_bytes() for p in (hosts[1] / "run").rglob("*") if p.is_file()}
    assert after1 == before1, "process 1 must not write on resume either"


def test_two_processes_stop_together_when_process_0_refuses_out(tmp_path):
    """An existing --out on process 0's host: both processes exit 2 (none waits for a collective)."""
    host0, host1 = tmp_path / "host0", tmp_path / "host1"
    (host0 / "run").mkdir(parents=True)
    (host0 / "run" / "keep.txt").write_text("precious")
    results = _launch([*FLAGS, "--out", "run"], [str(host0), str(host1)], devices=2)
    for i, (rc, text) in enumerate(results):
        assert rc == 2, f"process {i} exited {rc}:\n{text[-3000:]}"
    assert "already exists" in results[0][1]
    assert "process 0" in results[1][1] and "out" in results[1][1]
    assert (host0 / "run" / "keep.txt").read_text() == "precious"
    assert not (host1 / "run").exists()
