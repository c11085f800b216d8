"""Check a trained AlphaZero run against exact solvers (``tests/_game_solvers.py``).

    .venv/bin/python benchmarks/alphazero_solver_check.py RUN_DIR [--games 200] [--positions 200]

* ``pgx:tic_tac_toe`` runs: ``--games`` games (half with each colour) of the best network with search
  (``act_game``) against a perfect minimax player (random among optimal moves): win / draw / loss.
* ``pgx:connect_four`` runs: ``--positions`` positions near the end of random games (10 or fewer empty
  cells, not over), each labelled win / draw / loss for the player to move by the alpha-beta solver; the
  fraction where the sign of the best network's value head agrees (draws: |value| < ``--draw-band``), and
  the same for the decisive positions alone.

Prints one JSON object per trained agent (batch member).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from _game_solvers import c4_solve, ttt_perfect_player  # noqa: E402
from jaxrl.commands.play import load_agent  # noqa: E402
from jaxrl.core import games as G  # noqa: E402


def vs_perfect(game, agent, state, games: int, seed: int) -> dict:
    me = lambda g, k: agent.act_game(state, g, k)
    outcomes = np.asarray(jax.jit(lambda k: G.play_match(game, me, ttt_perfect_player(game), games, k))(
        jax.random.PRNGKey(seed)))
    return {"games": games, "win": float((outcomes > 0).mean()), "draw": float((outcomes == 0).mean()),
            "loss": float((outcomes < 0).mean())}


def late_positions(game, n: int, max_empty: int, seed: int):
    """Observations of ``n`` positions of random connect-four games with at most ``max_empty`` empty cells."""
    @jax.jit
    def batch(key):
        g = jax.vmap(game.init)(jax.random.split(key, 256))

        def body(i, c):
            g, k = c
            k, sub = jax.random.split(k)
            g2 = jax.vmap(game.step)(g, G.random_actions(game, g, sub))
            keep = ~jax.vmap(game.terminal)(g) & ~jax.vmap(game.terminal)(g2) & (
                (jax.vmap(game.observe)(g)[..., :2].sum((1, 2, 3)) < 42 - max_empty))
            return jax.tree_util.tree_map(lambda x, y: jnp.where(keep.reshape((-1,) + (1,) * (x.ndim - 1)), x, y),
                                          g2, g), k

        g, _ = jax.lax.fori_loop(0, 42, body, (g, key))
        return jax.vmap(game.observe)(g)

    out, key = [], jax.random.PRNGKey(seed)
    while len(out) < n:
        key, sub = jax.random.split(key)
        for o in np.asarray(batch(sub)):
            if 42 - int(o[..., :2].sum()) <= max_empty and len(out) < n:
                out.append(o)
    return np.stack(out)


def value_sign_check(agent, state, n: int, band: float, seed: int, game) -> dict:
    obs = late_positions(game, n, 10, seed)
    labels = np.array([c4_solve(o[..., 0], o[..., 1]) for o in obs])
    _, value = jax.jit(lambda o: agent_value(agent, state, o))(jnp.asarray(obs))
    value = np.asarray(value)
    predicted = np.where(np.abs(value) < band, 0, np.sign(value))
    decisive = labels != 0
    return {"positions": n, "win/draw/loss labels": [int((labels > 0).sum()), int((labels == 0).sum()),
                                                     int((labels < 0).sum())],
            "agree": float((predicted == labels).mean()),
            "agree_decisive": float((np.sign(value[decisive]) == labels[decisive]).mean()) if decisive.any() else None}


def agent_value(agent, state, obs):
    """The best network's (logits, value) on connect-four observations (7 actions)."""
    from jaxrl.agents.alphazero import PolicyValueNet

    return PolicyValueNet(7, agent.config.channels, agent.config.blocks).apply(state.best, obs)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--games", type=int, default=200)
    p.add_argument("--positions", type=int, default=200)
    p.add_argument("--draw-band", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    spec, game, agent, _ = load_agent(args.run_dir, 0)
    batch = spec.num_seeds * len(spec.sweep_points())
    for member in range(batch):
        _, _, _, state = load_agent(args.run_dir, member)
        if spec.env_id == "pgx:tic_tac_toe":
            result = {"vs_perfect": vs_perfect(game, agent, state, args.games, args.seed)}
        elif spec.env_id == "pgx:connect_four":
            result = {"value_sign": value_sign_check(agent, state, args.positions, args.draw_band, args.seed, game)}
        else:
            raise SystemExit(f"no solver for {spec.env_id}")
        print(json.dumps(dict(member=member, env=spec.env_id, **result)))


if __name__ == "__main__":
    main()
