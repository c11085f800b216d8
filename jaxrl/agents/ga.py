"""A genetic algorithm over policy parameters (the simple deep GA of Such et al. 2017, arXiv:1712.06567).

The policy is a deterministic MLP with its parameters flattened to ``theta [D]``; the state is a
population ``[population, D]`` whose member 0 is the elite.  One ``update`` (a generation):

1. evaluate every member on ``num_envs`` episodes: one ``jax.vmap`` over the population;
2. truncation selection: the ``parents`` fittest members (fitness = mean episode return);
3. elitism: the fittest member is copied unchanged into slot 0 of the next generation;
4. the other ``population - 1`` members are children of parents drawn uniformly, mutated by
   Gaussian noise of std ``sigma`` (no crossover).

The first population is ``population`` independent network initialisations.  Reported episodes
(``episode_return``) are those of member 0, the elite carried over from the previous generation
and re-evaluated on fresh episodes; ``best_return`` is the best fitness of the generation (an
optimistic, selected figure) and ``population_return`` the mean.  The budget is ``iterations``
(generations); ``steps_per_update`` counts the simulated env steps of a generation,
``population * num_envs * max_steps``.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.config import ConfigError, field
from jaxrl.core.agent import Agent, episode_sums
from jaxrl.core.episodes import IterationConfig, episode_limit, evaluate_population, flat_policy
from jaxrl.envs.core import Env


@dataclasses.dataclass(frozen=True)
class Config(IterationConfig):
    iterations: int = field(0, low=0, help="generations per seed (0: from total_steps, else 20)")
    population: int = field(50, low=2, help="members per generation")
    parents: int = field(10, low=1, help="fittest members that breed the next generation (truncation)")
    num_envs: int = field(1, low=1, help="episodes per member per generation")
    sigma: float = field(0.02, traced=True, low=0.0, low_open=True, help="mutation std")
    max_steps: int = field(0, low=0, help="episode step limit inside the rollout; 0 = the env's limit")
    hidden: int = field(32, low=1, help="units per hidden layer")
    layers: int = field(1, low=1, high=8, help="hidden layers")
    activation: str = field("relu", choices=("tanh", "relu", "gelu"), help="hidden activation")
    num_states: int = field(0, low=0, help="size of an integer observation space (one-hot); 0 = infer")

    default_iterations: ClassVar[int] = 20

    def check(self):
        super().check()
        if self.parents > self.population:
            raise ConfigError("parents", f"{self.parents} exceeds population {self.population}; "
                                         f"lower parents or raise population")


class State(NamedTuple):
    population: jax.Array  # [P, D]; member 0 is the elite of the last generation
    key: jax.Array


def next_generation(key, population, fitness, num_parents: int, sigma):
    """Truncation selection with elitism and Gaussian mutation.

    population [P, D], fitness [P] -> new population [P, D]: row 0 the fittest member unchanged,
    rows 1.. ``parent + sigma * N(0, I)`` for parents drawn uniformly from the ``num_parents`` fittest.
    """
    p = population.shape[0]
    order = jnp.argsort(-fitness)
    parents = population[order[:num_parents]]
    k_pick, k_noise = jax.random.split(key)
    pick = jax.random.randint(k_pick, (p - 1,), 0, num_parents)
    children = parents[pick] + sigma * jax.random.normal(k_noise, (p - 1, population.shape[1]))
    return jnp.concatenate([parents[:1], children])


def make_agent(config: Config, env: Env) -> Agent:
    config.validate()
    spec = env.spec
    T, E, P = episode_limit(spec, config.max_steps), config.num_envs, config.population
    policy = flat_policy(spec, (config.hidden,) * config.layers, config.activation, config.num_states)

    def init(key, hp):
        k_pop, k_state = jax.random.split(key)
        return State(jax.vmap(policy.init)(jax.random.split(k_pop, P)), k_state)

    def update(state: State, hp):
        key, k_env, k_next = jax.random.split(state.key, 3)
        ret, length = evaluate_population(env, policy, state.population, jax.random.split(k_env, P), T)
        fit = ret.mean(1)
        population = next_generation(k_next, state.population, fit, config.parents, hp["sigma"])
        metrics = episode_sums(ret[0], length[0])
        metrics.update({
            "population_return": fit.mean(), "best_return": fit.max(),
            "parents_return": jnp.sort(fit)[-config.parents:].mean(),
            "env_steps_sum": length.sum().astype(jnp.float32),
        })
        return State(population, key), metrics

    def act(state: State, obs, key=None):
        """The policy of member 0: the elite carried over from the last generation."""
        return policy.act(state.population[0], obs)

    return Agent(config, init, update, act, config.num_updates(P * E * T), P * E * T)
