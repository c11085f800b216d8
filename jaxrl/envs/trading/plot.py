"""``trades.png``: per split, the close with the agent's buys and closes, and its equity against buy and hold."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.trading.stocks import BUY


def curves(agent, state, o: dict, parts: list) -> dict:
    """Per split, NumPy arrays of one episode over the whole split: time, close, buy and close bars, and
    the equity curves of the agent and of buying and holding (one compiled program for all splits)."""
    from jaxrl.envs.trading import single
    from jaxrl.envs.trading.report import trajectory

    envs_ = {part: single(dict(o, reset_on_close=False, episode_bars=0), part) for part in parts}
    hold = lambda obs, key: jnp.full((obs.shape[0],), BUY, jnp.int32)

    def run(state):  # the state is an argument, not a constant of the program (it holds replay buffers)
        greedy = lambda obs, key: agent.act(state, obs, key).astype(jnp.int32)
        return {part: (trajectory(env, params, greedy), trajectory(env, params, hold)[4])
                for part, (env, params, _) in envs_.items()}

    out = {}
    for part, ((bar, close, bought, closed, reward), hold_reward) in jax.device_get(jax.jit(run)(state)).items():
        out[part] = {"time": envs_[part][2].time[bar], "close": close, "bought": bought, "closed": closed,
                     "equity": np.cumsum(reward), "hold_equity": np.cumsum(hold_reward)}
    return out


def draw(agent, state, o: dict, parts: list, path: str) -> None:
    """Write the figure to ``path`` (one column per split)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(parts), figsize=(7 * len(parts), 6), sharex="col", squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2]})
    all_curves = curves(agent, state, o, parts)
    for j, part in enumerate(parts):
        c = all_curves[part]
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
