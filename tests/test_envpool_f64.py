"""envpool pools with float64 buffers (MuJoCo) under 32-bit JAX: the word conversions and the env itself."""
import jax
import jax.numpy as jnp
import numpy as np

import jaxrl.envs as envs
from jaxrl.envs.envpool_f64 import f32_to_f64_words, f64_words_to_f32


def _words(x64):
    return np.ascontiguousarray(np.asarray(x64, np.float64)).view(np.uint32).reshape(np.shape(x64) + (2,))


def test_float64_words_to_float32_match_numpys_cast():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=2000) * 10.0 ** rng.integers(-30, 30, 2000),
                        [0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, 1e300, -1e300, 1e-300, 3.4028235e38,
                         np.finfo(np.float32).tiny, 1 + 2 ** -24, 1 + 3 * 2 ** -25]])
    got = np.asarray(jax.jit(f64_words_to_f32)(jnp.asarray(_words(x))))
    with np.errstate(over="ignore"):
        want = x.astype(np.float32)
    normal = np.abs(want) >= np.finfo(np.float32).tiny
    np.testing.assert_array_equal(got[normal], want[normal])  # round to nearest, as numpy's cast
    assert (got[~normal & np.isfinite(want)] == 0).all()  # float32 subnormals flush to zero
    assert np.isnan(np.asarray(f64_words_to_f32(jnp.asarray(_words(np.array([np.nan])))))).all()


def test_float32_to_float64_words_are_exact():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=1000).astype(np.float32), np.float32([0, -1, 1, np.inf, -np.inf, 3e38, -1e-30])])
    got = np.asarray(jax.jit(f32_to_f64_words)(jnp.asarray(x)))
    np.testing.assert_array_equal(got, _words(x.astype(np.float64)))


def test_halfcheetah_steps_like_envpools_numpy_interface():
    """The same seed through jaxrl's XLA path and envpool's numpy API: equal to float32 precision."""
    import envpool

    n, steps = 4, 60
    actions = np.random.default_rng(2).uniform(-1, 1, size=(steps, n, 6)).astype(np.float32)
    env = envs.make("envpool:HalfCheetah-v5", num_envs=n)
    assert env.spec.obs_dtype == np.float32 and env.spec.obs_shape == (17,)
    state, ts0 = env.reset(jax.random.PRNGKey(0))

    def body(s, a):
        s, ts = env.step(s, a, jax.random.PRNGKey(0))
        return s, (ts.obs, ts.reward)

    _, (obs, rew) = jax.jit(lambda s, a: jax.lax.scan(body, s, a))(state, jnp.asarray(actions))
    pool = envpool.make("HalfCheetah-v5", env_type="gym", num_envs=n, batch_size=n, seed=0)
    ref_obs0, _ = pool.reset()
    np.testing.assert_allclose(np.asarray(ts0.obs), ref_obs0, rtol=1e-6, atol=1e-6)
    for t in range(steps):
        o, r, *_ = pool.step(actions[t].astype(np.float64))
        np.testing.assert_allclose(np.asarray(obs[t]), o, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(rew[t]), r, rtol=1e-5, atol=1e-5)
    assert np.abs(np.asarray(rew)).max() > 0.05  # the actions moved the cheetah
