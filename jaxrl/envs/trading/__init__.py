"""The ``trading`` env backend: ``trading:stocks``, one share of one stock (Lapan, ch. 8), pure JAX.

    jaxrl train dqn --env trading:stocks --env-option split=2017-01-01 --env-option commission=0.001

Env options (``--env-option KEY=VALUE``):

==================  ==========  ====================================================================
option              default     meaning
==================  ==========  ====================================================================
``data``            bundled     a CSV file (:mod:`jaxrl.envs.trading.data`), ``synthetic`` (a series
                                with cycles, :func:`~jaxrl.envs.trading.data.synthetic`), or unset:
                                the bundled GOOGL daily quotes 2009-05-22 to 2018-08-29
``split``           none        ``YYYY-MM-DD``: training uses the bars before it, validation the rest
``commission``      0.001       fraction of the price paid on buy and on close
``bars``            10          bars in the observation
``volumes``         false       add volume (relative to its mean over the window) as a feature
``reward_on_close`` false       reward only on close, instead of per bar while holding
``reset_on_close``  true        a close ends the episode
``episode_bars``    250         steps before an episode is cut (0: until the end of the data)
``layout``          flat        ``flat`` ``[bars, features]`` or ``conv`` ``[features, bars]``
``eval_split``      train       the split the driver's greedy evaluation (``eval_return``) plays
``data_seed``       0           seed of ``data=synthetic``
==================  ==========  ====================================================================

Greedy evaluation (``eval_return``) plays windows of ``episode_bars`` steps with ``reset_on_close``
off, so its return is the profit of a window in percent.  The backend's report
(:mod:`jaxrl.envs.trading.report`) adds the profit, trades and bars held on both splits against
three baselines (random actions, buy and hold, never trade) to ``summary.json`` under ``trading``,
and draws ``trades.png``.
"""
from __future__ import annotations

import os
from typing import Any

from jaxrl.config import ConfigError
from jaxrl.envs.registry import Backend, Report
from jaxrl.envs.trading import data as _data

DEFAULTS = dict(data=None, split=None, commission=0.001, bars=10, volumes=False, reward_on_close=False,
                reset_on_close=True, episode_bars=250, layout="flat", eval_split="train", data_seed=0,
                part="train")  # part: train | validation | eval (eval_split); set by evaluation, not by users
SPLITS = ("train", "validation")
_CACHE: dict = {}  # (path, mtime, size) -> Prices


def _bool(key, v) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise ConfigError("env_option", f"{key} must be true or false; got {v!r}")


def _int(key, v, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or v < low:
        raise ConfigError("env_option", f"{key} must be an integer >= {low}; got {v!r}")
    return int(v)


def options(given: dict) -> dict:
    """The checked env options (defaults filled in); a bad one is a one-line ConfigError."""
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ConfigError("env_option", f"trading:stocks has no option {unknown[0]!r}; options: "
                                        f"{', '.join(k for k in DEFAULTS if k != 'part')}")
    o = dict(DEFAULTS, **given)
    o["bars"] = _int("bars", o["bars"], 1)
    o["episode_bars"] = _int("episode_bars", o["episode_bars"], 0)
    o["data_seed"] = _int("data_seed", o["data_seed"], 0)
    for k in ("volumes", "reward_on_close", "reset_on_close"):
        o[k] = _bool(k, o[k])
    c = o["commission"]
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 <= c < 0.5:
        raise ConfigError("env_option", f"commission is a fraction of the price in [0, 0.5), e.g. 0.001 "
                                        f"for 0.1%; got {c!r}")
    o["commission"] = float(c)
    for k, allowed in (("layout", ("flat", "conv")), ("eval_split", SPLITS), ("part", SPLITS + ("eval",))):
        if o[k] not in allowed:
            raise ConfigError("env_option", f"{k} must be one of {', '.join(allowed)}; got {o[k]!r}")
    if o["split"] is not None:
        o["split"] = str(_data.parse_date(o["split"], "env_option split"))[:10]
    elif "validation" in (o["eval_split"], o["part"]):
        raise ConfigError("env_option", "the validation split needs split=YYYY-MM-DD")
    return o


def load(o: dict) -> _data.Prices:
    """All bars of the data option (the file is read and checked once per process and version)."""
    if o["data"] is None or o["data"] == "bundled":
        path = _data.BUNDLED
    elif o["data"] == "synthetic":
        return _data.synthetic(seed=o["data_seed"])
    else:
        path = os.path.abspath(os.path.expanduser(str(o["data"])))
        if not os.path.isfile(path):
            raise ConfigError("data", f"{o['data']}: no such file; give a CSV file of Date,Open,High,Low,"
                                      f"Close[,Volume] (--env-option data=PATH)")
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _CACHE:
        _CACHE[key] = _data.load_csv(path)
    return _CACHE[key]


def prices_of(o: dict, part: str) -> _data.Prices:
    """The bars of one split, checked to hold at least ``bars + 1`` bars."""
    prices = load(o)
    if o["volumes"] and prices.volume is None:
        raise ConfigError("data", f"{prices.source}, column 'Volume': volumes=true needs a volume column")
    what = "all bars"
    if o["split"] is not None:
        train, validation = _data.split(prices, o["split"])
        prices = train if part == "train" else validation
        what = f"bars {'before' if part == 'train' else 'from'} {o['split']}"
    if len(prices) < o["bars"] + 1:
        raise ConfigError("data", f"{prices.source}: the {part} split ({what}) has {len(prices)} bars; "
                                  f"bars={o['bars']} needs at least {o['bars'] + 1}")
    return prices


def single(o: dict, part: str):
    """(the one-env :class:`~jaxrl.envs.trading.stocks.StocksEnv`, its params, its bars) of a split."""
    from jaxrl.envs.trading.stocks import StocksEnv, market

    prices = prices_of(o, part)
    params = market(prices, o["volumes"], o["episode_bars"])
    env = StocksEnv(o["bars"], o["commission"], o["reward_on_close"], o["reset_on_close"], o["volumes"],
                    o["layout"], params)
    return env, params, prices


def make(name: str, num_envs: int, num_seeds: int = 1, **given: Any):
    """``trading:stocks``: ``num_envs`` copies with auto-reset (see the module docstring for options)."""
    from jaxrl.envs.gymnax_env import wrap_gymnax

    o = options(given)
    part = o["eval_split"] if o["part"] == "eval" else o["part"]
    env, params, _ = single(o, part)
    return wrap_gymnax(env, params, num_envs, f"trading:{name}", backend="trading")


def eval_options(name: str) -> dict:
    """Greedy evaluation plays whole windows of ``episode_bars`` steps, on the ``eval_split``."""
    return {"reset_on_close": False, "part": "eval"}


def _report(*args, **kwargs):
    from jaxrl.envs.trading.report import report

    return report(*args, **kwargs)


def _text(result):
    from jaxrl.envs.trading.report import text

    return text(result)


REPORT_OPTIONS = (
    ("--split", dict(choices=("train", "validation", "both"), default="both",
                     help="trading: the split(s) to report (default both; validation needs split=DATE)")),
    ("--plot", dict(metavar="PNG", default=None, help="trading: draw price, trades and equity to this file")),
)
BACKEND = Backend(name="trading", make=make, ids=lambda: ["stocks"], eval_options=eval_options,
                  report=Report(_report, _text, REPORT_OPTIONS))
