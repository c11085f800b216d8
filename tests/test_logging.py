"""Logging: metric memory bounded by logging points (not steps), logging points that reduce over every
update they cover (a counting agent checks the values), TensorBoard runs per seed."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _small_runs import SMALL, small_spec
from jaxrl import agents, envs
from jaxrl.config import Config, field
from jaxrl.core.agent import Agent
from jaxrl.core.program import empty_accumulator, make_chunk, make_train, reduce
from jaxrl.driver import train_run


def _agent(total_steps):
    module, _ = agents.get("ppo")
    cfg = module.Config.from_dict(dict(SMALL, total_steps=total_steps))
    return module.make_agent(cfg, envs.make("gymnax:CartPole-v1", num_envs=cfg.num_envs))


@dataclasses.dataclass(frozen=True)
class CountConfig(Config):
    total_steps: int = field(10, low=1, help="updates (one env step each)")


def counting_agent(num_updates: int) -> Agent:
    """Update k (1-based) reports ``k`` (averaged), ``k_sum`` (summed) and ``episodes`` = 1 (summed)."""
    def init(key, hp):
        return jnp.zeros((), jnp.int32)

    def update(state, hp):
        k = (state + 1).astype(jnp.float32)
        return state + 1, {"k": k, "k_sum": k, "episodes": jnp.ones(()), "episode_return_sum": k,
                           "episode_length_sum": jnp.ones(())}

    return Agent(CountConfig(total_steps=num_updates), init, update, lambda s, o, k=None: o, num_updates, 1)


@pytest.mark.parametrize("num_updates,points", [(10, 3), (10, 10), (7, 2), (5, 8)])
def test_every_logging_point_reduces_over_every_update_it_covers(num_updates, points):
    state, m = jax.jit(make_train(counting_agent(num_updates), points))(jax.random.PRNGKey(0))
    n_log = min(points, num_updates)
    per = num_updates // n_log
    bounds = [i * per for i in range(n_log)] + [num_updates]  # the last point takes the remainder
    want = [list(range(a + 1, b + 1)) for a, b in zip(bounds[:-1], bounds[1:])]
    assert int(state) == num_updates
    np.testing.assert_allclose(m["k"], [np.mean(w) for w in want])  # 10 updates, 3 points: 2, 5, 8.5
    np.testing.assert_allclose(m["k_sum"], [np.sum(w) for w in want])
    np.testing.assert_allclose(m["episodes"], [len(w) for w in want])


def test_a_logging_point_split_into_chunks_reduces_to_the_same_values():
    agent = counting_agent(12)
    chunk = jax.jit(make_chunk(agent))
    acc0 = empty_accumulator(agent)
    whole = reduce(chunk(jnp.zeros((), jnp.int32), acc0, {}, 12, 0)[1])
    s, acc = chunk(jnp.zeros((), jnp.int32), acc0, {}, 5, 0)
    s, acc = chunk(s, acc, {}, 1, 5)
    s, acc = chunk(s, acc, {}, 6, 6)
    for k in whole:
        np.testing.assert_array_equal(np.asarray(whole[k]), np.asarray(reduce(acc)[k]))


def test_chunk_metrics_do_not_grow_with_updates_per_chunk():
    agent = _agent(4096)
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0), agent.config.hparams())
    hp = agent.config.hparams()
    chunk = make_chunk(agent)
    shapes = [jax.eval_shape(chunk, state, empty_accumulator(agent), hp, n, 0)[1] for n in (1, 1000)]
    assert shapes[0] == shapes[1]
    assert all(x.shape == () for x in jax.tree_util.tree_leaves(shapes[0]))


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
