"""D4PG (Barth-Maron et al. 2018, arXiv:1804.08617) as in Lapan's *Deep RL Hands-On* ch. 14: DDPG with a
categorical distributional critic.

The critic outputs ``num_atoms`` logits on the support ``linspace(v_min, v_max, num_atoms)`` (51 atoms
on [-10, 10] by default, as in ch. 14: set the support to the task's returns, e.g. ``--v-min -1000
--v-max 0`` for Pendulum's). Its target is the target critic's distribution at ``(s', mu'(s'))``
shifted by the n-step return (5 steps by default) and projected back onto the support with the
same function C51 uses (:func:`jaxrl.returns.categorical_projection`); its loss the cross-entropy to
that projection; the actor maximises the critic's mean. Everything else (exploration, replay, n-step
windows, optional prioritized replay with the cross-entropy as priority, the targets moved by
``tau`` with each actor update) is DDPG's (:mod:`jaxrl.agents.ddpg`) and the off-policy core's.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxrl import losses, returns
from jaxrl.agents import ddpg
from jaxrl.config import ConfigError, field

DEFAULT_ENV = ddpg.DEFAULT_ENV


@dataclasses.dataclass(frozen=True)
class Config(ddpg.Config):
    n_step: int = field(5, low=1, high=64, help="n-step returns")
    noise: str = field("gaussian", choices=("ou", "gaussian"), help="exploration noise: Gaussian or Ornstein-Uhlenbeck")
    noise_sigma: float = field(0.3, traced=True, low=0.0,
                               help="Gaussian std or OU sigma, in units of half the action range")
    num_atoms: int = field(51, low=2, help="atoms of the critic's distribution")
    v_min: float = field(-10.0, help="support minimum")
    v_max: float = field(10.0, help="support maximum")

    def check(self):
        super().check()
        if self.v_max <= self.v_min:
            raise ConfigError("v_max", f"must exceed v_min ({self.v_min}); got {self.v_max}")
        if self.twin:
            raise ConfigError("twin", "a distributional critic has no minimum of two critics; drop --twin")


def categorical_target(atoms):
    """``target(out_next [1, B, K], batch, hp) -> [B, K]``: the projected n-step distribution (no gradient)."""
    def target(out_next, batch, hp):
        probs = jax.nn.softmax(out_next[0], -1)
        return returns.categorical_projection(atoms, probs, batch.reward, batch.discount)

    return target


def categorical_loss(out, y, weight):
    """Importance-weighted cross-entropy of the critic's logits ``out [1, B, K]`` to ``y [B, K]``;
    ``(loss, priority [B])`` with the per-row cross-entropy as priority."""
    per = losses.categorical_cross_entropy(out[0], y)
    return (per * weight).mean(), per


def make_agent(config: Config, env):
    config.validate()
    atoms = jnp.linspace(config.v_min, config.v_max, config.num_atoms)
    return ddpg.make_agent(config, env, target=categorical_target(atoms), loss=categorical_loss,
                           num_outputs=config.num_atoms, q_of=lambda out: (jax.nn.softmax(out, -1) * atoms).sum(-1),
                           name="d4pg")
