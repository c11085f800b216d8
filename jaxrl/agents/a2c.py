"""A2C: synchronous advantage actor-critic (Mnih et al. 2016, arXiv:1602.01783, the synchronous form of A3C).

One ``update`` = a rollout of ``num_steps`` steps in ``num_envs`` envs (a ``lax.scan``), then one
gradient step on

    policy_gradient_loss(logp, A) + vf_coef * 0.5 * (V - target)^2 - ent_coef * H[pi]

with the global gradient norm clipped to ``max_grad_norm``.  Advantages:

* ``returns="nstep"``: the n-step return ``sum_k gamma^k r_{t+k} + gamma^n V(s_{t+n})`` minus
  ``V(s_t)``, each step looking ahead to the end of the rollout (n = ``num_steps - t``).  This is
  GAE with lambda = 1, which is how it is computed (truncated episodes bootstrap from ``final_obs``);
* ``returns="gae"``: GAE(``gae_lambda``).

``torso="separate"`` uses two MLPs (actor and critic); ``torso="shared"`` one MLP with two heads.
Discrete (categorical) and continuous (diagonal Gaussian) actions, as in PPO.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxrl import losses
from jaxrl.agents.base import Agent, episode_metrics, explained_variance
from jaxrl.agents.ppo import _policy
from jaxrl.config import Config, ConfigError, field
from jaxrl.envs.core import Env
from jaxrl.networks import MLP, ActorCritic, orthogonal
from jaxrl.returns import gae


@dataclasses.dataclass(frozen=True)
class Config(Config):
    num_envs: int = field(16, low=1, help="parallel environments per seed")
    num_steps: int = field(5, low=1, help="rollout length per env per update (n of the n-step return)")
    total_steps: int = field(500_000, low=1, help="env steps per seed")
    lr: float = field(7e-4, traced=True, low=0.0, low_open=True, help="learning rate")
    optimizer: str = field("rmsprop", choices=("rmsprop", "adam"), help="rmsprop (as in the paper) or adam")
    gamma: float = field(0.99, traced=True, low=0.0, high=1.0, help="discount")
    returns: str = field("nstep", choices=("nstep", "gae"), help="n-step returns or GAE(lambda)")
    gae_lambda: float = field(0.95, traced=True, low=0.0, high=1.0, help="GAE lambda (returns=gae)")
    ent_coef: float = field(0.01, traced=True, low=0.0, help="entropy bonus coefficient")
    vf_coef: float = field(0.5, traced=True, low=0.0, help="value loss coefficient")
    max_grad_norm: float = field(0.5, traced=True, low=0.0, low_open=True, help="global grad-norm clip")
    normalize_advantages: bool = field(False, help="standardise advantages over each rollout")
    anneal_lr: bool = field(False, help="anneal the learning rate linearly to 0")
    torso: str = field("separate", choices=("separate", "shared"), help="actor and critic torsos")
    hidden: int = field(64, low=1, help="units per hidden layer")
    layers: int = field(2, low=1, high=8, help="hidden layers")
    activation: str = field("tanh", choices=("tanh", "relu", "gelu"), help="hidden activation")

    def check(self):
        batch = self.num_envs * self.num_steps
        if self.total_steps < batch:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one rollout "
                                             f"(num_envs * num_steps = {batch}); raise total_steps")


class SharedActorCritic(nn.Module):
    """One MLP torso, a policy head and a value head; same outputs as :class:`jaxrl.networks.ActorCritic`."""

    action_dim: int
    continuous: bool = False
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        x = obs.reshape(obs.shape[: obs.ndim - 1] + (-1,)) if obs.ndim >= 1 else obs
        h = MLP(self.hidden, self.activation)(x.astype(jnp.float32))
        pi = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01))(h)
        v = nn.Dense(1, kernel_init=orthogonal(1.0))(h)[..., 0]
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,)) if self.continuous else None
        return pi, v, log_std


class State(NamedTuple):
    params: Any
    opt_state: Any
    env_state: Any
    obs: Any
    key: jax.Array
    update: jax.Array


class Rollout(NamedTuple):
    obs: Any
    action: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    final_obs: Any


def make_agent(config: Config, env: Env) -> Agent:
    config.validate()
    spec = env.spec
    continuous = not spec.discrete
    action_dim = spec.action_space.dim if continuous else spec.action_space.n
    net_cls = SharedActorCritic if config.torso == "shared" else ActorCritic
    net = net_cls(action_dim, continuous, (config.hidden,) * config.layers, config.activation)
    sample, logp_fn, entropy_fn = _policy(spec, continuous)
    batch = config.num_envs * config.num_steps
    num_updates = config.total_steps // batch
    if continuous:
        low, high = jnp.asarray(spec.action_space.low), jnp.asarray(spec.action_space.high)

    def lr_at(hp, count):
        return hp["lr"] * (1.0 - count / num_updates) if config.anneal_lr else hp["lr"]

    def make_tx(hp):
        if config.optimizer == "rmsprop":
            opt = optax.rmsprop(lambda c: lr_at(hp, c), decay=0.99, eps=1e-5)
        else:
            opt = optax.adam(lambda c: lr_at(hp, c), eps=1e-5)
        return optax.chain(optax.clip_by_global_norm(hp["max_grad_norm"]), opt)

    def init(key, hp):
        k_net, k_env, k_state = jax.random.split(key, 3)
        params = net.init(k_net, jnp.zeros(spec.obs_shape, spec.obs_dtype))
        env_state, ts = env.reset(k_env)
        return State(params, make_tx(hp).init(params), env_state, ts.obs, k_state, jnp.zeros((), jnp.int32))

    def env_step(carry, key):
        params, env_state, obs = carry
        k_act, k_env = jax.random.split(key)
        out = net.apply(params, obs)
        action = sample(k_act, out)
        env_state, ts = env.step(env_state, jnp.clip(action, low, high) if continuous else action, k_env)
        tr = Rollout(obs, action, out[1], ts.reward, ts.terminated, ts.done, ts.final_obs)
        return (params, env_state, ts.obs), (tr, episode_metrics(ts))

    def loss_fn(params, obs, action, adv, target, hp):
        out = net.apply(params, obs)
        pg = losses.policy_gradient_loss(logp_fn(out, action), adv)
        v_loss = 0.5 * ((out[1] - target) ** 2).mean()
        ent = entropy_fn(out).mean()
        total = pg + hp["vf_coef"] * v_loss - hp["ent_coef"] * ent
        return total, {"loss": total, "policy_loss": pg, "value_loss": v_loss, "entropy": ent}

    def update(state: State, hp):
        key, k_roll = jax.random.split(state.key)
        (_, env_state, obs), (traj, ep) = jax.lax.scan(
            env_step, (state.params, state.env_state, state.obs), jax.random.split(k_roll, config.num_steps))
        next_value = net.apply(state.params, traj.final_obs)[1]
        lam = 1.0 if config.returns == "nstep" else hp["gae_lambda"]
        adv = gae(traj.reward, traj.value, next_value, traj.terminated, traj.done, hp["gamma"], lam)
        target = adv + traj.value
        if config.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        flat = lambda x: x.reshape((batch,) + x.shape[2:])  # noqa: E731
        grads, stats = jax.grad(loss_fn, has_aux=True)(
            state.params, flat(traj.obs), flat(traj.action), flat(adv), flat(target), hp)
        updates, opt_state = make_tx(hp).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(stats)
        metrics.update({k: v.sum() for k, v in ep.items()})
        metrics["explained_variance"] = explained_variance(traj.value, target)
        metrics["grad_norm"] = optax.tree.norm(grads)
        metrics["lr"] = jnp.asarray(lr_at(hp, state.update))
        return State(params, opt_state, env_state, obs, key, state.update + 1), metrics

    return Agent(config, init, update, num_updates, batch)
