"""QR-DQN (Dabney et al. 2017, arXiv:1710.10044): DQN that learns num_quantiles quantiles of the return per action.

The network outputs quantiles theta(s, a) [N] at the midpoints tau_i = (2i + 1) / (2N), Q is their mean, and
the target of (s, a, r, s') is the vector r + gamma * theta_target(s', a*), a* greedy at s' (chosen by the
online net: double-Q is on as in jaxrl's DQN; --no-double for the paper's). The loss is the quantile Huber loss

    sum_i mean_j |tau_i - 1{u_ij < 0}| * huber(u_ij, kappa) / kappa,   u_ij = target_j - theta_i(s, a)

With n_step > 1, r is the batch's discounted n-step sum and gamma its gamma^k. Defaults suit CartPole: the
paper's N = 200 and kappa = 1 are for Atari's clipped rewards (kappa = 1 diverged on CartPole here).

    jaxrl train examples/qr_dqn.py --num-seeds 4
"""
import dataclasses

import jax.numpy as jnp

from jaxrl.agents import dqn
from jaxrl.config import ConfigError, field
from jaxrl.returns import select_action_values


@dataclasses.dataclass(frozen=True)
class Config(dqn.Config):
    num_quantiles: int = field(10, low=2, help="quantiles per action")
    kappa: float = field(10.0, traced=True, low=0.0, low_open=True, help="Huber threshold of the quantile loss")

    def check(self):
        super().check()
        if self.distributional:
            raise ConfigError("distributional", "is C51's switch; QR-DQN is distributional already, leave it off")


def quantile_target(q: dqn.Q, params, target_params, batch, keys, hp):
    """Target quantiles ``[B, N]``: r + gamma^k * theta_target(s', a*)."""
    out_next = q.apply(target_params, batch.next_obs, keys[1])  # [B, A, N]
    selector = q.q_of(q.apply(params, batch.next_obs, keys[0])) if q.config.double else q.q_of(out_next)
    theta_next = select_action_values(out_next, jnp.argmax(selector, -1))
    return batch.reward[:, None] + batch.discount[:, None] * theta_next


def quantile_huber_loss(q: dqn.Q, params, batch, y, keys, hp):
    """Weighted quantile Huber loss of the taken actions; aux = (loss per row [B], Q [B])."""
    theta = select_action_values(q.apply(params, batch.obs, keys[0]), batch.action)  # [B, N]
    n = theta.shape[-1]
    tau = (jnp.arange(n) + 0.5) / n
    u = y[:, None, :] - theta[:, :, None]  # [B, i (predicted), j (target)]
    k, abs_u = hp["kappa"], jnp.abs(u)
    huber = jnp.where(abs_u <= k, 0.5 * u * u, k * (abs_u - 0.5 * k))  # as a `where`: faster on CPU than a min
    per = (jnp.where(u < 0, 1 - tau[:, None], tau[:, None]) * huber / k).sum(1).mean(-1)
    return (per * batch.weight).mean(), (per, theta.mean(-1))


def make_agent(config: Config, env):
    return dqn.make_agent(config, env, target=quantile_target, loss=quantile_huber_loss,
                          num_atoms=config.num_quantiles, q_of=lambda out: out.mean(-1))
