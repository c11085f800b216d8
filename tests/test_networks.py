"""Conv2D's im2col lowering against flax's nn.Conv, and the Nature CNN's parameter layout."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.networks.conv import Conv2D, im2col, resolve_impl
from jaxrl.networks.q_networks import NatureCNN


@pytest.mark.parametrize("shape,k,s", [((2, 84, 84, 4), 8, 4), ((3, 20, 20, 32), 4, 2),
                                       ((1, 9, 9, 64), 3, 1), ((2, 11, 7, 3), 3, 2)])
@pytest.mark.parametrize("impl", ["im2col", "xla"])
def test_conv2d_matches_flax_conv_values_and_gradients(shape, k, s, impl):
    x = jax.random.normal(jax.random.PRNGKey(0), shape)
    ref = nn.Conv(5, (k, k), (s, s), padding="VALID")
    params = ref.init(jax.random.PRNGKey(1), x)
    params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
    ours = Conv2D(5, (k, k), (s, s), impl=impl)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(1), x)) == jax.tree.map(jnp.shape, params)
    np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), rtol=1e-5, atol=1e-5)

    def loss(m):
        return lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))

    g_ours = jax.grad(loss(ours), argnums=(0, 1))(params, x)
    g_ref = jax.grad(loss(ref), argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_im2col_hand_checked_feature_order():
    x = jnp.arange(3 * 3 * 2, dtype=jnp.float32).reshape(1, 3, 3, 2)
    p = im2col(x, (2, 2), (1, 1))
    assert p.shape == (1, 2, 2, 8)
    # top-left patch: rows 0-1, cols 0-1, channel fastest
    np.testing.assert_array_equal(p[0, 0, 0], [0, 1, 2, 3, 6, 7, 8, 9])


def test_auto_impl_follows_the_backend():
    assert resolve_impl("auto") == ("im2col" if jax.default_backend() == "cpu" else "xla")
    assert resolve_impl("xla") == "xla"
    with pytest.raises(ValueError, match="conv impl"):
        resolve_impl("fft")


def test_nature_cnn_same_parameters_and_outputs_under_both_lowerings():
    x = jax.random.randint(jax.random.PRNGKey(0), (2, 84, 84, 4), 0, 256).astype(jnp.uint8)
    a, b = NatureCNN(conv_impl="im2col"), NatureCNN(conv_impl="xla")
    params = jax.jit(a.init)(jax.random.PRNGKey(1), x)
    assert set(params["params"]) == {"Conv_0", "Conv_1", "Conv_2", "Dense_0"}
    assert params["params"]["Conv_0"]["kernel"].shape == (8, 8, 4, 32)
    ya, yb = a.apply(params, x), b.apply(params, x)
    assert ya.shape == (2, 512)
    np.testing.assert_allclose(ya, yb, rtol=1e-4, atol=1e-4)


def test_noisy_dense_mean_path_and_factorized_noise():
    from jaxrl.networks.q_networks import NoisyDense

    layer = NoisyDense(3)
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    params = layer.init({"params": jax.random.PRNGKey(1)}, x)
    p = params["params"]
    np.testing.assert_allclose(layer.apply(params, x), x @ p["mu_kernel"] + p["mu_bias"], rtol=1e-6)
    key = jax.random.PRNGKey(2)
    y = layer.apply(params, x, rngs={"noise": key})
    # rebuild the factorized noise from the same stream: f(e) = sign(e) sqrt|e|
    noise_key = nn.apply(lambda m: m.make_rng("noise"), layer)(params, rngs={"noise": key})
    e = jax.random.normal(noise_key, (4 + 3,))
    f = jnp.sign(e) * jnp.sqrt(jnp.abs(e))
    w = p["mu_kernel"] + p["sigma_kernel"] * jnp.outer(f[:4], f[4:])
    b = p["mu_bias"] + p["sigma_bias"] * f[4:]
    np.testing.assert_allclose(y, x @ w + b, rtol=1e-5, atol=1e-6)


def test_q_network_noisy_options_sigma0_and_noisy_hidden_layer():
    """``sigma0`` sets every noisy layer's initial sigma to sigma0 / sqrt(fan_in); ``noisy_hidden`` makes the
    last hidden layer noisy (and noise then reaches the output through it); defaults keep the names."""
    from jaxrl.networks import QNetwork

    x = jnp.ones((2, 6))
    plain = QNetwork(3, (8, 5), noisy=True).init(jax.random.PRNGKey(0), x)["params"]
    assert set(plain) == {"Dense_0", "Dense_1", "NoisyDense_0"}  # checkpoint names unchanged by default
    np.testing.assert_allclose(plain["NoisyDense_0"]["sigma_kernel"], 0.5 / np.sqrt(5), rtol=1e-6)
    net = QNetwork(3, (8, 5), noisy=True, sigma0=0.1, noisy_hidden=True)
    params = net.init(jax.random.PRNGKey(0), x)
    p = params["params"]
    assert set(p) == {"Dense_0", "NoisyDense_0", "NoisyDense_1"} and p["NoisyDense_0"]["mu_kernel"].shape == (8, 5)
    np.testing.assert_allclose(p["NoisyDense_0"]["sigma_kernel"], 0.1 / np.sqrt(8), rtol=1e-6)
    np.testing.assert_allclose(p["NoisyDense_1"]["sigma_bias"], 0.1 / np.sqrt(5), rtol=1e-6)
    # zero the output layer's sigmas: the output is still noisy, through the hidden layer's noise
    quiet = jax.tree_util.tree_map(lambda v: v, params)
    quiet["params"]["NoisyDense_1"] = dict(p["NoisyDense_1"], sigma_kernel=jnp.zeros((5, 3)), sigma_bias=jnp.zeros(3))
    y0 = net.apply(quiet, x)
    y1 = net.apply(quiet, x, rngs={"noise": jax.random.PRNGKey(1)})
    assert not np.allclose(y0, y1)


@pytest.mark.parametrize("kw", [dict(), dict(continuous=True), dict(torso="nature_cnn", obs_ndim=3)])
def test_actor_critic_heads_share_parameters_with_the_full_network(kw):
    """heads="policy"/"value" apply to the full network's parameters and give the same outputs."""
    from jaxrl.networks import ActorCritic

    obs = (jax.random.randint(jax.random.PRNGKey(1), (5, 84, 84, 4), 0, 255).astype(jnp.uint8)
           if "torso" in kw else jax.random.normal(jax.random.PRNGKey(1), (5, 4)))
    full = ActorCritic(3, **kw)
    params = jax.jit(full.init)(jax.random.PRNGKey(0), obs[0])  # jitted: the eager orthogonal init is slow
    logits, value, log_std = full.apply(params, obs)
    p_logits, p_value, p_log_std = ActorCritic(3, heads="policy", **kw).apply(params, obs)
    v_logits, v_value, v_log_std = ActorCritic(3, heads="value", **kw).apply(params, obs)
    np.testing.assert_allclose(p_logits, logits, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(v_value, value, rtol=1e-6, atol=1e-6)
    assert p_value is None and v_logits is None and v_log_std is None
    assert (p_log_std is None) == (log_std is None)
    # The subsets create no parameters of their own: their trees are subtrees of the full one (names
    # and shapes; traced only, since the orthogonal init of the CNN's 3136x512 layer takes seconds).
    flat_full = dict(jax.tree_util.tree_leaves_with_path(params))
    for heads in ("policy", "value"):
        sub = jax.eval_shape(ActorCritic(3, heads=heads, **kw).init, jax.random.PRNGKey(0), obs[0])
        for path, leaf in jax.tree_util.tree_leaves_with_path(sub):
            assert flat_full[path].shape == leaf.shape and flat_full[path].dtype == leaf.dtype, path


def test_torsos_module_breaks_the_import_cycle_and_keeps_names():
    """MLP/NatureCNN live in torsos; mlp and q_networks import it, not each other; old paths still work."""
    import ast
    import pathlib

    import jaxrl.networks as nets
    from jaxrl.networks import mlp, q_networks, torsos

    root = pathlib.Path(nets.__file__).parent

    def imported(name):
        tree = ast.parse((root / f"{name}.py").read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | \
               {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}

    assert "jaxrl.networks.q_networks" not in imported("mlp")
    assert "jaxrl.networks.mlp" not in imported("q_networks")
    assert not {"jaxrl.networks.mlp", "jaxrl.networks.q_networks"} & imported("torsos")
    assert mlp.MLP is torsos.MLP is nets.MLP and mlp.flatten_obs is torsos.flatten_obs
    assert q_networks.NatureCNN is torsos.NatureCNN is nets.NatureCNN and mlp.ACTIVATIONS is torsos.ACTIVATIONS


@pytest.mark.parametrize("net,obs,names", [
    (dict(continuous=True), (4,), {"MLP_0", "MLP_1", "Dense_0", "Dense_1", "log_std"}),
    (dict(torso="nature_cnn", obs_ndim=3), (84, 84, 4), {"NatureCNN_0", "Dense_0", "Dense_1"}),
    ("q_cnn", (84, 84, 4), {"NatureCNN_0", "Dense_0"}),
])
def test_parameter_names_are_unchanged(net, obs, names):
    """Checkpoints depend on these names: moving the torsos must not rename anything."""
    from jaxrl.networks import ActorCritic, QNetwork

    module = QNetwork(3, torso="nature_cnn") if net == "q_cnn" else ActorCritic(3, **net)
    params = jax.eval_shape(module.init, jax.random.PRNGKey(0), jnp.zeros(obs))["params"]
    assert set(params) == names
    if "NatureCNN_0" in names:
        assert set(params["NatureCNN_0"]) == {"Conv_0", "Conv_1", "Conv_2", "Dense_0"}


@pytest.mark.parametrize("impl", ["im2col", "xla"])
def test_conv1d_torso_matches_flax_1d_convolutions_on_channels_first_input(impl):
    """Conv1D over [.., C, L] equals flax's 1-D nn.Conv (channels last) with the same kernels, ReLU between."""
    from jaxrl.networks.torsos import Conv1D

    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 6, 12))  # batch [2, 3], 6 channels, 12 bars
    ours = Conv1D((8, 4), kernel=5, conv_impl=impl)
    params = ours.init(jax.random.PRNGKey(1), x)
    y = ours.apply(params, x)
    assert y.shape == (2, 3, (12 - 4 - 4) * 4)
    h = jnp.swapaxes(x, -1, -2).reshape(6, 12, 6)
    for i in range(2):
        p = params["params"][f"Conv_{i}"]
        conv = {"params": {"kernel": p["kernel"][0], "bias": p["bias"] + 0.0}}  # [1, k, C, F] -> [k, C, F]
        h = nn.relu(nn.Conv(p["kernel"].shape[-1], (5,), padding="VALID").apply(conv, h))
    np.testing.assert_allclose(y, h.reshape(2, 3, -1), rtol=1e-5, atol=1e-5)


def test_dqn_conv1d_torso_on_the_trading_conv_layout_and_a_clear_error_elsewhere():
    from jaxrl import envs
    from jaxrl.agents import dqn
    from jaxrl.config import ConfigError

    cfg = dqn.Config.from_dict(dict(torso="conv1d", num_envs=2, total_steps=100, buffer_size=64, batch_size=8,
                                    learning_starts=10, target_update_every=20))
    env = envs.make("trading:stocks", num_envs=2, layout="conv")
    agent = dqn.make_agent(cfg, env)
    state = agent.init(jax.random.PRNGKey(0), cfg.hparams())
    conv = state.learner.params["params"]["Conv1D_0"]
    assert conv["Conv_0"]["kernel"].shape == (1, 5, 5, 128) and conv["Conv_1"]["kernel"].shape == (1, 5, 128, 128)
    _, ts = env.reset(jax.random.PRNGKey(1))
    assert agent.act(state, ts.obs, None).shape == (2,)
    assert dqn.Config().torso == "auto"  # the default network is unchanged
    with pytest.raises(ConfigError, match="torso: conv1d needs"):
        dqn.make_agent(cfg, envs.make("gymnax:CartPole-v1", num_envs=2))
