"""ACKTR: actor-critic with Kronecker-factored trust region (Wu et al. 2017, arXiv:1708.05144).

A2C's loss (``policy_gradient_loss + vf_coef * 0.5 (V - target)^2 - ent_coef * H``, n-step returns
or GAE) stepped by K-FAC natural gradients (:mod:`jaxrl.kfac`) instead of RMSprop:

* every dense (and convolution) layer of the actor-critic is tapped; each step's batch gives the
  Kronecker factors ``A = E[ã ã^T]`` of the layer inputs and ``G = E[g g^T]`` of the gradients at the
  pre-activations, for *sampled* targets (an action drawn from the policy, a value target
  ``V + N(0, 1)``: the Fisher of the joint model ``pi(a|s) N(y; V(s), 1)``), kept as running
  averages (``stats_decay``);
* the damped inverses (``damping``, factored with the pi-correction) are recomputed once per
  ``update``, which is ``inverse_every`` A2C steps (a ``lax.scan``), so the inverse period is static
  and seeds still vmap as one program;
* the preconditioned gradient ``Δ`` (a Gaussian's log-std: its exact Fisher, 2 per coordinate)
  gets the trust-region step ``eta = min(lr, sqrt(2 max_kl / Δ^T ∇))`` (section 3.1), then SGD with
  momentum (``momentum``), learning rate optionally annealed.

The network is PPO's actor-critic (separate MLPs, or one Nature CNN for image observations).
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl import kfac, losses
from jaxrl.config import Config, ConfigError, field
from jaxrl.core import onpolicy
from jaxrl.core.agent import Agent, explained_variance, is_summed
from jaxrl.core.optim import optimizer, schedule
from jaxrl.agents.ppo import actor_critic
from jaxrl.networks.distributions import kl_divergence


@dataclasses.dataclass(frozen=True)
class Config(Config):
    num_envs: int = field(16, low=1, help="parallel environments per seed")
    num_steps: int = field(20, low=1, help="rollout length per env per step (n of the n-step return)")
    inverse_every: int = field(10, low=1, help="K-FAC steps per update; the factor inverses are refreshed once per update")
    total_steps: int = field(500_000, low=1, help="env steps per seed")
    lr: float = field(0.25, traced=True, low=0.0, low_open=True, help="largest step size eta_max")
    max_kl: float = field(0.01, traced=True, low=0.0, low_open=True, help="trust region: KL bound of each step")
    momentum: float = field(0.0, traced=True, low=0.0, high=1.0, help="SGD momentum on the natural gradient "
                                                                     "(the paper: 0.9 with max_kl 0.001)")
    damping: float = field(0.01, traced=True, low=0.0, low_open=True, help="Tikhonov damping of the Fisher blocks")
    stats_decay: float = field(0.95, traced=True, low=0.0, high=1.0, help="running-average decay of the factors")
    anneal_lr: bool = field(True, help="anneal the learning rate linearly to 0")
    gamma: float = field(0.99, traced=True, low=0.0, high=1.0, help="discount")
    returns: str = field("nstep", choices=("nstep", "gae"), help="n-step returns or GAE(lambda)")
    gae_lambda: float = field(0.95, traced=True, low=0.0, high=1.0, help="GAE lambda (returns=gae)")
    ent_coef: float = field(0.01, traced=True, low=0.0, help="entropy bonus coefficient")
    vf_coef: float = field(0.5, traced=True, low=0.0, help="value loss coefficient")
    hidden: int = field(64, low=1, help="units per hidden layer")
    layers: int = field(2, low=1, high=8, help="hidden layers in actor and critic")
    activation: str = field("tanh", choices=("tanh", "relu", "gelu"), help="hidden activation")
    torso: str = field("auto", choices=("auto", "mlp", "nature_cnn"),
                       help="network torso; auto = Nature CNN for uint8 image observations, else MLP")

    def check(self):
        per_update = self.inverse_every * self.num_envs * self.num_steps
        if self.total_steps < per_update:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one update (inverse_every * num_envs "
                                             f"* num_steps = {per_update}); raise total_steps")


class State(NamedTuple):
    params: Any
    opt_state: Any
    kfac: kfac.State
    env_state: Any
    obs: Any
    key: jax.Array
    update: jax.Array


def a2c_loss(out, batch, hp, head):
    """A2C's loss on the network's outputs ``(dist, value [B])``; batch ``(action, adv, target)``."""
    (dist, value), (action, adv, target) = out, batch
    pg = losses.policy_gradient_loss(head.log_prob(dist, action), adv)
    v_loss = 0.5 * ((value - target) ** 2).mean()
    ent = head.entropy(dist).mean()
    total = pg + hp["vf_coef"] * v_loss - hp["ent_coef"] * ent
    return total, jnp.stack([total, pg, v_loss, ent])


def fisher_log_likelihood(out, key, head):
    """``sum_i log pi(a_i|s_i) + log N(y_i; V(s_i), 1)`` for ``a_i ~ pi``, ``y_i ~ N(V(s_i), 1)`` (held fixed).

    Its gradient at the layer outputs is the per-sample ``g`` of the model's (true) Fisher.
    """
    dist, value = out
    k_a, k_v = jax.random.split(key)
    fixed = jax.lax.stop_gradient((dist, value))
    action = head.sample(fixed[0], head.noise(k_a, value.shape))
    y = fixed[1] + jax.random.normal(k_v, value.shape)
    return head.log_prob(dist, action).sum() - 0.5 * ((value - y) ** 2).sum()


STATS = ("loss", "policy_loss", "value_loss", "entropy")


def make_agent(config: Config, env) -> Agent:
    config.validate()
    spec = env.spec
    net, head, apply, policy_only, _ = actor_critic(config, spec)
    batch = config.num_envs * config.num_steps
    steps = config.total_steps // (batch * config.inverse_every) * config.inverse_every  # K-FAC steps in the run
    policy = onpolicy.Policy(lambda p, obs, memory, noise: (*apply(p, obs), memory), head,
                             lambda p, obs, memory=(): apply(p, obs)[1])
    obs_batch = jax.ShapeDtypeStruct((batch,) + tuple(spec.obs_shape), spec.obs_dtype)

    def tx(hp):
        return optimizer(hp["lr"], total_steps=steps, anneal=config.anneal_lr, kind="sgd", momentum=hp["momentum"])

    def log_std_fisher(hp):
        """The exact Fisher of a state-independent log-std is 2 per coordinate; damped like the layers."""
        return lambda path, g: g / (2.0 + hp["damping"]) if getattr(path[-1], "key", None) == "log_std" else g

    def init(key, hp):
        params, env_state, obs, k_state, n = onpolicy.start(
            key, env, lambda k: net.init(k, jnp.zeros(spec.obs_shape, spec.obs_dtype)))
        layers, _ = kfac.find_layers(apply, params, obs_batch)
        return State(params, tx(hp).init(params), kfac.init(layers), env_state, obs, k_state, n)

    def kfac_step(state: State, hp, index):
        """One rollout and one K-FAC step with the current inverses; ``index`` counts K-FAC steps."""
        key, k_roll, k_fisher = jax.random.split(state.key, 3)
        env_state, obs, _, traj, ep = onpolicy.rollout(env, policy, state.params, state.env_state, state.obs, (),
                                                       k_roll, config.num_steps)
        lam = 1.0 if config.returns == "nstep" else hp["gae_lambda"]
        adv, target = onpolicy.advantages(traj, onpolicy.bootstrap_values(policy, state.params, traj), hp["gamma"], lam)
        flat_obs, action, adv, target = jax.tree_util.tree_map(lambda x: x.reshape((batch,) + x.shape[2:]),
                                                               (traj.obs, traj.action, adv, target))
        layers, shapes = kfac.find_layers(apply, state.params, flat_obs)
        out, vjp, inputs = jax.vjp(lambda p, e: kfac.tapped(apply, e)(p, flat_obs), state.params,
                                   kfac.zero_perturbations(shapes), has_aux=True)
        loss_ct, stats = jax.grad(lambda o: a2c_loss(o, (action, adv, target), hp, head), has_aux=True)(out)
        grads, _ = vjp(loss_ct)
        _, g = vjp(jax.grad(lambda o: fisher_log_likelihood(o, k_fisher, head))(out))
        ks = kfac.update_factors(state.kfac, *kfac.batch_factors(layers, inputs, g, batch), hp["stats_decay"])
        nat = kfac.precondition(ks, layers, grads, log_std_fisher(hp))
        lr = schedule(hp["lr"], steps, config.anneal_lr)(index)
        scale = kfac.trust_region_scale(nat, grads, lr, hp["max_kl"])
        updates, opt_state = tx(hp).update(jax.tree_util.tree_map(lambda x: scale * x, nat), state.opt_state,
                                           state.params)
        params = optax.apply_updates(state.params, updates)
        kl = kl_divergence(head.kind, jax.lax.stop_gradient(out[0]), policy_only(params, flat_obs)).mean()
        metrics = dict(zip(STATS, stats), **ep, kl=kl, trust_scale=scale, lr=lr, grad_norm=optax.tree.norm(grads),
                       explained_variance=explained_variance(traj.value.reshape(-1), target))
        new = State(params, opt_state, ks, env_state, obs, key, state.update)
        return new, metrics

    def update(state: State, hp):
        state = state._replace(kfac=kfac.update_inverses(state.kfac, hp["damping"]))

        def body(s, j):
            return kfac_step(s, hp, state.update * config.inverse_every + j)

        state, ms = jax.lax.scan(body, state, jnp.arange(config.inverse_every))
        metrics = {k: (v.sum() if is_summed(k) else v.mean()) for k, v in ms.items()}
        return state._replace(update=state.update + 1), metrics

    def act(state: State, obs, key=None):
        """Greedy action: argmax of the logits, or the Gaussian mean clipped to the action box."""
        return head.to_env(head.mode(policy_only(state.params, obs)))

    return Agent(config, init, update, act, steps // config.inverse_every, batch * config.inverse_every)
