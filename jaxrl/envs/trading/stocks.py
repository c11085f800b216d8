"""One share of one stock, traded bar by bar (Lapan, *Deep RL Hands-On*, ch. 8), as pure JAX functions.

A gymnax-style environment (``reset_env``/``step_env`` over a pytree state, the prices in
:class:`Market`, a pytree of device arrays), batched with auto-reset by
:func:`jaxrl.envs.gymnax_env.wrap_gymnax`.

* **Actions**: 0 Skip, 1 Buy (when flat), 2 Close (when holding); Buy while holding and Close while
  flat do nothing.  A trade executes at the close of the current bar, then the env moves one bar on.
* **Commission** ``c``: a fraction of the price on buy and on close, so a round trip from entry price
  ``e`` to exit price ``x`` earns ``100 * (x - e - c*e - c*x) / e`` percent (the profit of Lapan's
  ``validation.py``).
* **Rewards** in percent of the entry price: ``-100c`` on buy; then either per bar while holding,
  ``100 * (close[t+1] - close[t]) / e``, and ``-100c * x / e`` on close (``reward_on_close=False``),
  or everything on close, ``100 * (x - e - c*x) / e`` (``reward_on_close=True``).  Both sum to the
  round trip's profit above, so an episode's return is its profit in percent either way.  (Lapan's
  per-bar reward is relative to the previous close, which does not sum to the trade's profit.)
* **Episodes** start at a random bar, end (terminated) at the last bar of the data or, with
  ``reset_on_close``, when a position is closed, and are cut (truncated) after ``episode_bars`` steps.
  A position still open when an episode ends is closed at that bar's close, commission paid.  Starts
  are drawn so that a window of ``episode_bars`` steps fits in the data when it can.
* **Observation** at bar ``t``: the last ``bars`` bars of high, low and close relative to the bar's
  open (``(h - o) / o`` ...), optionally volume relative to its mean over the window, plus the position
  flag and the unrealised profit ``close[t] / e - 1`` repeated on every bar: ``[bars, features]``
  (``layout="flat"``) or ``[features, bars]`` (``layout="conv"``, channels first, for ``--torso conv1d``).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.core import Box, Discrete
from jaxrl.envs.trading.data import Prices

SKIP, BUY, CLOSE = 0, 1, 2


class Market(NamedTuple):
    """The env params: prices as device arrays, so the env functions stay pure."""

    rel: jax.Array  # [N, 3 or 4] float32: (high, low, close) relative to the open [, volume]
    close: jax.Array  # [N] float32
    max_steps_in_episode: int  # episode_bars (the data's length when unlimited)


class State(NamedTuple):
    offset: jax.Array  # int32: the current bar
    steps: jax.Array  # int32: steps taken in this episode
    holding: jax.Array  # bool
    entry: jax.Array  # float32: the close the position was bought at (1 when flat)


def market(prices: Prices, volumes: bool, episode_bars: int) -> Market:
    """The device-side params of a checked price series."""
    o = prices.open
    cols = [(prices.high - o) / o, (prices.low - o) / o, (prices.close - o) / o]
    if volumes:
        cols.append(prices.volume)
    rel = np.stack(cols, -1).astype(np.float32)
    n = len(prices)
    limit = episode_bars if 0 < episode_bars < n else n
    return Market(jnp.asarray(rel), jnp.asarray(prices.close, jnp.float32), int(limit))


class StocksEnv:
    """Pure functions over :class:`State`; the options are static (they shape the program)."""

    def __init__(self, bars: int = 10, commission: float = 0.001, reward_on_close: bool = False,
                 reset_on_close: bool = True, volumes: bool = False, layout: str = "flat",
                 default_params: Market = None):
        self.bars, self.commission = int(bars), float(commission)
        self.reward_on_close, self.reset_on_close = bool(reward_on_close), bool(reset_on_close)
        self.volumes, self.layout = bool(volumes), layout
        self.default_params = default_params

    @property
    def num_features(self) -> int:
        return (4 if self.volumes else 3) + 2

    # ------------------------------------------------------------------ spaces
    def action_space(self, params=None) -> Discrete:
        return Discrete(3)

    def observation_space(self, params=None) -> Box:
        shape = (self.bars, self.num_features) if self.layout == "flat" else (self.num_features, self.bars)
        return Box(np.full(shape, -np.inf, np.float32), np.full(shape, np.inf, np.float32), shape)

    # ------------------------------------------------------------------ pure functions of one env
    def first_and_last_start(self, params: Market) -> tuple[int, int]:
        """The range of start bars: every window of ``max_steps_in_episode`` steps fits when it can."""
        n, first = params.close.shape[0], self.bars - 1
        last = n - 1 - params.max_steps_in_episode if params.max_steps_in_episode < n else n - 2
        return first, max(first, last)

    def reset_at(self, offset, params: Market):
        state = State(jnp.asarray(offset, jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros((), bool),
                      jnp.ones((), jnp.float32))
        return self.observe(state, params), state

    def reset_env(self, key, params: Market):
        first, last = self.first_and_last_start(params)
        return self.reset_at(jax.random.randint(key, (), first, last + 1), params)

    def observe(self, state: State, params: Market):
        window = jax.lax.dynamic_slice_in_dim(params.rel, state.offset - (self.bars - 1), self.bars, 0)
        if self.volumes:
            v = window[:, 3]
            mean = v.mean()
            window = window.at[:, 3].set(jnp.where(mean > 0, v / jnp.maximum(mean, 1e-30), 0.0))
        unrealised = jnp.where(state.holding, params.close[state.offset] / state.entry - 1.0, 0.0)
        extra = jnp.broadcast_to(jnp.stack([state.holding.astype(jnp.float32), unrealised]), (self.bars, 2))
        obs = jnp.concatenate([window, extra], -1)
        return obs if self.layout == "flat" else obs.T

    def is_truncated(self, state: State, params: Market):
        """Cut by ``episode_bars`` (and not at the data's last bar, which terminates)."""
        last = params.close.shape[0] - 1
        return (state.steps >= params.max_steps_in_episode) & (state.offset < last)

    def step_env(self, key, state: State, action, params: Market):
        """-> (obs, state, reward [percent], terminated, info: ``bought``, ``closed``, ``held`` flags)."""
        c, last = self.commission, params.close.shape[0] - 1
        price = params.close[state.offset]
        buy = (action == BUY) & ~state.holding
        close = (action == CLOSE) & state.holding
        entry = jnp.where(buy, price, state.entry)
        reward = jnp.where(buy, -100.0 * c, 0.0)
        reward += jnp.where(close, self._close_reward(price, state.entry), 0.0)
        holding = (state.holding | buy) & ~close
        offset = state.offset + 1
        steps = state.steps + 1
        nxt = params.close[offset]
        if not self.reward_on_close:
            reward += jnp.where(holding, 100.0 * (nxt - price) / entry, 0.0)
        terminated = offset >= last
        if self.reset_on_close:
            terminated |= close
        ends = terminated | (steps >= params.max_steps_in_episode)
        forced = holding & ends  # an open position is closed when the episode ends
        reward += jnp.where(forced, self._close_reward(nxt, entry), 0.0)
        info = {"bought": buy, "closed": close | forced, "held": holding}
        holding = holding & ~forced
        state = State(offset, steps, holding, jnp.where(holding, entry, 1.0))
        return self.observe(state, params), state, reward.astype(jnp.float32), terminated, info

    def _close_reward(self, exit_price, entry):
        """The close's reward in percent of the entry price: commission, plus the gain with ``reward_on_close``."""
        r = -100.0 * self.commission * exit_price / entry
        if self.reward_on_close:
            r += 100.0 * (exit_price - entry) / entry
        return r
