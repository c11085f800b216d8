"""Evolution strategies over policy parameters (Salimans et al. 2017, arXiv:1703.03864).

The policy is a deterministic MLP (argmax of logits, or a tanh mean scaled to the action box)
with its parameters flattened to one vector ``theta [D]``.  One ``update`` (a generation):

1. draw ``population / 2`` Gaussian directions ``eps_j`` and evaluate the mirrored pairs
   ``theta +- sigma eps_j`` (both members of a pair see the same episode seeds), plus ``theta``
   itself, on ``num_envs`` episodes each: one ``jax.vmap`` over ``population + 1`` members;
2. fitness = mean episode return, turned into centered ranks in ``[-0.5, 0.5]``;
3. gradient estimate ``g = sum_j (u_j+ - u_j-) eps_j / (population * sigma)``, and one Adam
   step on ``-g + weight_decay * theta`` (ascent with L2 decay, as in the paper).

Reported episodes (``episode_return``) are those of the unperturbed ``theta``: the policy that
is being learned.  ``population_return`` is the mean over the perturbed members.  The budget is
``iterations`` (generations); ``steps_per_update`` counts the simulated env steps of a
generation, ``(population + 1) * num_envs * max_steps``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.config import ConfigError, field
from jaxrl.core.agent import Agent, episode_sums
from jaxrl.core.episodes import IterationConfig, episode_limit, evaluate_population, flat_policy
from jaxrl.envs.core import Env


@dataclasses.dataclass(frozen=True)
class Config(IterationConfig):
    iterations: int = field(0, low=0, help="generations per seed (0: from total_steps, else 50)")
    population: int = field(32, low=2, help="perturbations per generation (mirrored pairs, so even)")
    num_envs: int = field(1, low=1, help="episodes per member per generation")
    sigma: float = field(0.1, traced=True, low=0.0, low_open=True, help="perturbation std")
    lr: float = field(0.03, traced=True, low=0.0, low_open=True, help="Adam learning rate")
    weight_decay: float = field(0.005, traced=True, low=0.0, help="L2 coefficient added to the ascent step")
    max_steps: int = field(0, low=0, help="episode step limit inside the rollout; 0 = the env's limit")
    hidden: int = field(32, low=1, help="units per hidden layer")
    layers: int = field(1, low=1, high=8, help="hidden layers")
    activation: str = field("tanh", choices=("tanh", "relu", "gelu"), help="hidden activation")
    num_states: int = field(0, low=0, help="size of an integer observation space (one-hot); 0 = infer")

    default_iterations: ClassVar[int] = 50

    def check(self):
        super().check()
        if self.population % 2:
            raise ConfigError("population", f"must be even (mirrored pairs); got {self.population}")


class State(NamedTuple):
    theta: jax.Array  # [D]
    opt_state: Any
    key: jax.Array


def centered_ranks(x):
    """Ranks of ``x`` [P] mapped linearly to ``[-0.5, 0.5]`` (ties broken by position). [P] -> [P]."""
    ranks = jnp.argsort(jnp.argsort(x)).astype(jnp.float32)
    return ranks / (x.shape[0] - 1) - 0.5


def es_gradient(fitness_pos, fitness_neg, eps, sigma):
    """Mirrored-sampling ES gradient with centered-rank fitness shaping.

    fitness_pos, fitness_neg [M]: fitness of theta + sigma eps_j and theta - sigma eps_j; eps [M, D].
    Returns the ascent direction [D]: ``sum_j (u_j+ - u_j-) eps_j / (2 M sigma)``, ``u`` the centered
    ranks over all ``2M`` members.
    """
    m = fitness_pos.shape[0]
    u = centered_ranks(jnp.concatenate([fitness_pos, fitness_neg]))
    return ((u[:m] - u[m:]) @ eps) / (2 * m * sigma)


def make_agent(config: Config, env: Env) -> Agent:
    config.validate()
    spec = env.spec
    T, E = episode_limit(spec, config.max_steps), config.num_envs
    M = config.population // 2
    policy = flat_policy(spec, (config.hidden,) * config.layers, config.activation, config.num_states)
    tx_of = lambda hp: optax.adam(hp["lr"])  # noqa: E731

    def init(key, hp):
        k_net, k_state = jax.random.split(key)
        theta = policy.init(k_net)
        return State(theta, tx_of(hp).init(theta), k_state)

    def update(state: State, hp):
        key, k_eps, k_env = jax.random.split(state.key, 3)
        eps = jax.random.normal(k_eps, (M, policy.dim))
        thetas = jnp.concatenate([state.theta + hp["sigma"] * eps, state.theta - hp["sigma"] * eps,
                                  state.theta[None]])
        pair_keys = jax.random.split(k_env, M + 1)
        keys = jnp.concatenate([pair_keys[:M], pair_keys[:M], pair_keys[M:]])
        ret, length = evaluate_population(env, policy, thetas, keys, T)
        fit = ret.mean(1)
        g = es_gradient(fit[:M], fit[M:2 * M], eps, hp["sigma"])
        tx = tx_of(hp)
        upd, opt_state = tx.update(-g + hp["weight_decay"] * state.theta, state.opt_state, state.theta)
        theta = optax.apply_updates(state.theta, upd)
        metrics = episode_sums(ret[-1], length[-1])
        metrics.update({
            "population_return": fit[:-1].mean(), "best_return": fit[:-1].max(),
            "grad_norm": jnp.linalg.norm(g), "param_norm": jnp.linalg.norm(theta),
            "env_steps_sum": length.sum().astype(jnp.float32),
        })
        return State(theta, opt_state, key), metrics

    def act(state: State, obs, key=None):
        """The deterministic policy of the current parameters (the distribution's mean)."""
        return policy.act(state.theta, obs)

    steps = (config.population + 1) * E * T
    return Agent(config, init, update, act, config.num_updates(steps), steps)
