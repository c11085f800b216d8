"""A2C: synchronous advantage actor-critic (Mnih et al. 2016, arXiv:1602.01783, the synchronous form of A3C).

One ``update`` = a rollout of ``num_steps`` steps in ``num_envs`` envs (a ``lax.scan``), then one
gradient step on

    policy_gradient_loss(logp, A) + vf_coef * 0.5 * (V - target)^2 - ent_coef * H[pi]

with the global gradient norm clipped to ``max_grad_norm``.  Advantages:

* ``returns="nstep"``: the n-step return ``sum_k gamma^k r_{t+k} + gamma^n V(s_{t+n})`` minus
  ``V(s_t)``, each step looking ahead to the end of the rollout (n = ``num_steps - t``).  This is
  GAE with lambda = 1, which is how it is computed (truncated episodes bootstrap from ``final_obs``);
* ``returns="gae"``: GAE(``gae_lambda``).

``torso="separate"`` uses two MLPs (actor and critic); ``torso="shared"`` one MLP with two heads;
``torso="nature_cnn"`` one Nature CNN with two heads, for Atari frames; ``auto`` (the default) is
``nature_cnn`` for uint8 frame stacks and ``separate`` otherwise.
Discrete (categorical) and continuous (diagonal Gaussian) actions, as in PPO.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl import losses
from jaxrl.config import Config, ConfigError, field
from jaxrl.core import onpolicy
from jaxrl.core.agent import Agent, explained_variance
from jaxrl.core.optim import gradient_step, optimizer, schedule
from jaxrl.networks import MLP, ActorCritic, orthogonal
from jaxrl.networks.distributions import head_for
from jaxrl.networks.torsos import check_nature_cnn, flatten_obs, pixel_frames


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
    torso: str = field("auto", choices=("auto", "separate", "shared", "nature_cnn"),
                       help="actor and critic torsos; auto = nature_cnn for uint8 frames, else separate")
    hidden: int = field(64, low=1, help="units per hidden layer")
    layers: int = field(2, low=1, high=8, help="hidden layers")
    activation: str = field("tanh", choices=("tanh", "relu", "gelu"), help="hidden activation")

    def check(self):
        batch = self.num_envs * self.num_steps
        if self.normalize_advantages and batch < 2:
            raise ConfigError("normalize_advantages", "a rollout of one transition has nothing to normalise "
                                                      "against; raise num_envs or num_steps, or turn it off")
        if self.total_steps < batch:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one rollout "
                                             f"(num_envs * num_steps = {batch}); raise total_steps")


class SharedActorCritic(nn.Module):
    """One MLP torso, a policy head and a value head; same outputs as :class:`jaxrl.networks.ActorCritic`."""

    action_dim: int
    continuous: bool = False
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        x = flatten_obs(obs, self.obs_ndim)
        h = MLP(self.hidden, self.activation)(x.astype(jnp.float32))
        pi = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01))(h)
        v = nn.Dense(1, kernel_init=orthogonal(1.0))(h)[..., 0]
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,)) if self.continuous else None
        return pi, v, log_std


State = onpolicy.State


def a2c_loss(params, batch, hp, apply: Callable, head):
    """``policy_gradient_loss + vf_coef * 0.5 (V - target)^2 - ent_coef * H``; batch ``(obs, action, adv, target)``."""
    obs, action, adv, target = batch
    dist, value = apply(params, obs)
    pg = losses.policy_gradient_loss(head.log_prob(dist, action), adv)
    v_loss = 0.5 * ((value - target) ** 2).mean()
    ent = head.entropy(dist).mean()
    total = pg + hp["vf_coef"] * v_loss - hp["ent_coef"] * ent
    return total, {"loss": total, "policy_loss": pg, "value_loss": v_loss, "entropy": ent}


def network(config: Config, spec):
    """``(net, apply, policy, head)`` of A2C's actor-critic for an env spec; ``apply(params, obs) -> (dist, V)``
    and ``policy`` is the :class:`jaxrl.core.onpolicy.Policy` a rollout acts with (I2A collects with it)."""
    continuous = not spec.discrete
    head = head_for(spec.action_space)
    torso = config.torso
    if torso == "auto":
        torso = "nature_cnn" if pixel_frames(spec) else "separate"
    if torso == "nature_cnn":
        check_nature_cnn(spec, "separate")
    args = (head.action_dim, continuous, (config.hidden,) * config.layers, config.activation)
    if torso == "shared":
        net = SharedActorCritic(*args, obs_ndim=len(spec.obs_shape))
    else:  # image observations (MinAtar) are flattened by the MLP torsos
        net = ActorCritic(*args, obs_ndim=len(spec.obs_shape), torso="nature_cnn" if torso == "nature_cnn" else "mlp")

    def apply(params, obs):
        pi, v, log_std = net.apply(params, obs)
        return ((pi, log_std) if continuous else pi), v

    policy = onpolicy.Policy(lambda p, obs, memory, noise: (*apply(p, obs), memory), head,
                             lambda p, obs, memory=(): apply(p, obs)[1])
    return net, apply, policy, head


def make_agent(config: Config, env) -> Agent:
    config.validate()
    spec = env.spec
    net, apply, policy, head = network(config, spec)
    batch = config.num_envs * config.num_steps
    num_updates = config.total_steps // batch

    def tx(hp):
        return optimizer(hp["lr"], total_steps=num_updates, anneal=config.anneal_lr, max_grad_norm=hp["max_grad_norm"],
                         kind=config.optimizer, eps=1e-5)

    def init(key, hp):
        params, env_state, obs, k_state, n = onpolicy.start(
            key, env, lambda k: net.init(k, jnp.zeros(spec.obs_shape, spec.obs_dtype)))
        return State(params, tx(hp).init(params), env_state, obs, k_state, n)

    def update(state: State, hp):
        key, k_roll = jax.random.split(state.key)
        env_state, obs, _, traj, ep = onpolicy.rollout(env, policy, state.params, state.env_state, state.obs, (),
                                                       k_roll, config.num_steps)
        lam = 1.0 if config.returns == "nstep" else hp["gae_lambda"]
        adv, target = onpolicy.advantages(traj, onpolicy.bootstrap_values(policy, state.params, traj),
                                          hp["gamma"], lam)
        if config.normalize_advantages:
            adv = onpolicy.normalize(adv.reshape(-1)).reshape(adv.shape)
        flat = jax.tree_util.tree_map(lambda x: x.reshape((batch,) + x.shape[2:]), (traj.obs, traj.action, adv, target))
        params, opt_state, _, stats, grad_norm = gradient_step(lambda p: a2c_loss(p, flat, hp, apply, head), tx(hp),
                                                               state.params, state.opt_state)
        metrics = dict(stats, **ep)
        metrics["explained_variance"] = explained_variance(traj.value, target)
        metrics["grad_norm"] = grad_norm
        metrics["lr"] = schedule(hp["lr"], num_updates, config.anneal_lr)(state.update)
        return State(params, opt_state, env_state, obs, key, state.update + 1), metrics

    def act(state: State, obs, key=None):
        """Greedy action: argmax of the logits, or the Gaussian mean clipped to the action box."""
        return head.to_env(head.mode(apply(state.params, obs)[0]))

    return Agent(config, init, update, act, num_updates, batch)
