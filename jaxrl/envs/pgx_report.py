"""The pgx report: win, draw and loss rates of trained agents against a random player and plain MCTS.

The :class:`jaxrl.envs.registry.Report` of the pgx backend, for two-player games with known rules
(``env.game``). Each agent of the batch plays ``games`` games (half with each colour) against

* ``random``: a uniformly random legal move (``eval_vs_random``);
* ``mcts``: plain MCTS, PUCT with a uniform prior and one random playout as a leaf's value
  (:func:`jaxrl.core.games.rollout_mcts_player`), with ``mcts_simulations`` simulations per move
  (``eval_vs_mcts``).

The agent plays with ``Agent.act_game`` (AlphaZero: its search, no root noise) or, for agents without
one, ``Agent.act`` on the observation (an illegal move loses, as pgx scores it). The result holds, per
opponent, ``{"win": [per seed], "draw": [...], "loss": [...]}`` (fractions over both colours), and
``games`` and ``mcts_simulations``. Defaults: the agent config's ``eval_games`` (else 200) and
``baseline_factor`` x ``num_simulations`` (else 64) simulations.
"""
from __future__ import annotations

import jax
import numpy as np

from jaxrl.config import ConfigError

DEFAULT_GAMES = 200
DEFAULT_MCTS_SIMULATIONS = 64


def settings(agent, games=None, mcts_simulations=None) -> tuple[int, int]:
    cfg = agent.config
    if games is None:
        games = getattr(cfg, "eval_games", DEFAULT_GAMES)
    if mcts_simulations is None:
        sims = getattr(cfg, "num_simulations", None)
        mcts_simulations = sims * getattr(cfg, "baseline_factor", 4) if sims else DEFAULT_MCTS_SIMULATIONS
    if games < 2 or games % 2:
        raise ConfigError("games", f"must be even and >= 2 (half the games with each colour); got {games}")
    if mcts_simulations < 1:
        raise ConfigError("mcts_simulations", f"must be >= 1; got {mcts_simulations}")
    return int(games), int(mcts_simulations)


def agent_player(agent, game, s):
    """The agent of state ``s`` as a player ``(g [n], key) -> action [n]``."""
    if agent.act_game is not None:
        return lambda g, key: agent.act_game(s, g, key)
    observe = jax.vmap(game.observe)
    return lambda g, key: agent.act(s, observe(g), key).astype(np.int32)


def make_report_program(agent, game, num_actions: int, games: int, mcts_simulations: int):
    """``(states [B, ...], keys [B]) -> {"vs_random"|"vs_mcts": {stat: [B]}}``, compiled."""
    from jaxrl import parallel
    from jaxrl.core import games as G

    mcts = G.rollout_mcts_player(game, mcts_simulations, num_actions)

    def one(s, key):
        k_rand, k_mcts = jax.random.split(key)
        me = agent_player(agent, game, s)
        return {"vs_random": G.outcome_rates(G.play_match(game, me, G.random_player(game), games, k_rand)),
                "vs_mcts": G.outcome_rates(G.play_match(game, me, mcts, games, k_mcts))}

    return jax.jit(parallel.vmap(one))


def run(name: str, env_options: dict, agent, state, out=None, seed: int = 0, games=None, mcts_simulations=None):
    from jaxrl import envs, parallel

    env = envs.make(f"pgx:{name}", num_envs=1, **env_options)
    if env.game is None or env.game.num_players != 2:
        return {"skipped": f"pgx:{name} has no two-player rules to play matches with"}
    games, sims = settings(agent, games, mcts_simulations)
    batch = jax.tree_util.tree_leaves(state)[0].shape[0]
    program = make_report_program(agent, env.game, env.spec.action_space.n, games, sims)
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 0x9e7), batch)
    result = parallel.to_host(program(state, keys))
    out = {f"eval_{k}": {stat: [float(x) for x in np.asarray(v)] for stat, v in rates.items()}
           for k, rates in result.items()}
    out.update(games=games, mcts_simulations=sims)
    return out


def text(result: dict) -> list[str]:
    if "skipped" in result:
        return [f"pgx report: {result['skipped']}"]
    lines = []
    for key, label in (("eval_vs_random", "vs random"), ("eval_vs_mcts", f"vs MCTS ({result['mcts_simulations']} sims)")):
        r = result[key]
        cells = ", ".join(f"{stat} " + "/".join(f"{x:.2f}" for x in r[stat]) for stat in ("win", "draw", "loss"))
        lines.append(f"{key} ({label}, {result['games']} games per seed, both colours; per seed): {cells}")
    return lines


OPTIONS = (("--games", dict(type=int, default=None, help="games per opponent and seed, half with each colour "
                                                          "(default: the run's eval_games, else 200)")),
           ("--mcts-simulations", dict(type=int, default=None, help="simulations of the plain-MCTS opponent "
                                                                     "(default: baseline_factor x num_simulations)")))
