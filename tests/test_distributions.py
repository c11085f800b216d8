"""Policy distributions and heads (jaxrl.networks.distributions) against distrax, the oracle."""
import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.envs.core import Box, Discrete
from jaxrl.networks import PolicyHead, head_for, policy_head
from jaxrl.networks import distributions as D

JIT = pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])


def _maybe_jit(f, jit):
    return jax.jit(f) if jit else f


def _normal(rng, *shape, scale=1.0):
    return jnp.asarray(rng.normal(scale=scale, size=shape), jnp.float32)


def _tanh_oracle(mean, log_std):
    """SAC's squashed Gaussian in distrax: tanh applied to every coordinate of a diagonal Gaussian."""
    scale = jnp.broadcast_to(jnp.exp(log_std), mean.shape)
    return distrax.Transformed(distrax.MultivariateNormalDiag(mean, scale), distrax.Block(distrax.Tanh(), 1))


# ----------------------------------------------------------------------------- categorical


@JIT
@pytest.mark.parametrize("shape", [(16, 5), (4, 3, 7)])
def test_categorical_log_prob_and_entropy_match_distrax(shape, jit):
    rng = np.random.default_rng(0)
    logits = _normal(rng, *shape, scale=2.0)
    actions = jnp.asarray(rng.integers(0, shape[-1], size=shape[:-1]), jnp.int32)
    oracle = distrax.Categorical(logits=logits)
    logp = _maybe_jit(D.categorical_log_prob, jit)(logits, actions)
    ent = _maybe_jit(D.categorical_entropy, jit)(logits)
    assert logp.shape == ent.shape == shape[:-1]
    np.testing.assert_allclose(logp, oracle.log_prob(actions), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ent, oracle.entropy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(D.categorical_mode(logits), jnp.argmax(logits, -1))


@JIT
def test_gumbel_max_sample_has_the_categorical_law(jit):
    """50k Gumbel-max draws per row; a chi-square test against softmax(logits) at level 0.001."""
    logits = jnp.array([[0.0, 1.0, -1.0, 2.0, 0.5], [3.0, 0.0, 0.0, 0.0, -2.0], [0.0] * 5])
    head = policy_head("categorical", 5)
    n = 50_000
    noise = head.noise(jax.random.PRNGKey(0), (n, 3))
    assert noise.shape == (n, 3, 5)
    a = _maybe_jit(head.sample, jit)(logits, noise)
    assert a.shape == (n, 3) and a.dtype == jnp.int32
    p = np.asarray(jax.nn.softmax(logits))
    for row in range(3):
        counts = np.bincount(np.asarray(a[:, row]), minlength=5)
        chi2 = ((counts - n * p[row]) ** 2 / (n * p[row])).sum()
        assert chi2 < 18.47, (row, counts, n * p[row])  # chi-square, 4 dof, p = 0.001
    # jax.random.categorical has the same law (and is what categorical_sample draws)
    b = D.categorical_sample(jax.random.PRNGKey(1), jnp.broadcast_to(logits, (n, 3, 5)))
    np.testing.assert_allclose(np.mean(np.asarray(b)[..., None] == np.arange(5), 0), p, atol=0.01)


@JIT
def test_categorical_head_sample_and_log_prob(jit):
    rng = np.random.default_rng(1)
    logits = _normal(rng, 8, 4)
    head = head_for(Discrete(4))
    assert isinstance(head, PolicyHead) and head.kind == "categorical" and head.action_dim == 4
    noise = head.noise(jax.random.PRNGKey(2), (8,))
    a, logp = _maybe_jit(head.sample_and_log_prob, jit)(logits, noise)
    np.testing.assert_array_equal(a, head.sample(logits, noise))
    np.testing.assert_allclose(logp, distrax.Categorical(logits=logits).log_prob(a), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(head.entropy(logits), distrax.Categorical(logits=logits).entropy(), rtol=1e-5)
    np.testing.assert_array_equal(head.mode(logits), jnp.argmax(logits, -1))
    np.testing.assert_array_equal(head.to_env(a), a)


# ----------------------------------------------------------------------------- diagonal Gaussian


@JIT
@pytest.mark.parametrize("state_dependent", [False, True], ids=["shared_log_std", "state_log_std"])
def test_gaussian_log_prob_and_entropy_match_distrax(state_dependent, jit):
    rng = np.random.default_rng(2)
    B, A = 16, 3
    mean = _normal(rng, B, A)
    log_std = _normal(rng, B, A, scale=0.5) if state_dependent else _normal(rng, A, scale=0.5)
    actions = _normal(rng, B, A, scale=2.0)
    oracle = distrax.MultivariateNormalDiag(mean, jnp.broadcast_to(jnp.exp(log_std), (B, A)))
    logp = _maybe_jit(D.gaussian_log_prob, jit)(mean, log_std, actions)
    ent = _maybe_jit(D.gaussian_entropy, jit)(log_std, mean)
    assert logp.shape == ent.shape == (B,)
    np.testing.assert_allclose(logp, oracle.log_prob(actions), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ent, oracle.entropy(), rtol=1e-5, atol=1e-5)
    # the head: dist = (mean, log_std)
    head = policy_head("gaussian", A)
    noise = head.noise(jax.random.PRNGKey(0), (B,))
    a, lp = _maybe_jit(head.sample_and_log_prob, jit)((mean, log_std), noise)
    np.testing.assert_allclose(a, mean + jnp.exp(log_std) * noise, rtol=1e-6)
    np.testing.assert_allclose(lp, oracle.log_prob(a), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(head.entropy((mean, log_std)), oracle.entropy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(head.mode((mean, log_std)), mean)


def test_gaussian_sample_moments():
    mean, log_std = jnp.array([1.0, -2.0]), jnp.array([0.0, jnp.log(3.0)])
    x = D.gaussian_sample(jax.random.PRNGKey(0), jnp.broadcast_to(mean, (50_000, 2)), log_std)
    np.testing.assert_allclose(x.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(x.std(0), jnp.exp(log_std), rtol=0.02)


# ----------------------------------------------------------------------------- tanh-squashed Gaussian


def _tanh_inputs(rng, state_dependent, B=32, A=3):
    mean = _normal(rng, B, A, scale=0.7)
    log_std = _normal(rng, B, A, scale=0.3) - 0.5 if state_dependent else _normal(rng, A, scale=0.3) - 0.5
    return mean, log_std


@JIT
@pytest.mark.parametrize("state_dependent", [False, True], ids=["shared_log_std", "state_log_std"])
def test_tanh_gaussian_log_prob_matches_distrax(state_dependent, jit):
    rng = np.random.default_rng(3)
    mean, log_std = _tanh_inputs(rng, state_dependent)
    actions = jnp.tanh(_normal(rng, *mean.shape, scale=1.0))  # |u| mostly < 3: away from the edges
    oracle = _tanh_oracle(mean, log_std)
    logp = _maybe_jit(D.tanh_gaussian_log_prob, jit)(mean, log_std, actions)
    assert logp.shape == mean.shape[:-1]
    np.testing.assert_allclose(logp, oracle.log_prob(actions), rtol=1e-5, atol=1e-5)


@JIT
@pytest.mark.parametrize("state_dependent", [False, True], ids=["shared_log_std", "state_log_std"])
def test_tanh_gaussian_sample_log_prob_is_the_log_prob_of_the_action(state_dependent, jit):
    rng = np.random.default_rng(4)
    mean, log_std = _tanh_inputs(rng, state_dependent)
    a, logp = _maybe_jit(D.tanh_gaussian_sample, jit)(jax.random.PRNGKey(5), mean, log_std)
    assert a.shape == mean.shape and logp.shape == mean.shape[:-1]
    assert jnp.all(jnp.abs(a) < 1.0)
    inner = jnp.all(jnp.abs(a) < 0.995, -1)  # away from +-1, where atanh loses float32 precision
    assert inner.mean() > 0.9
    np.testing.assert_allclose(logp[inner], D.tanh_gaussian_log_prob(mean, log_std, a)[inner], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logp[inner], _tanh_oracle(mean, log_std).log_prob(a)[inner], rtol=1e-5, atol=1e-5)
    # the head's sample is the same function of the presampled noise
    head = policy_head("tanh_gaussian", mean.shape[-1])
    noise = head.noise(jax.random.PRNGKey(6), mean.shape[:-1])
    a2, logp2 = _maybe_jit(head.sample_and_log_prob, jit)((mean, log_std), noise)
    np.testing.assert_allclose(a2, jnp.tanh(mean + jnp.exp(log_std) * noise), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_maybe_jit(head.sample, jit)((mean, log_std), noise), a2, rtol=1e-6, atol=1e-6)
    ok = jnp.all(jnp.abs(a2) < 0.995, -1)
    np.testing.assert_allclose(logp2[ok], head.log_prob((mean, log_std), a2)[ok], rtol=1e-5, atol=1e-5)


def test_tanh_gaussian_log_prob_is_finite_at_the_edges_and_far_out():
    mean, log_std = jnp.zeros((2, 2)), jnp.zeros(2)
    assert jnp.all(jnp.isfinite(D.tanh_gaussian_log_prob(mean, log_std, jnp.array([[1.0, -1.0], [0.0, 1.0]]))))
    # pre-squash values where float32 tanh is exactly +-1: the sampled log-prob stays finite
    a, logp = D.tanh_gaussian_sample_and_log_prob((mean, log_std), jnp.array([[30.0, -30.0], [0.0, 100.0]]))
    assert jnp.all(jnp.isfinite(logp)) and jnp.all(jnp.isfinite(jax.grad(
        lambda m: D.tanh_gaussian_sample_and_log_prob((m, log_std), jnp.full((2, 2), 30.0))[1].sum())(mean)))
    np.testing.assert_array_equal(D.tanh_gaussian_mode(mean), jnp.zeros((2, 2)))


@JIT
def test_tanh_gaussian_entropy_estimate_within_mc_error_of_distrax(jit):
    rng = np.random.default_rng(7)
    mean, log_std = _tanh_inputs(rng, True, B=4, A=2)
    n = 20_000
    f = jax.jit(D.tanh_gaussian_entropy_estimate, static_argnums=3) if jit else D.tanh_gaussian_entropy_estimate
    ours = f(jax.random.PRNGKey(8), mean, log_std, n)
    _, lp = _tanh_oracle(mean, log_std).sample_and_log_prob(seed=jax.random.PRNGKey(9), sample_shape=n)
    theirs, sd = -lp.mean(0), lp.std(0)
    assert ours.shape == (4,)
    np.testing.assert_array_less(jnp.abs(ours - theirs), 5.0 * jnp.sqrt(2.0) * sd / np.sqrt(n))
    # the head's entropy is the (closed-form) entropy of the Gaussian before squashing
    head = policy_head("tanh_gaussian", 2)
    np.testing.assert_allclose(head.entropy((mean, log_std)), D.gaussian_entropy(log_std), rtol=1e-6)


# ----------------------------------------------------------------------------- to_env, head_for


def test_to_env_maps_to_the_box():
    low, high = np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32)
    box = Box(low, high, (2,))
    tanh_head = head_for(box, "tanh_gaussian")
    assert tanh_head.kind == "tanh_gaussian" and tanh_head.action_dim == 2
    np.testing.assert_allclose(tanh_head.to_env(jnp.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.5]])),
                               [[-2.0, 0.0], [2.0, 1.0], [0.0, 0.75]], rtol=1e-6)
    a = jnp.tanh(jnp.linspace(-5, 5, 22).reshape(11, 2))
    assert jnp.all((tanh_head.to_env(a) >= low) & (tanh_head.to_env(a) <= high))
    gauss_head = head_for(box)
    assert gauss_head.kind == "gaussian"
    np.testing.assert_allclose(gauss_head.to_env(jnp.array([[-5.0, 0.5], [3.0, -0.1]])), [[-2.0, 0.5], [2.0, 0.0]])
    # no bounds: identity
    x = jnp.array([[3.0, -4.0]])
    np.testing.assert_array_equal(policy_head("gaussian", 2).to_env(x), x)
    np.testing.assert_array_equal(policy_head("tanh_gaussian", 2).to_env(x), x)


def test_head_errors():
    with pytest.raises(ValueError, match="kind"):
        policy_head("beta", 2)
    with pytest.raises(ValueError, match="continuous_kind"):
        head_for(Box(np.zeros(2), np.ones(2), (2,)), "categorical")
    with pytest.raises(ValueError, match="finite"):
        head_for(Box(np.full(2, -np.inf), np.full(2, np.inf), (2,)), "tanh_gaussian")
    with pytest.raises(AssertionError):  # chex: actions [B] for logits [B, A]
        D.categorical_log_prob(jnp.zeros((4, 3)), jnp.zeros((4, 1), jnp.int32))
