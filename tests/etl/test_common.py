"""Row checks shared by the readers: timestamps (parsing and the plausible range)."""

import numpy as np
import pandas as pd

from etl import quarantine as q
from etl.quarantine import Quarantine
from etl.readers import common
from etl.readers.common import Checker
from etl.readers.textfile import LINE

NOW = 1_750_000_000  # 2025-06-15


def test_parse_timestamp_takes_any_size_and_year_without_crashing():
    text = pd.Series(["1709287200", "1709287200.9", "2024-03-01T10:00:00Z", "1e20", "9.3e18",
                      "2999-01-01T00:00:00Z", "2999-01-01 00:00:00 UTC", "-5", "", "yesterday",
                      "inf", "nan"], dtype="str")
    seconds, bad = common.parse_timestamp(text)
    assert seconds.iloc[:3].tolist() == [1709287200.0, 1709287200.0, 1709287200.0]
    assert seconds.iloc[3] == 1e20 and seconds.iloc[4] == 9.3e18
    assert seconds.iloc[5] == seconds.iloc[6] == 32472144000.0
    assert seconds.iloc[7] == -5.0
    assert bad.tolist() == [False] * 9 + [True] * 3  # empty is allowed, not bad


def test_times_outside_the_plausible_range_are_quarantined_with_a_reason(monkeypatch):
    monkeypatch.setattr(common.time, "time", lambda: NOW)
    lo, hi = common.plausible_range()
    assert (lo, hi) == (631_152_000, NOW + 86_400)
    values = ["1709287200", str(lo), str(hi), "", str(lo - 1), str(hi + 1), "-5", "1e15",
              "1e20", "2200-01-01T00:00:00Z", "1989-12-31T23:59:59Z", "1709287200000"]
    chunk = pd.DataFrame({"t": pd.Series(values, dtype="str"),
                          LINE: np.arange(2, 2 + len(values))})
    qq = Quarantine()
    out = common.check_time(chunk, Checker("f.csv", qq, chunk), "t")
    assert out["ts"].dtype == "Int64"
    assert out["ts"].tolist()[:3] == [1709287200, lo, hi] and pd.isna(out["ts"].iloc[3])
    assert [r.reason for r in qq.rows] == [q.TIMESTAMP_OUT_OF_RANGE] * 8
    assert [r.line for r in qq.rows] == list(range(6, 14))
    details = {r.raw: r.detail for r in qq.rows}
    assert details["-5"].startswith("before 1990-01-01 00:00:00 UTC")
    assert details["1e15"].startswith("after 2025-06-16")
    assert details["1709287200000"].endswith("looks like milliseconds, and the format wants seconds")
