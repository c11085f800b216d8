"""``trades.png``: per split, the close with the agent's buys and closes, and its equity against buy and hold."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.trading.stocks import BUY


def curves(agent, state, o: dict, part: str) -> dict:
    """NumPy arrays of one episode over the whole split: time, close, buy and close bars, equity curves."""
    from jaxrl.envs.trading import single
    from jaxrl.envs.trading.report import trajectory

    env, params, prices = single(dict(o, reset_on_close=False, episode_bars=0), part)
    greedy = lambda obs, key: agent.act(state, obs, key).astype(jnp.int32)
    hold = lambda obs, key: jnp.full((obs.shape[0],), BUY, jnp.int32)
    run = jax.jit(lambda: (trajectory(env, params, greedy), trajectory(env, params, hold)))
    (bar, close, bought, closed, reward), (_, _, _, _, hold_reward) = jax.device_get(run())
    return {"time": prices.time[bar], "close": close, "bought": bought, "closed": closed,
            "equity": np.cumsum(reward), "hold_equity": np.cumsum(hold_reward)}


def draw(agent, state, o: dict, parts: list, path: str) -> None:
    """Write the figure to ``path`` (one column per split)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(parts), figsize=(7 * len(parts), 6), sharex="col", squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2]})
    for j, part in enumerate(parts):
        c = curves(agent, state, o, part)
        top, bottom = axes[0, j], axes[1, j]
        top.plot(c["time"], c["close"], lw=0.8, color="0.3", label="close")
        top.scatter(c["time"][c["bought"]], c["close"][c["bought"]], marker="^", s=18, color="tab:green",
                    label=f"buy ({int(c['bought'].sum())})", zorder=3)
        top.scatter(c["time"][c["closed"]], c["close"][c["closed"]], marker="v", s=18, color="tab:red",
                    label=f"close ({int(c['closed'].sum())})", zorder=3)
        top.set_title(f"{part}: {str(c['time'][0])[:10]} to {str(c['time'][-1])[:10]}")
        top.legend(loc="upper left", fontsize=8)
        bottom.plot(c["time"], c["equity"], color="tab:blue", label="agent (sum of trade profits, %)")
        bottom.plot(c["time"], c["hold_equity"], color="0.5", ls="--", label="buy and hold (%)")
        bottom.axhline(0.0, color="0.8", lw=0.8)
        bottom.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
