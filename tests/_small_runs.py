"""Shared helpers of the run-level tests: one tiny PPO config and a persistent compilation cache.

Every run-level test uses the same config, so after the first compile the programs come from the
cache (in-process and in ``python -m jaxrl`` subprocesses alike).
"""
import os
import subprocess
import sys
import tempfile

import jax

CACHE = os.environ.get("JAXRL_TEST_COMPILE_CACHE", os.path.join(tempfile.gettempdir(), "jaxrl-test-compile-cache"))
jax.config.update("jax_compilation_cache_dir", CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

ENV = "gymnax:CartPole-v1"
SMALL = dict(total_steps=4096, num_envs=4, num_steps=64, anneal_lr=False)  # 16 updates of 256 steps
SMALL_FLAGS = ["--total-steps", "4096", "--num-envs", "4", "--num-steps", "64", "--no-anneal-lr"]


def small_spec(out, num_seeds=2, **kw):
    from jaxrl import agents
    from jaxrl.driver import RunSpec

    module, _ = agents.get("ppo")
    cfg = module.Config.from_dict(dict(SMALL, **kw.pop("config", {})))
    kw.setdefault("eval_episodes", 4)
    return RunSpec("ppo", ENV, cfg, num_seeds=num_seeds, out=None if out is None else str(out), **kw)


def jaxrl_cli(*args, timeout=240, **popen):
    """``python -m jaxrl ARGS`` with the shared compilation cache; returns CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "jaxrl", *args], capture_output=True, text=True, env=cli_env(),
                          timeout=timeout, **popen)


def cli_env():
    return dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=CACHE,
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


def read_rows(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_one_line_error(rc, err, expect):
    """A CLI refusal: exit status 2, one ``jaxrl: error:`` line on stderr containing ``expect``, no traceback."""
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("jaxrl: error:"), lines
    assert expect in lines[0], lines[0]


def assert_resumes_bit_exact(spec_of, tmp_path, stop_after: int, ref=None):
    """Stop a run after ``stop_after`` updates (as SIGTERM would), resume it from its folder, and assert
    that it ends in the uninterrupted run's state, bit for bit. ``spec_of(out) -> RunSpec``; ``ref``: the
    uninterrupted run's summary when the caller already has one (else it is run here, under
    ``tmp_path / "full"``). Returns ``(resumed summary, ref summary)``."""
    import numpy as np
    import pytest

    from jaxrl.driver import Interrupted, from_run_dir, train_run

    if ref is None:
        ref = train_run(spec_of(tmp_path / "full"), progress=False)
    with pytest.raises(Interrupted):
        train_run(spec_of(tmp_path / "cut"), progress=False, stop_after=stop_after)
    resumed = train_run(from_run_dir(str(tmp_path / "cut")), progress=False)
    assert resumed["resumed_from_update"] == stop_after
    a, b = jax.tree_util.tree_leaves(resumed["_state"]), jax.tree_util.tree_leaves(ref["_state"])
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    return resumed, ref
