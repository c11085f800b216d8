"""What the off-policy actor-critic agents share: their config fields, the action box, optimizers, critics.

DDPG, TD3 and D4PG (:mod:`jaxrl.agents.ddpg` and the files built on it) and SAC
(:mod:`jaxrl.agents.sac`) are learners on the off-policy core (:mod:`jaxrl.core.offpolicy`). They
store actions in the normalised box ``[-1, 1]^A`` and hand the env ``to_env(action)``, the affine
map onto the env's bounds (``--action-rescaling`` from the env's bounds, as the issue calls it).
Their critics are ``C`` networks with stacked parameters (``C = 2``: TD3's and SAC's twin critics)
or one plain network (``C = 1``); either way :func:`critics` applies them as ``Q [C, B, ...]``.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.config import ConfigError, field
from jaxrl.core import offpolicy
from jaxrl.core.optim import optimizer
from jaxrl.networks.continuous import Critic, twin
from jaxrl.networks.distributions import head_for


@dataclasses.dataclass(frozen=True)
class Config(offpolicy.Config):
    """CleanRL's defaults for MuJoCo (256-256, Adam 3e-4, batch 256, tau 5e-3, replay 1M), with the budget
    and warm-up of the Pendulum-v1 learning tests."""

    total_steps: int = field(20_000, low=1, help="env steps per seed")
    buffer_size: int = field(1_000_000, low=1, help="replay capacity in transitions (split evenly over envs)")
    learning_starts: int = field(5_000, low=0, help="env steps of uniformly random actions before learning")
    tau: float = field(0.005, traced=True, low=0.0, high=1.0, low_open=True,
                       help="target update rate (Polyak averaging; 1 = hard copy)")
    lr: float = field(3e-4, traced=True, low=0.0, low_open=True, help="Adam learning rate of actor and critics")
    actor_lr: float = field(0.0, traced=True, low=0.0, help="actor learning rate (0: lr)")
    critic_lr: float = field(0.0, traced=True, low=0.0, help="critic learning rate (0: lr)")
    hidden: int = field(256, low=1, help="units per hidden layer (actor and critics)")
    layers: int = field(2, low=1, high=8, help="hidden layers (actor and critics)")


def learning_rate(hp, which: str):
    """``hp[which]`` where it is set (> 0), else ``hp["lr"]``; traced, so sweeps of either work."""
    return jnp.where(hp[which] > 0, hp[which], hp["lr"])


def adam(lr):
    """Adam on one flattened vector (:func:`jaxrl.core.optim.optimizer`), no clipping, no annealing."""
    return optimizer(lr)


def require_continuous(spec, algo: str):
    """A one-line error before compiling when ``spec`` has discrete actions."""
    if spec.discrete:
        raise ConfigError("env", f"{algo} needs a continuous action space, but {spec.env_id} has "
                                 f"{spec.action_space.n} discrete actions; pick a continuous env "
                                 f"(gymnax:Pendulum-v1, envpool:HalfCheetah-v5, ...) or use dqn")
    low, high = spec.action_space.low, spec.action_space.high
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ConfigError("env", f"{algo} maps actions onto the env's bounds, but {spec.env_id} has an "
                                 f"unbounded action box")


def action_map(spec) -> Callable:
    """``[-1, 1]^A -> [low, high]``: the affine map onto the env's action box."""
    return head_for(spec.action_space, "tanh_gaussian").to_env


class Critics(NamedTuple):
    """``C`` critics. init(key, obs, action) -> params; apply(params, obs [B, ..], action [B, A]) -> ``[C, B, ...]``;
    first(params, obs, action) -> ``[B, ...]`` of the first critic alone (DDPG's and TD3's actor loss)."""

    init: Callable
    apply: Callable
    first: Callable
    num: int


def critics(net: Critic, num: int) -> Critics:
    """``num`` copies of ``net``: stacked parameters for ``num > 1``, a plain network for ``num == 1``."""
    if num == 1:
        return Critics(net.init, lambda p, o, a: net.apply(p, o, a)[None], net.apply, 1)
    init, apply = twin(net, num)

    def first(params, obs, action):
        return net.apply(jax.tree_util.tree_map(lambda x: x[0], params), obs, action)

    return Critics(init, apply, first, num)


def hidden_sizes(config) -> tuple:
    """``layers`` layers of ``hidden`` units (the last one ``last_hidden`` units when a config has it set)."""
    sizes = [config.hidden] * config.layers
    if getattr(config, "last_hidden", 0):
        sizes[-1] = config.last_hidden
    return tuple(sizes)
