"""Munchausen DQN (Vieillard et al. 2020, arXiv:2007.14430): DQN whose target adds a scaled log-policy bonus.

With pi = softmax(q_target / tau), the target of a transition (s, a, r, s') is

    r + alpha * tau * clip(log pi(a|s), l0, 0) + gamma * sum_a' pi(a'|s') (q_target(s', a') - tau * log pi(a'|s'))

Everything else (network, epsilon-greedy acting, replay, target network, TD loss) is jaxrl's DQN.
With n_step > 1 the batch's reward is the discounted n-step sum and its discount gamma^k, so the
Munchausen bonus is added for the first step only (an approximation; the default is n_step = 1).
The target replaces double-Q and C51, so those switches must stay off.

    jaxrl train examples/munchausen_dqn.py --num-seeds 4
"""
import dataclasses

import jax
import jax.numpy as jnp

from jaxrl.agents import dqn
from jaxrl.config import ConfigError, field
from jaxrl.returns import select_action_values


@dataclasses.dataclass(frozen=True)
class Config(dqn.Config):
    # `alpha` and `tau` are taken (prioritized replay, target updates), hence the longer names
    m_alpha: float = field(0.9, traced=True, low=0.0, help="Munchausen scaling of the log-policy bonus")
    m_tau: float = field(0.03, traced=True, low=0.0, low_open=True, help="entropy temperature of pi")
    m_l0: float = field(-1.0, traced=True, high=0.0, help="lower clip of log pi(a|s) in the bonus")
    double: bool = field(False, help="must stay off: the Munchausen target replaces double-Q")

    def check(self):
        super().check()
        if self.double or self.distributional:
            raise ConfigError("double" if self.double else "distributional", "must be off for Munchausen DQN")


def munchausen_target(q: dqn.Q, params, target_params, batch, keys, hp):
    """The Munchausen target ``[B]`` from the target network's Q at s and s' (no gradient flows)."""
    tau = hp["m_tau"]
    q_s = q.q_of(q.apply(target_params, batch.obs, keys[1]))  # [B, A]
    q_next = q.q_of(q.apply(target_params, batch.next_obs, keys[1]))
    log_pi_a = select_action_values(jax.nn.log_softmax(q_s / tau), batch.action)
    bonus = hp["m_alpha"] * tau * jnp.clip(log_pi_a, hp["m_l0"], 0.0)
    log_pi_next = jax.nn.log_softmax(q_next / tau)
    v_next = (jnp.exp(log_pi_next) * (q_next - tau * log_pi_next)).sum(-1)  # soft value of s'
    return batch.reward + bonus + batch.discount * v_next


def make_agent(config: Config, env):
    return dqn.make_agent(config, env, target=munchausen_target)
