"""pgx backend: pgx's board games (``pgx:connect_four``, ``pgx:tic_tac_toe``, ``pgx:go_9x9`` ...) as batched envs.

pgx (Koyamada et al. 2023) writes each game as pure JAX functions of one game state, so a batch is a
``vmap`` and the whole game runs inside the compiled program. The env interface adds auto-reset and
episode statistics, as for gymnax:

* ``obs`` is what the player to move sees (pgx's observation planes, from that player's view);
* ``reward`` is the reward of the player who made the move (+1 for a winning move, -1 for an
  illegal one, which pgx scores as a loss);
* ``info["legal_action_mask"]`` (bool ``[num_envs, num_actions]``) and ``info["current_player"]``
  (int32 ``[num_envs]``) describe ``obs``.

Deterministic two-player games of perfect information (:data:`PLANNABLE`) also give ``env.game``, the
rules as a :class:`jaxrl.envs.core.Game` of one game, for agents that plan or play matches
(AlphaZero's search is this model). Stochastic, imperfect-information and single-player games (2048,
backgammon, the poker games, sparrow mahjong, MinAtar) are envs without ``game``. The backend's report
(:mod:`jaxrl.envs.pgx_report`) plays trained agents against a random player and plain MCTS.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.config import ConfigError
from jaxrl.envs.core import Discrete, Env, EnvSpec, EpisodeStats, Game, TimeStep
from jaxrl.envs.registry import Backend, Report

# deterministic, perfect information, two players who alternate, zero-sum
PLANNABLE = ("tic_tac_toe", "connect_four", "othello", "hex", "go_9x9", "go_19x19", "chess", "gardner_chess",
             "animal_shogi", "shogi")
STONES = ("tic_tac_toe", "connect_four", "othello", "hex", "go_9x9", "go_19x19")  # planes 0, 1: the stones
WHY_NOT = {"2048": "a single-player game with random tiles", "backgammon": "a game of dice",
           "kuhn_poker": "a game of hidden cards", "leduc_holdem": "a game of hidden cards",
           "sparrow_mahjong": "a three-player game of hidden tiles"}


class PgxState(NamedTuple):
    games: Any  # pgx State, batched over envs
    stats: EpisodeStats


def pgx_ids() -> list[str]:
    import pgx

    return list(pgx.available_envs())


def why_no_game(name: str) -> str:
    """Why ``pgx:name`` has no :class:`Game` (for the errors of agents that need one)."""
    return WHY_NOT.get(name, "a single-player game" if name.startswith("minatar") else "not a two-player board game")


def game_of(pgx_env, name: str) -> Game:
    """pgx's rules of one game as a :class:`Game` (deterministic: ``step`` passes no key)."""
    return Game(init=pgx_env.init, step=lambda g, a: pgx_env.step(g, a), observe=lambda g: g.observation,
                legal=lambda g: g.legal_action_mask, player=lambda g: g.current_player,
                rewards=lambda g: g.rewards, terminal=lambda g: g.terminated | g.truncated,
                num_players=int(pgx_env.num_players), stones=name in STONES)


def make_pgx(name: str, num_envs: int, num_seeds: int = 1, **options) -> Env:
    import pgx

    if options:
        raise ConfigError("env_option", f"pgx:{name} takes no options; drop {', '.join(options)}")
    try:
        penv = pgx.make(name)
        probe = penv.init(jax.random.PRNGKey(0))
    except Exception as e:  # noqa: BLE001 - e.g. MinAtar games need the pgx-minatar package
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError("env", f"pgx:{name} cannot be made ({type(e).__name__}: {first})") from e
    num_actions = int(probe.legal_action_mask.shape[-1])
    obs = probe.observation
    spec = EnvSpec(f"pgx:{name}", num_envs, tuple(obs.shape), np.dtype(obs.dtype), Discrete(num_actions),
                   None, "pgx")
    v_init, v_step = jax.vmap(penv.init), jax.vmap(penv.step)
    rows = jnp.arange(num_envs)

    def timestep(games, reward, terminated, truncated, final_obs, done, stats):
        info = {"legal_action_mask": games.legal_action_mask, "current_player": games.current_player}
        return TimeStep(games.observation, reward, terminated, truncated, final_obs, done, stats.last_return,
                        stats.last_length, info)

    def reset(key):
        games = v_init(jax.random.split(key, num_envs))
        stats = EpisodeStats.zeros(num_envs)
        false = jnp.zeros((num_envs,), bool)
        return PgxState(games, stats), timestep(games, jnp.zeros((num_envs,), jnp.float32), false, false,
                                                games.observation, false, stats)

    def step(state: PgxState, action, key):
        """One move in every env; finished games restart (skipped by a ``lax.cond`` when none finished)."""
        k_step, k_reset = jax.random.split(key)
        mover = state.games.current_player
        after = v_step(state.games, action.astype(jnp.int32), jax.random.split(k_step, num_envs))
        reward = after.rewards[rows, mover].astype(jnp.float32)
        terminated = after.terminated
        truncated = after.truncated & ~terminated
        done = terminated | truncated

        def with_reset(_):
            fresh = v_init(jax.random.split(k_reset, num_envs))
            pick = lambda r, s: jnp.where(done.reshape(done.shape + (1,) * (s.ndim - 1)), r, s)
            return jax.tree_util.tree_map(pick, fresh, after)

        games = jax.lax.cond(done.any(), with_reset, lambda _: after, None)
        stats = state.stats.update(reward, done)
        return PgxState(games, stats), timestep(games, reward, terminated, truncated, after.observation, done, stats)

    game = game_of(penv, name) if name in PLANNABLE else None
    return Env(spec, reset, step, game)


def _report(*args, **kwargs):
    from jaxrl.envs.pgx_report import run

    return run(*args, **kwargs)


def _text(result: dict) -> list:
    from jaxrl.envs.pgx_report import text

    return text(result)


def _report_options() -> tuple:
    from jaxrl.envs.pgx_report import OPTIONS

    return OPTIONS


BACKEND = Backend(name="pgx", make=make_pgx, ids=pgx_ids, report=Report(_report, _text, _report_options(),
                                                                     promote=("eval_vs_random", "eval_vs_mcts")))
