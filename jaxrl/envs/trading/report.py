"""The trading report: profit, trades and bars held of trained agents against three baselines, and a plot.

On each split (``train``; ``validation`` when the env has ``split=DATE``), every agent of the batch
and every baseline plays the same ``episodes`` windows (the same start bars, drawn from ``seed``) of
``episode_bars`` steps, with ``reset_on_close`` off, greedily.  Per window: ``profit`` (the return:
the sum of the trades' profits in percent of their entry prices, commission paid; a position open at
the end is closed there), ``trades`` (closed positions) and ``bars_held``.  The baselines are
``random`` (uniform actions), ``buy_and_hold`` (buy at the first bar, close at the last) and
``never`` (no trade: 0).  The report gives the means over windows (and over seeds, with the per-seed
means beside them).  ``plot`` draws, for the first seed, one episode over each whole split: the close
with buy and close marks, and the equity curve against buying and holding.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.trading.stocks import BUY, SKIP

EPISODES = 100  # windows per split


def play(env, params, policy, key, n: int):
    """``policy(obs [n, ...], key) -> action [n]`` on ``n`` windows -> (profit, trades, bars_held) ``[n]``."""
    steps = min(params.max_steps_in_episode, params.close.shape[0] - env.bars)
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset_env, (0, None))(jax.random.split(k_reset, n), params)
    step = jax.vmap(env.step_env, (0, 0, 0, None))
    truncated = jax.vmap(env.is_truncated, (0, None))

    def body(carry, k):
        state, obs, active, ret, trades, held = carry
        k_act, k_step = jax.random.split(k)
        obs, state, r, terminated, info = step(jax.random.split(k_step, n), state, policy(obs, k_act), params)
        ret += jnp.where(active, r, 0.0)
        trades += (active & info["closed"]).astype(jnp.int32)
        held += (active & info["held"]).astype(jnp.int32)
        return (state, obs, active & ~(terminated | truncated(state, params)), ret, trades, held), None

    zero_i = jnp.zeros((n,), jnp.int32)
    carry = (state, obs, jnp.ones((n,), bool), jnp.zeros((n,), jnp.float32), zero_i, zero_i)
    _, _, _, ret, trades, held = jax.lax.scan(body, carry, jax.random.split(k_run, steps))[0]
    return ret, trades, held


def trajectory(env, params, policy):
    """One greedy episode from the first bar to the last: per step the bar, its close, whether a position
    was bought or closed there, and the reward (percent)."""
    steps = params.close.shape[0] - env.bars
    obs, state = env.reset_at(env.bars - 1, params)

    def body(carry, k):
        state, obs = carry
        offset = state.offset
        obs, state, r, _, info = env.step_env(k, state, policy(obs[None], k)[0], params)
        return (state, obs), (offset, params.close[offset], info["bought"], info["closed"], r)

    return jax.lax.scan(body, (state, obs), jax.random.split(jax.random.PRNGKey(0), steps))[1]


def _policies(agent, A: int):
    act = agent.act

    def of_agent(state):
        return lambda obs, key: act(state, obs, key).astype(jnp.int32)

    const = lambda a: (lambda obs, key: jnp.full((obs.shape[0],), a, jnp.int32))
    baselines = {"random": lambda obs, key: jax.random.randint(key, (obs.shape[0],), 0, A),
                 "buy_and_hold": const(BUY), "never": const(SKIP)}
    return of_agent, baselines


def _stats(ret, trades, held) -> dict:
    return {"profit": float(np.mean(ret)), "trades": float(np.mean(trades)), "bars_held": float(np.mean(held))}


def evaluate_splits(agent, state, o: dict, parts: list, seed: int, episodes: int) -> dict:
    """The report of each split (see the module docstring), from one compiled program."""
    from jaxrl import parallel
    from jaxrl.envs.trading import single

    envs_ = {part: single(dict(o, reset_on_close=False), part) for part in parts}
    A = next(iter(envs_.values()))[0].action_space().n
    of_agent, baselines = _policies(agent, A)

    def run(state):
        out = {}
        for part, (env, params, _) in envs_.items():  # the same windows for a split whichever are asked for
            key = jax.random.fold_in(jax.random.PRNGKey(seed), ("train", "validation").index(part))
            per_seed = parallel.vmap(lambda s: play(env, params, of_agent(s), key, episodes))(state)
            out[part] = (per_seed, {name: play(env, params, policy, key, episodes)
                                    for name, policy in baselines.items()})
        return out

    results = jax.device_get(jax.jit(run)(state))
    report = {}
    for part, (per_seed, base) in results.items():
        env, params, prices = envs_[part]
        ret, trades, held = (np.asarray(x).reshape(-1, episodes) for x in per_seed)
        r = {"from": str(prices.time[0])[:10], "to": str(prices.time[-1])[:10], "bars": len(prices),
             "episodes": episodes, "episode_bars": int(min(params.max_steps_in_episode, len(prices) - env.bars))}
        r.update(_stats(ret, trades, held))
        r["per_seed"] = {"profit": ret.mean(-1).tolist(), "trades": trades.mean(-1).tolist(),
                         "bars_held": held.mean(-1).tolist()}
        r["baselines"] = {name: _stats(*b) for name, b in base.items()}
        report[part] = r
    return report


def report(name: str, env_options: dict, agent, state, out=None, split: str = "both", plot=None,
           episodes: int = EPISODES, seed: int = 0) -> dict:
    """The ``trading`` entry of ``summary.json``: ``{"train": {...}, "validation": {...}}`` (see the module
    docstring); writes ``out/trades.png`` at the end of training, or ``plot`` when given."""
    from jaxrl.envs.trading import options

    o = options(dict(env_options))
    parts = [p for p in ("train", "validation") if split in (p, "both")]
    if o["split"] is None:
        parts = [p for p in parts if p == "train"]
    result = {"commission": o["commission"], "split": o["split"]}
    if o["split"] is None and split != "train":
        result["validation"] = None  # no held-out bars without split=DATE
    if parts:
        result.update(evaluate_splits(agent, state, o, parts, seed, episodes))
    path = plot if plot is not None else (None if out is None else str(out) + "/trades.png")
    if path is not None and parts:
        from jaxrl.envs.trading.plot import draw

        first = jax.tree_util.tree_map(lambda x: x[0], state)
        draw(agent, first, o, parts, path)
        result["plot"] = path
    return result


def text(result: dict) -> list[str]:
    """The report as a small table: one row per split, agent and baselines."""
    lines = [f"trading (profit per episode in %, commission {100 * result['commission']:g}% per trade side):"]
    lines.append(f"  {'split':<11}{'agent':>9}{'random':>9}{'buy&hold':>10}{'never':>7}{'trades':>8}{'held':>7}")
    for part in ("train", "validation"):
        r = result.get(part)
        if r is None:
            continue
        b = r["baselines"]
        lines.append(f"  {part:<11}{r['profit']:>9.2f}{b['random']['profit']:>9.2f}"
                     f"{b['buy_and_hold']['profit']:>10.2f}{b['never']['profit']:>7.2f}{r['trades']:>8.1f}"
                     f"{r['bars_held']:>7.1f}")
    if "validation" in result and result["validation"] is None:
        lines.append("  validation: none (train with --env-option split=YYYY-MM-DD)")
    if result.get("plot"):
        lines.append(f"  plot: {result['plot']}")
    return lines
