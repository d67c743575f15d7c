"""The date a register delivery describes, read from its title rows and sheet names."""

from __future__ import annotations

from datetime import date

import pytest

from assets.ingest.dating import stated_date
from assets.ingest.normalise import parse_value


@pytest.mark.parametrize(("texts", "expected"), [
    (["部门与区划名录（截至2023年3月31日）"], date(2023, 3, 31)),
    (["截至2023年3月底"], date(2023, 3, 31)),
    (["截止2024年2月末"], date(2024, 2, 29)),
    (["政务外网接入点清单", "统计期： 2023年2月"], date(2023, 2, 28)),  # a second title row
    (["单位：个 数据日期：2023.1.31"], date(2023, 1, 31)),
    (["沈阳市政务云业务系统清单（2022年4月）"], date(2022, 4, 30)),  # one date named: its end
    (["", "2023年第一季度"], date(2023, 3, 31)),  # no title; the sheet is named for the period
    (["事项清单（2023年3月） 制表日期：2023年4月5日"], date(2023, 3, 31)),  # when made: not it
    (["统计日期：2022-12-31 填报日期：2023-01-05"], date(2022, 12, 31)),
    (["2019-2020年"], None),  # a range names no single date
    (["《数字政府建设总体规划（2022-2025年）》"], None),
    (["沈阳市市、区两级政务服务部门名录"], None),
    ([], None),
])
def test_stated_date(texts, expected):
    assert stated_date(texts) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("2023-03-31", date(2023, 3, 31)),
    ("2023年3月31日", date(2023, 3, 31)),
    ("2023/3/31", date(2023, 3, 31)),
    ("2023-03-31 00:00:00", date(2023, 3, 31)),  # an Excel date cell
    ("2023年3月", date(2023, 3, 31)),  # a month: its last day
    ("截至2023年3月底", date(2023, 3, 31)),
    ("2023Q4", date(2023, 12, 31)),
    ("2022年", date(2022, 12, 31)),
    ("下月", None),
])
def test_as_of_values(text, expected):
    assert parse_value(text, "as_of") == expected
