"""Logging: metric memory bounded by logging points (not steps), TensorBoard runs per seed."""
import jax
import pytest

from _small_runs import SMALL, small_spec
from jaxrl import agents, envs
from jaxrl.agents.base import make_train
from jaxrl.run import make_chunk, train_run


def _agent(total_steps):
    module, _ = agents.get("ppo")
    cfg = module.Config.from_dict(dict(SMALL, total_steps=total_steps))
    return module.make_agent(cfg, envs.make("gymnax:CartPole-v1", num_envs=cfg.num_envs))


def _metric_shapes(tree):
    return {k: v.shape for k, v in tree.items()}


def test_chunk_metrics_do_not_grow_with_updates_per_chunk():
    agent = _agent(4096)
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0), agent.config.hparams())
    hp = agent.config.hparams()
    shapes = [jax.eval_shape(make_chunk(agent, n), state, hp)[1] for n in (1, 1000)]
    (m1, bad1, fin1), (m2, bad2, fin2) = shapes
    assert _metric_shapes(m1) == _metric_shapes(m2) and all(s == () for s in _metric_shapes(m1).values())
    assert _metric_shapes(bad1) == _metric_shapes(bad2) and fin1.shape == fin2.shape


@pytest.mark.parametrize("total_steps", [4096, 256 * 10**6])
def test_whole_run_metrics_are_one_row_per_logging_point(total_steps):
    agent = _agent(total_steps)
    _, metrics = jax.eval_shape(make_train(agent, num_log_points=10), jax.random.PRNGKey(0))
    assert {v.shape for v in metrics.values()} == {(10,)}  # 16 or 1e6 updates: the same 10 rows


def test_tensorboard_one_run_per_seed_and_sweep_value(tmp_path):
    spec = small_spec(tmp_path / "run", num_seeds=1, tensorboard=True, eval_every=2048)
    spec.sweep = {"lr": [1e-3, 3e-4]}
    train_run(spec, progress=False)
    runs = sorted(p.name for p in (tmp_path / "run" / "tensorboard").iterdir())
    assert runs == ["seed0_lr=0.0003", "seed0_lr=0.001"]
    for r in runs:
        (event,) = (tmp_path / "run" / "tensorboard" / r).glob("events.out.tfevents.*")
        data = event.read_bytes()
        for tag in (b"charts/episode_return", b"charts/episode_length", b"charts/steps_per_second",
                    b"charts/eval_return", b"losses/loss", b"losses/value_loss", b"metrics/entropy",
                    b"metrics/approx_kl", b"metrics/clip_frac", b"metrics/explained_variance", b"metrics/lr"):
            assert tag in data, tag
