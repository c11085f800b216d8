"""REINFORCE: learns CartPole at the reference's pace; baselines cut gradient variance; config errors."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrl.envs as E
from jaxrl.agents import reinforce
from jaxrl.networks import distributions
from jaxrl.core.episodes import rollout_episodes
from jaxrl.core.program import make_train
from jaxrl.config import ConfigError
from jaxrl.returns import discounted_returns


def solved_at(ret_per_update, env_steps, window):
    """Env steps when the mean return of the last ``window`` updates first exceeds 195, else inf."""
    roll = np.convolve(ret_per_update, np.ones(window) / window, "valid")
    hit = np.nonzero(roll > 195)[0]
    return np.cumsum(env_steps)[hit[0] + window - 1] if len(hit) else np.inf


def test_reinforce_solves_cartpole_like_the_reference():
    # Reference: gamma .99, lr .01, 4 episodes/update solved CartPole (mean of the last 100
    # episodes > 195) in 28,480 env steps.  Median over 4 seeds must be within 2x of it.
    cfg = reinforce.Config(iterations=120)
    env = E.make("gymnax:CartPole-v1", num_envs=cfg.num_envs)
    agent = reinforce.make_agent(cfg, env)
    _, m = jax.jit(jax.vmap(make_train(agent, cfg.iterations)))(jax.random.split(jax.random.PRNGKey(0), 4))
    ret = np.asarray(m["episode_return_sum"] / m["episodes"])
    steps = np.asarray(m["env_steps_sum"])
    solved = [solved_at(ret[i], steps[i], 100 // cfg.num_envs) for i in range(4)]
    assert np.median(solved) < 2 * 28_480, solved
    # steps_per_update is the simulated batch; the valid steps are never more than that
    assert (steps <= agent.steps_per_update).all()


def _fixed_batch():
    """16 CartPole episodes of a random-init policy, with reward-to-go and per-sample features."""
    cfg = reinforce.Config(num_envs=16)
    env = E.make("gymnax:CartPole-v1", num_envs=16)
    net, features = reinforce.network(cfg, env)
    params = net.init(jax.random.PRNGKey(1), features(jnp.zeros((1, 4))))
    act = lambda obs, k: jax.random.categorical(k, net.apply(params, features(obs))[0])  # noqa: E731
    ep = rollout_episodes(env, act, jax.random.PRNGKey(2), 500)
    ret = discounted_returns(ep.reward, ep.done, 0.99)
    valid = np.asarray(ep.mask).reshape(-1)
    flat = lambda x: jnp.asarray(np.asarray(x).reshape((-1,) + x.shape[2:])[valid])  # noqa: E731
    return net, params, flat(features(ep.obs)), flat(ep.action), flat(ret)


def _grad_variance(net, params, x, a, adv):
    """Total variance (trace of the covariance) of per-sample policy gradients grad log pi(a|s) * adv."""
    def g(xi, ai, advi):
        lp = lambda p: distributions.categorical_log_prob(net.apply(p, xi[None])[0], ai[None])[0] * advi  # noqa: E731
        return jax.flatten_util.ravel_pytree(jax.grad(lp)(params))[0]

    gs = jax.vmap(g)(x, a, adv)
    return float(gs.var(0).sum())


def test_baselines_reduce_gradient_variance():
    net, params, x, a, ret = _fixed_batch()
    var_none = _grad_variance(net, params, x, a, ret)
    var_mean = _grad_variance(net, params, x, a, ret - ret.mean())
    # learned value: regress the network's value head onto the returns of this batch
    tx = optax.adam(3e-3)

    def vloss(p):
        return ((net.apply(p, x)[1] - ret) ** 2).mean()

    @jax.jit
    def fit(p, s):
        def body(c, _):
            p, s = c
            g = jax.grad(vloss)(p)
            u, s = tx.update(g, s)
            return (optax.apply_updates(p, u), s), None
        return jax.lax.scan(body, (p, s), None, length=1000)[0]

    vp, _ = fit(params, tx.init(params))
    var_value = _grad_variance(net, params, x, a, ret - net.apply(vp, x)[1])
    # measured on this batch: none 277, running mean 154, learned value 55
    assert var_mean < 0.75 * var_none, (var_none, var_mean)
    assert var_value < 0.6 * var_mean, (var_mean, var_value)


@pytest.mark.parametrize("baseline", ["mean", "value"])
def test_baseline_variants_run_and_learn(baseline):
    cfg = reinforce.Config(iterations=60, baseline=baseline)
    env = E.make("gymnax:CartPole-v1", num_envs=cfg.num_envs)
    _, m = jax.jit(make_train(reinforce.make_agent(cfg, env), 6))(jax.random.PRNGKey(0))
    ret = np.asarray(m["episode_return_sum"] / m["episodes"])
    assert ret[-1] > 2 * ret[0], ret  # learning, not a fixed value
    if baseline == "value":
        assert np.isfinite(np.asarray(m["value_loss"])).all() and float(m["value_loss"].max()) > 0


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError) as e:
        reinforce.Config.from_dict({"baseline": "learned"})
    assert "\n" not in str(e.value) and "baseline" in str(e.value)
    with pytest.raises(ConfigError) as e:
        reinforce.Config.from_dict({"lr": "0"})
    assert "\n" not in str(e.value) and str(e.value).startswith("lr:")
    pend = E.make("gymnax:Pendulum-v1", num_envs=2)
    with pytest.raises(ConfigError) as e:
        reinforce.make_agent(reinforce.Config(), pend)
    assert "\n" not in str(e.value) and "discrete" in str(e.value)
