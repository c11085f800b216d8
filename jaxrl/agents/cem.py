"""Cross-entropy method on a policy network (as taught in Lapan, *Deep RL Hands-On*, ch. 4).

One ``update`` (a "batch"):

1. play ``num_envs`` whole episodes with the stochastic policy (masked ``lax.scan`` of ``max_steps``);
2. score each episode by its return, discounted by ``gamma`` (``gamma=1``: plain return; FrozenLake
   needs ``gamma<1`` so that short successes outrank long ones);
3. the elite: episodes whose score is at or above the ``percentile``-th percentile of the scores,
   excluding episodes tied with the worst score (so a batch of equal scores has no elite, and a
   0/1-reward batch trains only on its successes);
4. ``train_steps`` Adam steps of cross-entropy between the policy and the elite's actions, over
   every step of every elite episode.

``keep_elites=C > 0`` carries the ``C`` best elite episodes over to the next batch, where they
compete again with the new episodes (percentile and training set are over both); needed on
FrozenLake, where successes are rare.  Shapes are static: the carried set is a ``[T, C]`` buffer
with a validity mask.  The budget is ``iterations`` (batches); ``steps_per_update`` counts the
simulated env steps of a batch, ``num_envs * max_steps`` (``total_steps`` may set the budget instead).
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.config import ConfigError, field
from jaxrl.core.agent import Agent, episode_sums
from jaxrl.core.episodes import (IterationConfig, PolicyMLP, discrete_obs_size, encode_obs, episode_limit,
                                 rollout_episodes)
from jaxrl.envs.core import Env, require_discrete
from jaxrl.networks.distributions import categorical_entropy, categorical_log_prob


@dataclasses.dataclass(frozen=True)
class Config(IterationConfig):
    iterations: int = field(0, low=0, help="batches per seed (0: from total_steps, else 60)")
    num_envs: int = field(16, low=1, help="episodes per batch (played in parallel envs)")
    percentile: float = field(70.0, traced=True, low=0.0, high=100.0, help="elite: score at or above this percentile")
    gamma: float = field(1.0, traced=True, low=0.0, high=1.0, help="discount of the episode score")
    keep_elites: int = field(0, low=0, help="elite episodes carried over to the next batch (0: none)")
    lr: float = field(0.01, traced=True, low=0.0, low_open=True, help="Adam learning rate")
    train_steps: int = field(1, low=1, help="gradient steps on each elite set")
    max_steps: int = field(0, low=0, help="episode step limit inside the rollout; 0 = the env's limit")
    hidden: int = field(128, low=1, help="units per hidden layer")
    layers: int = field(1, low=1, high=8, help="hidden layers")
    activation: str = field("relu", choices=("tanh", "relu", "gelu"), help="hidden activation")
    num_states: int = field(0, low=0, help="size of an integer observation space (one-hot); 0 = infer")
    default_iterations: ClassVar[int] = 60

    def check(self):
        super().check()
        if self.num_envs + self.keep_elites < 2:
            raise ConfigError("num_envs", "one episode per batch can never be an elite (an elite must beat the "
                                          "worst score of its batch); use at least 2 episodes per batch")


class Elites(NamedTuple):
    """Carried elite episodes, time-major ``[T, C]``; ``valid [C]`` marks filled slots."""

    obs: Any
    action: jax.Array
    mask: jax.Array
    score: jax.Array
    valid: jax.Array


class State(NamedTuple):
    params: Any
    opt_state: Any
    elites: Elites
    key: jax.Array


def elite_mask(score, valid, percentile):
    """Elite episodes of a batch: ``score >= percentile`` and ``score > min(score)``, among ``valid``. [N] -> [N] bool."""
    s = jnp.where(valid, score, jnp.nan)
    bound = jnp.nanpercentile(s, percentile)
    worst = jnp.nanmin(s)
    return valid & (score >= bound) & (score > worst), bound


def make_agent(config: Config, env: Env) -> Agent:
    config.validate()
    spec = env.spec
    require_discrete(spec, "cem")
    T, N, C = episode_limit(spec, config.max_steps), config.num_envs, config.keep_elites
    n_states = discrete_obs_size(spec, config.num_states)
    features = lambda obs: encode_obs(obs, n_states, len(spec.obs_shape))  # noqa: E731
    net = PolicyMLP(spec.action_space.n, (config.hidden,) * config.layers, config.activation)
    tx_of = lambda hp: optax.adam(hp["lr"])  # noqa: E731

    def init(key, hp):
        k_net, k_state = jax.random.split(key)
        params = net.init(k_net, features(jnp.zeros((1,) + spec.obs_shape, spec.obs_dtype)))
        elites = Elites(jnp.zeros((T, C) + spec.obs_shape, spec.obs_dtype), jnp.zeros((T, C), jnp.int32),
                        jnp.zeros((T, C), bool), jnp.zeros((C,), jnp.float32), jnp.zeros((C,), bool))
        return State(params, tx_of(hp).init(params), elites, k_state)

    def loss_fn(params, x, action, w):
        logits = net.apply(params, x)
        ce = -(categorical_log_prob(logits, action) * w).sum() / jnp.maximum(w.sum(), 1.0)
        ent = (categorical_entropy(logits) * w).sum() / jnp.maximum(w.sum(), 1.0)
        return ce, ent

    def update(state: State, hp):
        key, k_roll = jax.random.split(state.key)

        def act(obs, k):
            return jax.random.categorical(k, net.apply(state.params, features(obs)))

        ep = rollout_episodes(env, act, k_roll, T)
        disc = hp["gamma"] ** jnp.arange(T, dtype=jnp.float32)[:, None]
        score = (ep.reward * disc).sum(0)
        # candidates: carried elites, then the new batch
        e = state.elites
        obs = jnp.concatenate([e.obs, ep.obs], 1)
        action = jnp.concatenate([e.action, ep.action.astype(jnp.int32)], 1)
        mask = jnp.concatenate([e.mask, ep.mask], 1)
        cand_score = jnp.concatenate([e.score, score])
        valid = jnp.concatenate([e.valid, jnp.ones((N,), bool)])
        elite, bound = elite_mask(cand_score, valid, hp["percentile"])
        w = (mask & elite[None]).astype(jnp.float32)
        x = features(obs)
        tx = tx_of(hp)

        def sgd(carry, _):
            params, opt_state = carry
            (ce, ent), g = jax.value_and_grad(loss_fn, has_aux=True)(params, x, action, w)
            upd, opt_state = tx.update(g, opt_state, params)
            return (optax.apply_updates(params, upd), opt_state), (ce, ent)

        (params, opt_state), (ce, ent) = jax.lax.scan(sgd, (state.params, state.opt_state), None,
                                                      length=config.train_steps)
        if C:
            top = jnp.argsort(-jnp.where(elite, cand_score, -jnp.inf))[:C]
            elites = Elites(obs[:, top], action[:, top], mask[:, top], cand_score[top], elite[top])
        else:
            elites = e
        metrics = episode_sums(ep.ret, ep.length)
        metrics.update({
            "loss": ce[-1], "entropy": ent[-1], "reward_bound": bound,
            "elite_episodes": elite.sum().astype(jnp.float32), "score": score.mean(),
            "env_steps_sum": ep.mask.sum().astype(jnp.float32),
        })
        return State(params, opt_state, elites, key), metrics

    def act(state: State, obs, key=None):
        """The most likely action."""
        return jnp.argmax(net.apply(state.params, features(obs)), -1)

    return Agent(config, init, update, act, config.num_updates(N * T), N * T)
