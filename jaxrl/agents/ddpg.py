"""DDPG (Lillicrap et al. 2016, arXiv:1509.02971) as in Lapan's *Deep RL Hands-On* ch. 14, and the family
built on it: TD3 (:mod:`jaxrl.agents.td3`, a preset of switches) and D4PG (:mod:`jaxrl.agents.d4pg`,
a distributional critic passed as two functions).

* Actor: ``hidden``-``last_hidden`` ReLU layers (400-300) and a tanh output in ``[-1, 1]^A``, mapped onto
  the env's action bounds. Critic: 400 -> concat(action) -> 300 (``action_layer=1``; 0 puts the
  action at the input, as TD3 and CleanRL do).
* Exploration: Ornstein-Uhlenbeck noise (theta 0.15, sigma 0.2; its state is per env, in the agent
  state, reset where an episode ends) or Gaussian noise (``--noise gaussian``); uniformly random
  actions before ``learning_starts``.
* Critic: ``y = r + gamma^k Q'(s', mu'(s'))`` over n-step windows, MSE; actor: ``-Q(s, mu(s))``.
* Target networks (actor and critics) move by ``tau`` with each actor update.

TD3's switches (Fujimoto et al. 2018, arXiv:1802.09477): ``twin`` (two critics, the target takes their
minimum), ``policy_delay`` (the actor and the targets move every ``policy_delay`` critic steps) and
``target_noise``/``target_noise_clip`` (target policy smoothing). Because the targets move with the
delayed actor update, counted in gradient steps, this learner keeps its target networks in its own
state; the off-policy core's ``target_update_every`` must stay 1.

A variant is a critic head: ``target(out_next [C, B, ...], batch, hp) -> y`` and
``loss(out [C, B, ...], y, weight [B]) -> (loss, priority [B])``, with ``num_outputs`` per critic and
``q_of`` (outputs -> Q values) for the actor's loss; see :mod:`jaxrl.agents.d4pg`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl import rng
from jaxrl.config import ConfigError, field
from jaxrl.core import actor_critic, exploration, offpolicy
from jaxrl.core.optim import gradient_step, polyak
from jaxrl.networks.continuous import Critic, DeterministicActor

DEFAULT_ENV = "gymnax:Pendulum-v1"


@dataclasses.dataclass(frozen=True)
class Config(actor_critic.Config):
    total_steps: int = field(30_000, low=1, help="env steps per seed")
    buffer_size: int = field(100_000, low=1, help="replay capacity in transitions (split evenly over envs)")
    actor_lr: float = field(1e-4, traced=True, low=0.0, help="actor learning rate (0: lr)")
    critic_lr: float = field(1e-3, traced=True, low=0.0, help="critic learning rate (0: lr)")
    hidden: int = field(400, low=1, help="units per hidden layer (actor and critic)")
    last_hidden: int = field(300, low=0, help="units of the last hidden layer (0: hidden)")
    action_layer: int = field(1, low=0, high=8, help="critic layer whose input gets the action (0: the input)")
    noise: str = field("ou", choices=("ou", "gaussian"), help="exploration noise: Ornstein-Uhlenbeck or Gaussian")
    noise_sigma: float = field(0.2, traced=True, low=0.0,
                               help="OU sigma or Gaussian std, in units of half the action range")
    ou_theta: float = field(0.15, traced=True, low=0.0, high=1.0, help="OU mean-reversion rate")
    twin: bool = field(False, help="two critics, the target takes their minimum (TD3)")
    policy_delay: int = field(1, low=1, help="critic steps per actor and target update (TD3: 2)")
    target_noise: float = field(0.0, traced=True, low=0.0, help="target policy smoothing noise std (TD3: 0.2)")
    target_noise_clip: float = field(0.5, traced=True, low=0.0, help="clip of the smoothing noise (TD3: 0.5)")

    def check(self):
        super().check()
        if self.target_update_every != 1:
            raise ConfigError("target_update_every", f"{self.target_update_every}: the targets move with each actor "
                                                     f"update; set how often with --policy-delay")


class Learner(NamedTuple):
    actor: Any  # flax parameters of the actor
    critic: Any  # of the critics (stacked [C, ...] with twin)
    target_actor: Any
    target_critic: Any
    actor_opt: Any
    critic_opt: Any
    count: jax.Array  # critic steps taken


# ----------------------------------------------------------------------------- the default critic head
def q_target(q_next, batch: offpolicy.Batch, hp):
    """``r + discount * min_c Q'_c(s', a')``. q_next ``[C, B]`` (C = 2: TD3's clipped double Q) -> ``[B]``."""
    return batch.reward + batch.discount * q_next.min(0)


def q_loss(q, y, weight):
    """Importance-weighted MSE of every critic, summed over critics. q ``[C, B]``, y, weight ``[B]`` ->
    ``(loss, priority [B])``, the priority being ``|y - Q|`` averaged over critics."""
    td = q - y
    return (weight * td * td).mean(-1).sum(), jnp.abs(td).mean(0)


def smoothed(action, bits, hp):
    """TD3's target policy smoothing: ``clip(a + clip(N(0, s^2), -c, c), -1, 1)``. action ``[B, A]``, bits
    ``B * A`` words."""
    eps = hp["target_noise"] * rng.normal(bits[:action.size]).reshape(action.shape)
    c = hp["target_noise_clip"]
    return jnp.clip(action + jnp.clip(eps, -c, c), -1.0, 1.0)


# ----------------------------------------------------------------------------- the learner
def make_agent(config: Config, env, *, target: Callable = q_target, loss: Callable = q_loss, num_outputs: int = 1,
               q_of: Callable = lambda out: out, name: str = "ddpg"):
    """The DDPG family on the off-policy core; ``target``/``loss``/``num_outputs``/``q_of`` make a critic variant."""
    config.validate()
    spec = env.spec
    actor_critic.require_continuous(spec, name)
    A, E, B = spec.action_space.dim, config.num_envs, config.batch_size
    hidden = actor_critic.hidden_sizes(config)
    actor = DeterministicActor(A, hidden, len(spec.obs_shape))
    crit = actor_critic.critics(Critic(hidden, config.action_layer, num_outputs, len(spec.obs_shape)),
                                2 if config.twin else 1)
    to_env = actor_critic.action_map(spec)
    ou = config.noise == "ou"

    def txs(hp):
        return (actor_critic.adam(actor_critic.learning_rate(hp, "actor_lr")),
                actor_critic.adam(actor_critic.learning_rate(hp, "critic_lr")))

    def init(key, hp):
        k_actor, k_critic = jax.random.split(key)
        obs, action = jnp.zeros((1,) + tuple(spec.obs_shape), spec.obs_dtype), jnp.zeros((1, A), jnp.float32)
        pa, pc = actor.init(k_actor, obs), crit.init(k_critic, obs, action)
        tx_a, tx_c = txs(hp)
        return Learner(pa, pc, pa, pc, tx_a.init(pa), tx_c.init(pc), jnp.zeros((), jnp.int32))

    def explore_init(n):
        return exploration.ou_init(n, A) if ou else ()

    def act(ls: Learner, obs, explore, bits, steps, hp):
        z = rng.normal(bits[:E * A]).reshape(E, A)
        if ou:
            explore = exploration.ou_step(explore, z, hp["ou_theta"], hp["noise_sigma"])
            noise = explore
        else:
            noise = hp["noise_sigma"] * z
        action = exploration.noisy_action(actor.apply(ls.actor, obs), noise)
        warm = steps < config.learning_starts  # the same words: the two uses never meet
        return jnp.where(warm, exploration.uniform_unit(bits, (E, A)), action), explore, {}

    def update_actor(ls: Learner, critic, obs, hp):
        """One actor step on ``-Q_1(s, mu(s))``, then the targets move by tau."""
        def actor_loss(p):
            return -q_of(crit.first(critic, obs, actor.apply(p, obs))).mean(), ()

        pa, opt, value, _, _ = gradient_step(actor_loss, txs(hp)[0], ls.actor, ls.actor_opt)
        return pa, opt, polyak(pa, ls.target_actor, hp["tau"]), polyak(critic, ls.target_critic, hp["tau"]), value

    def learn(ls: Learner, _, batch: offpolicy.Batch, bits, hp):
        next_action = smoothed(actor.apply(ls.target_actor, batch.next_obs), bits, hp)
        y = jax.lax.stop_gradient(target(crit.apply(ls.target_critic, batch.next_obs, next_action), batch, hp))

        def critic_loss(p):
            out = crit.apply(p, batch.obs, batch.action)
            value, priority = loss(out, y, batch.weight)
            return value, (priority, q_of(out[0]).mean())

        critic, critic_opt, c_loss, (priority, q_pred), _ = gradient_step(critic_loss, txs(hp)[1], ls.critic,
                                                                          ls.critic_opt)
        if config.policy_delay == 1:
            pa, opt_a, t_actor, t_critic, a_loss = update_actor(ls, critic, batch.obs, hp)
        else:
            skip = (ls.actor, ls.actor_opt, ls.target_actor, ls.target_critic, jnp.zeros((), jnp.float32))
            pa, opt_a, t_actor, t_critic, a_loss = jax.lax.cond(
                ls.count % config.policy_delay == 0, lambda: update_actor(ls, critic, batch.obs, hp), lambda: skip)
        metrics = {"critic_loss": c_loss, "actor_loss": a_loss, "q_pred": q_pred}
        return (Learner(pa, critic, t_actor, t_critic, opt_a, critic_opt, ls.count + 1), metrics,
                jax.lax.stop_gradient(priority))

    def greedy(ls: Learner, obs):
        """The deterministic policy ``mu(s)`` mapped onto the env's action box."""
        return to_env(actor.apply(ls.actor, obs))

    learner = offpolicy.Learner(init, act, learn, greedy, explore_init=explore_init, to_env=to_env,
                                act_words=E * A, learn_words=B * A)
    return offpolicy.make_agent(config, env, learner)
