"""AlphaZero on two-player board games (Silver et al. 2017, 2018; AlphaGo Zero's arena as in Lapan, ch. 18).

MCTS self-play guided by a policy-value network, training on the search's visit distributions and the
games' outcomes, and a candidate network promoted over the best one when it wins an arena match. The
search is mctx's, with the env's own rules as the model (:mod:`jaxrl.core.games`); the games are pgx's
(``pgx:connect_four``, ``pgx:tic_tac_toe``, any env with ``env.game``). One ``update``, all compiled:

1. **Self-play**: ``moves_per_update`` moves of ``num_envs`` games in lockstep, every move a search
   by the best network (root noise on; the first ``temperature_moves`` moves of a game are sampled from
   the visit distribution, later ones are the most visited). Each position goes into an on-device
   replay of ``buffer_size`` rows: observation, visit distribution, the player to move and the game's
   id. A finished game writes each player's total reward into an outcome table indexed by game id, so a
   row's value target is its game's outcome from the mover's view, known as soon as the game ends;
   rows of games still running (or whose table slot a later game took) are left out of the loss.
2. **Training**: ``sgd_steps`` minibatches of the candidate network: policy cross-entropy against the
   visit distribution plus value MSE against the outcome, Adam with L2 weight decay.
3. **Arena** (``arena_every`` > 0): at each multiple of ``arena_every`` self-play moves a match of
   ``arena_games`` games (both colours, root noise on, most-visited moves) starts between a snapshot of
   the candidate and the best network; it advances one move per update beside self-play, and when
   every game is over the snapshot is promoted if it scores wins / (wins + losses) above
   ``promote_threshold``. With ``arena_every 0`` self-play uses the candidate (AlphaZero, no gate).

``total_steps`` counts self-play moves per seed. At the end of training the pgx env's report
(:mod:`jaxrl.envs.pgx_report`) plays the best network with search (``act_game``: no root noise,
most-visited moves) ``eval_games`` games against a uniformly random player and as many against plain
rollout MCTS with ``baseline_factor`` times its simulations, half of them with each colour:
``eval_vs_random`` and ``eval_vs_mcts`` (win, draw, loss fractions per seed) in summary.json (and under ``pgx``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.config import Config, ConfigError, field
from jaxrl.core import games as G
from jaxrl.core.agent import Agent
from jaxrl.core.optim import crossed, gradient_step, optimizer
from jaxrl.networks.resnet import PolicyValueNet

DEFAULT_ENV = "pgx:connect_four"


@dataclasses.dataclass(frozen=True)
class Config(Config):
    total_steps: int = field(1_000_000, low=1, help="self-play moves per seed (over all games in lockstep)")
    num_envs: int = field(64, low=1, help="self-play games played in lockstep")
    moves_per_update: int = field(8, low=1, help="self-play moves per game per update")
    num_simulations: int = field(32, low=1, help="MCTS simulations per move")
    search: str = field("muzero", choices=("muzero", "gumbel"),
                        help="muzero: PUCT with Dirichlet root noise (mctx.muzero_policy); gumbel: Gumbel MuZero")
    dirichlet_alpha: float = field(0.3, traced=True, low=0.0, low_open=True, help="root noise concentration")
    dirichlet_fraction: float = field(0.25, traced=True, low=0.0, high=1.0, help="root noise weight (muzero)")
    pb_c_init: float = field(1.25, traced=True, low=0.0, help="PUCT exploration constant c1 (muzero)")
    gumbel_scale: float = field(1.0, traced=True, low=0.0, help="scale of the root Gumbel noise (gumbel)")
    max_considered_actions: int = field(16, low=1, help="actions Gumbel MuZero considers at the root")
    temperature_moves: int = field(10, low=0, help="self-play moves per game sampled from the visit "
                                                   "distribution before playing the most visited (muzero)")
    channels: int = field(32, low=1, help="channels of the residual tower")
    blocks: int = field(2, low=0, high=40, help="residual blocks")
    lr: float = field(1e-3, traced=True, low=0.0, low_open=True, help="Adam learning rate")
    weight_decay: float = field(1e-4, traced=True, low=0.0, help="L2 weight decay")
    batch_size: int = field(256, low=1, help="positions per minibatch")
    sgd_steps: int = field(4, low=1, help="minibatch steps per update")
    buffer_size: int = field(100_000, low=1, help="replay positions per seed")
    arena_every: int = field(20_000, low=0, help="self-play moves per seed between arena matches (0: no arena)")
    arena_games: int = field(100, low=2, help="games per arena match, half with each colour (even)")
    promote_threshold: float = field(0.6, traced=True, low=0.0, high=1.0,
                                     help="promote when wins / (wins + losses) in the arena is above this")
    eval_games: int = field(200, low=2, help="evaluation games per opponent, half with each colour (even)")
    baseline_factor: int = field(4, low=1, help="the rollout-MCTS opponent searches this many times "
                                                "num_simulations")

    def check(self):
        for name in ("arena_games", "eval_games"):
            if getattr(self, name) % 2:
                raise ConfigError(name, f"must be even (half the games with each colour); got {getattr(self, name)}")
        per_update = self.num_envs * self.moves_per_update
        if self.total_steps < per_update:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one update (num_envs * "
                                             f"moves_per_update = {per_update} moves); raise total_steps")
        if self.buffer_size < self.num_envs:
            raise ConfigError("buffer_size", f"{self.buffer_size} cannot hold one move of num_envs = "
                                             f"{self.num_envs} games; raise buffer_size")


class SelfPlay(NamedTuple):
    games: Any  # [num_envs] game states
    uid: jax.Array  # int32 [num_envs]: id of each env's current game
    move: jax.Array  # int32 [num_envs]: moves played in it
    first: jax.Array  # int32 [num_envs]: the player who moved first
    ret: jax.Array  # float32 [num_envs, players]: rewards so far
    next_uid: jax.Array  # int32: the id of the next game to start


class Replay(NamedTuple):
    obs: Any  # [N, *obs_shape]
    policy: jax.Array  # float32 [N, A]: visit distribution of the search
    player: jax.Array  # int32 [N]: the player to move
    game: jax.Array  # int32 [N]: the game's id (-1: empty)
    outcome: jax.Array  # float32 [N, players]: outcome table, slot = game id % N
    outcome_game: jax.Array  # int32 [N]: the game whose outcome the slot holds (-1: none)
    count: jax.Array  # int32: rows written so far


class Arena(NamedTuple):
    match: G.Match
    candidate: Any  # parameters of the snapshot playing the best network
    active: jax.Array  # bool
    pending: jax.Array  # bool: a match is due but the previous one is still running
    last: jax.Array  # float32 [4]: score, win, draw, loss fractions of the last finished match
    generation: jax.Array  # int32: promotions so far


class State(NamedTuple):
    params: Any  # the candidate network (trained)
    opt_state: Any
    best: Any  # the best network (self-play, evaluation and play)
    selfplay: SelfPlay
    replay: Replay
    arena: Arena
    key: jax.Array
    update: jax.Array  # int32
    games: jax.Array  # int32: self-play games finished
    hp: dict  # the run's traced hyperparameters, for evaluation and play (their search settings)


def write_rows(rp: Replay, obs, policy, player, game) -> Replay:
    """Append one row per game (``[n]`` leading axes) to the circular replay."""
    n = player.shape[0]
    idx = (rp.count + jnp.arange(n)) % rp.player.shape[0]
    return rp._replace(obs=rp.obs.at[idx].set(obs), policy=rp.policy.at[idx].set(policy),
                       player=rp.player.at[idx].set(player), game=rp.game.at[idx].set(game), count=rp.count + n)


def write_outcomes(rp: Replay, done, uid, ret) -> Replay:
    """The finished games' rewards per player (``ret [n, players]``) into their outcome-table slots."""
    size = rp.player.shape[0]
    slot = jnp.where(done, uid % size, size)  # out of range: dropped
    return rp._replace(outcome=rp.outcome.at[slot].set(ret, mode="drop"),
                       outcome_game=rp.outcome_game.at[slot].set(uid, mode="drop"))


def targets(rp: Replay, idx):
    """Rows ``idx``: (obs, policy target, value target from the mover's view, valid) ``[batch, ...]``."""
    size = rp.player.shape[0]
    game = rp.game[idx]
    slot = game % size
    valid = (game >= 0) & (rp.outcome_game[slot] == game)
    z = jnp.take_along_axis(rp.outcome[slot], rp.player[idx][:, None], axis=1)[:, 0]
    return rp.obs[idx], rp.policy[idx], jnp.where(valid, z, 0.0), valid


def az_loss(params, apply, obs, pi, z, valid):
    """Policy cross-entropy + value MSE over the valid rows. obs [B, ...], pi [B, A], z [B], valid [B]."""
    logits, v = apply(params, obs)
    w = valid.astype(jnp.float32) / jnp.maximum(valid.sum(), 1)
    ce = optax.softmax_cross_entropy(logits, pi)
    mse = jnp.square(v - z)
    return (w * (ce + mse)).sum(), jnp.stack([(w * ce).sum(), (w * mse).sum()])


def arena_verdict(outcomes, threshold):
    """The candidate's arena result from its outcomes ``[n]`` (+1, 0, -1): ``(stats [4], promote)``;
    stats are score = wins / (wins + losses) (0 when every game is drawn), and the win, draw and loss
    fractions; promote when the score is above ``threshold``."""
    r = G.outcome_rates(outcomes)
    score = r["win"] / jnp.maximum(r["win"] + r["loss"], 1e-9)
    return jnp.stack([score, r["win"], r["draw"], r["loss"]]), score > threshold


def make_self_play(config: Config, game, search, gumbel: bool):
    """One self-play move of every game: ``play_move(params, hp, (selfplay, replay), key) -> ((selfplay, replay), stats [3])``."""
    v_init, v_observe, v_player = jax.vmap(game.init), jax.vmap(game.observe), jax.vmap(game.player)

    def play_move(params, hp, carry, key):
        """One self-play move in every game: search, store the position, play, restart finished games."""
        sp, rp = carry
        k_search, k_reset = jax.random.split(key)
        out = search(params, sp.games, k_search, hp, noise=True)
        action = G.greedy_action(out, gumbel)
        if not gumbel:  # early moves sampled from the visit distribution (mctx's out.action)
            action = jnp.where(sp.move < config.temperature_moves, out.action, action)
        rp = write_rows(rp, v_observe(sp.games), out.action_weights, v_player(sp.games), sp.uid)
        g2, _, _, done = G.transition(game, sp.games, action)
        ret = sp.ret + jax.vmap(game.rewards)(g2)
        rp = write_outcomes(rp, done, sp.uid, ret)
        d = done.astype(jnp.float32)
        stats = jnp.stack([d.sum(), (d * ret[jnp.arange(d.shape[0]), sp.first]).sum(), (d * (sp.move + 1)).sum()])

        def restart(_):
            fresh = v_init(jax.random.split(k_reset, done.shape[0]))
            pick = lambda a, b: jnp.where(done.reshape(done.shape + (1,) * (a.ndim - 1)), a, b)
            return jax.tree_util.tree_map(pick, fresh, g2), jnp.where(done, v_player(fresh), sp.first)

        g3, first = jax.lax.cond(done.any(), restart, lambda _: (g2, sp.first), None)
        uid = jnp.where(done, sp.next_uid + jnp.cumsum(done) - 1, sp.uid).astype(jnp.int32)
        sp = SelfPlay(g3, uid, jnp.where(done, 0, sp.move + 1), first.astype(jnp.int32),
                      jnp.where(done[:, None], 0.0, ret), sp.next_uid + done.sum().astype(jnp.int32))
        return (sp, rp), stats

    return play_move


def make_sgd(config: Config, net, tx):
    """The training step: ``sgd(params, opt_state, replay, key, hp) -> (params, opt_state, metrics)``."""
    def sgd(params, opt_state, rp: Replay, key, hp):
        """``sgd_steps`` minibatch steps; no change until the replay holds a batch with known outcomes."""
        filled = jnp.maximum(jnp.minimum(rp.count, config.buffer_size), 1)

        def step(carry, k):
            p, o = carry
            obs, pi, z, valid = targets(rp, jax.random.randint(k, (config.batch_size,), 0, filled))
            p2, o2, _, parts, _ = gradient_step(lambda q: az_loss(q, net.apply, obs, pi, z, valid), tx(hp), p, o)
            ready = valid.any()
            keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(ready, a, b), new, old)
            return keep((p2, o2), (p, o)), jnp.concatenate([parts, valid.mean()[None], ready[None]])

        (params, opt_state), stats = jax.lax.scan(step, (params, opt_state),
                                                  jax.random.split(key, config.sgd_steps))
        return params, opt_state, dict(zip(("policy_loss", "value_loss", "valid_fraction", "learning"), stats.mean(0)))

    return sgd


def make_arena(config: Config, game, searcher, spu: int):
    """The arena step of an update: ``arena_update(state, hp, key) -> (arena, best)``."""
    def arena_update(s: State, hp, key):
        """Start a match when one is due, advance it one move, promote the candidate when it is over."""
        a = s.arena
        due = a.pending | crossed(s.update * spu, (s.update + 1) * spu, max(config.arena_every, 1))
        start = due & ~a.active
        k_start, k_move = jax.random.split(key)
        fresh = G.match_start(game, config.arena_games, k_start)
        pick = lambda new, old: jax.tree_util.tree_map(lambda x, y: jnp.where(start, x, y), new, old)
        a = a._replace(match=pick(fresh, a.match), candidate=pick(s.params, a.candidate),
                       active=a.active | start, pending=due & ~start)

        def move(m):
            return G.match_step(game, m, searcher(a.candidate, hp, True), searcher(s.best, hp, True), k_move)

        m = jax.lax.cond(a.active, move, lambda m: m, a.match)
        over = a.active & G.match_over(game, m)
        stats, better = arena_verdict(jnp.sign(m.ret), hp["promote_threshold"])
        promote = over & better
        last = jnp.where(over, stats, a.last)
        best = jax.tree_util.tree_map(lambda c, b: jnp.where(promote, c, b), a.candidate, s.best)
        return a._replace(match=m, active=a.active & ~over, last=last, generation=a.generation + promote), best

    return arena_update


def make_agent(config: Config, env) -> Agent:
    config.validate()
    game, spec = env.game, env.spec
    if game is None or game.num_players != 2:
        from jaxrl.envs.pgx_env import why_no_game

        name = spec.env_id.split(":", 1)[-1]
        raise ConfigError("env", f"alphazero plays deterministic two-player board games with known rules "
                                 f"(env.game); {spec.env_id} is {why_no_game(name)}: pick one such as "
                                 f"pgx:connect_four or pgx:tic_tac_toe")
    if len(spec.obs_shape) != 3:
        raise ConfigError("env", f"alphazero's network reads [H, W, C] board planes; {spec.env_id} gives "
                                 f"observations of shape {spec.obs_shape}")
    num_actions, gumbel = spec.action_space.n, config.search == "gumbel"
    net = PolicyValueNet(num_actions, config.channels, config.blocks)
    spu = config.num_envs * config.moves_per_update
    num_updates = config.total_steps // spu
    arena_on = config.arena_every > 0
    v_init, v_observe, v_player = jax.vmap(game.init), jax.vmap(game.observe), jax.vmap(game.player)

    def tx(hp):
        return optimizer(hp["lr"], weight_decay=hp["weight_decay"])

    def search(params, g, key, hp, noise, sims=config.num_simulations):
        return G.search(game, net.apply, params, g, key, sims, gumbel=gumbel, noise=noise, hp=hp,
                        max_considered_actions=config.max_considered_actions)

    def searcher(params, hp, noise):
        return lambda g, key: G.greedy_action(search(params, g, key, hp, noise), gumbel)

    def init(key, hp):
        k_net, k_games, k_match, k_state = jax.random.split(key, 4)
        g = v_init(jax.random.split(k_games, config.num_envs))
        params = net.init(k_net, v_observe(g))
        n, size, players = config.num_envs, config.buffer_size, game.num_players
        sp = SelfPlay(g, jnp.arange(n, dtype=jnp.int32), jnp.zeros((n,), jnp.int32), v_player(g).astype(jnp.int32),
                      jnp.zeros((n, players), jnp.float32), jnp.int32(n))
        rp = Replay(jnp.zeros((size,) + spec.obs_shape, spec.obs_dtype), jnp.zeros((size, num_actions), jnp.float32),
                    jnp.zeros((size,), jnp.int32), jnp.full((size,), -1, jnp.int32),
                    jnp.zeros((size, players), jnp.float32), jnp.full((size,), -1, jnp.int32), jnp.int32(0))
        arena = Arena(G.match_start(game, config.arena_games, k_match), params, jnp.bool_(False), jnp.bool_(False),
                      jnp.zeros((4,), jnp.float32), jnp.int32(0))
        return State(params, tx(hp).init(params), params, sp, rp, arena, k_state, jnp.int32(0), jnp.int32(0), hp)

    play_move = make_self_play(config, game, search, gumbel)
    sgd = make_sgd(config, net, tx)
    arena_update = make_arena(config, game, searcher, spu)

    def update(s: State, hp):
        key, k_play, k_sgd, k_arena = jax.random.split(s.key, 4)
        player = s.best if arena_on else s.params
        (sp, rp), stats = jax.lax.scan(lambda c, k: play_move(player, hp, c, k), (s.selfplay, s.replay),
                                       jax.random.split(k_play, config.moves_per_update))
        params, opt_state, metrics = sgd(s.params, s.opt_state, rp, k_sgd, hp)
        s = s._replace(params=params, opt_state=opt_state, selfplay=sp, replay=rp)
        arena, best = arena_update(s, hp, k_arena) if arena_on else (s.arena, params)
        ep = stats.sum(0)
        games = s.games + ep[0].astype(jnp.int32)
        metrics.update(episodes=ep[0], episode_return_sum=ep[1], episode_length_sum=ep[2],
                       games=games.astype(jnp.float32), arena_score=arena.last[0], arena_win=arena.last[1],
                       arena_draw=arena.last[2], arena_loss=arena.last[3],
                       generation=arena.generation.astype(jnp.float32))
        return State(params, opt_state, best, sp, rp, arena, key, s.update + 1, games, s.hp), metrics

    def act(s: State, obs, key=None):
        """The best network's raw policy (no search, no legal-move mask): argmax of its logits."""
        return jnp.argmax(net.apply(s.best, obs)[0], -1).astype(jnp.int32)

    def act_game(s: State, g, key):
        """The best network with search (no root noise): the most visited move of each game ``g [n]``."""
        return searcher(s.best, s.hp, False)(g, key)

    return Agent(config, init, update, act, num_updates, spu, act_game=act_game,
                 progress=("games", "arena_score", "generation") if arena_on else ("games",))
