"""Two-player board games for agents that plan: mctx search with the rules as the model, matches, baselines.

Everything here works on a batch of games ``g [n]`` of a :class:`jaxrl.envs.core.Game` (the rules of one
game, vmapped here) and runs inside compiled programs.

* :func:`search`: AlphaZero's search (``mctx.muzero_policy``, PUCT with Dirichlet root noise, or
  ``mctx.gumbel_muzero_policy``) with the game itself as the model: the recurrent function plays the move
  with the rules, a finished game has value 0 and discount 0, and the value of the next position counts
  with the sign of whoever moves there (-1 when the turn passes to the opponent).
* Players are functions ``(g [n], key) -> action [n]``: :func:`random_player` (uniform over legal moves)
  and :func:`rollout_mcts_player` (the plain MCTS baseline: the same search with a uniform prior and the
  outcome of one random playout as the value of a leaf).
* Matches: :func:`match_start` / :func:`match_step` advance ``n`` games between players A and B one move
  at a time (for matches played alongside training); :func:`play_match` runs one to the end. A moves
  first in the first half of the games and second in the other half, so in lockstep each player searches
  only the half of the batch where it is to move (the players alternate: every game in
  :data:`jaxrl.envs.pgx_env.PLANNABLE` does).
* :func:`outcome_rates`: win, draw and loss fractions of A.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

MAX_MOVES = 10_000  # a match or playout that has not ended by then is scored as it stands


def _v(game):
    """The rules vmapped over a batch of games."""
    return (jax.vmap(game.observe), jax.vmap(game.legal), jax.vmap(game.player), jax.vmap(game.step),
            jax.vmap(game.rewards), jax.vmap(game.terminal))


def masked_logits(logits, legal):
    """Illegal moves get the lowest float: ``softmax`` gives them 0 and search never expands them."""
    return jnp.where(legal, logits - logits.max(-1, keepdims=True), jnp.finfo(logits.dtype).min)


def transition(game, g, action):
    """Play ``action`` in every game of ``g``: ``(g2, reward, discount, done)``, ``[n]`` each.

    reward: the mover's reward for the move; discount: 0 when the game ended, -1 when the turn passed to
    the other player (+1 if the mover moves again), so that every value is from the view of the player
    to move.
    """
    _, _, player, step, rewards, terminal = _v(game)
    mover = player(g)
    g2 = step(g, action)
    done = terminal(g2)
    reward = rewards(g2)[jnp.arange(action.shape[0]), mover]
    discount = jnp.where(done, 0.0, jnp.where(player(g2) == mover, 1.0, -1.0))
    return g2, reward, discount, done


def recurrent_fn(game, value_fn: Callable):
    """mctx's recurrent function: play the move with the rules, value the position reached.

    ``value_fn(params, g2, key) -> (logits [n, A], value [n])``, value for the player to move in ``g2``;
    a finished game is worth 0 (its outcome is in the reward).
    """
    legal = jax.vmap(game.legal)

    def fn(params, key, action, g):
        g2, reward, discount, done = transition(game, g, action)
        logits, value = value_fn(params, g2, key)
        out = _mctx().RecurrentFnOutput(reward=reward, discount=discount, value=jnp.where(done, 0.0, value),
                                        prior_logits=masked_logits(logits, legal(g2)))
        return out, g2

    return fn


def network_value(game, evaluate: Callable) -> Callable:
    """``evaluate(params, obs [n, ...]) -> (logits, value)`` as a ``value_fn`` of :func:`recurrent_fn`."""
    observe = jax.vmap(game.observe)
    return lambda params, g, key: evaluate(params, observe(g))


def _mctx():
    import mctx

    return mctx


def search(game, evaluate: Callable, params, g, key, num_simulations: int, *, gumbel: bool = False,
           noise: bool = True, hp: dict | None = None, max_considered_actions: int = 16):
    """One search per game in ``g [n]``; returns ``mctx.PolicyOutput`` (``action [n]``, ``action_weights [n, A]``).

    ``hp`` (traced): ``dirichlet_alpha``, ``dirichlet_fraction``, ``pb_c_init`` (muzero) and ``gumbel_scale``
    (gumbel); missing keys take mctx's defaults. ``noise=False``: no root noise (a deterministic search
    for evaluation and play).
    """
    mctx = _mctx()
    hp = hp or {}
    observe, legal, *_ = _v(game)
    logits, value = evaluate(params, observe(g))
    mask = legal(g)
    root = mctx.RootFnOutput(prior_logits=masked_logits(logits, mask), value=value, embedding=g)
    common = dict(params=params, rng_key=key, root=root,
                  recurrent_fn=recurrent_fn(game, network_value(game, evaluate)),
                  num_simulations=num_simulations, invalid_actions=~mask)
    if gumbel:
        return mctx.gumbel_muzero_policy(**common, max_num_considered_actions=max_considered_actions,
                                         gumbel_scale=hp.get("gumbel_scale", 1.0) if noise else 0.0)
    return mctx.muzero_policy(**common, dirichlet_fraction=hp.get("dirichlet_fraction", 0.25) if noise else 0.0,
                              dirichlet_alpha=hp.get("dirichlet_alpha", 0.3), pb_c_init=hp.get("pb_c_init", 1.25))


def greedy_action(out, gumbel: bool):
    """The move a search recommends: the most visited one (muzero), or Gumbel MuZero's own choice."""
    return out.action if gumbel else jnp.argmax(out.action_weights, -1).astype(jnp.int32)


# ---------------------------------------------------------------------------------------- players
def random_actions(game, g, key):
    """A uniformly random legal move per game: ``[n]``."""
    legal = jax.vmap(game.legal)(g)
    return jax.random.categorical(key, jnp.where(legal, 0.0, -jnp.inf)).astype(jnp.int32)


def random_player(game) -> Callable:
    return lambda g, key: random_actions(game, g, key)


def playout_values(game, g, key, max_moves: int = MAX_MOVES):
    """The outcome of one random playout from each game, for the player to move in it: ``[n]``."""
    _, _, player, step, rewards, terminal = _v(game)
    me = player(g)
    rows = jnp.arange(me.shape[0])

    def cond(c):
        return (~terminal(c[0])).any() & (c[3] < max_moves)

    def body(c):
        gi, ret, k, t = c
        k, sub = jax.random.split(k)
        gi = step(gi, random_actions(game, gi, sub))
        return gi, ret + rewards(gi)[rows, me], k, t + 1

    return jax.lax.while_loop(cond, body, (g, jnp.zeros(me.shape, jnp.float32), key, jnp.int32(0)))[1]


def rollout_mcts_player(game, num_simulations: int, num_actions: int) -> Callable:
    """Plain MCTS: PUCT with a uniform prior, leaves valued by one random playout; plays the most visited move."""
    legal = jax.vmap(game.legal)

    def value_fn(params, g, key):
        n = jax.tree_util.tree_leaves(g)[0].shape[0]
        return jnp.zeros((n, num_actions), jnp.float32), playout_values(game, g, key)

    def player(g, key):
        mctx = _mctx()
        k_root, k_search = jax.random.split(key)
        logits, value = value_fn((), g, k_root)
        root = mctx.RootFnOutput(prior_logits=masked_logits(logits, legal(g)), value=value, embedding=g)
        out = mctx.muzero_policy((), k_search, root, recurrent_fn(game, value_fn), num_simulations,
                                 invalid_actions=~legal(g), dirichlet_fraction=0.0)
        return greedy_action(out, gumbel=False)

    return player


# ---------------------------------------------------------------------------------------- matches
class Match(NamedTuple):
    games: Any  # [n]: A moves first in games [0, n/2), second in [n/2, n)
    a: jax.Array  # int32 [n]: A's player id in each game
    ret: jax.Array  # float32 [n]: A's rewards so far
    t: jax.Array  # int32: moves played


def match_start(game, n: int, key) -> Match:
    """``n`` (even) new games between A and B."""
    g = jax.vmap(game.init)(jax.random.split(key, n))
    first = jax.vmap(game.player)(g)
    a = jnp.where(jnp.arange(n) < n // 2, first, 1 - first).astype(jnp.int32)
    return Match(g, a, jnp.zeros((n,), jnp.float32), jnp.int32(0))


def match_over(game, m: Match, max_moves: int = MAX_MOVES):
    return jax.vmap(game.terminal)(m.games).all() | (m.t >= max_moves)


def match_step(game, m: Match, player_a: Callable, player_b: Callable, key) -> Match:
    """One move in every game: A searches the half of the batch where it is to move, B the other half."""
    n = m.a.shape[0]
    half = n // 2
    a_half = m.t % 2  # at even moves A is to move in the first half (where it moved first)
    k_a, k_b = jax.random.split(key)
    take = lambda h: jax.tree_util.tree_map(lambda x: jax.lax.dynamic_slice_in_dim(x, h * half, half), m.games)
    act_a = player_a(take(a_half), k_a)
    act_b = player_b(take(1 - a_half), k_b)
    action = jnp.where(a_half == 0, jnp.concatenate([act_a, act_b]), jnp.concatenate([act_b, act_a]))
    g = jax.vmap(game.step)(m.games, action)
    ret = m.ret + jax.vmap(game.rewards)(g)[jnp.arange(n), m.a]
    return Match(g, m.a, ret, m.t + 1)


def play_match(game, player_a: Callable, player_b: Callable, n: int, key, max_moves: int = MAX_MOVES):
    """``n`` (even) games of A against B, each colour in half of them: A's outcomes ``[n]`` (+1, 0, -1)."""
    k_start, k_play = jax.random.split(key)

    def body(c):
        m, k = c
        k, sub = jax.random.split(k)
        return match_step(game, m, player_a, player_b, sub), k

    m = jax.lax.while_loop(lambda c: ~match_over(game, c[0], max_moves), body, (match_start(game, n, k_start), k_play))[0]
    return jnp.sign(m.ret)


def outcome_rates(outcomes) -> dict:
    """Fractions of wins, draws and losses of ``outcomes [n]`` (A's view)."""
    return {"win": (outcomes > 0).mean(), "draw": (outcomes == 0).mean(), "loss": (outcomes < 0).mean()}
