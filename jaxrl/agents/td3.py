"""TD3: twin delayed DDPG (Fujimoto et al. 2018, arXiv:1802.09477), with CleanRL's defaults.

DDPG (:mod:`jaxrl.agents.ddpg`) with three switches on: twin critics whose minimum makes the
target (clipped double Q), target policy smoothing (Gaussian noise of std 0.2 clipped to +-0.5, in
units of half the action range) and delayed updates (the actor and all target networks move once
every 2 critic steps; ``actor_loss`` is logged as 0 on the steps between). CleanRL's
``td3_continuous_action.py`` defaults: 256-256 ReLU networks with the action at the critic's input,
Adam 3e-4, batch 256, tau 0.005, replay 1M, Gaussian exploration noise 0.1. Learning starts after
5,000 uniformly random steps (CleanRL uses 25,000, meant for 1M-step MuJoCo runs: pass
``--learning-starts 25000`` there), so the defaults learn Pendulum-v1 within the 20,000 steps of
``total_steps``.
"""
from __future__ import annotations

import dataclasses

from jaxrl.agents import ddpg
from jaxrl.config import field

DEFAULT_ENV = ddpg.DEFAULT_ENV


@dataclasses.dataclass(frozen=True)
class Config(ddpg.Config):
    total_steps: int = field(20_000, low=1, help="env steps per seed")
    buffer_size: int = field(1_000_000, low=1, help="replay capacity in transitions (split evenly over envs)")
    actor_lr: float = field(0.0, traced=True, low=0.0, help="actor learning rate (0: lr)")
    critic_lr: float = field(0.0, traced=True, low=0.0, help="critic learning rate (0: lr)")
    hidden: int = field(256, low=1, help="units per hidden layer (actor and critics)")
    last_hidden: int = field(0, low=0, help="units of the last hidden layer (0: hidden)")
    action_layer: int = field(0, low=0, high=8, help="critic layer whose input gets the action (0: the input)")
    noise: str = field("gaussian", choices=("ou", "gaussian"), help="exploration noise: Gaussian or Ornstein-Uhlenbeck")
    noise_sigma: float = field(0.1, traced=True, low=0.0,
                               help="Gaussian std or OU sigma, in units of half the action range")
    twin: bool = field(True, help="two critics, the target takes their minimum")
    policy_delay: int = field(2, low=1, help="critic steps per actor and target update")
    target_noise: float = field(0.2, traced=True, low=0.0, help="target policy smoothing noise std")
    target_noise_clip: float = field(0.5, traced=True, low=0.0, help="clip of the smoothing noise")


def make_agent(config: Config, env):
    return ddpg.make_agent(config, env, name="td3")
