"""Figures in the bureau's style, and their round trip through the loaders' number parser."""

from __future__ import annotations

import math
import re

import pytest

from warehouse.formatting import (
    MISSING,
    format_kpi,
    format_magnitude,
    format_percent,
    rounding_step,
)

# The bureau's own figures (shared/seeds) as value, unit, text.
BUREAU = [
    (70_854_000, "件", "7085.4万件"),
    (46_522_000, "条", "4652.2万条"),
    (4_900_000_000, "条", "49亿条"),
    (300_000_000, "元", "3亿元"),
    (9339, "条", "9339条"),
    (3991, "个", "3991个"),
    (2413, "个", "2413个"),
    (5211, "家", "5211家"),
    (433, "个", "433个"),
    (631, "户", "631户"),
    (99.4, "%", "99.4%"),
    (100.0, "%", "100%"),
    (80.0, "%", "80%"),
    (70.3, "%", "70.3%"),
    (94.2, "%", "94.2%"),
    (4.5, "G", "4.5G"),
    (20, "G", "20G"),
]


@pytest.mark.parametrize(("value", "unit", "text"), BUREAU)
def test_bureau_figures(value, unit, text):
    assert format_kpi(value, unit) == text
    if unit != "G":
        assert format_magnitude(value, unit) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (7, "7"),
        (99_999, "99999"),  # below 10万 the bureau writes the plain number, no separators
        (100_000, "10万"),
        (123_456, "12.35万"),  # 10万..100万: two decimals
        (1_000_000, "100万"),
        (1_234_567, "123.5万"),  # from 100万: one decimal
        (70_854_321, "7085.4万"),
        (70_856_000, "7085.6万"),
        (99_500_000, "9950万"),  # not 1亿: 亿 only from 1亿
        (99_999_999, "1亿"),  # rounds up across the threshold: written in the larger unit
        (100_000_000, "1亿"),
        (125_000_000, "1.25亿"),
        (4_912_345_678, "49.12亿"),
        (1_234_567_890_123, "12345.68亿"),
        (999_996, "100万"),
        (99_999.5, "10万"),
        (4.5, "4.5"),
        (3.14159, "3.14"),
        (1.005, "1.01"),  # half-up on the decimal value, not on its binary double
        (2.5, "2.5"),
        (0.004, "0.004"),  # a tiny non-zero value is not written as 0
        (-70_854_000, "-7085.4万"),
        (-3, "-3"),
    ],
)
def test_magnitudes(value, text):
    assert format_magnitude(value) == text


def test_no_thousands_separators_or_exponents():
    for value in (1234, 56_789, 1e15, 1e-7, 12_345_678_901):
        text = format_magnitude(value)
        assert "," not in text and "e" not in text.lower(), text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (99.44, "99.4%"),
        (99.45, "99.5%"),
        (99.96, "100%"),
        (0.0, "0%"),
        (0.04, "0%"),
        (12.0, "12%"),
        (70.25, "70.3%"),
        (100, "100%"),
    ],
)
def test_percent(value, text):
    assert format_percent(value) == text
    assert format_magnitude(value, "%") == text
    assert format_kpi(value, "%") == text


def test_units_decide():
    assert format_kpi(1.46, "天") == "1.5天"
    assert format_kpi(12.0, "天") == "12天"
    # below one day a duration reads in hours: the sample's median handling time
    assert format_kpi(0.06851851851851852, "工作日") == "1.6小时"
    assert format_kpi(0.25, "天") == "6小时"
    assert format_kpi(0.9999, "工作日") == "1个工作日"  # 24.0 hours is a day
    assert format_kpi(2.54, "工作日") == "2.5个工作日"
    assert format_kpi(4, "级") == "4级"
    assert format_kpi(24, "类") == "24类"
    assert format_kpi(250_000, "G") == "250000G"  # bandwidth is never written in 万
    assert format_kpi(123_456, None) == "12.35万"
    assert format_kpi(3e8, "元") == "3亿元"


@pytest.mark.parametrize("missing", [None, float("nan"), float("inf")])
def test_missing_is_not_zero(missing):
    assert format_magnitude(missing, "件") == MISSING
    assert format_kpi(missing, "%") == MISSING
    assert format_percent(missing) == MISSING


# --------------------------------------------------------------------------------------------
# Round trip


def _values() -> list[float]:
    """Values over every magnitude, incl. rounding edges and the reference figures."""
    out = [v for v, unit, _ in BUREAU if unit not in ("%", "G")]
    for exponent in range(0, 13):
        for mantissa in (1, 1.2345678, 2.5, 3.99951, 4.5, 7.0854, 9.9994, 9.99951, 9.999999):
            out.append(mantissa * 10**exponent)
    out += [99_999, 100_000, 100_001, 999_949, 999_950, 999_999, 99_949_999, 99_950_000, 99_999_999]
    return out


def _percents() -> list[float]:
    return [0, 0.04, 0.05, 1, 33.333, 50, 66.666, 70.3, 80, 94.2, 99.4, 99.44, 99.95, 100]


_REFERENCE_PARSE = re.compile(r"^(-?\d+(?:\.\d+)?)(亿|万)?(.*)$")


def _reference_parse(text: str) -> float:
    """A deliberately small parser of the format (the real one is assets.ingest.normalise)."""
    m = _REFERENCE_PARSE.match(text)
    assert m, text
    scale = {"亿": 1e8, "万": 1e4, None: 1}[m[2]]
    return float(m[1]) * scale


def _close(parsed: float, value: float, step: float) -> bool:
    return abs(parsed - value) <= step / 2 * (1 + 1e-9) + 1e-9 * abs(value)


@pytest.mark.parametrize("unit", ["", "件", "条", "个", "元"])
def test_round_trip_format_then_parse(unit):
    for value in _values():
        text = format_kpi(value, unit)
        assert _close(_reference_parse(text), value, rounding_step(value, unit)), (value, text)


def test_round_trip_percent():
    for value in _percents():
        text = format_kpi(value, "%")
        assert _close(_reference_parse(text), value, rounding_step(value, "%")), (value, text)


def test_formatting_is_stable_on_its_own_output():
    """Formatting the value shown gives the same text: what the bulletin prints is a fixed point."""
    for value in _values():
        text = format_kpi(value, "件")
        assert format_kpi(_reference_parse(text), "件") == text


# The loaders' parser: the real inverse. It lives in assets/ingest/normalise.py.


def _parse_number():
    normalise = pytest.importorskip(
        "assets.ingest.normalise", reason="assets.ingest.normalise not written yet"
    )
    return normalise.parse_number


def _percent_scale(parse) -> float:
    """parse_number('50%') is 0.5 (a share) or 50 (percent): the factor from percent to it."""
    parsed = parse("50%")
    assert parsed is not None and (math.isclose(parsed, 0.5) or math.isclose(parsed, 50.0)), parsed
    return 0.01 if math.isclose(parsed, 0.5) else 1.0


@pytest.mark.parametrize("unit", ["", "件", "条", "个", "元"])
def test_round_trip_through_parse_number(unit):
    parse = _parse_number()
    for value in _values():
        text = format_kpi(value, unit)
        parsed = parse(text)
        assert parsed is not None, text
        assert _close(parsed, value, rounding_step(value, unit)), (value, text, parsed)


def test_reference_figures_through_parse_number():
    parse = _parse_number()
    assert parse("7085.4万件") == pytest.approx(70_854_000)
    assert parse(format_kpi(4.9e9, "条")) == pytest.approx(4.9e9)
    assert parse(format_kpi(3e8, "元")) == pytest.approx(3e8)
    assert parse(format_kpi(9339, "条")) == pytest.approx(9339)


def test_percent_through_parse_number():
    parse = _parse_number()
    scale = _percent_scale(parse)
    for value in _percents():
        text = format_kpi(value, "%")
        parsed = parse(text)
        assert parsed is not None, text
        assert _close(parsed / scale, value, rounding_step(value, "%")), (value, text, parsed)
