"""REINFORCE: Monte-Carlo policy gradient (Williams 1992), with an optional baseline.

One ``update`` plays ``num_envs`` whole episodes from reset (batched, a masked ``lax.scan`` of
``max_steps`` steps, see :mod:`jaxrl.core.episodes`), computes the reward-to-go
``G_t = sum_k gamma^k r_{t+k}`` of every step, and takes one gradient step on

    - mean_t [ log pi(a_t|s_t) (G_t - b_t) ] - ent_coef * mean_t H[pi(.|s_t)]

over the valid steps of the batch.  Baselines ``b_t``:

* ``none``:  b = 0 (the textbook estimator);
* ``mean``:  a running (bias-corrected exponential) mean of the reward-to-go of past batches,
  taken before the current batch is seen, so the estimator stays unbiased;
* ``value``: a learned V(s_t), regressed onto G_t with weight ``vf_coef`` (separate network).

Episodes cut at ``max_steps`` (only if it is set below the env limit) are treated as if they
ended there. The budget is ``iterations`` (updates) or ``total_steps``; the env steps of an update
are those simulated, ``num_envs * max_steps`` (masked steps after an episode's end included); the
steps that belong to episodes are reported as ``env_steps_sum``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.config import field
from jaxrl.core.agent import Agent, episode_sums, explained_variance
from jaxrl.core.episodes import IterationConfig, discrete_obs_size, encode_obs, episode_limit, rollout_episodes
from jaxrl.envs.core import Env, require_discrete
from jaxrl.networks import ActorCritic
from jaxrl.networks.distributions import categorical_entropy, categorical_log_prob
from jaxrl.returns import discounted_returns


@dataclasses.dataclass(frozen=True)
class Config(IterationConfig):
    iterations: int = field(0, low=0, help="updates (batches of episodes) per seed (0: from total_steps, else 150)")
    num_envs: int = field(4, low=1, help="episodes per update (played in parallel envs)")
    max_steps: int = field(0, low=0, help="episode step limit inside the rollout; 0 = the env's limit")
    lr: float = field(0.01, traced=True, low=0.0, low_open=True, help="Adam learning rate")
    gamma: float = field(0.99, traced=True, low=0.0, high=1.0, help="discount of the reward-to-go")
    baseline: str = field("none", choices=("none", "mean", "value"), help="baseline subtracted from the return")
    baseline_decay: float = field(0.9, traced=True, low=0.0, high=1.0, help="EMA decay of the 'mean' baseline")
    vf_coef: float = field(0.5, traced=True, low=0.0, help="value loss coefficient ('value' baseline)")
    ent_coef: float = field(0.01, traced=True, low=0.0, help="entropy bonus coefficient")
    normalize_advantages: bool = field(False, help="standardise G - b over each batch")
    hidden: int = field(128, low=1, help="units per hidden layer")
    layers: int = field(1, low=1, high=8, help="hidden layers of the policy (and value) network")
    activation: str = field("relu", choices=("tanh", "relu", "gelu"), help="hidden activation")
    num_states: int = field(0, low=0, help="size of an integer observation space (one-hot); 0 = infer")
    default_iterations: ClassVar[int] = 150


class State(NamedTuple):
    params: Any
    opt_state: Any
    ret_mean: jax.Array   # EMA of the reward-to-go ('mean' baseline), not bias-corrected
    ret_count: jax.Array  # batches folded into the EMA
    key: jax.Array
    update: jax.Array


def network(config: Config, env: Env):
    """(net, features_fn): ``net.apply(params, features) -> (logits, value, None)``."""
    spec = env.spec
    n_states = discrete_obs_size(spec, config.num_states)
    net = ActorCritic(spec.action_space.n, False, (config.hidden,) * config.layers, config.activation)
    return net, lambda obs: encode_obs(obs, n_states, len(spec.obs_shape))


def make_agent(config: Config, env: Env) -> Agent:
    config.validate()
    spec = env.spec
    require_discrete(spec, "reinforce")
    max_steps = episode_limit(spec, config.max_steps)
    net, features = network(config, env)
    tx_of = lambda hp: optax.adam(hp["lr"])  # noqa: E731

    def init(key, hp):
        k_net, k_state = jax.random.split(key)
        params = net.init(k_net, features(jnp.zeros((1,) + spec.obs_shape, spec.obs_dtype)))
        z = jnp.zeros((), jnp.float32)
        return State(params, tx_of(hp).init(params), z, z, k_state, jnp.zeros((), jnp.int32))

    def loss_fn(params, x, action, adv, ret, mask, hp):
        logits, value, _ = net.apply(params, x)
        w = mask / jnp.maximum(mask.sum(), 1.0)
        logp = categorical_log_prob(logits, action)
        pg = -(logp * jax.lax.stop_gradient(adv) * w).sum()
        ent = (categorical_entropy(logits) * w).sum()
        v_loss = 0.5 * (((value - ret) ** 2) * w).sum() if config.baseline == "value" else 0.0
        total = pg - hp["ent_coef"] * ent + hp["vf_coef"] * v_loss
        return total, {"loss": total, "policy_loss": pg, "value_loss": jnp.asarray(v_loss), "entropy": ent}

    def update(state: State, hp):
        key, k_roll = jax.random.split(state.key)

        def act(obs, k):
            return jax.random.categorical(k, net.apply(state.params, features(obs))[0])

        ep = rollout_episodes(env, act, k_roll, max_steps)
        mask = ep.mask.astype(jnp.float32)
        ret = discounted_returns(ep.reward, ep.done, hp["gamma"]) * mask
        x = features(ep.obs)
        if config.baseline == "mean":
            corr = 1.0 - hp["baseline_decay"] ** state.ret_count
            base = jnp.where(state.ret_count > 0, state.ret_mean / jnp.maximum(corr, 1e-8), 0.0) * mask
        elif config.baseline == "value":
            base = net.apply(state.params, x)[1] * mask
        else:
            base = jnp.zeros_like(ret)
        adv = ret - base
        if config.normalize_advantages:
            n = jnp.maximum(mask.sum(), 1.0)
            mu = adv.sum() / n
            sd = jnp.sqrt((((adv - mu) * mask) ** 2).sum() / n)
            adv = (adv - mu) / (sd + 1e-8) * mask
        grads, stats = jax.grad(loss_fn, has_aux=True)(state.params, x, ep.action, adv, ret, mask, hp)
        updates, opt_state = tx_of(hp).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        batch_mean = ret.sum() / jnp.maximum(mask.sum(), 1.0)
        ret_mean = hp["baseline_decay"] * state.ret_mean + (1.0 - hp["baseline_decay"]) * batch_mean
        metrics = dict(stats)
        metrics.update(episode_sums(ep.ret, ep.length))
        metrics["env_steps_sum"] = mask.sum()
        metrics["grad_norm"] = optax.tree.norm(grads)
        metrics["baseline"] = base.sum() / jnp.maximum(mask.sum(), 1.0)
        if config.baseline == "value":
            metrics["explained_variance"] = explained_variance(base, ret, mask)
        new = State(params, opt_state, ret_mean, state.ret_count + 1.0, key, state.update + 1)
        return new, metrics

    def act(state: State, obs, key=None):
        """The most likely action."""
        return jnp.argmax(net.apply(state.params, features(obs))[0], -1)

    steps = config.num_envs * max_steps
    return Agent(config, init, update, act, config.num_updates(steps), steps)
