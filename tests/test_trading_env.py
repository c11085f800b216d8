"""trading:stocks: hand-built price series with known answers, observations by hand, the env contract
(auto-reset, terminated / truncated, vmap), and a cross-check against gym-anytrading's StocksEnv."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.envs import trading
from jaxrl.envs.trading import data
from jaxrl.envs.trading.stocks import BUY, CLOSE, SKIP, StocksEnv, market

C = 0.001  # the default commission


def _prices(close, open_=None, high=None, low=None):
    close = np.asarray(close, np.float64)
    open_ = close.copy() if open_ is None else np.asarray(open_, np.float64)
    high = np.maximum(open_, close) if high is None else np.asarray(high, np.float64)
    low = np.minimum(open_, close) if low is None else np.asarray(low, np.float64)
    t = np.datetime64("2020-01-01", "s") + np.arange(len(close)) * np.timedelta64(1, "D")
    return data.Prices(t, open_, high, low, close, np.linspace(1.0, 2.0, len(close)), "hand")


def _env(prices, bars=3, episode_bars=0, **kw):
    params = market(prices, kw.get("volumes", False), episode_bars)
    return StocksEnv(bars=bars, **kw), params


def _play(env, params, actions, start):
    """Step one env from bar ``start`` (no auto-reset): rewards and flags of every step."""
    obs, state = env.reset_at(start, params)
    step = jax.jit(lambda s, a: env.step_env(jax.random.PRNGKey(0), s, a, params))
    out = []
    for a in actions:
        obs, state, r, term, info = step(state, jnp.int32(a))
        out.append((float(r), bool(term), bool(env.is_truncated(state, params)), obs, state, info))
    return out


def test_rising_series_buy_and_hold_beats_skipping_by_the_exact_amount():
    close = 100.0 * 1.01 ** np.arange(30)
    env, params = _env(_prices(close), reset_on_close=False)
    start = 2
    hold = _play(env, params, [BUY] + [SKIP] * 40, start)
    skip = _play(env, params, [SKIP] * 40, start)
    hold_ret = sum(r for r, *_ in hold[:27])
    entry, exit_ = np.float32(close[start]), np.float32(close[-1])
    expected = 100.0 * (exit_ - entry - C * entry - C * exit_) / entry  # closed at the last bar, both commissions
    assert hold[26][1] and not any(t for _, t, *_ in hold[:26])  # terminated at the data's last bar, not before
    np.testing.assert_allclose(hold_ret, expected, rtol=1e-5)
    assert sum(r for r, *_ in skip[:27]) == 0.0
    assert hold_ret > 0.0


@pytest.mark.parametrize("reward_on_close", [False, True])
def test_buy_and_immediate_close_costs_twice_the_commission(reward_on_close):
    env, params = _env(_prices(np.full(20, 50.0)), reward_on_close=reward_on_close, reset_on_close=False)
    steps = _play(env, params, [BUY, CLOSE, SKIP], 5)
    np.testing.assert_allclose([steps[0][0], steps[1][0]], [-100 * C, -100 * C], rtol=1e-6)
    np.testing.assert_allclose(steps[0][0] + steps[1][0], -2 * 100 * C, rtol=1e-6)
    assert steps[2][0] == 0.0 and bool(steps[1][5]["closed"]) and not bool(steps[1][4].holding)


def test_reward_on_close_and_per_bar_rewards_sum_to_the_same_return():
    """Random trades on GOOGL: the two reward schemes give the same episode returns (per bar only in time)."""
    o = trading.options(dict(reset_on_close=False, episode_bars=200))
    envs_ = {roc: trading.single(dict(o, reward_on_close=roc), "train")[:2] for roc in (False, True)}
    key = jax.random.PRNGKey(3)
    acts = jax.random.randint(key, (16, 200), 0, 3)
    starts = jax.random.randint(jax.random.PRNGKey(4), (16,), 9, 2000)

    def episode(env, params, start, actions):
        obs, state = env.reset_at(start, params)

        def body(state, a):
            _, state, r, _, _ = env.step_env(key, state, a, params)
            return state, r

        return jax.lax.scan(body, state, actions)[1]

    per_bar, on_close = (jax.jit(jax.vmap(lambda s, a, e=e: episode(*e, s, a)))(starts, acts) for e in
                         (envs_[False], envs_[True]))
    np.testing.assert_allclose(per_bar.sum(1), on_close.sum(1), rtol=1e-4, atol=1e-3)
    assert float(jnp.abs(per_bar - on_close).max()) > 0.1  # the schemes differ step by step


def test_observations_match_a_hand_computation():
    close = np.array([10.0, 11.0, 12.0, 11.5, 13.0, 12.0, 12.5])
    open_ = np.array([9.5, 10.0, 11.0, 12.0, 11.5, 13.0, 12.0])
    high, low = np.maximum(open_, close) + 0.5, np.minimum(open_, close) - 0.25
    p = _prices(close, open_, high, low)
    env, params = _env(p, bars=3, commission=0.0, volumes=True, reset_on_close=False)
    obs, state = env.reset_at(3, params)
    t = np.arange(1, 4)
    vol = p.volume[t] / p.volume[t].mean()
    rel = np.stack([(high[t] - open_[t]) / open_[t], (low[t] - open_[t]) / open_[t],
                    (close[t] - open_[t]) / open_[t], vol, np.zeros(3), np.zeros(3)], -1)
    np.testing.assert_allclose(obs, rel, rtol=1e-6)
    obs, state, *_ = env.step_env(jax.random.PRNGKey(0), state, jnp.int32(BUY), params)  # bought at 11.5
    np.testing.assert_allclose(obs[:, 4:], np.tile([1.0, 13.0 / 11.5 - 1.0], (3, 1)), rtol=1e-6)
    conv, _ = _env(p, bars=3, commission=0.0, volumes=True, layout="conv")
    np.testing.assert_array_equal(conv.reset_at(3, params)[0], env.reset_at(3, params)[0].T)
    assert conv.observation_space().shape == (6, 3) and env.observation_space().shape == (3, 6)


def test_episode_ends_reset_on_close_time_limit_and_a_forced_close():
    close = 100.0 + np.arange(40.0)
    env, params = _env(_prices(close), episode_bars=5, reset_on_close=True, commission=0.0)
    steps = _play(env, params, [BUY, SKIP, CLOSE], 10)
    assert [s[1] for s in steps] == [False, False, True]  # a close terminates
    steps = _play(env, params, [BUY, SKIP, SKIP, SKIP, SKIP], 10)
    assert [s[2] for s in steps] == [False] * 4 + [True] and not steps[-1][1]  # cut after 5 steps: truncated
    assert bool(steps[-1][5]["closed"]) and not bool(steps[-1][4].holding)  # ... and the position closed there
    np.testing.assert_allclose(sum(s[0] for s in steps), 100 * (close[15] / close[10] - 1), rtol=1e-5)


def test_batched_env_auto_resets_and_vmaps_over_seeds():
    env = envs.make("trading:stocks", num_envs=3, episode_bars=4, reset_on_close=False)
    assert env.spec.obs_shape == (10, 5) and env.spec.action_space == envs.Discrete(3)
    assert env.spec.max_episode_steps == 4

    def run(key):
        s, ts = env.reset(key)

        def body(s, k):
            s, ts = env.step(s, jnp.full((3,), BUY), k)
            return s, (ts.truncated, ts.episode_return, ts.obs[:, 0, 3])  # the position flag

        return jax.lax.scan(body, s, jax.random.split(key, 8))[1]

    trunc, ret, pos = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(0), 2))
    assert trunc.shape == (2, 8, 3) and bool(trunc[:, 3].all()) and bool(trunc[:, 7].all())
    assert not bool(trunc[:, :3].any())
    assert bool((pos[:, 3] == 0).all()) and bool((pos[:, 4] == 1).all())  # fresh episode after the reset, buys again
    assert float(jnp.abs(ret[0, 3] - ret[1, 3]).max()) > 0  # seeds start at different bars


# ------------------------------------------------------------------ cross-check: gym-anytrading's StocksEnv
@pytest.mark.parametrize("fee", [0.0, 0.003])
def test_profits_match_gym_anytradings_stocks_env(fee):
    """gym-anytrading 2.0.0 (test dependency) on the same GOOGL file, random Buy/Sell sequences.

    Where the definitions coincide: its Buy/Sell are our Buy/Close; its action at tick t trades at
    t + 1's close (ours at the current bar, so our episode starts one bar later); it closes a long
    position at the last tick, as we do.  Its profit compounds per trade, ``(1 - fee)^2 x / e``, ours is
    additive, ``100 (x - e - fee e - fee x) / e``, paid as ``-100 fee`` on buy and ``r = 100 ((1 - fee) x - e) / e``
    on close (``reward_on_close``): so each of its per-trade factors is ``(1 - fee)(1 + r / 100)`` of our
    close reward ``r`` (with ``fee = 0``: the same ``x / e``).
    """
    pd = pytest.importorskip("pandas")  # gym-anytrading needs it; both come with the test extra
    from gym_anytrading.envs import Positions
    from gym_anytrading.envs import StocksEnv as GymStocks

    df = pd.read_csv(data.BUNDLED)
    o = trading.options(dict(commission=fee, reward_on_close=True, reset_on_close=False))
    rng = np.random.default_rng(0)
    w, length = 10, 300
    for _ in range(4):
        start = int(rng.integers(w, len(df) - length - 1))
        gym = GymStocks(df, window_size=w, frame_bound=(start, start + length))
        gym.trade_fee_bid_percent = gym.trade_fee_ask_percent = fee
        gym.reset(seed=0)
        acts = rng.integers(0, 2, length - 1)
        factors, profit = [], 1.0
        for a in acts:  # a long position closes on Sell, or at the last tick
            was_long = gym._position == Positions.Long
            _, _, _, truncated, info = gym.step(int(a))
            if was_long and (a == 0 or truncated):
                factors.append(info["total_profit"] / profit)
            profit = info["total_profit"]
        env, params, _ = trading.single(dict(o, episode_bars=length - 2), "train")
        steps = _play(env, params, [CLOSE if a == 0 else BUY for a in acts[:-1]], start + 1)
        assert steps[-1][2] or steps[-1][1]  # the episode ended where gym's did
        # the close's reward (a buy on the last step pays its commission in the step that also closes)
        rewards = [r + 100 * fee * float(info["bought"]) for r, *_, info in steps if bool(info["closed"])]
        assert all(r == pytest.approx(-100 * fee) for r, *_, info in steps if info["bought"] & ~info["closed"])
        assert len(rewards) == len(factors) and len(rewards) > 10
        ours = [(1 - fee) * (1 + r / 100.0) for r in rewards]
        np.testing.assert_allclose(ours, factors, rtol=2e-5)
        np.testing.assert_allclose(np.prod(ours), profit, rtol=1e-4)
