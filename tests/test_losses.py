"""Policy and value losses against rlax, distrax and hand computations; shape checks; import rule."""
import ast
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

import jaxrl
from jaxrl import losses, returns
from jaxrl.networks import distributions

JIT = pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])


def _maybe_jit(f, jit, **kw):
    return jax.jit(f, **kw) if jit else f


def _normal(rng, *shape, scale=1.0):
    return jnp.asarray(rng.normal(scale=scale, size=shape), jnp.float32)


@JIT
@pytest.mark.parametrize("clip_eps", [0.1, 0.2])
def test_ppo_clip_loss_matches_rlax_value_and_gradient(clip_eps, jit):
    rng = np.random.default_rng(0)
    B = 64
    old_logp = _normal(rng, B)
    logp = old_logp + _normal(rng, B, scale=0.3)  # ratios on both sides of the clip range
    adv = _normal(rng, B)
    ratio_ = np.exp(np.asarray(logp - old_logp))
    assert (ratio_ > 1 + clip_eps).any() and (ratio_ < 1 - clip_eps).any()
    assert (adv > 0).any() and (adv < 0).any()
    f = _maybe_jit(losses.ppo_clip_loss, jit, static_argnums=3)
    loss, ratio = f(logp, old_logp, adv, clip_eps)
    np.testing.assert_allclose(ratio, jnp.exp(logp - old_logp), rtol=1e-6)
    # rlax takes prob ratios and advantages and returns the mean loss to minimise: same sign as ours
    oracle = rlax.clipped_surrogate_pg_loss(ratio, adv, clip_eps)
    np.testing.assert_allclose(loss, oracle, rtol=1e-5, atol=1e-6)
    g = jax.grad(lambda lp: f(lp, old_logp, adv, clip_eps)[0])(logp)
    g_oracle = jax.grad(lambda lp: rlax.clipped_surrogate_pg_loss(jnp.exp(lp - old_logp), adv, clip_eps))(logp)
    np.testing.assert_allclose(g, g_oracle, rtol=1e-5, atol=1e-7)


@JIT
def test_clipped_value_loss_hand_computed(jit):
    eps = 0.2
    old = jnp.array([0.0, 0.0, 0.0, 1.0])
    values = jnp.array([1.0, -1.0, 0.1, 1.5])
    targets = jnp.array([2.0, 2.0, -1.0, 0.0])
    # row 0: moved 1.0 towards the target, clipped to 0.2: sq 1.0, clipped sq 1.8^2 = 3.24 -> the clipped branch
    # row 1: moved away from the target: sq 9.0, clipped (-0.2 - 2)^2 = 4.84 -> the unclipped branch
    # row 2: inside the clip range: both 1.1^2 = 1.21
    # row 3: moved 0.5 away from target 0, clipped to 1.2: sq 2.25, clipped 1.44 -> unclipped
    per = np.array([3.24, 9.0, 1.21, 2.25])
    out = _maybe_jit(losses.clipped_value_loss, jit, static_argnums=3)(values, old, targets, eps)
    np.testing.assert_allclose(out, 0.5 * per.mean(), rtol=1e-6)
    # random inputs against the formula in numpy
    rng = np.random.default_rng(1)
    v, o, t = (rng.normal(size=32).astype(np.float32) for _ in range(3))
    c = o + np.clip(v - o, -eps, eps)
    ref = 0.5 * np.maximum((v - t) ** 2, (c - t) ** 2).mean()
    assert ((c - t) ** 2 > (v - t) ** 2).any()
    np.testing.assert_allclose(losses.clipped_value_loss(v, o, t, eps), ref, rtol=1e-5)


@JIT
def test_policy_gradient_loss_matches_rlax(jit):
    rng = np.random.default_rng(2)
    B, A = 32, 5
    logits = _normal(rng, B, A)
    a = jnp.asarray(rng.integers(0, A, size=B), jnp.int32)
    adv = _normal(rng, B)

    def ours(logits, adv):
        return losses.policy_gradient_loss(distributions.categorical_log_prob(logits, a), adv)

    f = _maybe_jit(ours, jit)
    oracle = rlax.policy_gradient_loss(logits, a, adv, jnp.ones(B))
    np.testing.assert_allclose(f(logits, adv), oracle, rtol=1e-5, atol=1e-6)
    g, g_adv = jax.grad(f, argnums=(0, 1))(logits, adv)
    np.testing.assert_allclose(g, jax.grad(rlax.policy_gradient_loss)(logits, a, adv, jnp.ones(B)), rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_array_equal(g_adv, 0.0)  # advantages are not differentiated through


@JIT
@pytest.mark.parametrize("delta", [0.5, 2.0])
def test_huber_matches_rlax_for_other_deltas(delta, jit):
    x = jnp.asarray(np.random.default_rng(4).normal(scale=3.0, size=64), jnp.float32)
    np.testing.assert_allclose(_maybe_jit(losses.huber, jit, static_argnums=1)(x, delta), rlax.huber_loss(x, delta),
                               rtol=1e-6)
    np.testing.assert_allclose(losses.td_loss(x, None, "huber", delta), rlax.huber_loss(x, delta).mean(), rtol=1e-5)


@pytest.mark.parametrize("k", [None, 7])
def test_select_action_values_picks_the_taken_action(k):
    rng = np.random.default_rng(5)
    values = _normal(rng, 16, 4) if k is None else _normal(rng, 16, 4, k)
    a = jnp.asarray(rng.integers(0, 4, size=16), jnp.int32)
    out = returns.select_action_values(values, a)
    np.testing.assert_array_equal(out, values[jnp.arange(16), a])


# ----------------------------------------------------------------------------- chex shape checks


@JIT
def test_wrong_shapes_fail_at_trace_time_in_losses(jit):
    f = _maybe_jit(losses.ppo_clip_loss, jit, static_argnums=3)
    with pytest.raises(AssertionError, match="shape"):
        f(jnp.zeros(8), jnp.zeros(8), jnp.zeros((8, 1)), 0.2)  # advantages [B, 1] would broadcast silently
    with pytest.raises(AssertionError):
        _maybe_jit(losses.clipped_value_loss, jit)(jnp.zeros(8), jnp.zeros(8), jnp.zeros(4), 0.2)
    with pytest.raises(AssertionError):
        losses.td_loss(jnp.zeros(8), jnp.zeros((8, 1)))


@JIT
def test_wrong_shapes_fail_at_trace_time_in_returns(jit):
    T, N = 5, 3
    z, b = jnp.zeros((T, N)), jnp.zeros((T, N), bool)
    with pytest.raises(AssertionError, match="shape"):  # values [T + 1, N], as rlax takes them
        _maybe_jit(returns.gae, jit)(z, jnp.zeros((T + 1, N)), z, b, b, 0.99, 0.95)
    with pytest.raises(AssertionError):
        _maybe_jit(returns.double_q_target, jit)(jnp.zeros(4), jnp.zeros(4), jnp.zeros((4, 2)), jnp.zeros((4, 3)))
    with pytest.raises(AssertionError, match="rank"):
        returns.select_action_values(jnp.zeros((4, 2)), jnp.zeros((4, 1), jnp.int32))


# ----------------------------------------------------------------------------- import rule


def _imported_roots(path):
    """Top-level package names a module imports (anywhere in the file)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            # jaxrl.config is the one jaxrl module allowed: its ConfigError (head_for refuses token actions)
            roots.add("jaxrl.config" if node.module == "jaxrl.config" else node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("rel,extra", [("returns.py", set()), ("losses.py", set()),
                                       ("networks/distributions.py", {"typing", "jaxrl.config"})])
def test_core_modules_import_only_jax_numpy_chex(rel, extra):
    """returns, losses and distributions are pure functions: no flax, no other jaxrl module."""
    roots = _imported_roots(pathlib.Path(jaxrl.__file__).parent / rel)
    assert roots <= {"__future__", "jax", "numpy", "chex"} | extra, roots
