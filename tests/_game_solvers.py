"""Exact solvers for checking game players: tic-tac-toe minimax (a perfect player) and a connect-four
alpha-beta search for positions near the end of a game. Test helpers, not part of jaxrl.

Both read pgx's observation planes from the view of the player to move: plane 0 holds that player's
stones, plane 1 the opponent's.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


# ------------------------------------------------------------------ tic-tac-toe
def _ttt_value(board: tuple, memo: dict) -> int:
    """Negamax value of ``board`` (9 cells: 0 empty, 1 the mover's, 2 the opponent's) for the mover."""
    if board in memo:
        return memo[board]
    if any(all(board[i] == 2 for i in line) for line in LINES):
        v = -1  # the opponent has just won
    elif all(board):
        v = 0
    else:
        v = max(-_ttt_value(tuple({1: 2, 2: 1}.get(c, 0) for c in board[:a] + (1,) + board[a + 1:]), memo)
                for a in range(9) if board[a] == 0)
    memo[board] = v
    return v


@functools.lru_cache(maxsize=1)
def ttt_tables():
    """(optimal moves bool [3**9, 9], value int [3**9]) indexed by ``sum(cell * 3**i)``."""
    memo: dict = {}
    best = np.zeros((3 ** 9, 9), bool)
    value = np.zeros((3 ** 9,), np.int8)
    for idx in range(3 ** 9):
        board = tuple((idx // 3 ** i) % 3 for i in range(9))
        if any(all(board[i] == 2 for i in line) for line in LINES) or all(board):
            continue
        if any(all(board[i] == 1 for i in line) for line in LINES):
            continue  # the mover cannot have a line already
        value[idx] = _ttt_value(board, memo)
        moves = [a for a in range(9) if board[a] == 0]
        vals = {a: -_ttt_value(tuple({1: 2, 2: 1}.get(c, 0) for c in board[:a] + (1,) + board[a + 1:]), memo)
                for a in moves}
        top = max(vals.values())
        for a in moves:
            best[idx, a] = vals[a] == top
    return best, value


def ttt_index(obs):
    """pgx tic-tac-toe observations ``[n, 3, 3, 2]`` -> table indices ``[n]``."""
    cells = obs[..., 0].reshape(obs.shape[0], 9).astype(jnp.int32) + 2 * obs[..., 1].reshape(obs.shape[0], 9).astype(jnp.int32)
    return (cells * (3 ** jnp.arange(9))).sum(-1)


def ttt_perfect_player(game):
    """A perfect tic-tac-toe player ``(g [n], key) -> action [n]``: uniformly random among optimal moves."""
    best = jnp.asarray(ttt_tables()[0])
    observe = jax.vmap(game.observe)

    def player(g, key):
        moves = best[ttt_index(observe(g))]
        return jax.random.categorical(key, jnp.where(moves, 0.0, -jnp.inf)).astype(jnp.int32)

    return player


# ------------------------------------------------------------------ connect four
ROWS, COLS = 6, 7


def _c4_lines():
    out = []
    for r in range(ROWS):
        for c in range(COLS):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(r + k * dr, c + k * dc) for k in range(4)]
                if all(0 <= rr < ROWS and 0 <= cc < COLS for rr, cc in cells):
                    out.append(tuple(rr * COLS + cc for rr, cc in cells))
    return out


C4_LINES = _c4_lines()


def c4_solve(mine: np.ndarray, theirs: np.ndarray) -> int:
    """Exact value (+1 win, 0 draw, -1 loss) for the player to move of a connect-four position given as
    bool planes ``[6, 7]`` (row 0 at the top, as pgx draws it). Negamax with a transposition table,
    cut off at a win (values are only -1, 0, +1, so this is alpha-beta with the window [-1, 1]): meant for positions with about 10 or fewer empty cells."""
    board = np.zeros(ROWS * COLS, np.int8)
    board[mine.reshape(-1)] = 1
    board[theirs.reshape(-1)] = 2
    memo: dict = {}

    def won(b, who):
        return any(b[i] == who and b[j] == who and b[k] == who and b[m] == who for i, j, k, m in C4_LINES)

    def drop_row(b, col):
        for r in range(ROWS - 1, -1, -1):
            if b[r * COLS + col] == 0:
                return r
        return -1

    def negamax(b: list) -> int:
        key = tuple(b)
        if key in memo:
            return memo[key]
        moves = [c for c in (3, 2, 4, 1, 5, 0, 6) if b[c] == 0]
        if won(b, 2):
            best = -1  # the opponent has just connected four
        elif not moves:
            best = 0
        else:
            best = -1
            for col in moves:
                child = [{1: 2, 2: 1}.get(x, 0) for x in b]
                child[drop_row(b, col) * COLS + col] = 2  # the mover's stone, seen from the opponent
                best = max(best, -negamax(child))
                if best == 1:  # the cut-off: nothing beats a win
                    break
        memo[key] = best
        return best

    return negamax(list(board))
