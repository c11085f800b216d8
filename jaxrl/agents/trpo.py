"""Trust Region Policy Optimization (Schulman et al. 2015, arXiv:1502.05477), on the on-policy core.

One ``update`` = a rollout of ``num_steps`` steps in ``num_envs`` envs, GAE(lambda) advantages
(normalised over the rollout), then

* **policy**: one natural-gradient step on the surrogate ``mean(pi/pi_old * A) + ent_coef * H``:
  ``cg_iters`` conjugate-gradient iterations on Fisher-vector products (the Hessian-vector product
  of the mean KL, ``jax.jvp`` over ``jax.grad``, damped by ``cg_damping``), the step scaled to the
  KL bound ``max_kl``, and a backtracking line search (``backtracks`` halvings) that takes the first
  step whose surrogate improves and whose measured KL is within ``max_kl``, or none
  (:mod:`jaxrl.natural`);
* **value**: ``vf_epochs`` x ``vf_minibatches`` Adam steps (``vf_lr``) on the squared error to the
  GAE targets (as in OpenAI baselines' ``trpo_mpi``), with the on-policy core's minibatches and sgd.

The policy and the critic are separate MLPs with separate parameters (the natural gradient is over
the policy's alone). Discrete (categorical) and continuous (diagonal Gaussian, state-independent
log-std) actions. Everything is inside the compiled update, with fixed iteration bounds.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxrl import natural
from jaxrl.config import Config, ConfigError, field
from jaxrl.core import onpolicy
from jaxrl.core.agent import Agent, explained_variance
from jaxrl.core.optim import optimizer
from jaxrl.networks import ActorCritic
from jaxrl.networks.distributions import head_for, kl_divergence


@dataclasses.dataclass(frozen=True)
class Config(Config):
    num_envs: int = field(8, low=1, help="parallel environments per seed")
    num_steps: int = field(256, low=1, help="rollout length per env per update (batch = num_envs * num_steps)")
    total_steps: int = field(500_000, low=1, help="env steps per seed")
    max_kl: float = field(0.01, traced=True, low=0.0, low_open=True, help="KL bound of each policy step")
    cg_iters: int = field(10, low=1, help="conjugate-gradient iterations per policy step")
    cg_damping: float = field(0.1, traced=True, low=0.0, help="damping added to the Fisher-vector products")
    fvp_every: int = field(5, low=1, help="Fisher-vector products on every k-th transition of the rollout "
                                          "(OpenAI baselines' trpo_mpi: 5)")
    backtracks: int = field(10, low=1, help="line-search steps (each halves the step)")
    gamma: float = field(0.99, traced=True, low=0.0, high=1.0, help="discount")
    gae_lambda: float = field(0.97, traced=True, low=0.0, high=1.0, help="GAE lambda")
    ent_coef: float = field(0.0, traced=True, low=0.0, help="entropy bonus in the surrogate")
    vf_lr: float = field(1e-3, traced=True, low=0.0, low_open=True, help="Adam learning rate of the critic")
    vf_epochs: int = field(5, low=1, help="passes of the critic over each rollout")
    vf_minibatches: int = field(8, low=1, help="critic minibatches per epoch")
    normalize_advantages: bool = field(True, help="standardise advantages over each rollout")
    hidden: int = field(64, low=1, help="units per hidden layer")
    layers: int = field(2, low=1, high=8, help="hidden layers in the policy and the critic")
    activation: str = field("tanh", choices=("tanh", "relu", "gelu"), help="hidden activation")

    def check(self):
        batch = self.num_envs * self.num_steps
        if batch % self.vf_minibatches:
            raise ConfigError("vf_minibatches", f"num_envs * num_steps = {batch} is not divisible by vf_minibatches "
                                                f"= {self.vf_minibatches}; change one of them")
        if self.normalize_advantages and batch < 2:
            raise ConfigError("normalize_advantages", "a rollout of one transition has nothing to normalise "
                                                      "against; raise num_envs or num_steps, or turn it off")
        if self.total_steps < batch:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one rollout "
                                             f"(num_envs * num_steps = {batch}); raise total_steps")


class State(NamedTuple):
    pi_params: Any  # flax parameters of the policy
    v_params: Any  # flax parameters of the critic
    v_opt_state: Any
    env_state: Any
    obs: Any
    key: jax.Array
    update: jax.Array


def networks(config, spec):
    """``(policy net, value net, head, dist(pi_params, obs), value(v_params, obs))``: separate MLPs."""
    head = head_for(spec.action_space)
    continuous = not spec.discrete
    args = (head.action_dim, continuous, (config.hidden,) * config.layers, config.activation, len(spec.obs_shape))
    pi_net, v_net = ActorCritic(*args, heads="policy"), ActorCritic(*args, heads="value")

    def dist(pi_params, obs):
        out, _, log_std = pi_net.apply(pi_params, obs)
        return (out, log_std) if continuous else out

    def value(v_params, obs):
        return v_net.apply(v_params, obs)[1]

    return pi_net, v_net, head, dist, value


def policy_objective(dist, head, pi_params, obs, action, adv, ent_coef, fvp_every: int = 1):
    """``(objective(theta) -> (surrogate, kl), kl_fn(theta) -> kl, theta [P], unravel)`` of one batch.

    surrogate = ``mean(exp(logp_theta - logp_old) * adv) + ent_coef * mean(H[pi_theta])``; kl = mean
    ``KL(pi_old || pi_theta)``; ``pi_old`` is the policy at ``pi_params``, held constant. ``kl_fn``
    (for the Fisher-vector products) averages over every ``fvp_every``-th state only.
    obs ``[B, ...]``, action ``[B, ...]``, adv ``[B]``.
    """
    theta, unravel = ravel_pytree(pi_params)
    old = jax.lax.stop_gradient(dist(pi_params, obs))
    old_logp = head.log_prob(old, action)

    def objective(t):
        d = dist(unravel(t), obs)
        surr = (jnp.exp(head.log_prob(d, action) - old_logp) * adv).mean() + ent_coef * head.entropy(d).mean()
        return surr, kl_divergence(head.kind, old, d).mean()

    sub_obs = jax.tree_util.tree_map(lambda x: x[::fvp_every], obs)
    sub_old = old[::fvp_every] if head.kind == "categorical" else (old[0][::fvp_every], old[1])  # log-std [A]

    def kl_fn(t):
        return kl_divergence(head.kind, sub_old, dist(unravel(t), sub_obs)).mean()

    return objective, kl_fn, theta, unravel


def make_agent(config: Config, env) -> Agent:
    config.validate()
    spec = env.spec
    pi_net, v_net, head, dist, value = networks(config, spec)
    batch = config.num_envs * config.num_steps
    num_updates = config.total_steps // batch
    policy = onpolicy.Policy(lambda p, obs, memory, noise: (dist(p[0], obs), value(p[1], obs), memory), head,
                             lambda p, obs, memory=(): value(p[1], obs))

    def tx(hp):
        return optimizer(hp["vf_lr"], eps=1e-5)

    def init(key, hp):
        k_pi, k_v, k_env, k_state = jax.random.split(key, 4)
        obs0 = jnp.zeros(spec.obs_shape, spec.obs_dtype)
        pi_params, v_params = pi_net.init(k_pi, obs0), v_net.init(k_v, obs0)
        env_state, ts = env.reset(k_env)
        return State(pi_params, v_params, tx(hp).init(v_params), env_state, ts.obs, k_state, jnp.zeros((), jnp.int32))

    def update(state: State, hp):
        key, k_roll, k_perm = jax.random.split(state.key, 3)
        params = (state.pi_params, state.v_params)
        env_state, obs, _, traj, ep = onpolicy.rollout(env, policy, params, state.env_state, state.obs, (), k_roll,
                                                       config.num_steps)
        adv, target = onpolicy.advantages(traj, onpolicy.bootstrap_values(policy, params, traj), hp["gamma"],
                                          hp["gae_lambda"])
        flat_obs, action, flat_adv, flat_target = jax.tree_util.tree_map(
            lambda x: x.reshape((batch,) + x.shape[2:]), (traj.obs, traj.action, adv, target))
        if config.normalize_advantages:
            flat_adv = onpolicy.normalize(flat_adv)
        objective, kl_fn, theta, unravel = policy_objective(dist, head, state.pi_params, flat_obs, action, flat_adv,
                                                            hp["ent_coef"], config.fvp_every)
        theta, st = natural.trpo_step(objective, kl_fn, theta, max_kl=hp["max_kl"], damping=hp["cg_damping"],
                                      cg_iters=config.cg_iters, num_backtracks=config.backtracks)
        mbs = onpolicy.minibatches(k_perm, (traj.obs, target), config.vf_epochs, config.vf_minibatches)
        v_params, v_opt_state, v_loss = onpolicy.sgd(
            lambda p, mb: (lambda l: (l, l))(0.5 * ((value(p, mb[0]) - mb[1]) ** 2).mean()), tx(hp), state.v_params,
            state.v_opt_state, mbs)
        s = st.search
        metrics = dict(ep, value_loss=v_loss.mean(), kl=s.kl, improvement=s.improvement,
                       expected_improvement=st.expected_improvement, step_fraction=s.fraction,
                       accepted=s.accepted.astype(jnp.float32), grad_norm=st.grad_norm, cg_residual=st.cg_residual,
                       entropy=head.entropy(dist(state.pi_params, flat_obs)).mean(),
                       explained_variance=explained_variance(traj.value, target))
        new = State(unravel(theta), v_params, v_opt_state, env_state, obs, key, state.update + 1)
        return new, metrics

    def act(state: State, obs, key=None):
        """Greedy action: argmax of the logits, or the Gaussian mean clipped to the action box."""
        return head.to_env(head.mode(dist(state.pi_params, obs)))

    return Agent(config, init, update, act, num_updates, batch)
