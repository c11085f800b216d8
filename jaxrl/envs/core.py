"""The one functional, batched environment interface that every agent uses.

An :class:`Env` is a pair of pure functions plus a spec::

    env_state, ts = env.reset(key)
    env_state, ts = env.step(env_state, action, key)

Both work on a batch of ``num_envs`` environments, run inside ``jax.jit`` and
``jax.lax.scan``, and vmap over seeds (see :mod:`jaxrl.envs.envpool_env` for how the
envpool backend achieves that).  Finished episodes reset automatically.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp


class Discrete(NamedTuple):
    n: int


class Box(NamedTuple):
    low: Any  # np.ndarray, same shape as the action
    high: Any
    shape: tuple

    @property
    def dim(self) -> int:
        import numpy as np

        return int(np.prod(self.shape))


class EnvSpec(NamedTuple):
    """Static description of an environment batch."""

    env_id: str  # the full id, e.g. "gymnax:CartPole-v1"
    num_envs: int
    obs_shape: tuple
    obs_dtype: Any
    action_space: Any  # Discrete | Box
    max_episode_steps: Optional[int] = None
    backend: str = "gymnax"
    obs_num_states: Optional[int] = None  # size of a discrete (integer) observation space, else None

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space, Discrete)


class TimeStep(NamedTuple):
    """What one batched step returns. Leading axis: ``[num_envs]``.

    obs:        observation to act on next (after auto-reset when an episode ended).
    reward:     float32 reward of the transition just taken.
    terminated: bool, the episode reached a terminal state: do **not** bootstrap.
    truncated:  bool, the episode was cut by a time limit: **do** bootstrap from ``final_obs``.
    final_obs:  the observation reached by the transition, before auto-reset; equals ``obs``
                unless the episode ended. Use it as the next state for bootstrapping.
    episode_done:   bool, an episode finished at this step (``terminated | truncated``).
    episode_return: float32, return of the last finished episode of each env (0 before the first).
    episode_length: int32, length of the last finished episode of each env.
    info:       dict of backend extras, fixed per env (``{}`` for gymnax). envpool Atari adds
                ``train_episode_return`` / ``train_episode_done``: the clipped, per-life return
                the agent trains on, while ``episode_return`` is the unclipped full-game return.
                Turn-based games (pgx) add ``legal_action_mask`` (bool ``[num_envs, num_actions]``)
                and ``current_player`` (int32 ``[num_envs]``), both of ``obs``; their ``reward`` is
                that of the player who made the move.
    """

    obs: Any
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: Any
    episode_done: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    info: dict

    @property
    def done(self):
        return jnp.logical_or(self.terminated, self.truncated)


class EpisodeStats(NamedTuple):
    """Running and last-finished episode statistics, per env."""

    running_return: jax.Array
    running_length: jax.Array
    last_return: jax.Array
    last_length: jax.Array

    @staticmethod
    def zeros(num_envs: int) -> "EpisodeStats":
        f = jnp.zeros((num_envs,), jnp.float32)
        i = jnp.zeros((num_envs,), jnp.int32)
        return EpisodeStats(f, i, f, i)

    def update(self, reward, done, valid=None):
        """Accumulate one step; ``valid`` masks steps that are not part of an episode."""
        r = self.running_return + reward.astype(jnp.float32)
        n = self.running_length + (1 if valid is None else valid.astype(jnp.int32))
        last_r = jnp.where(done, r, self.last_return)
        last_n = jnp.where(done, n, self.last_length)
        return EpisodeStats(jnp.where(done, 0.0, r), jnp.where(done, 0, n), last_r, last_n)


class Game(NamedTuple):
    """The rules of a deterministic, perfect-information, turn-based game, for agents that plan with
    them or play matches (AlphaZero's search, ``jaxrl play``). Pure functions of **one** game ``g`` (a
    pytree); ``jax.vmap`` them for a batch of any size.

    init(key) -> g                  a new game (who moves first may depend on ``key``)
    step(g, action) -> g            the move; a finished game stays as it is, with zero rewards
    observe(g) -> obs               what the player to move sees (the env's ``TimeStep.obs``)
    legal(g) -> bool [num_actions]  the legal moves of the player to move
    player(g) -> int32              the player to move, ``0 .. num_players - 1``
    rewards(g) -> float32 [num_players]  each player's reward for the move that led to ``g``
    terminal(g) -> bool             the game is over
    num_players: int
    stones: bool                    observations are ``[H, W, C]`` planes whose first two are the
                                    stones of the player to move and of the other (``jaxrl play``
                                    draws these boards)
    """

    init: Callable
    step: Callable
    observe: Callable
    legal: Callable
    player: Callable
    rewards: Callable
    terminal: Callable
    num_players: int = 2
    stones: bool = False


class Env(NamedTuple):
    """A batched functional environment: ``spec`` plus pure ``reset`` and ``step``.

    reset(key) -> (env_state, TimeStep)
    step(env_state, action[num_envs, ...], key) -> (env_state, TimeStep)

    ``game``: the rules as a :class:`Game`, for deterministic two-player board games whose backend
    exposes them (pgx); None otherwise.
    """

    spec: EnvSpec
    reset: Callable
    step: Callable
    game: Optional[Game] = None


class UnsupportedEnvError(ValueError):
    """An environment or action space that the requested algorithm or backend cannot use."""


def require_discrete(spec: EnvSpec, algo: str, field: str = "env") -> None:
    """Raise a one-line error before compiling when ``algo`` needs discrete actions."""
    from jaxrl.config import ConfigError

    if not spec.discrete:
        raise ConfigError(field, f"{algo} needs a discrete action space, but {spec.env_id} has "
                                 f"continuous actions {tuple(spec.action_space.shape)}; pick a discrete env")
