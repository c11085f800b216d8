"""Soft actor-critic (Haarnoja et al. 2018, arXiv:1801.01290 and arXiv:1812.05905), with CleanRL's defaults.

* Actor: a tanh-squashed Gaussian (``jaxrl.networks.distributions``: the log-density includes the
  ``log(1 - tanh(u)^2)`` correction), ``log_std`` squashed into [-5, 2]; deterministic ``act`` is
  ``tanh(mean)`` mapped onto the env's action box.
* Twin critics; target ``y = r + gamma^k (min_c Q'_c(s', a') - alpha log pi(a'|s'))`` with
  ``a' ~ pi(.|s')``, MSE per critic, summed. The target critics are the off-policy core's
  (``target_of``): Polyak averaging by ``tau`` every ``target_update_every`` env steps.
* Actor: ``alpha log pi(a|s) - min_c Q_c(s, a)``, ``a ~ pi(.|s)`` reparameterised, on the updated critics.
* Temperature: ``alpha = exp(log_alpha)`` tuned to the target entropy ``-|A|`` (loss
  ``-alpha (log pi + target)``, Adam at the critic's learning rate, as CleanRL), or fixed
  (``--no-autotune --temperature 0.2``).

CleanRL's ``sac_continuous_action.py`` defaults: 256-256 ReLU, Adam 3e-4 (actor) and 1e-3 (critics
and temperature), batch 256, tau 0.005, replay 1M, 5,000 random steps before learning. One
difference: CleanRL updates the actor twice every second step ("policy_frequency 2"); here each
gradient step updates the critics, the actor and the temperature once (the SAC paper's schedule),
the same number of actor steps.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl import rng
from jaxrl.config import field
from jaxrl.core import actor_critic, exploration, offpolicy
from jaxrl.core.optim import gradient_step
from jaxrl.networks.continuous import Critic, GaussianActor
from jaxrl.networks.distributions import tanh_gaussian_mode, tanh_gaussian_sample_and_log_prob

DEFAULT_ENV = "gymnax:Pendulum-v1"


@dataclasses.dataclass(frozen=True)
class Config(actor_critic.Config):
    critic_lr: float = field(1e-3, traced=True, low=0.0, help="critic (and temperature) learning rate (0: lr)")
    autotune: bool = field(True, help="tune the entropy temperature to the target entropy -|A|")
    temperature: float = field(0.2, traced=True, low=0.0, help="the fixed entropy temperature (--no-autotune)")


class Learner(NamedTuple):
    actor: Any
    critic: Any  # twin critics, leaves [2, ...]
    log_alpha: jax.Array  # scalar
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any


def soft_q_target(q_next, next_logp, alpha, batch: offpolicy.Batch):
    """``r + discount * (min_c Q'_c(s', a') - alpha log pi(a'|s'))`` (Haarnoja et al. 2018, eq. 3 and 5 with
    clipped double Q). q_next ``[C, B]`` target critics at ``(s', a' ~ pi(.|s'))``, next_logp ``[B]`` -> ``[B]``."""
    return batch.reward + batch.discount * (q_next.min(0) - alpha * next_logp)


def temperature_loss(log_alpha, logp, target_entropy):
    """``-alpha (log pi + target_entropy)`` averaged over the batch, with ``alpha = exp(log_alpha)`` (CleanRL's
    form); its gradient raises alpha while the entropy ``-log pi`` is below the target. logp ``[B]``."""
    return -jnp.exp(log_alpha) * jax.lax.stop_gradient(logp + target_entropy).mean()


def make_agent(config: Config, env):
    config.validate()
    spec = env.spec
    actor_critic.require_continuous(spec, "sac")
    A, E, B = spec.action_space.dim, config.num_envs, config.batch_size
    hidden = actor_critic.hidden_sizes(config)
    actor = GaussianActor(A, hidden, len(spec.obs_shape))
    crit = actor_critic.critics(Critic(hidden, 0, 1, len(spec.obs_shape)), 2)
    to_env = actor_critic.action_map(spec)
    target_entropy = -float(A)

    def txs(hp):
        critic_lr = actor_critic.learning_rate(hp, "critic_lr")
        return (actor_critic.adam(actor_critic.learning_rate(hp, "actor_lr")), actor_critic.adam(critic_lr),
                actor_critic.adam(critic_lr))

    def init(key, hp):
        k_actor, k_critic = jax.random.split(key)
        obs, action = jnp.zeros((1,) + tuple(spec.obs_shape), spec.obs_dtype), jnp.zeros((1, A), jnp.float32)
        pa, pc, log_alpha = actor.init(k_actor, obs), crit.init(k_critic, obs, action), jnp.zeros((), jnp.float32)
        tx_a, tx_c, tx_t = txs(hp)
        return Learner(pa, pc, log_alpha, tx_a.init(pa), tx_c.init(pc), tx_t.init(log_alpha))

    def temperature(ls: Learner, hp):
        return jnp.exp(ls.log_alpha) if config.autotune else hp["temperature"]

    def act(ls: Learner, obs, explore, bits, steps, hp):
        action, _ = tanh_gaussian_sample_and_log_prob(actor.apply(ls.actor, obs), rng.normal(bits).reshape(E, A))
        warm = steps < config.learning_starts  # the same words: the two uses never meet
        return jnp.where(warm, exploration.uniform_unit(bits, (E, A)), action), explore, {}

    def learn(ls: Learner, target_critic, batch: offpolicy.Batch, bits, hp):
        noise = rng.normal(bits).reshape(2, B, A)
        tx_a, tx_c, tx_t = txs(hp)
        alpha = temperature(ls, hp)
        next_action, next_logp = tanh_gaussian_sample_and_log_prob(actor.apply(ls.actor, batch.next_obs), noise[0])
        q_next = crit.apply(target_critic, batch.next_obs, next_action)
        y = jax.lax.stop_gradient(soft_q_target(q_next, next_logp, alpha, batch))

        def critic_loss(p):
            td = crit.apply(p, batch.obs, batch.action) - y  # [2, B]
            return (batch.weight * td * td).mean(-1).sum(), (jnp.abs(td).mean(0), (td[0] + y).mean())

        critic, critic_opt, c_loss, (priority, q_pred), _ = gradient_step(critic_loss, tx_c, ls.critic, ls.critic_opt)

        def actor_loss(p):
            action, logp = tanh_gaussian_sample_and_log_prob(actor.apply(p, batch.obs), noise[1])
            return (alpha * logp - crit.apply(critic, batch.obs, action).min(0)).mean(), logp

        pa, actor_opt, a_loss, logp, _ = gradient_step(actor_loss, tx_a, ls.actor, ls.actor_opt)
        log_alpha, alpha_opt = ls.log_alpha, ls.alpha_opt
        if config.autotune:
            log_alpha, alpha_opt, _, _, _ = gradient_step(lambda la: (temperature_loss(la, logp, target_entropy), ()),
                                                          tx_t, ls.log_alpha, ls.alpha_opt)
        metrics = {"critic_loss": c_loss, "actor_loss": a_loss, "q_pred": q_pred, "alpha": alpha,
                   "entropy": -logp.mean()}
        return Learner(pa, critic, log_alpha, actor_opt, critic_opt, alpha_opt), metrics, priority

    def greedy(ls: Learner, obs):
        """``tanh(mean)`` mapped onto the env's action box."""
        return to_env(tanh_gaussian_mode(actor.apply(ls.actor, obs)[0]))

    learner = offpolicy.Learner(init, act, learn, greedy, target_of=lambda ls: ls.critic, to_env=to_env,
                                act_words=E * A, learn_words=2 * B * A)
    return offpolicy.make_agent(config, env, learner)
