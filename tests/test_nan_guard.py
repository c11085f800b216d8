"""The NaN guard: a non-finite metric or state value stops the run, naming the metric (or state array),
the update and the seed; the last good checkpoint is kept; the CLI exits with status 3."""
import dataclasses
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl.agents
from _small_runs import SMALL, small_spec
from jaxrl import checkpoint, cli
from jaxrl.agents import ppo
from jaxrl.config import field
from jaxrl.driver import Diverged, from_run_dir, train_run


@dataclasses.dataclass(frozen=True)
class Config(ppo.Config):
    nan_metric_at: float = field(-1.0, traced=True, help="update whose loss is NaN")
    nan_param_at: float = field(-1.0, traced=True, help="update after which the params are NaN")


def make_agent(config, env):
    base = ppo.make_agent(config, env)

    def update(state, hp):
        new, m = base.update(state, hp)
        u = (state.update + 1).astype(jnp.float32)  # 1-based number of this update
        m = dict(m, loss=jnp.where(u == hp["nan_metric_at"], jnp.nan, m["loss"]))
        params = jax.tree_util.tree_map(lambda x: jnp.where(u == hp["nan_param_at"], jnp.nan, x), new.params)
        return new._replace(params=params), m

    return base._replace(update=update)


FAKE = types.SimpleNamespace(Config=Config, make_agent=make_agent, __doc__="PPO that diverges on request.")


@pytest.fixture
def fake_algo(monkeypatch):
    real_get = jaxrl.agents.get
    monkeypatch.setattr(jaxrl.agents, "get", lambda name: (FAKE, {}) if name == "nanppo" else real_get(name))


def _spec(out, num_seeds=1, **config):
    spec = small_spec(out, num_seeds=num_seeds, checkpoint_every=512, eval_every=0)
    spec.algo = "nanppo"
    spec.config = Config.from_dict(dict(SMALL, **config))
    return spec


def test_nonfinite_loss_names_metric_update_and_seed(fake_algo, tmp_path):
    spec = _spec(tmp_path / "run")
    spec.sweep = {"nan_metric_at": [9.0, 5.0]}  # the second sweep point diverges first
    with pytest.raises(Diverged) as e:
        train_run(spec, progress=False)
    msg = str(e.value)
    assert e.value.exit_code == 3
    assert "non-finite loss at update 5 (seed=0, nan_metric_at=5.0)" in msg, msg
    assert "ckpt-000000000004.npz" in msg and "\n" not in msg
    # the last good checkpoint is kept and holds finite parameters; no checkpoint of the bad state
    names = [p.name for p in checkpoint.list_checkpoints(tmp_path / "run")]
    assert names[-1] == "ckpt-000000000004.npz"
    assert not (tmp_path / "run" / "summary.json").exists()
    z = np.load(tmp_path / "run" / "checkpoints" / names[-1])
    assert all(np.isfinite(z[k]).all() for k in z.files if k.startswith("state/") and z[k].dtype.kind == "f")


def test_nonfinite_parameter_names_the_array(fake_algo, tmp_path):
    with pytest.raises(Diverged) as e:
        train_run(_spec(tmp_path / "run", num_seeds=2, nan_param_at=7.0), progress=False)
    msg = str(e.value)
    assert "non-finite state value" in msg and "params" in msg and "after update 7" in msg, msg
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path / "run")][-1] == "ckpt-000000000006.npz"
    # the run can be resumed from the last good checkpoint (it diverges again at the same update)
    with pytest.raises(Diverged, match="after update 7"):
        train_run(from_run_dir(str(tmp_path / "run")), progress=False)


def test_cli_exit_status_3_one_line(fake_algo, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli.main(["train", "nanppo", "--total-steps", "4096", "--num-envs", "4", "--num-steps", "64",
                   "--no-anneal-lr", "--num-seeds", "2", "--nan-metric-at", "3", "--eval-every", "0", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 3
    assert len(err) == 1 and err[0].startswith("jaxrl: stopped: non-finite loss at update 3"), err


def test_the_state_check_skips_stored_transitions_only():
    """``finite_leaves(state, skip=replay_data)``: a NaN among the off-policy core's stored transitions
    (``.buffer.data``) is left to the metrics it feeds; a NaN anywhere else (parameters, the buffer's
    priorities) is still reported, leaf by leaf in the order of the state's leaves."""
    from typing import NamedTuple

    import jax.numpy as jnp

    from jaxrl.core.program import finite_leaves, replay_data

    class Buffer(NamedTuple):
        data: dict
        tree: jnp.ndarray

    class State(NamedTuple):
        params: dict
        buffer: Buffer

    nan = jnp.array([1.0, jnp.nan])
    ok = jnp.ones(2)
    state = State({"w": ok}, Buffer({"obs": nan, "reward": ok}, ok))
    assert finite_leaves(state).tolist() == [True, False, True, True]
    assert finite_leaves(state, skip=replay_data).tolist() == [True, True, True, True]
    bad = State({"w": nan}, Buffer({"obs": nan, "reward": ok}, nan))
    assert finite_leaves(bad, skip=replay_data).tolist() == [False, True, True, False]
