"""K-FAC (jaxrl.kfac) against explicit Kronecker products, per-sample gradients and numpy inverses."""
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import kfac
from jaxrl.networks import ActorCritic
from jaxrl.networks.conv import Conv2D, im2col


def _spd(rng, n, cond=10.0):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (q * np.geomspace(1.0, cond, n)) @ q.T


def _state(layers, A, G, damping):
    st = kfac.State(A, G, A, G, jnp.ones((), jnp.int32))
    return kfac.update_inverses(st, damping)


@pytest.mark.parametrize("damping", [1e-8, 0.01])
def test_preconditioned_dense_gradient_is_the_inverse_kronecker_product_times_the_gradient(damping):
    """[∇W; ∇b] -> (A_d ⊗ G_d)^-1 vec([∇W; ∇b]) (row-major vec), A_d, G_d the damped factors, formed explicitly."""
    rng = np.random.default_rng(0)
    d_in, d_out = 4, 3
    layers = {"Dense_0": kfac.Layer("dense", ("Dense_0",), d_in + 1, d_out)}
    A, G = _spd(rng, d_in + 1), _spd(rng, d_out) * 0.3
    gw, gb = rng.normal(size=(d_in, d_out)), rng.normal(size=d_out)
    st = _state(layers, {"Dense_0": jnp.asarray(A, jnp.float32)}, {"Dense_0": jnp.asarray(G, jnp.float32)}, damping)
    grads = {"params": {"Dense_0": {"kernel": jnp.asarray(gw, jnp.float32), "bias": jnp.asarray(gb, jnp.float32)}}}
    out = kfac.precondition(st, layers, grads)["params"]["Dense_0"]
    Ad, Gd = (np.asarray(x, np.float64) for x in kfac.damped(jnp.asarray(A), jnp.asarray(G), damping))
    want = np.linalg.solve(np.kron(Ad, Gd), np.concatenate([gw, gb[None]]).reshape(-1)).reshape(d_in + 1, d_out)
    np.testing.assert_allclose(out["kernel"], want[:-1], rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(out["bias"], want[-1], rtol=2e-3, atol=1e-4)
    if damping < 1e-6:  # undamped: exactly (A ⊗ G)^-1
        exact = np.linalg.solve(np.kron(A, G), np.concatenate([gw, gb[None]]).reshape(-1))
        np.testing.assert_allclose(np.concatenate([out["kernel"], out["bias"][None]]).reshape(-1), exact,
                                   rtol=5e-3, atol=1e-3)


def test_damping_has_the_pi_correction():
    A, G = jnp.eye(3) * 4.0, jnp.eye(2) * 0.25
    Ad, Gd = kfac.damped(A, G, 0.01)
    pi = np.sqrt(4.0 / 0.25)
    np.testing.assert_allclose(np.diag(Ad), 4.0 + pi * 0.1, rtol=1e-6)
    np.testing.assert_allclose(np.diag(Gd), 0.25 + 0.1 / pi, rtol=1e-6)


@pytest.mark.parametrize("n,cond", [(3, 2.0), (17, 1e2), (65, 1e3)])
def test_newton_schulz_inverse_matches_numpy_and_calls_no_lapack(n, cond):
    rng = np.random.default_rng(n)
    m = _spd(rng, n, cond) * rng.uniform(0.01, 100)
    inv = np.asarray(jax.jit(kfac.spd_inverse)(jnp.asarray(m, jnp.float32)), np.float64)
    np.testing.assert_allclose(inv @ m, np.eye(n), atol=1e-3 * cond ** 0.5)
    hlo = jax.jit(jax.vmap(kfac.spd_inverse)).lower(jnp.zeros((2, n, n))).compile().as_text()
    assert not re.findall(r'custom_call_target="([^"]+)"', hlo)  # no LAPACK (nor any other) custom call


def _mlp():
    net = ActorCritic(3, False, (6, 5), "tanh", 1)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros(4))
    obs = jax.random.normal(jax.random.PRNGKey(1), (9, 4))
    return net, params, obs


def test_find_layers_lists_every_dense_layer_of_the_actor_critic():
    net, params, obs = _mlp()
    layers, shapes = kfac.find_layers(net.apply, params, obs)
    assert sorted(layers) == ["Dense_0", "Dense_1", "MLP_0/Dense_0", "MLP_0/Dense_1", "MLP_1/Dense_0", "MLP_1/Dense_1"]
    for key, layer in layers.items():
        node = params["params"]
        for p in layer.path:
            node = node[p]
        assert (layer.d_in - 1, layer.d_out) == node["kernel"].shape and layer.kind == "dense"
        assert shapes[key].shape == (9, layer.d_out)


def test_taps_give_layer_inputs_and_per_sample_output_gradients():
    """Inputs are the activations entering each layer; the VJP at the zero perturbations is, per sample,
    the gradient of that sample's log-likelihood at the layer's pre-activation (checked at the logits,
    where it is onehot(a) - softmax, and one layer down by the chain rule)."""
    net, params, obs = _mlp()
    layers, shapes = kfac.find_layers(net.apply, params, obs)
    actions = jnp.arange(9) % 3

    def f(e):
        (logits, _, _), inputs = kfac.tapped(net.apply, e)(params, obs)
        return jnp.take_along_axis(jax.nn.log_softmax(logits), actions[:, None], 1).sum(), inputs

    g, inputs = jax.grad(f, has_aux=True)(kfac.zero_perturbations(shapes))
    p = params["params"]
    h1 = jnp.tanh(obs @ p["MLP_0"]["Dense_0"]["kernel"] + p["MLP_0"]["Dense_0"]["bias"])
    h2 = jnp.tanh(h1 @ p["MLP_0"]["Dense_1"]["kernel"] + p["MLP_0"]["Dense_1"]["bias"])
    np.testing.assert_allclose(inputs["MLP_0/Dense_0"], obs, rtol=1e-6)
    np.testing.assert_allclose(inputs["MLP_0/Dense_1"], h1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(inputs["Dense_0"], h2, rtol=1e-5, atol=1e-6)
    logits = h2 @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
    g_logits = jax.nn.one_hot(actions, 3) - jax.nn.softmax(logits)
    np.testing.assert_allclose(g["Dense_0"], g_logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g["MLP_0/Dense_1"], (g_logits @ p["Dense_0"]["kernel"].T) * (1 - h2 ** 2),
                               rtol=1e-4, atol=1e-6)
    assert not np.any(g["MLP_1/Dense_0"])  # the critic does not enter this likelihood
    A, G = kfac.batch_factors(layers, inputs, g, 9)
    a1 = np.concatenate([np.asarray(h2), np.ones((9, 1))], 1)
    np.testing.assert_allclose(A["Dense_0"], a1.T @ a1 / 9, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(G["Dense_0"], np.asarray(g_logits).T @ np.asarray(g_logits) / 9, rtol=1e-5, atol=1e-6)


class _ConvNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        y = Conv2D(3, (2, 2), (1, 1), impl="im2col")(x)
        return nn.Dense(2)(y.reshape(y.shape[0], -1))


def test_convolution_factors_are_over_patches_and_precondition_the_reshaped_kernel():
    """KFC: A = mean over samples and locations of the patch outer products, G = sum over locations of
    g g^T averaged over samples; the kernel [kh, kw, C, O] is preconditioned as [kh*kw*C, O] (+ bias row)."""
    net = _ConvNet()
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 4, 4, 2))
    params = net.init(jax.random.PRNGKey(1), x)
    layers, shapes = kfac.find_layers(net.apply, params, x)
    assert layers["Conv2D_0"] == kfac.Layer("conv", ("Conv2D_0",), 2 * 2 * 2 + 1, 3)
    def f(e):
        out, inputs = kfac.tapped(net.apply, e)(params, x)
        return 0.5 * (out ** 2).sum(), inputs

    g, inputs = jax.grad(f, has_aux=True)(kfac.zero_perturbations(shapes))
    patches = np.asarray(im2col(x, (2, 2), (1, 1))).reshape(-1, 8)  # [5 * 9, 8]
    np.testing.assert_allclose(np.asarray(inputs["Conv2D_0"]).reshape(-1, 8), patches, rtol=1e-6)
    A, G = kfac.batch_factors(layers, inputs, g, 5)
    a1 = np.concatenate([patches, np.ones((45, 1))], 1)
    gc = np.asarray(g["Conv2D_0"]).reshape(-1, 3)
    np.testing.assert_allclose(A["Conv2D_0"], a1.T @ a1 / 45, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(G["Conv2D_0"], gc.T @ gc / 5, rtol=1e-4, atol=1e-6)
    rng = np.random.default_rng(0)
    As = {k: jnp.asarray(_spd(rng, l.d_in), jnp.float32) for k, l in layers.items()}
    Gs = {k: jnp.asarray(_spd(rng, l.d_out), jnp.float32) for k, l in layers.items()}
    st = _state(layers, As, Gs, 1e-8)
    grads = jax.tree_util.tree_map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
    out = kfac.precondition(st, layers, grads)["params"]["Conv2D_0"]
    gk = np.asarray(grads["params"]["Conv2D_0"]["kernel"]).reshape(8, 3)
    vec = np.concatenate([gk, np.asarray(grads["params"]["Conv2D_0"]["bias"])[None]]).reshape(-1)
    want = np.linalg.solve(np.kron(np.asarray(As["Conv2D_0"]), np.asarray(Gs["Conv2D_0"])), vec).reshape(9, 3)
    np.testing.assert_allclose(np.asarray(out["kernel"]).reshape(8, 3), want[:-1], rtol=5e-3, atol=1e-3)
    np.testing.assert_allclose(out["bias"], want[-1], rtol=5e-3, atol=1e-3)


def test_running_factors_start_from_the_first_batch_then_decay():
    layers = {"d": kfac.Layer("dense", ("d",), 2, 1)}
    st = kfac.init(layers)
    np.testing.assert_array_equal(st.A["d"], np.eye(2))
    b1 = ({"d": jnp.full((2, 2), 3.0)}, {"d": jnp.full((1, 1), 5.0)})
    st = kfac.update_factors(st, *b1, 0.9)
    np.testing.assert_allclose(st.A["d"], 3.0)  # the identity is replaced, not averaged in
    st = kfac.update_factors(st, {"d": jnp.full((2, 2), 1.0)}, {"d": jnp.full((1, 1), 1.0)}, 0.9)
    np.testing.assert_allclose(st.A["d"], 0.5 * 3.0 + 0.5 * 1.0)  # second batch: min(0.9, 1/2)
    st = kfac.update_factors(st, {"d": jnp.zeros((2, 2))}, {"d": jnp.zeros((1, 1))}, 0.6)
    np.testing.assert_allclose(st.A["d"], 0.6 * 2.0)  # then the decay
    assert int(st.count) == 3


def test_log_std_and_other_leaves_go_through_other():
    layers = {"Dense_0": kfac.Layer("dense", ("Dense_0",), 3, 2)}
    st = _state(layers, {"Dense_0": jnp.eye(3) * 2}, {"Dense_0": jnp.eye(2)}, 1e-8)
    grads = {"params": {"Dense_0": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}, "log_std": jnp.ones(2)}}
    out = kfac.precondition(st, layers, grads, lambda path, g: g * 7.0 if path[-1].key == "log_std" else g)
    np.testing.assert_allclose(out["params"]["log_std"], 7.0)
    np.testing.assert_allclose(out["params"]["Dense_0"]["kernel"], 0.5, rtol=1e-3)


@pytest.mark.parametrize("lr,max_kl", [(0.25, 1e-3), (0.01, 1e-3), (1.0, 0.5)])
def test_trust_region_scale_bounds_the_quadratic_kl(lr, max_kl):
    rng = np.random.default_rng(0)
    grads = {"a": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32), "b": jnp.asarray(rng.normal(size=4), jnp.float32)}
    nat = jax.tree_util.tree_map(lambda g: 2.0 * g, grads)  # F = I / 2
    scale = float(kfac.trust_region_scale(nat, grads, lr, max_kl))
    dg = 2.0 * sum(float((g ** 2).sum()) for g in jax.tree_util.tree_leaves(grads))
    quad = 0.5 * (lr * scale) ** 2 * dg
    assert 0 < scale <= 1 and quad <= max_kl * (1 + 1e-5)
    assert scale == 1.0 or abs(quad - max_kl) < 1e-5 * max_kl
    np.testing.assert_allclose(scale, min(1.0, np.sqrt(2 * max_kl / (lr ** 2 * dg))), rtol=1e-5)
