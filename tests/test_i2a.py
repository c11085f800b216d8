"""I2A (jaxrl/agents/i2a.py) and its environment model and imagination (jaxrl/networks/env_model.py,
jaxrl/networks/imagination.py)."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.networks import env_model as em

MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])


def toy_transitions(size=5):
    """A deterministic toy env on binary planes: plane 0 holds the agent, plane 1 a goal; 4 actions move
    the agent one cell (blocked at the border); reward 1 when the move is blocked (a bump). Every
    (agent, goal, action) triple once: ``size**4 * 4`` transitions."""
    obs, act, nxt, rew = [], [], [], []
    for ay in range(size):
        for ax in range(size):
            for gy in range(size):
                for gx in range(size):
                    for a, (dy, dx) in enumerate(MOVES):
                        o = np.zeros((size, size, 2), np.float32)
                        o[ay, ax, 0] = o[gy, gx, 1] = 1
                        ny, nx = min(max(ay + dy, 0), size - 1), min(max(ax + dx, 0), size - 1)
                        n = np.zeros_like(o)
                        n[ny, nx, 0] = n[gy, gx, 1] = 1
                        obs.append(o), act.append(a), nxt.append(n), rew.append(float((ny, nx) == (ay, ax)))
    return em.Transitions(*(jnp.asarray(np.stack(x)) for x in (obs, np.array(act, np.int32), nxt, rew)))


def test_env_model_learns_toy_env_exactly():
    """Trained on 80% of the toy env's transitions, the model predicts every held-out next frame exactly
    (frame accuracy 1.0), and rewards to a mean absolute error under 0.1 (measured 0.057; 1500 Adam
    steps, about 10 s of training and 25 s of compiling on the shared 2 cores)."""
    data = toy_transitions()
    perm = np.random.default_rng(0).permutation(data.obs.shape[0])
    cut = int(0.8 * len(perm))
    train, held = (jax.tree_util.tree_map(lambda x: x[perm[s]], data) for s in (slice(0, cut), slice(cut, None)))
    model = em.EnvModel(num_actions=4, channels=16, reward_hidden=16)
    params, losses = em.make_train_model(model, num_updates=1500, batch_size=64)(jax.random.PRNGKey(0), train, 1e-2)
    m = em.evaluate_model(model.apply, params, held)
    assert float(losses[-100:].mean()) < 0.1 * float(losses[:10].mean())
    assert m["cell_accuracy"] == 1.0 and m["frame_accuracy"] == 1.0, m
    assert m["reward_mae"] < 0.1, m  # the best constant (0) has MAE 0.2


def test_model_metrics_by_hand():
    """Two frames of 4 cells: one cell wrong in the second frame -> cell 7/8, frame 1/2; reward MAE by hand."""
    nxt = jnp.array([[1, 0, 0, 1], [0, 1, 1, 0]], jnp.float32).reshape(2, 2, 2, 1)
    logits = jnp.array([[3, -1, -2, 5], [-1, 2, -3, -1]], jnp.float32).reshape(2, 2, 2, 1)
    m = em.model_metrics(logits, jnp.array([0.5, 1.0]), nxt, jnp.array([0.0, 2.0]))
    assert float(m["cell_accuracy"]) == 7 / 8 and float(m["frame_accuracy"]) == 0.5
    assert abs(float(m["reward_mae"]) - 0.75) < 1e-6
    # Bernoulli loss against the formula -[y log s(x) + (1 - y) log(1 - s(x))]
    s = jax.nn.sigmoid(logits)
    ref = -(nxt * jnp.log(s) + (1 - nxt) * jnp.log(1 - s)).mean()
    assert abs(float(em.bernoulli_logit_loss(logits, nxt)) - float(ref)) < 1e-5
