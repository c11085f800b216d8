"""Value iteration and Q-value iteration on a tabular model learned from random play.

For envs with integer observations (FrozenLake: ``gymnax:FrozenLake-misc``, 4x4 by default,
8x8 with the env option ``map_name='8x8'``; the number of states is read from the env).  As in
Lapan, *Deep RL Hands-On*, ch. 5, one ``update`` (an iteration):

1. ``random_steps`` steps of uniformly random play (over ``num_envs`` envs, continuing across
   iterations) add to the counts ``n(s, a, s')`` and reward sums of every transition;
2. the model is ``P(s'|s,a) = n(s,a,s') / n(s,a)``, ``R(s,a,s')`` the mean observed reward;
3. ``sweeps`` synchronous Bellman optimality sweeps (all states at once) on the table:
   ``mode="v"``:  ``V(s) <- max_a sum_s' P (R + gamma V(s'))``;
   ``mode="q"``:  ``Q(s,a) <- sum_s' P (R + gamma max_a' Q(s',a'))``;
4. ``test_episodes`` episodes of the greedy policy: the reported episodes (FrozenLake's return is
   the success rate).  With ``learn_from_eval`` (the default, as in the reference) their
   transitions also enter the model.  Evaluation steps are not counted in ``steps_per_update``.

Pairs ``(s, a)`` never tried have value 0; so do terminal states, which have no outgoing
transitions because the env resets after them (the transition into them is recorded with
``final_obs``).  ``steps_per_update = random_steps``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.config import ConfigError, field
from jaxrl.core.agent import Agent, episode_sums
from jaxrl.core.episodes import IterationConfig, episode_limit, play_episodes, tabular_sizes
from jaxrl.envs.core import Env


DEFAULT_ENV = "gymnax:FrozenLake-misc"


@dataclasses.dataclass(frozen=True)
class Config(IterationConfig):
    iterations: int = field(0, low=0, help="iterations per seed (0: from total_steps, else 100)")
    mode: str = field("v", choices=("v", "q"), help="iterate state values (v) or action values (q)")
    num_envs: int = field(1, low=1, help="envs of random play")
    random_steps: int = field(100, low=1, help="random env steps per iteration (over all envs)")
    gamma: float = field(0.9, traced=True, low=0.0, high=1.0, help="discount")
    sweeps: int = field(1, low=1, help="Bellman sweeps over all states per iteration")
    test_episodes: int = field(20, low=1, help="greedy test episodes played after each iteration (the reported "
                                               "episodes)")
    learn_from_eval: bool = field(True, help="evaluation episodes also add to the model (as in the reference)")
    max_steps: int = field(0, low=0, help="step limit of evaluation episodes; 0 = the env's limit")
    num_states: int = field(0, low=0, help="number of states; 0 = infer from the env (FrozenLake: 16, or 64 with map_name=8x8)")

    default_iterations: ClassVar[int] = 100

    def check(self):
        super().check()
        if self.random_steps % self.num_envs:
            raise ConfigError("random_steps", f"{self.random_steps} is not a multiple of num_envs = {self.num_envs}")
        if self.test_episodes % self.num_envs:
            raise ConfigError("test_episodes", f"{self.test_episodes} is not a multiple of num_envs = {self.num_envs}")


class Model(NamedTuple):
    """Transition counts ``n [S, A, S']`` and reward sums ``[S, A, S']``."""

    counts: jax.Array
    reward_sum: jax.Array

    def record(self, s, a, r, s_next, weight=1.0):
        """Add a batch of transitions (``[N]`` each; ``weight`` 0 skips a transition)."""
        return Model(self.counts.at[s, a, s_next].add(weight), self.reward_sum.at[s, a, s_next].add(r * weight))


def model_from_counts(model: Model):
    """(P [S, A, S'], R [S, A, S']): empirical transition probabilities and mean rewards; 0 where unseen."""
    total = model.counts.sum(-1, keepdims=True)
    p = model.counts / jnp.maximum(total, 1.0)
    r = model.reward_sum / jnp.maximum(model.counts, 1.0)
    return p, r


def q_from_v(p, r, v, gamma):
    """One-step lookahead ``Q(s,a) = sum_s' P(s'|s,a) (R(s,a,s') + gamma V(s'))``. [S,A,S'],[S,A,S'],[S] -> [S,A]."""
    return (p * (r + gamma * v[None, None, :])).sum(-1)


def bellman_v(p, r, v, gamma):
    """Bellman optimality backup of state values. [S, A, S'], [S, A, S'], [S] -> [S]."""
    return q_from_v(p, r, v, gamma).max(-1)


def bellman_q(p, r, q, gamma):
    """Bellman optimality backup of action values. [S, A, S'], [S, A, S'], [S, A] -> [S, A]."""
    return q_from_v(p, r, q.max(-1), gamma)


class State(NamedTuple):
    model: Model
    table: jax.Array  # V [S] (mode v) or Q [S, A] (mode q)
    policy: jax.Array  # [S] int32: the greedy action of each state under the last table and model
    env_state: Any
    obs: jax.Array
    key: jax.Array


def make_agent(config: Config, env: Env) -> Agent:
    config.validate()
    spec = env.spec
    S, _ = tabular_sizes(spec, config.num_states, "value_iteration")
    A, N = spec.action_space.n, config.num_envs
    T = episode_limit(spec, config.max_steps)
    backup = bellman_v if config.mode == "v" else bellman_q

    def init(key, hp):
        k_env, k_state = jax.random.split(key)
        env_state, ts = env.reset(k_env)
        z = jnp.zeros((S, A, S), jnp.float32)
        table = jnp.zeros((S,) if config.mode == "v" else (S, A), jnp.float32)
        return State(Model(z, z), table, jnp.zeros((S,), jnp.int32), env_state, ts.obs, k_state)

    def greedy(table, p, r, gamma):
        """[S] int32: argmax of the one-step lookahead (mode v) or of Q (mode q)."""
        q = q_from_v(p, r, table, gamma) if config.mode == "v" else table
        return jnp.argmax(q, -1).astype(jnp.int32)

    def update(state: State, hp):
        key, k_play, k_eval = jax.random.split(state.key, 3)

        def play(carry, k):
            model, env_state, obs = carry
            k_a, k_env = jax.random.split(k)
            a = jax.random.randint(k_a, (N,), 0, A)
            env_state, ts = env.step(env_state, a, k_env)
            return (model.record(obs, a, ts.reward, ts.final_obs), env_state, ts.obs), None

        (model, env_state, obs), _ = jax.lax.scan(
            play, (state.model, state.env_state, state.obs), jax.random.split(k_play, config.random_steps // N))
        p, r = model_from_counts(model)
        table = jax.lax.fori_loop(0, config.sweeps, lambda _, t: backup(p, r, t, hp["gamma"]), state.table)
        policy = greedy(table, p, r, hp["gamma"])
        ep = play_episodes(env, lambda o, _: policy[o], k_eval, T, config.test_episodes)
        if config.learn_from_eval:
            model = model.record(ep.obs, ep.action, ep.reward, ep.next_obs, ep.mask.astype(jnp.float32))
        metrics = episode_sums(ep.ret, ep.length)
        tried = model.counts.sum(-1) > 0
        metrics.update({
            "pairs_tried": tried.mean(), "table_mean": table.mean(),
            "bellman_residual": jnp.abs(backup(p, r, table, hp["gamma"]) - table).max(),
        })
        return State(model, table, policy, env_state, obs, key), metrics

    def act(state: State, obs, key=None):
        """The greedy action under the last table and model."""
        return state.policy[obs]

    return Agent(config, init, update, act, config.num_updates(config.random_steps), config.random_steps)
