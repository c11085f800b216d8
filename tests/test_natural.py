"""TRPO's pieces (jaxrl.natural) and the policy KL divergences, against explicit oracles.

Oracles: distrax for the KLs; the explicit Fisher matrix (``jax.hessian`` of the mean KL, and the
expected outer product of score functions) for Fisher-vector products; ``numpy.linalg.solve`` for
conjugate gradient; the KL recomputed at the returned parameters for the line search.
"""
import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jaxrl import natural
from jaxrl.networks import distributions as D

OBS, HID = 3, 5


def _net(kind, A=4):
    """A tiny two-layer policy on a flat parameter vector: theta [P] -> dist over obs [B, OBS]."""
    sizes = [(OBS, HID), (HID,), (HID, A), (A,)] + ([(A,)] if kind == "gaussian" else [])
    P = sum(int(np.prod(s)) for s in sizes)

    def dist(theta, obs):
        parts, i = [], 0
        for s in sizes:
            n = int(np.prod(s))
            parts.append(theta[i:i + n].reshape(s))
            i += n
        h = jnp.tanh(obs @ parts[0] + parts[1])
        out = h @ parts[2] + parts[3]
        return out if kind == "categorical" else (out, parts[4])

    return dist, P


def _setup(kind, seed=0, B=7):
    dist, P = _net(kind)
    rng = np.random.default_rng(seed)
    theta = jnp.asarray(rng.normal(scale=0.7, size=P), jnp.float32)
    obs = jnp.asarray(rng.normal(size=(B, OBS)), jnp.float32)
    old = jax.lax.stop_gradient(dist(theta, obs))

    def kl_fn(t):
        return D.kl_divergence(kind, old, dist(t, obs)).mean()

    return dist, theta, obs, old, kl_fn, rng


# ----------------------------------------------------------------------------- KL divergences


def test_categorical_kl_matches_distrax():
    rng = np.random.default_rng(0)
    p, q = (jnp.asarray(rng.normal(scale=2, size=(6, 5)), jnp.float32) for _ in range(2))
    want = distrax.Categorical(logits=p).kl_divergence(distrax.Categorical(logits=q))
    np.testing.assert_allclose(D.categorical_kl(p, q), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(D.categorical_kl(p, p), 0.0, atol=1e-6)


@pytest.mark.parametrize("state_dependent", [False, True])
def test_gaussian_kl_matches_distrax(state_dependent):
    rng = np.random.default_rng(1)
    shape = (6, 3) if state_dependent else (3,)
    mp, mq = (jnp.asarray(rng.normal(size=(6, 3)), jnp.float32) for _ in range(2))
    lp, lq = (jnp.asarray(rng.normal(scale=0.5, size=shape), jnp.float32) for _ in range(2))
    got = D.gaussian_kl((mp, lp), (mq, lq))
    want = distrax.MultivariateNormalDiag(mp, jnp.broadcast_to(jnp.exp(lp), mp.shape)).kl_divergence(
        distrax.MultivariateNormalDiag(mq, jnp.broadcast_to(jnp.exp(lq), mq.shape)))
    assert got.shape == (6,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(D.kl_divergence("tanh_gaussian", (mp, lp), (mq, lq)), want, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- Fisher-vector products


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_fisher_vector_product_equals_the_explicit_hessian_of_the_kl(kind):
    _, theta, _, _, kl_fn, rng = _setup(kind)
    H = np.asarray(jax.jit(jax.hessian(kl_fn))(theta), np.float64)
    v = jnp.asarray(rng.normal(size=theta.shape), jnp.float32)
    fvp = jax.jit(natural.fisher_vector_product(kl_fn, theta, damping=0.1))
    np.testing.assert_allclose(fvp(v), H @ np.asarray(v) + 0.1 * np.asarray(v), rtol=1e-4, atol=1e-5)
    assert np.linalg.eigvalsh(H).min() > -1e-5  # a Fisher matrix: positive semi-definite


def test_fisher_vector_product_equals_the_expected_outer_product_of_scores():
    """Categorical: F = mean_s sum_a pi(a|s) grad log pi(a|s) grad log pi(a|s)^T, summed exactly over a."""
    dist, theta, obs, _, kl_fn, rng = _setup("categorical")
    A = dist(theta, obs).shape[-1]

    def logp(t, s, a):
        return jax.nn.log_softmax(dist(t, obs[s][None])[0])[a]

    B = obs.shape[0]
    scores = jax.jit(jax.vmap(jax.vmap(jax.grad(logp), (None, None, 0)), (None, 0, None)))(
        theta, jnp.arange(B), jnp.arange(A))  # [B, A, P]
    p = np.asarray(jax.nn.softmax(dist(theta, obs)), np.float64)  # [B, A]
    g = np.asarray(scores, np.float64)
    F = np.einsum("sa,sap,saq->pq", p, g, g) / B
    v = rng.normal(size=theta.shape)
    fvp = natural.fisher_vector_product(kl_fn, theta)
    np.testing.assert_allclose(fvp(jnp.asarray(v, jnp.float32)), F @ v, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- conjugate gradient


def _spd(rng, n, cond):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (q * np.geomspace(1.0, cond, n)) @ q.T


@pytest.mark.parametrize("n,cond,iters", [(5, 10.0, 5), (20, 1e3, 60), (40, 1e2, 40)])
def test_conjugate_gradient_solves_spd_systems(n, cond, iters):
    """To float32 precision: the relative error of x is at most about cond * 1e-6 * a few."""
    rng = np.random.default_rng(n)
    A, b = _spd(rng, n, cond), rng.normal(size=n)
    x, rr = jax.jit(lambda b: natural.conjugate_gradient(lambda v: jnp.asarray(A, jnp.float32) @ v, b, iters,
                                                          tol=1e-12))(jnp.asarray(b, jnp.float32))
    want = np.linalg.solve(A, b)
    assert np.linalg.norm(np.asarray(x, np.float64) - want) < 1e-5 * cond * np.linalg.norm(want)
    assert np.linalg.norm(A @ np.asarray(x, np.float64) - b) < 1e-4 * np.linalg.norm(b)


def test_conjugate_gradient_vmaps_and_stops_each_member_at_its_tolerance():
    rng = np.random.default_rng(3)
    As = jnp.asarray(np.stack([_spd(rng, 8, 10.0), np.eye(8) * 2.0]), jnp.float32)  # the 2nd converges in 1 step
    bs = jnp.asarray(rng.normal(size=(2, 8)), jnp.float32)
    xs, _ = jax.vmap(lambda A, b: natural.conjugate_gradient(lambda v: A @ v, b, 10, tol=1e-10))(As, bs)
    for A, b, x in zip(As, bs, xs):
        np.testing.assert_allclose(A @ x, b, rtol=1e-3, atol=1e-4)
    few, _ = natural.conjugate_gradient(lambda v: As[0] @ v, bs[0], 2)  # a fixed budget below n: not solved
    assert np.linalg.norm(As[0] @ few - bs[0]) > 1e-3


# ----------------------------------------------------------------------------- step size and line search


def test_scale_to_kl_puts_the_step_on_the_quadratic_kl_boundary():
    _, theta, _, _, kl_fn, rng = _setup("gaussian")
    fvp = jax.jit(natural.fisher_vector_product(kl_fn, theta))
    x = jnp.asarray(rng.normal(size=theta.shape), jnp.float32)
    s = natural.scale_to_kl(x, fvp(x), 0.01)
    np.testing.assert_allclose(0.5 * s @ fvp(s), 0.01, rtol=1e-4)
    np.testing.assert_allclose(kl_fn(theta + 0.1 * s), 0.01 * 0.01, rtol=0.2)  # KL ~ quadratic for small steps
    assert not np.any(natural.scale_to_kl(jnp.zeros(3), jnp.zeros(3), 0.01))


def _objective(kind, seed):
    dist, theta, obs, old, kl_fn, rng = _setup(kind, seed)
    head = D.policy_head(kind, 4)
    actions = head.sample(old, head.noise(jax.random.PRNGKey(seed), (obs.shape[0],)))
    adv = jnp.asarray(rng.normal(size=obs.shape[0]), jnp.float32)
    old_logp = head.log_prob(old, actions)

    def objective(t):
        d = dist(t, obs)
        return (jnp.exp(head.log_prob(d, actions) - old_logp) * adv).mean(), D.kl_divergence(kind, old, d).mean()

    return objective, kl_fn, theta, rng


_SEARCH = {}


def _search(kind):
    """The objective, KL and parameters of ``kind``, with the line search compiled once."""
    if kind not in _SEARCH:
        objective, kl_fn, theta, _ = _objective(kind, 0)
        search = jax.jit(lambda t, s, m: natural.line_search(objective, t, s, m, 10))
        _SEARCH[kind] = objective, jax.jit(kl_fn), theta, search, jax.jit(jax.vmap(objective))
    return _SEARCH[kind]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["categorical", "gaussian"]),
       scale=st.floats(0.01, 30.0), max_kl=st.sampled_from([1e-3, 1e-2, 0.1]))
def test_line_search_never_accepts_a_step_beyond_the_kl_bound(seed, kind, scale, max_kl):
    objective, kl_fn, theta, search, objectives = _search(kind)
    rng = np.random.default_rng(seed)
    step = jnp.asarray(rng.normal(size=theta.shape) * scale / np.sqrt(theta.size), jnp.float32)
    res = search(theta, step, max_kl)
    surr_old = float(objective(theta)[0])
    tried = theta + (0.5 ** np.arange(10, dtype=np.float32))[:, None] * step
    surrs, kls = (np.asarray(x) for x in objectives(tried))
    good = (surrs > surr_old) & (kls <= max_kl)
    if bool(res.accepted):
        k = int(res.tries) - 1
        assert good[k] and not good[:k].any()  # the first acceptable fraction, and no earlier one
        assert float(kl_fn(res.theta)) <= max_kl * (1 + 1e-5)
        np.testing.assert_allclose(res.theta, tried[k], rtol=1e-6, atol=1e-6)
        assert float(res.fraction) == 0.5 ** k and float(res.improvement) > 0
    else:
        assert not good.any() and int(res.tries) == 10
        np.testing.assert_array_equal(res.theta, theta)


def test_line_search_takes_the_full_step_when_it_is_good_and_none_when_nothing_improves():
    objective, _, theta, rng = _objective("gaussian", 1)
    g = jax.grad(lambda t: objective(t)[0])(theta)
    small = 1e-3 * g / jnp.linalg.norm(g)
    res = natural.line_search(objective, theta, small, 0.01, 10)
    assert bool(res.accepted) and float(res.fraction) == 1.0 and int(res.tries) == 1
    res = natural.line_search(objective, theta, -small, 0.01, 10)  # downhill everywhere: refused
    assert not bool(res.accepted)
    np.testing.assert_array_equal(res.theta, theta)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_trpo_step_is_the_damped_natural_gradient_within_the_kl_bound(kind):
    objective, kl_fn, theta, _ = _objective(kind, 2)
    P, damping, max_kl = theta.size, 0.1, 0.01
    new, stats = jax.jit(lambda t: natural.trpo_step(objective, kl_fn, t, max_kl=max_kl, damping=damping,
                                                      cg_iters=P, num_backtracks=10))(theta)
    g = np.asarray(jax.grad(lambda t: objective(t)[0])(theta), np.float64)
    F = np.asarray(jax.jit(jax.hessian(kl_fn))(theta), np.float64) + damping * np.eye(P)
    x = np.linalg.solve(F, g)
    full = x * np.sqrt(2 * max_kl / (x @ F @ x))
    assert bool(stats.search.accepted)
    np.testing.assert_allclose((np.asarray(new) - np.asarray(theta)) / float(stats.search.fraction), full,
                               rtol=2e-2, atol=2e-3 * np.abs(full).max())
    assert float(kl_fn(new)) <= max_kl
    assert float(objective(new)[0]) > float(objective(theta)[0])
