"""Proximal Policy Optimization (Schulman et al. 2017, arXiv:1707.06347).

Discrete (categorical) and continuous (diagonal Gaussian, state-independent log-std) policies,
GAE(lambda), clipped surrogate, value loss, entropy bonus, global grad-norm clipping,
optional linear learning-rate annealing, epochs over shuffled minibatches.

One ``update`` = a rollout of ``num_steps`` steps in ``num_envs`` envs (a ``lax.scan``),
then ``num_epochs`` x ``num_minibatches`` gradient steps (nested ``lax.scan``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxrl import losses, rng
from jaxrl.agents.base import Agent, episode_stats, explained_variance
from jaxrl.config import Config, ConfigError, field
from jaxrl.envs.core import Env
from jaxrl.networks import ActorCritic
from jaxrl.returns import gae


@dataclasses.dataclass(frozen=True)
class Config(Config):
    num_envs: int = field(4, low=1, help="parallel environments per seed")
    num_steps: int = field(128, low=1, help="rollout length per env per update")
    num_epochs: int = field(4, low=1, help="passes over each rollout")
    num_minibatches: int = field(4, low=1, help="minibatches per epoch")
    lr: float = field(2.5e-4, traced=True, low=0.0, low_open=True, help="Adam learning rate")
    gamma: float = field(0.99, traced=True, low=0.0, high=1.0, help="discount")
    gae_lambda: float = field(0.95, traced=True, low=0.0, high=1.0, help="GAE lambda")
    clip_eps: float = field(0.2, traced=True, low=0.0, help="surrogate clip range")
    ent_coef: float = field(0.01, traced=True, low=0.0, help="entropy bonus coefficient")
    vf_coef: float = field(0.5, traced=True, low=0.0, help="value loss coefficient")
    max_grad_norm: float = field(0.5, traced=True, low=0.0, low_open=True, help="global grad-norm clip")
    anneal_lr: bool = field(True, help="anneal the learning rate linearly to 0")
    total_steps: int = field(500_000, low=1, help="env steps per seed")
    hidden: int = field(64, low=1, help="units per hidden layer")
    layers: int = field(2, low=1, high=8, help="hidden layers in actor and critic")
    activation: str = field("tanh", choices=("tanh", "relu", "gelu"), help="hidden activation")
    torso: str = field("auto", choices=("auto", "mlp", "nature_cnn"),
                       help="network torso; auto = Nature CNN for uint8 image observations, else MLP")

    def check(self):
        batch = self.num_envs * self.num_steps
        if batch % self.num_minibatches:
            raise ConfigError("num_minibatches", f"num_envs * num_steps = {batch} is not divisible by "
                                                 f"num_minibatches = {self.num_minibatches}; change one of them")
        if self.total_steps < batch:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one rollout "
                                             f"(num_envs * num_steps = {batch}); raise total_steps")


class State(NamedTuple):
    params: jax.Array  # all network parameters as one flat vector (see make_agent)
    opt_state: Any
    env_state: Any
    obs: Any
    key: jax.Array
    update: jax.Array  # updates done so far


class Rollout(NamedTuple):
    """What the rollout scan stacks per env step: ``[T, N, ...]``."""
    obs: Any
    action: jax.Array
    logp: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    final_obs: Any


def _policy(spec, continuous):
    """(logits_or_mean, log_std) -> (sample_fn, logp_fn, entropy_fn)."""
    if not continuous:
        def sample(key, out):
            return jax.random.categorical(key, out[0])

        def logp(out, a):
            return losses.categorical_log_prob(out[0], a)

        def entropy(out):
            return losses.categorical_entropy(out[0])
    else:
        def sample(key, out):
            mean, log_std = out[0], out[2]
            return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)

        def logp(out, a):
            return losses.gaussian_log_prob(out[0], out[2], a)

        def entropy(out):
            return losses.gaussian_entropy(out[2]) * jnp.ones(out[0].shape[:-1])
    return sample, logp, entropy


def _presampled(continuous: bool, action_dim: int):
    """Policy noise drawn for a whole rollout in one call, then consumed step by step.

    Returns ``draw(key, prefix) -> noise[*prefix, A]`` and ``sample(noise, out) -> action``:
    Gumbel noise + argmax for a categorical (the Gumbel-max trick, the same distribution as
    ``jax.random.categorical``), standard normal noise for a Gaussian.  One large draw costs far
    less than one small draw per env step on CPU.
    """
    if not continuous:
        def draw(key, prefix):
            return jax.random.gumbel(key, tuple(prefix) + (action_dim,))

        def sample(noise, out):
            return jnp.argmax(out[0] + noise, axis=-1)
    else:
        def draw(key, prefix):
            return jax.random.normal(key, tuple(prefix) + (action_dim,))

        def sample(noise, out):
            return out[0] + jnp.exp(out[2]) * noise
    return draw, sample


def make_agent(config: Config, env: Env) -> Agent:
    config.validate()
    spec = env.spec
    continuous = not spec.discrete
    action_dim = spec.action_space.dim if continuous else spec.action_space.n
    torso = config.torso
    if torso == "auto":
        torso = "nature_cnn" if (len(spec.obs_shape) == 3 and spec.obs_dtype == np.uint8) else "mlp"
    if torso == "nature_cnn" and (len(spec.obs_shape) != 3 or min(spec.obs_shape[:2]) < 36):
        raise ConfigError("torso", f"nature_cnn needs image observations of at least 36x36xC; "
                                   f"{spec.env_id} gives {spec.obs_shape}; use --torso mlp")
    net_args = (action_dim, continuous, (config.hidden,) * config.layers, config.activation,
                len(spec.obs_shape), torso)
    net = ActorCritic(*net_args)
    # The same parameters, one side only: V(s') needs no actor, greedy evaluation no critic.
    value_net = ActorCritic(*net_args, heads="value")
    policy_net = ActorCritic(*net_args, heads="policy")
    sample, logp_fn, entropy_fn = _policy(spec, continuous)
    batch = config.num_envs * config.num_steps
    mb_size = batch // config.num_minibatches
    num_updates = config.total_steps // batch
    grad_steps = num_updates * config.num_epochs * config.num_minibatches
    # Parameters live as ONE flat vector: Adam, the global-norm clip and the update are then a
    # handful of ops instead of a handful per layer, which is most of the cost of a tiny-network
    # SGD step on CPU. ``unravel`` is a static function of the network's shapes.
    dummy_obs = jnp.zeros(spec.obs_shape, spec.obs_dtype)
    shapes = jax.eval_shape(net.init, jax.random.PRNGKey(0), dummy_obs)
    _, unravel = ravel_pytree(jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype), shapes))

    def apply(theta, obs):
        return net.apply(unravel(theta), obs)

    if continuous:
        low = jnp.asarray(spec.action_space.low)
        high = jnp.asarray(spec.action_space.high)

    def make_tx(hp):
        def schedule(count):
            if not config.anneal_lr:
                return hp["lr"]
            return hp["lr"] * (1.0 - count / grad_steps)

        return optax.chain(optax.clip_by_global_norm(hp["max_grad_norm"]), optax.adam(schedule, eps=1e-5))

    def init(key, hp):
        k_net, k_env, k_state = jax.random.split(key, 3)
        params = ravel_pytree(net.init(k_net, dummy_obs))[0]
        env_state, ts = env.reset(k_env)
        return State(params, make_tx(hp).init(params), env_state, ts.obs, k_state, jnp.zeros((), jnp.int32))

    draw_noise, sample_noise = _presampled(continuous, action_dim)

    def env_step(tree, carry, xs):
        env_state, obs, ep = carry
        noise, k_env = xs
        out = net.apply(tree, obs)
        action = sample_noise(noise, out)
        env_action = jnp.clip(action, low, high) if continuous else action
        env_state, ts = env.step(env_state, env_action, k_env)
        ep = jax.tree_util.tree_map(jnp.add, ep, episode_stats(ts))
        tr = Rollout(obs, action, logp_fn(out, action), out[1], ts.reward, ts.terminated, ts.done, ts.final_obs)
        return (env_state, ts.obs, ep), tr

    stat_names = ("loss", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac")

    def loss_fn(params, mb, hp):
        """PPO loss on one minibatch whose advantages are already normalized (see ``update``).

        Returns ``(loss, stats[6])``, the stats in the order of ``stat_names``: one stacked vector
        instead of six scalars keeps the per-step bookkeeping to one write.
        """
        obs, action, old_logp, old_value, adv, target = mb
        out = apply(params, obs)
        logp = logp_fn(out, action)
        pg_loss, ratio = losses.ppo_clip_loss(logp, old_logp, adv, hp["clip_eps"])
        v_loss = losses.clipped_value_loss(out[1], old_value, target, hp["clip_eps"])
        ent = entropy_fn(out).mean()
        total = pg_loss + hp["vf_coef"] * v_loss - hp["ent_coef"] * ent
        # approx_kl and clip_frac: one reduction over the stacked per-sample terms.
        diag = jnp.stack([(ratio - 1.0) - (logp - old_logp),
                          (jnp.abs(ratio - 1.0) > hp["clip_eps"]).astype(jnp.float32)]).mean(-1)
        return total, jnp.concatenate([jnp.stack([total, pg_loss, v_loss, ent]), diag])

    def update(state: State, hp):
        tx = make_tx(hp)
        key, k_noise, k_env, k_perm = jax.random.split(state.key, 4)
        # All of the rollout's randomness in two calls: per-step draws cost more than the env step.
        xs = (draw_noise(k_noise, (config.num_steps, config.num_envs)), jax.random.split(k_env, config.num_steps))
        tree = unravel(state.params)  # once per rollout, not per step
        # Per-env episode statistics are summed in the carry, not stacked per step.
        ep0 = jax.tree_util.tree_map(
            lambda x: jnp.zeros(x.shape, x.dtype),
            jax.eval_shape(lambda s, o, n, k: episode_stats(env.step(s, sample_noise(n, net.apply(tree, o)), k)[1]),
                           state.env_state, state.obs, xs[0][0], xs[1][0]))
        (env_state, obs, ep), traj = jax.lax.scan(
            lambda c, x: env_step(tree, c, x), (state.env_state, state.obs, ep0), xs)
        # V(s') for every transition in one batched critic forward: bootstraps truncated episodes too.
        next_value = value_net.apply(tree, traj.final_obs)[1]
        adv = gae(traj.reward, traj.value, next_value, traj.terminated, traj.done, hp["gamma"], hp["gae_lambda"])
        target = adv + traj.value
        flat = jax.tree_util.tree_map(lambda x: x.reshape((batch,) + x.shape[2:]),
                                      (traj.obs, traj.action, traj.logp, traj.value, adv, target))

        # Shuffle once for all epochs: one gather per array builds every minibatch
        # [epochs * minibatches, mb_size, ...]; the scan then slices them in order.
        perms = rng.permutations(k_perm, config.num_epochs, batch)
        idx = perms.reshape(config.num_epochs * config.num_minibatches, mb_size)
        minibatches = jax.tree_util.tree_map(lambda x: x[idx], flat)
        # Per-minibatch advantage normalization does not depend on the parameters: do it for all
        # minibatches at once here, not inside every gradient step.
        adv_mb = minibatches[4]
        adv_mb = (adv_mb - adv_mb.mean(-1, keepdims=True)) / (adv_mb.std(-1, keepdims=True) + 1e-8)
        minibatches = minibatches[:4] + (adv_mb,) + minibatches[5:]

        def sgd_step(carry, mb):
            params, opt_state = carry
            grads, stats = jax.grad(loss_fn, has_aux=True)(params, mb, hp)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), stats

        (params, opt_state), stats = jax.lax.scan(sgd_step, (state.params, state.opt_state), minibatches)
        metrics = dict(zip(stat_names, stats.mean(0)))
        metrics.update({k: v.sum() for k, v in ep.items()})
        metrics["explained_variance"] = explained_variance(traj.value, target)
        count = state.update * config.num_epochs * config.num_minibatches
        metrics["lr"] = hp["lr"] * (1.0 - count / grad_steps) if config.anneal_lr else hp["lr"]
        return State(params, opt_state, env_state, obs, key, state.update + 1), metrics

    def act(state: State, obs):
        """Greedy action for evaluation: argmax of the logits, or the clipped Gaussian mean."""
        out = policy_net.apply(unravel(state.params), obs)
        return jnp.clip(out[0], low, high) if continuous else jnp.argmax(out[0], axis=-1)

    return Agent(config, init, update, num_updates, batch, act=act)
