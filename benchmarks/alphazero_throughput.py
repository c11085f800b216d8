"""AlphaZero self-play throughput: moves per second of ``jaxrl train alphazero``'s update, 1 seed.

    .venv/bin/python benchmarks/alphazero_throughput.py                 # connect four, 32 and 128 simulations
    .venv/bin/python benchmarks/alphazero_throughput.py --updates 4 --sims 32

Each row is one compiled program (compile excluded, run ``--repeats`` times, best kept): a ``lax.scan`` of
``--updates`` AlphaZero updates (``jaxrl.agents.alphazero``, defaults: 64 games in lockstep, 8 moves each
per update, a 2-block 32-channel tower, 4 SGD steps of 256 per update; the arena off so that every row
times self-play and training only) on one seed. ``moves_per_s`` counts self-play moves (the ``env_steps``
of the driver); ``search_only`` rows time the searches alone (one search of every game per move, no
training, no replay), for a comparison with pgx's own AlphaZero example, whose self-play is that. They
also give ``net_ms``, one evaluation of the network on the batch of games, and ``net_share``, the part of
the search time that ``simulations + 1`` such evaluations per move would take: near 1, the search is bound
by the network, and a faster search needs a faster network, not less overhead.

Writes ``benchmarks/results/alphazero_throughput.json``. The machine's load changes the figures: compare
rows of one run, not runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from _common import compile_timed, print_table, timed_run, write_results  # noqa: E402
from jaxrl import envs  # noqa: E402
from jaxrl.agents import alphazero  # noqa: E402
from jaxrl.core import games as G  # noqa: E402


def rows_for(env_id: str, sims: int, updates: int, repeats: int, search: str = "muzero", games: int = 0) -> list[dict]:
    cfg = alphazero.Config.from_dict(dict(num_simulations=sims, arena_every=0, search=search,
                                          **({"num_envs": games} if games else {})))
    gumbel = search == "gumbel"
    env = envs.make(env_id, num_envs=cfg.num_envs)
    agent = alphazero.make_agent(cfg, env)
    hp = cfg.hparams()
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), hp)

    def train(s):
        return jax.lax.scan(lambda c, _: (agent.update(c, hp)[0], None), s, None, length=updates)[0]

    compiled, compile_s = compile_timed(jax.jit(train), state)
    moves = updates * cfg.num_envs * cfg.moves_per_update
    best = min(timed_run(compiled, state)[0] for _ in range(repeats))
    out = [dict(what="update", env=env_id, search=search, sims=sims, games=cfg.num_envs, moves_per_s=moves / best, compile_s=compile_s)]

    net = alphazero.PolicyValueNet(env.spec.action_space.n, cfg.channels, cfg.blocks)
    g0 = jax.vmap(env.game.init)(jax.random.split(jax.random.PRNGKey(1), cfg.num_envs))

    def search_only(params, g, key):
        def move(c, k):
            g = c
            a = G.greedy_action(G.search(env.game, net.apply, params, g, k, sims, gumbel=gumbel, hp=hp), gumbel)
            g = jax.vmap(env.game.step)(g, a)
            fresh = jax.vmap(env.game.init)(jax.random.split(k, cfg.num_envs))
            done = jax.vmap(env.game.terminal)(g)
            pick = lambda x, y: jnp.where(done.reshape((-1,) + (1,) * (x.ndim - 1)), x, y)
            return jax.tree_util.tree_map(pick, fresh, g), None

        n = updates * cfg.moves_per_update
        return jax.lax.scan(move, g, jax.random.split(key, n))[0]

    compiled, compile_s = compile_timed(jax.jit(search_only), state.best, g0, jax.random.PRNGKey(2))
    best = min(timed_run(compiled, state.best, g0, jax.random.PRNGKey(2))[0] for _ in range(repeats))
    n_moves = updates * cfg.moves_per_update
    net_s = network_seconds(net, state.best, jax.vmap(env.game.observe)(g0), repeats)
    # a search evaluates the network once at the root and once per simulation, for the whole batch of games
    out.append(dict(what="search_only", env=env_id, search=search, sims=sims, games=cfg.num_envs, moves_per_s=moves / best,
                    compile_s=compile_s, net_ms=net_s * 1e3, net_share=n_moves * (sims + 1) * net_s / best))
    return out


def network_seconds(net, params, obs, repeats: int, evals: int = 64) -> float:
    """Seconds of one network evaluation on the batch ``obs`` (a scan of ``evals`` dependent evaluations)."""
    def loop(p, o):
        def body(c, _):
            _, v = net.apply(p, o + c.astype(o.dtype))
            return (v.sum() * 0).astype(c.dtype), None  # a data dependency, so no evaluation is hoisted

        return jax.lax.scan(body, jnp.zeros((), jnp.float32), None, length=evals)[0]

    compiled, _ = compile_timed(jax.jit(loop), params, obs)
    return min(timed_run(compiled, params, obs)[0] for _ in range(repeats)) / evals


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="pgx:connect_four")
    p.add_argument("--sims", type=int, nargs="+", default=[32, 128])
    p.add_argument("--updates", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--search", nargs="+", choices=["muzero", "gumbel"], default=["muzero"],
                   help="mctx policy of the rows (pgx's example self-plays with gumbel)")
    p.add_argument("--games", type=int, nargs="+", default=[0], help="games in lockstep (num_envs; 0: the default, 64)")
    args = p.parse_args(argv)
    rows = []
    for games in args.games:
        for search in args.search:
            for sims in args.sims:
                for r in rows_for(args.env, sims, args.updates, args.repeats, search, games):
                    print(json.dumps(r), flush=True)  # a row as soon as it is measured
                    rows.append(r)
    print_table(rows, ["what", "env", "search", "sims", "games", "moves_per_s", "net_ms", "net_share", "compile_s"])
    write_results("alphazero_throughput", rows, {"load_average": os.getloadavg(), "updates": args.updates})


if __name__ == "__main__":
    main()
