"""Figures the way the bureau writes them: ``7085.4万件``, ``49亿条``, ``9339条``, ``99.4%``.

This is the inverse of ``assets.ingest.normalise.parse_number``: a figure formatted here and
parsed back gives the value again, at the precision shown.

The rules, read off the bureau's own documents (``shared/seeds``):

* ``|value| >= 1亿`` (100,000,000): in 亿, up to 2 decimals, trailing zeros trimmed
  (``49亿条``, ``3亿元``, ``1.25亿``).
* ``|value| >= 10万`` (100,000): in 万 (``7085.4万件``, ``4652.2万条``), 1 decimal from 100万
  up, 2 decimals between 10万 and 100万 (``12.35万``), trailing zeros trimmed. Below 10万
  the bureau writes the plain number (``9339条``, ``5211家``, ``3991个``, ``2413个``), so the
  threshold is 10万: the first magnitude the bureau never writes as a plain number.
* smaller: the integer as it is, without thousands separators (``9339``); a non-integer
  with up to 2 decimals, trimmed (``4.5G``, ``20G``).
* percentages (unit ``%``, value already in percent 0..100): one decimal, ``.0`` trimmed
  (``99.4%``, ``100%``, ``80%``).
* durations in days (``天``, or ``工作日`` for time counted on working days only): below one
  day in hours, one decimal (``1.6小时``), since ``0.1天`` tells a reader nothing; from one
  day up in days, one decimal (``3.5天``, ``2.5个工作日``).

A value that rounds up across a threshold is written in the larger unit (``99,999,999`` is
``1亿``, not ``10000万``). Rounding is half-up on the decimal value (as a clerk rounds), not
banker's rounding.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

YI = 100_000_000  # 亿
WAN = 10_000  # 万
WAN_THRESHOLD = 100_000  # from 10万 up a figure is written in 万

MISSING = "—"  # a KPI without a value for the period is absent, never zero


def _round(value: float, decimals: int) -> Decimal:
    """Half-up rounding of the value as written in decimal (``repr``), not of its binary double."""
    quantum = Decimal(1).scaleb(-decimals)
    return Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)


def _trim(number: Decimal) -> str:
    """``Decimal('7085.40')`` -> ``'7085.4'``, ``Decimal('49.00')`` -> ``'49'``; no exponent."""
    text = f"{number:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _finite(value: float | int | None) -> bool:
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


def format_percent(value: float | None, decimals: int = 1) -> str:
    """A percentage already in percent: ``99.4`` -> ``'99.4%'``, ``100.0`` -> ``'100%'``."""
    if not _finite(value):
        return MISSING
    return _trim(_round(value, decimals)) + "%"


def format_plain(value: float) -> str:
    """A number without 万/亿: ``9339.0`` -> ``'9339'``, ``4.5`` -> ``'4.5'``,
    ``0.004`` -> ``'0.004'``."""
    number, _ = _plain_parts(abs(float(value)))
    return ("-" if value < 0 and number != 0 else "") + _trim(number)


def _magnitude_parts(magnitude: float) -> tuple[Decimal, str, float]:
    """(number as written, 亿/万/'' suffix, rounding step in units) of a non-negative value."""
    if magnitude >= YI:
        return _round(magnitude / YI, 2), "亿", YI / 100
    wan_decimals = 1 if magnitude >= 100 * WAN else 2
    wan = _round(magnitude / WAN, wan_decimals)
    if wan >= WAN:  # 9999.96万 rounds to 10000.0万: that is 1亿
        return Decimal(1), "亿", YI / 100
    if magnitude >= WAN_THRESHOLD or _round(magnitude, 0) >= WAN_THRESHOLD:
        if wan_decimals == 2 and wan >= 100:  # 99.996万 rounds to 100.00万: write 100万
            wan_decimals = 1
            wan = _round(magnitude / WAN, 1)
        return wan, "万", WAN * 10.0**-wan_decimals
    number, step = _plain_parts(magnitude)
    return number, "", step


def _plain_parts(magnitude: float) -> tuple[Decimal, float]:
    """(number as written, rounding step) of a non-negative value written without 万/亿."""
    rounded = _round(magnitude, 2)
    if rounded == 0 and magnitude != 0:  # do not write a tiny non-zero value as 0
        tiny = Decimal(f"{magnitude:.2g}")
        return tiny, 10.0 ** tiny.as_tuple().exponent
    return rounded, 0.01


def format_magnitude(value: float | int | None, unit: str = "") -> str:
    """A figure in the bureau's style, with its unit: ``format_magnitude(70854000, '件')`` ->
    ``'7085.4万件'``; ``format_magnitude(4.9e9, '条')`` -> ``'49亿条'``; ``(9339, '条')`` ->
    ``'9339条'``; ``(99.4, '%')`` -> ``'99.4%'``; ``(4.5, 'G')`` -> ``'4.5G'``.
    """
    if not _finite(value):
        return MISSING
    if unit == "%":
        return format_percent(value)
    number, suffix, _ = _magnitude_parts(abs(float(value)))
    sign = "-" if value < 0 and number != 0 else ""
    return f"{sign}{_trim(number)}{suffix}{unit}"


def rounding_step(value: float, unit: str = "") -> float:
    """The rounding step :func:`format_kpi` applies to ``value``: ``70854321`` in 件 -> ``1000``
    (0.1万), ``4.9e9`` -> ``1e6`` (0.01亿), a percentage -> ``0.1``, ``9339`` -> ``0.01``.
    Formatting then parsing gives the value back to within half this step.
    """
    if unit in DURATION_UNITS:
        return 0.1 / 24 if _in_hours(float(value)) else 0.1
    if unit == "%":
        return 0.1
    if unit == "G":
        return _plain_parts(abs(float(value)))[1]
    return _magnitude_parts(abs(float(value)))[2]


DURATION_UNITS = {"天": "天", "工作日": "个工作日"}


def _in_hours(days: float) -> bool:
    return abs(days) < 1 and _round(abs(days) * 24, 1) < 24


def format_duration(days: float, unit: str = "天") -> str:
    """``0.0685`` -> ``'1.6小时'``; ``3.5`` -> ``'3.5天'``; ``2.5, '工作日'`` -> ``'2.5个工作日'``."""
    if _in_hours(days):
        return _trim(_round(days * 24, 1)) + "小时"
    return _trim(_round(days, 1)) + DURATION_UNITS[unit]


def format_kpi(value: float | int | None, unit: str | None) -> str:
    """A KPI value with its catalogue unit, deciding per unit.

    ``%``: a percentage (one decimal); ``天``/``工作日``: a duration (:func:`format_duration`); ``G``
    (Gbit/s): the plain number (``4.5G``, ``20G``), never in 万; counts and money (``件``,
    ``条``, ``个``, ``元`` ...) and anything else: :func:`format_magnitude`.
    """
    unit = unit or ""
    if not _finite(value):
        return MISSING
    if unit == "%":
        return format_percent(value)
    if unit in DURATION_UNITS:
        return format_duration(value, unit)
    if unit == "G":
        return format_plain(value) + unit
    return format_magnitude(value, unit)
