"""Price data for the trading env: a CSV loader with one-line errors, a split by date, synthetic series.

Two CSV layouts load (the header decides, case-insensitive, ``<...>`` brackets ignored):

* ``Date,Open,High,Low,Close[,Adj Close],Volume`` (Yahoo style; the bundled GOOGL file), or a single
  ``Time`` column holding date and time (``01.01.2017 22:00:00.000``, day first, as in
  gym-anytrading's FOREX file);
* ``<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>`` (the layout of Lapan's chapter 8 data:
  ``20160104,100100,...``).

Dates are ``YYYY-MM-DD``, ``YYYYMMDD``, ``YYYY/MM/DD`` or ``DD.MM.YYYY``, optionally followed by a
time (``HH:MM[:SS[.fff]]``); a ``TIME`` column is ``HHMMSS``.  ``Volume`` is optional; other columns
(``Adj Close``) are ignored.  The whole file is checked before anything is returned, and the first
problem is one :class:`~jaxrl.config.ConfigError` naming the file, the line and the column: a missing
column, a non-numeric field, NaN or infinity, a non-positive price, high below low, a negative
volume, a date that does not parse or is not after the previous one.

:data:`BUNDLED` is gym-anytrading 2.0.0's ``STOCKS_GOOGL.csv`` (MIT, see ``data/LICENSE-gym-anytrading.txt``),
shipped in the package, so nothing is downloaded at run time.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
import os
from typing import NamedTuple, Optional

import numpy as np

from jaxrl.config import ConfigError

BUNDLED = os.path.join(os.path.dirname(__file__), "data", "STOCKS_GOOGL.csv")
FIELD = "data"  # the env option the errors name
PRICE_COLUMNS = ("open", "high", "low", "close")
_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%d.%m.%Y")
_TIME_FORMATS = ("", " %H:%M", " %H:%M:%S", " %H:%M:%S.%f")


class Prices(NamedTuple):
    """A validated series of ``N`` bars (NumPy, host side)."""

    time: np.ndarray  # datetime64[s] [N], strictly increasing
    open: np.ndarray  # float64 [N], > 0
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: Optional[np.ndarray]  # float64 [N] >= 0, or None when the file has no volume column
    source: str  # the file (or "synthetic:...") the bars came from

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def take(self, mask: np.ndarray) -> "Prices":
        pick = lambda a: None if a is None else a[mask]
        return Prices(*(pick(a) for a in self[:6]), self.source)


def _error(path: str, line: Optional[int], column: Optional[str], what: str) -> ConfigError:
    where = path + (f", line {line}" if line is not None else "") + (f", column {column!r}" if column else "")
    return ConfigError(FIELD, f"{where}: {what}")


def _key(name: str) -> str:
    return name.strip().strip("<>").strip().lower().replace("_", " ")


def _columns(header: list[str], path: str) -> dict[str, int]:
    """Column name -> index, for the columns the loader uses."""
    keys = [_key(h) for h in header]
    aliases = {"date": ("date",), "time": ("time",), "open": ("open",), "high": ("high",), "low": ("low",),
               "close": ("close",), "volume": ("volume", "vol")}
    cols = {name: keys.index(a) for name, names in aliases.items() for a in names if a in keys}
    if "date" not in cols and "time" in cols:  # one column with date and time (gym-anytrading's FOREX file)
        cols["date"] = cols.pop("time")
    for name in ("date",) + PRICE_COLUMNS:
        if name not in cols:
            raise _error(path, 1, name.capitalize(), f"missing column (the header has {', '.join(header)}); "
                                                     f"expected Date,Open,High,Low,Close[,Volume] or "
                                                     f"<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>")
    return cols


def _date_format(text: str) -> Optional[str]:
    for d in _DATE_FORMATS:
        for t in _TIME_FORMATS:
            try:
                dt.datetime.strptime(text, d + t)
                return d + t
            except ValueError:
                pass
    return None


def _number(text: str, path: str, line: int, column: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise _error(path, line, column, f"{text.strip()!r} is not a number") from None
    if not math.isfinite(x):
        raise _error(path, line, column, f"{text.strip()} is not a finite number")
    return x


def _row(row, cols, header, path, line, fmt, prev):
    """(timestamp, open, high, low, close, volume) of one checked row."""
    if len(row) < len(header):
        missing = header[len(row)] if len(row) < len(header) else ""
        raise _error(path, line, missing, f"the row has {len(row)} fields, the header {len(header)}")
    text = row[cols["date"]].strip()
    if "time" in cols:  # the chapter's layout: <DATE>,<TIME> with TIME as HHMMSS
        text += " " + ":".join(row[cols["time"]].strip().zfill(6)[i:i + 2] for i in (0, 2, 4))
    try:
        when = dt.datetime.strptime(text, fmt)
    except ValueError:
        raise _error(path, line, header[cols["date"]], f"{text!r} is not a date like the first row's "
                                                        f"({fmt})") from None
    if prev is not None and when <= prev:
        raise _error(path, line, header[cols["date"]], f"dates out of order: {when} is not after {prev}")
    values = [_number(row[cols[c]], path, line, header[cols[c]]) for c in PRICE_COLUMNS]
    for c, v in zip(PRICE_COLUMNS, values):
        if v <= 0:
            raise _error(path, line, header[cols[c]], f"prices must be positive; got {v}")
    if values[1] < values[2]:
        raise _error(path, line, header[cols["high"]], f"high {values[1]} is below low {values[2]}")
    vol = None
    if "volume" in cols:
        vol = _number(row[cols["volume"]], path, line, header[cols["volume"]])
        if vol < 0:
            raise _error(path, line, header[cols["volume"]], f"volume must be >= 0; got {vol}")
    return when, *values, vol


def load_csv(path: str) -> Prices:
    """Read and check an OHLC(V) CSV file; the first problem is a one-line ConfigError."""
    path = os.fspath(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise ConfigError(FIELD, f"{path}: no such file; give a CSV file of Date,Open,High,Low,Close[,Volume]")
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(FIELD, f"{path}: cannot read it as a CSV file ({e})")
    rows = [r for r in rows if any(x.strip() for x in r)]
    if not rows:
        raise _error(path, 1, None, "the file is empty; expected a header Date,Open,High,Low,Close[,Volume]")
    header, body = rows[0], rows[1:]
    cols = _columns(header, path)
    if not body:
        raise _error(path, 2, None, "the file has a header but no rows")
    out, prev, fmt = [], None, None
    for line, row in enumerate(body, start=2):
        if fmt is None:
            first = row[cols["date"]].strip() + (" 00:00:00" if "time" in cols else "")
            fmt = _date_format(first)
            if fmt is None:
                raise _error(path, line, header[cols["date"]], f"{row[cols['date']].strip()!r} is not a date "
                                                               f"(YYYY-MM-DD, YYYYMMDD or DD.MM.YYYY)")
        r = _row(row, cols, header, path, line, fmt, prev)
        prev = r[0]
        out.append(r)
    time = np.array([r[0] for r in out], dtype="datetime64[s]")
    arr = np.array([r[1:5] for r in out], np.float64)
    vol = np.array([r[5] for r in out], np.float64) if "volume" in cols else None
    return Prices(time, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], vol, path)


def parse_date(text, what: str = "split") -> np.datetime64:
    """``YYYY-MM-DD`` (or any date format the loader reads) -> datetime64[s]; else a one-line error."""
    s = str(text).strip()
    fmt = _date_format(s)
    if fmt is None:
        raise ConfigError(what, f"{s!r} is not a date; use YYYY-MM-DD, e.g. split=2017-01-01")
    return np.datetime64(dt.datetime.strptime(s, fmt), "s")


def split(prices: Prices, date) -> tuple[Prices, Prices]:
    """(bars before ``date``, bars on or after it)."""
    cut = parse_date(date)
    before = prices.time < cut
    return prices.take(before), prices.take(~before)


def synthetic(rows: int = 3000, seed: int = 0, period: float = 16.0, amplitude: float = 0.05,
              trend: float = 0.0, noise: float = 0.004, start: str = "2000-01-01") -> Prices:
    """A series with a learnable pattern: log close = ``amplitude * sin(2 pi t / period) + trend * t``
    plus Gaussian noise of std ``noise`` per bar, one bar per calendar day from ``start``.

    Each bar opens at the previous close; high and low lie above and below the open and the close by
    a random fraction (up to ``noise``).  With ``trend = 0`` buying and holding earns about nothing,
    while buying the troughs and closing at the peaks earns about ``2 * amplitude`` per cycle.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(rows + 1, dtype=np.float64)
    log_close = amplitude * np.sin(2 * np.pi * t / period) + trend * t + noise * rng.standard_normal(rows + 1)
    px = 100.0 * np.exp(log_close)
    open_, close = px[:-1], px[1:]
    wick = 1.0 + noise * rng.uniform(0.0, 1.0, (2, rows))
    high = np.maximum(open_, close) * wick[0]
    low = np.minimum(open_, close) / wick[1]
    time = np.datetime64(start, "s") + np.arange(rows) * np.timedelta64(1, "D")
    volume = rng.uniform(1e5, 2e5, rows)
    return Prices(time, open_, high, low, close, volume, f"synthetic:seed={seed}")
