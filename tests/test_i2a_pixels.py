"""I2A on pixel frame stacks (envpool Atari): the pixel environment model (jaxrl/networks/env_model.py:
PixelEnvModel, change_loss, next_pixels, pixel_metrics) and the agent through ``jaxrl train``."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.networks import env_model as em

MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])


def toy_pixel_transitions(cells=9, block=4, level=200):
    """A deterministic toy env on 36x36 two-frame uint8 stacks: a ``block x block`` square of gray ``level`` on
    a ``cells x cells`` grid (each cell one block, aligned with the model's stride); 4 actions move it one cell,
    blocked at the border, reward 1 for a bump. The older frame shows the square one move earlier (from a
    fixed direction where the grid allows, else where it is). Every (position, action) pair once."""
    size = cells * block
    obs, act, nxt, rew = [], [], [], []

    def frame(y, x):
        f = np.zeros((size, size, 1), np.uint8)
        f[y * block:(y + 1) * block, x * block:(x + 1) * block] = level
        return f

    for y in range(cells):
        for x in range(cells):
            before = frame(max(y - 1, 0), x)
            for a, (dy, dx) in enumerate(MOVES):
                ny, nx = min(max(y + dy, 0), cells - 1), min(max(x + dx, 0), cells - 1)
                obs.append(np.concatenate([before, frame(y, x)], -1)), act.append(a)
                nxt.append(frame(ny, nx)), rew.append(float((ny, nx) == (y, x)))
    return em.Transitions(*(jnp.asarray(np.stack(v)) for v in (obs, np.array(act, np.int32), nxt,
                                                               np.array(rew, np.float32))))


def test_next_pixels_and_change_loss_by_hand():
    """The imagined stack drops the oldest frame and appends ``clip(last + 255 change)``; the loss is the mean
    squared error against ``(next - last) / 255``."""
    obs = jnp.array([10, 20, 250], jnp.uint8).reshape(1, 1, 1, 3)
    change = jnp.full((1, 1, 1, 1), 0.1)
    np.testing.assert_allclose(np.asarray(em.next_pixels(obs, change)).ravel(), [20.0, 250.0, 255.0])
    np.testing.assert_allclose(np.asarray(em.next_pixels(obs, -change)).ravel(), [20.0, 250.0, 224.5], rtol=1e-6)
    nxt = jnp.array([200], jnp.uint8).reshape(1, 1, 1, 1)
    np.testing.assert_allclose(float(em.change_loss(change, obs, nxt)), (0.1 - (200 - 250) / 255) ** 2, rtol=1e-6)


def test_pixel_metrics_by_hand():
    """Two 1x2 frames: the first predicted within the tolerance on both pixels (off by 0 and 3), the second off by
    20 on one; "no change" is right on the second frame only (the first's changes by 12, over the tolerance 8)."""
    obs = jnp.array([[[[0], [100]]], [[[50], [60]]]], jnp.uint8)  # [2, 1, 2, 1]
    nxt = jnp.array([[[[12], [100]]], [[[50], [60]]]], jnp.uint8)
    change = jnp.array([[[[12], [3]]], [[[0], [20]]]], jnp.float32) / 255
    m = em.pixel_metrics(change, jnp.array([1.0, 0.0]), obs, nxt, jnp.array([0.0, 0.5]))
    assert float(m["cell_accuracy"]) == 0.75 and float(m["frame_accuracy"]) == 0.5
    np.testing.assert_allclose(float(m["pixel_mae"]), (0 + 3 + 0 + 20) / 4, rtol=1e-5)
    np.testing.assert_allclose(float(m["reward_mae"]), 0.75, rtol=1e-6)
    assert float(m["copy_frame_accuracy"]) == 0.5


def test_frame_kind_follows_the_observations():
    assert em.frame_kind((84, 84, 4), np.uint8) is em.PIXELS
    assert em.frame_kind((10, 10, 4), np.float32) is em.PLANES and em.frame_kind((4,), np.uint8) is em.PLANES


def square_cell(frames, cells=9, block=4):
    """The ``(row, col)`` of the brightest ``block x block`` cell of each frame ``[M, H, W, 1]`` -> ``[M]`` flat index."""
    m = frames.shape[0]
    per_cell = np.asarray(frames, np.float32).reshape(m, cells, block, cells, block).mean((2, 4))
    return per_cell.reshape(m, -1).argmax(-1)


def test_pixel_env_model_learns_toy_env():
    """The pixel model learns the toy env's moves from 80% of its 324 transitions (1,500 Adam steps of 64 at
    lr 3e-3, 16 channels). On the held-out 20%: the square's new cell is the brightest cell of the predicted
    frame in at least 95% of frames, the pixel error is at most a quarter of the "no change" predictor's, and
    the reward error is small. Not exact, unlike the binary-plane model on its toy env: the regression of the
    change leaves errors over the tolerance on about 2% of the pixels (measured 2026-12-04: cell accuracy
    0.984, pixel MAE 0.65 against the copy predictor's 4.9, frame accuracy 0-0.27 over seeds and budgets),
    so frame accuracy is not asserted."""
    data = toy_pixel_transitions()
    perm = np.random.default_rng(0).permutation(data.obs.shape[0])
    cut = data.obs.shape[0] // 5
    held, train = (jax.tree_util.tree_map(lambda x: x[perm[s]], data) for s in (slice(0, cut), slice(cut, None)))
    model = em.PixelEnvModel(num_actions=4, channels=16)
    params, _ = em.make_train_model(model, num_updates=1500, batch_size=64)(jax.random.PRNGKey(0), train, 3e-3)
    m = em.evaluate_model(model.apply, params, held, kind=em.PIXELS)
    change, _ = model.apply(params, held.obs, held.action)
    predicted = em.next_pixels(held.obs, change)[..., -1:]
    located = (square_cell(predicted) == square_cell(held.next_obs)).mean()
    copy = em.pixel_metrics(jnp.zeros_like(change), jnp.zeros(cut), held.obs, held.next_obs, held.reward)
    print(m, "located", located, "copy MAE", float(copy["pixel_mae"]))
    bumps = float(held.reward.mean())
    assert abs(m["copy_frame_accuracy"] - bumps) < 1e-6  # only a bump leaves the newest frame unchanged
    assert located >= 0.95, located
    assert m["pixel_mae"] <= 0.25 * float(copy["pixel_mae"]) and m["cell_accuracy"] > float(copy["cell_accuracy"]), m
    assert m["reward_mae"] < 0.1, m


def test_i2a_trains_on_atari_pixels_through_jaxrl_train(tmp_path):
    """``jaxrl train i2a --env envpool:Breakout-v5`` runs every stage on 84x84x4 uint8 frames (the A2C baseline
    with the Nature CNN, the pixel env model, the agent with strided convs) at tiny budgets: exit 0, summary.json
    holds the pixel model's metrics (``kind: pixels``), and metrics.csv has the agent's rows. Plumbing, not
    learning: on 2 CPU cores the agent runs at about 20 env steps/s (each step imagines 4 branches through the
    model at 84x84), a path meant for a GPU."""
    from _small_runs import jaxrl_cli, read_rows

    out = tmp_path / "run"
    p = jaxrl_cli("train", "i2a", "--env", "envpool:Breakout-v5", "--num-envs", "4", "--num-steps", "4",
                  "--total-steps", "32", "--baseline-steps", "64", "--model-transitions", "64", "--model-updates", "4",
                  "--model-batch", "8", "--hidden", "8", "--channels", "2", "--encoder-hidden", "4",
                  "--rollout-hidden", "4", "--model-channels", "4", "--rollout-steps", "2", "--eval-every", "0",
                  "--out", str(out), timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "stage 2/3 env model" in p.stderr and "pixel MAE" in p.stderr
    metrics = json.loads((out / "summary.json").read_text())["env_model"]
    assert metrics["kind"] == "pixels"
    assert {"cell_accuracy", "frame_accuracy", "reward_mae", "pixel_mae", "copy_frame_accuracy"} <= set(metrics)
    assert 0.0 <= metrics["frame_accuracy"] <= metrics["cell_accuracy"] <= 1.0 and metrics["pixel_mae"] >= 0
    rows = read_rows(out / "metrics.csv")
    assert rows and int(rows[-1]["env_steps"]) == 32


@pytest.mark.parametrize("shape", [(42, 42), (32, 32)])
def test_pixel_frames_the_model_cannot_take_are_refused(shape):
    """Sides not divisible by the pixel model's stride, or below the Nature CNN's 36: one ConfigError naming env."""
    from types import SimpleNamespace

    from jaxrl.agents import i2a
    from jaxrl.config import ConfigError

    spec = SimpleNamespace(discrete=True, obs_shape=shape + (4,), obs_dtype=np.uint8, env_id="toy", action_space=4)
    with pytest.raises(ConfigError, match="84x84") as e:
        i2a.check_env(spec)
    assert e.value.field == "env"
