"""``jaxrl play RUN_DIR``: play a board game against the trained agent of a results folder, in the terminal.

For runs on a two-player game with known rules (``pgx:connect_four``, ``pgx:tic_tac_toe`` ...). The board
is drawn as text after every move (``X`` your stones, ``O`` the agent's); you type the number of your move
(connect four: a column, 0-6; tic-tac-toe: a cell, 0-8, row by row). Input that is not a number or not a
legal move is refused and asked again; ``q`` or end of input ends the game. The agent plays with its
search (``Agent.act_game``: AlphaZero's best network, no root noise) or, without one, ``Agent.act``.
"""
from __future__ import annotations

import sys

from jaxrl.config import ConfigError

HELP = "play a board game against the trained agent of a results folder (two-player pgx games)"


def add_arguments(p) -> None:
    from jaxrl.cli import typed

    p.add_argument("run_dir", metavar="RUN_DIR", help="results folder of jaxrl train on a pgx board game")
    p.add_argument("--first", choices=("you", "agent"), default="you", help="who moves first (default you)")
    p.add_argument("--member", type=typed(int, "member"), default=0,
                   help="which trained agent of the batch (seed, sweep point) to play (default 0)")
    p.add_argument("--seed", type=typed(int, "seed"), default=0, help="PRNG seed of the agent's search (default 0)")


def load_agent(run_dir: str, member: int = 0):
    """-> (spec, game, agent, the state of batch member ``member``) of a results folder's newest checkpoint."""
    import jax

    from jaxrl import agents, checkpoint, envs, parallel
    from jaxrl.core.program import empty_accumulator, hparams_batch, seed_keys
    from jaxrl.driver.spec import from_run_dir

    spec = from_run_dir(run_dir, what="run_dir")
    if not checkpoint.list_checkpoints(run_dir):
        raise ConfigError("run_dir", f"{run_dir} has no checkpoint ({checkpoint.CKPT_DIR}/ckpt-*.npz) to play")
    module, _ = agents.get(spec.algo)
    points = spec.sweep_points()
    batch = len(points) * spec.num_seeds
    if not 0 <= member < batch:
        raise ConfigError("member", f"must be in 0..{batch - 1} (the run has {batch} trained agents); got {member}")
    env = envs.make(spec.env_id, num_envs=getattr(spec.config, "num_envs", 1), num_seeds=batch, **spec.env_options)
    if env.game is None or env.game.num_players != 2:
        raise ConfigError("run_dir", f"{run_dir} is a run on {spec.env_id}, not a two-player board game to play")
    agent = module.make_agent(spec.config, env)
    keys = seed_keys(spec.seed, spec.num_seeds, len(points))
    template = jax.jit(parallel.vmap(agent.init))(keys, hparams_batch(spec.config, points, spec.num_seeds))
    acc = jax.jit(parallel.vmap(lambda k: empty_accumulator(agent)))(keys)
    restored, _, _, _ = checkpoint.load_latest(run_dir, {"agent": template, "acc": acc})
    state = jax.tree_util.tree_map(lambda x: x[member], restored["agent"])
    return spec, env.game, agent, state


def draw(obs, you_to_move: bool) -> str:
    """The board of observation planes ``[H, W, C]`` (plane 0: the mover's stones) with cell numbers."""
    import numpy as np

    mover, other = np.asarray(obs[..., 0]), np.asarray(obs[..., 1])
    yours, theirs = (mover, other) if you_to_move else (other, mover)
    h, w = yours.shape
    lines = []
    for r in range(h):
        cells = ["X" if yours[r, c] else "O" if theirs[r, c] else "." for c in range(w)]
        lines.append("  " + " ".join(cells) + (f"   {r * w}-{r * w + w - 1}" if h * w <= 16 else ""))
    if h * w > 16:  # column games (connect four): number the columns
        lines.append("  " + " ".join(str(c % 10) for c in range(w)))
    return "\n".join(lines)


def ask(legal, read=input, write=print):
    """Your move: a legal move number read from ``read``; None to stop (``q`` or end of input)."""
    moves = [int(a) for a in range(len(legal)) if legal[a]]
    while True:
        try:
            text = read(f"your move ({', '.join(map(str, moves))}; q to quit): ").strip()
        except (EOFError, KeyboardInterrupt):
            return None
        if text.lower() in ("q", "quit", "exit"):
            return None
        try:
            move = int(text)
        except ValueError:
            write(f"not a move number: {text!r}")
            continue
        if move not in moves:
            write(f"{move} is not a legal move here")
            continue
        return move


def run(args) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    spec, game, agent, state = load_agent(args.run_dir, args.member)
    one = lambda x: x[None]

    if agent.act_game is not None:
        agent_move = jax.jit(lambda g, k: agent.act_game(state, jax.tree_util.tree_map(one, g), k)[0])
    else:
        agent_move = jax.jit(lambda g, k: agent.act(state, one(game.observe(g)), k)[0])
    step, init = jax.jit(game.step), jax.jit(game.init)
    observe, legal, player = jax.jit(game.observe), jax.jit(game.legal), jax.jit(game.player)
    rewards, terminal = jax.jit(game.rewards), jax.jit(game.terminal)
    key = jax.random.PRNGKey(args.seed)
    g = init(key)
    you = int(player(g)) if args.first == "you" else 1 - int(player(g))
    print(f"{spec.algo} ({args.run_dir}, agent {args.member}) on {spec.env_id}: you are X, the agent is O")
    total = np.zeros(2, np.float32)
    while not bool(terminal(g)):
        to_move = int(player(g))
        print(draw(observe(g), to_move == you))
        if to_move == you:
            move = ask(np.asarray(legal(g)))
            if move is None:
                print("game abandoned")
                return 0
        else:
            key, sub = jax.random.split(key)
            move = int(agent_move(g, sub))
            print(f"the agent plays {move}")
        g = step(g, jnp.int32(move))
        total += np.asarray(rewards(g))
    print(draw(observe(g), int(player(g)) == you))
    mine = total[you]
    print("you win" if mine > 0 else "the agent wins" if mine < 0 else "a draw")
    sys.stdout.flush()
    return 0
