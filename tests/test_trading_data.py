"""trading:stocks data: both CSV layouts, the split by date, the synthetic series, and bad data or options
through ``jaxrl train`` (one line naming the file, line and column; exit 2; nothing written)."""
import os

import numpy as np
import pytest

from jaxrl import cli
from jaxrl.envs import trading
from jaxrl.envs.trading import data

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"
GOOD = ["2020-01-0{d},10,11,9,10.5,10.5,1000".format(d=d) for d in range(1, 10)] + \
       ["2020-01-1{d},10,11,9,10.5,10.5,1000".format(d=d) for d in range(0, 10)]


def _write(tmp_path, rows, header=HEADER, name="quotes.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header] + rows) + "\n")
    return str(path)


def test_bundled_googl_daily_quotes_and_the_split_by_date():
    p = data.load_csv(data.BUNDLED)
    assert len(p) == 2335 and p.volume is not None
    assert str(p.time[0])[:10] == "2009-05-22" and str(p.time[-1])[:10] == "2018-08-29"
    assert p.close[-1] == pytest.approx(1264.650024)
    train, validation = data.split(p, "2017-01-01")
    assert (len(train), len(validation)) == (1917, 418)
    assert str(train.time[-1])[:10] == "2016-12-30" and str(validation.time[0])[:10] == "2017-01-03"
    o = trading.options({"split": "2017-01-01"})
    assert len(trading.prices_of(o, "validation")) == 418 and trading.load(o) is trading.load(o)  # read once


def test_forex_file_with_day_first_timestamps():
    anytrading = pytest.importorskip("gym_anytrading")  # test dependency; its FOREX file is not bundled
    path = os.path.join(os.path.dirname(anytrading.__file__), "datasets", "data", "FOREX_EURUSD_1H_ASK.csv")
    p = data.load_csv(path)
    assert len(p) == 6225 and str(p.time[0]) == "2017-01-01T22:00:00"
    assert str(p.time[1]) == "2017-01-01T23:00:00" and p.open[0] == pytest.approx(1.05236)


def test_the_chapters_date_time_layout(tmp_path):
    rows = ["20160104,100100,1148.9,1149.0,1148.0,1148.5,10", "20160104,100200,1148.5,1150.0,1148.5,1149.9,0",
            "20160105,100100,1150.0,1150.5,1149.0,1150.0,3"]
    p = data.load_csv(_write(tmp_path, rows, "<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>"))
    assert [str(t) for t in p.time] == ["2016-01-04T10:01:00", "2016-01-04T10:02:00", "2016-01-05T10:01:00"]
    np.testing.assert_allclose(p.close, [1148.5, 1149.9, 1150.0])
    np.testing.assert_allclose(p.volume, [10, 0, 3])


def test_synthetic_series_is_a_valid_cycle():
    p = data.synthetic(rows=400, seed=1)
    assert len(p) == 400 and (p.high >= np.maximum(p.open, p.close)).all() and (p.low > 0).all()
    assert np.all(np.diff(p.time.astype(np.int64)) > 0)
    log = np.log(p.close)
    assert abs(log[-1] - log[0]) < 0.15 and log.max() - log.min() > 0.08  # no trend, a cycle of +-5%
    np.testing.assert_array_equal(data.synthetic(rows=400, seed=1).close, p.close)


BAD = [  # (rows, header, line, column, what)
    (GOOD, "Date,Open,High,Close,Volume", 1, "Low", "missing column"),
    (GOOD[:3] + ["2020-01-04,10,abc,9,10.5,10.5,1000"] + GOOD[4:], HEADER, 5, "High", "is not a number"),
    (GOOD[:6] + ["2020-01-07,10,11,9,nan,10.5,1000"] + GOOD[7:], HEADER, 8, "Close", "not a finite number"),
    (GOOD[:2] + ["2020-01-03,0,11,9,10.5,10.5,1000"] + GOOD[3:], HEADER, 4, "Open", "prices must be positive"),
    (GOOD[:2] + ["2020-01-03,-1,11,9,10.5,10.5,1000"] + GOOD[3:], HEADER, 4, "Open", "prices must be positive"),
    (GOOD[:9] + ["2020-01-10,10,9,11,10.5,10.5,1000"] + GOOD[10:], HEADER, 11, "High", "is below low"),
    (GOOD[:5] + [GOOD[3]] + GOOD[6:], HEADER, 7, "Date", "dates out of order"),
    (GOOD[:5] + ["2020-13-45,10,11,9,10.5,10.5,1000"] + GOOD[6:], HEADER, 7, "Date", "is not a date"),
    (GOOD[:4] + ["2020-01-05,10,11,9,10.5,10.5,-3"] + GOOD[5:], HEADER, 6, "Volume", "volume must be >= 0"),
    (GOOD[:4] + ["2020-01-05,10,11"] + GOOD[5:], HEADER, 6, "Low", "the row has 3 fields"),
]


def _one_line(rc, err, *expect):
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("jaxrl: error:"), lines
    for e in expect:
        assert e in lines[0], lines[0]


def _train(tmp_path, *options):
    out = tmp_path / "out"
    opts = [x for o in options for x in ("--env-option", o)]
    rc = cli.main(["train", "ppo", "--env", "trading:stocks", *opts, "--total-steps", "1024", "--num-envs", "2",
                   "--num-steps", "64", "--out", str(out), "--quiet"])
    return rc, out


@pytest.mark.parametrize("rows, header, line, column, what", BAD, ids=[b[4] + f" line {b[2]}" for b in BAD])
def test_bad_data_is_one_line_naming_file_line_and_column(tmp_path, capsys, rows, header, line, column, what):
    path = _write(tmp_path, rows, header)
    with pytest.raises(Exception) as e:
        data.load_csv(path)
    assert f"{path}, line {line}, column {column!r}: " in str(e.value) and what in str(e.value)
    rc, out = _train(tmp_path, f"data={path}")
    _one_line(rc, capsys.readouterr().err, f"data: {path}, line {line}, column {column!r}: ", what)
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["quotes.csv"]  # nothing written


@pytest.mark.parametrize("options, expect", [
    (["data={tmp}/short.csv"], "the train split (all bars) has 5 bars; bars=10 needs at least 11"),
    (["data={tmp}/short.csv", "bars=4"], None),  # 5 bars are enough for 4
    (["split=2018-08-01"], "the validation split (bars from 2018-08-01) has 21 bars; bars=30"),
    (["data={tmp}/missing.csv"], "missing.csv: no such file"),
    (["data={tmp}/empty.csv"], "the file is empty"),
    (["data={tmp}/novol.csv", "volumes=true"], "column 'Volume': volumes=true needs a volume column"),
    (["comission=0.1"], "has no option 'comission'"),
    (["commission=2"], "commission is a fraction of the price"),
    (["bars=0"], "bars must be an integer >= 1"),
    (["reward_on_close=maybe"], "reward_on_close must be true or false"),
    (["layout=wide"], "layout must be one of flat, conv"),
    (["split=2017-31-01"], "'2017-31-01' is not a date"),
    (["eval_split=validation"], "the validation split needs split=YYYY-MM-DD"),
])
def test_bad_env_options_and_too_little_data(tmp_path, capsys, options, expect):
    _write(tmp_path, GOOD[:5], name="short.csv")
    _write(tmp_path, [], name="empty.csv", header="")
    _write(tmp_path, [r.rsplit(",", 2)[0] for r in GOOD], "Date,Open,High,Low,Close", name="novol.csv")
    options = [o.format(tmp=tmp_path) for o in options]
    if options[0].startswith("split=2018"):
        options += ["bars=30", "eval_split=validation"]
    if expect is None:  # the control: the same file trains
        o = trading.options({k: v for k, v in (x.split("=") for x in options)} | {"bars": 4})
        assert len(trading.prices_of(o, "train")) == 5
        return
    rc, out = _train(tmp_path, *options)
    _one_line(rc, capsys.readouterr().err, expect)
    assert not out.exists()
