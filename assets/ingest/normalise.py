"""Source headers → contract columns, raw strings → typed values, all as polars expressions.

Header matching (``match_headers``)
-----------------------------------
Every header is compared in ``expectations.contract.header_key`` form against the contract column's
name, Chinese name and aliases, trying in order (the first hit wins, better levels first):

0. the whole header (``接入带宽(Mbps)`` is itself an alias), then the header without its bracketed
   unit (``办件量（万件）`` → ``办件量`` + unit ``万件``), each also without a leading ``其中：``;
1. for a two-row header ``parent/child`` (see ``readers``): the child;
2. child+parent and parent+child words (``其中网上`` under ``办件量`` → ``其中网上办件量``);
3. the parent, only when the child is a total word (``合计``, ``小计``, ``总计``, ``总量``,
   ``总数``).

When two headers claim one column, the better level wins (then the canonical name over an alias,
then file order); the loser is an extra. Extras are kept aside as JSON data, never used as
identifiers. An extra whose header looks like personal data (姓名, 身份证, 电话, 手机, 地址 … or an
alias of a personal-data column) is hashed like the personal-data columns.

Wide indicator tables: when the contract has an ``indicator`` column that no header matched and
some headers are indicator names of ``warehouse/kpi_catalogue.yaml`` (``互联网出口带宽(G)``), the
table is wide. ``HeaderMatch.wide_indicators`` maps those headers to KPI codes; the indicator
column and the contract's first numeric column (``value``) then do not count as missing, and
``normalise`` returns a long frame: one row per source row and indicator header with a non-empty
cell, in source order (a source row with no indicator value at all gives one row with an empty
indicator and value, so it is quarantined, never silently lost). Each long row keeps its source
row's ``__row`` and ``__total``; its ``__raw`` holds the row's non-indicator cells plus that one
indicator cell (``{"报送单位": …, "统计期": …, "互联网出口带宽(G)": "20"}``); the header's unit
(``G``, ``亿条``) fills the ``unit`` column and is read as the value's unit. So rows out ≥ rows in
for a wide table.

Values (``normalise``)
----------------------
Every raw value is NFKC-normalised (full-width digits and punctuation) and trimmed; empty and
placeholder values (``-``, ``—``, ``/``, ``null``, ``N/A``, and for typed columns ``无``, ``暂无``)
are missing, not invalid. ``<col>__invalid`` is true when a value is present but cannot be read as
the column's type. Per type:

* ``string`` / ``enum``: the normalised text (enum membership is checked later, in SQL).
* ``count`` / ``integer`` (Int64), ``number`` (Float64): ``7085.4万``, ``49亿``, ``4,652.2万条``,
  ``3亿元``, ``1e3``; a value without a unit of its own takes the unit of its row's ``unit`` column
  (indicators), else of its header/unit row (``办件量（万件）`` with ``152.3`` → 1,523,000). The
  arithmetic is ``digits × 10^(multiplier + exponent − decimals)`` done as one exact multiplication
  or one correctly rounded division, so ``7085.4万`` is exactly 70,854,000. A count must be whole:
  a fraction left after a 万/亿 multiplier is rounded half away from zero, a fraction without one
  (``2.5``) is invalid, as is a percentage. A ``number`` with ``%`` keeps the written figure
  (99.4).
* ``rate``: ``99.4%`` → 0.994; a bare ``99.4`` in a column whose header/unit says % → 0.994; a
  bare ``0.994`` stays. ``‰`` divides by 1000.
* ``bandwidth_mbps``: ``20G``/``20Gbps``/``4.5G`` ×1000, ``1000M``/``100Mbps`` ×1, ``T`` ×10⁶,
  ``K`` ÷1000, ``千兆``/``万兆``; a bare number is in the header's unit (Mbps by default). For the
  ``indicators`` dataset a KPI whose catalogue ``value_type`` is ``bandwidth_gbps`` reads its value
  the same way but in Gbit/s (``20G`` → 20, ``20000Mbps`` → 20, bare ``20`` → 20).
* ``boolean``: 是/否, Y/N, yes/no, 1/0, true/false, T/F, 有/无, 已/未, √/×, 对/错, 开通, 支持 …;
  the column's own words (``涉密`` in 是否涉密, ``已上云``) are true, and a word starting with 已
  is true, with 未/不/非/没/无 false (``未上云``, ``非涉密``).
* ``rating`` (Int8 1..5): a digit (``5``, ``5.0``, ``5星``, ``5分``),
  非常满意/满意/基本满意/不满意/ 非常不满意 (also 很满意, 比较满意, 一般, 很不满意), 五星…一星,
  ``★★★★★``, ``5(非常满意)``; digits outside 1..5 are invalid.
* ``date`` / ``timestamp``: ``2022年4月28日``, ``2022-04-28``, ``2022/4/28``, ``2022.4.28``,
  ``20220428``, ``2022-04-28 09:30:00(.123)``, ``2022/4/28 9:30``, ``2022年4月28日 9时30分(15秒)``,
  ``下午2:30``/``2:30 pm``, ``2022-04-28T09:30:00Z``/``+08:00`` (converted to Beijing time), Excel
  serial numbers ``44679`` / ``44679.5`` (five digits only). Impossible dates (2月30日) are
  invalid. A ``date`` column takes the date part of a timestamp.
* ``month`` (Date, first day): ``2023年3月``, ``2023-03``, ``2023/3``, ``2023.3``, ``202303``, or
  any date/timestamp above (→ its month).
* ``period`` (String): ``2023``/``2023年``/``2023年度``/``2023年底`` → ``'2023'``;
  ``2023Q1``/``2023-Q1``/``2023年第一季度``/``2023年1季度`` → ``'2023-Q1'``; a month →
  ``'2023-03'``; a date → ``'2023-03-28'``. A leading 截至/截止 is ignored. Half years are invalid.
* ``indicator`` (String): a KPI code, its name_zh or one of its ``indicator_names`` (header_key
  form, a bracketed unit ignored) → the code; anything else null and invalid.

Output of ``normalise``: the contract columns in contract order, typed (personal data as its hash,
String), then ``<col>__invalid`` for each, then ``__row``, ``__total``, ``__raw`` (JSON object of
{source header: raw string} of the row, personal data already hashed) and ``__extras`` (JSON object
of the extra columns, null when the table has none or the row has no extra value).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path

import polars as pl
import yaml

from assets.ingest.privacy import nfkc_trimmed, pseudonymise
from assets.ingest.readers import ROW, TOTAL, SourceTable, split_unit
from expectations.contract import Column, Contract, header_key

CATALOGUE = Path(__file__).resolve().parents[2] / "warehouse" / "kpi_catalogue.yaml"

RAW = "__raw"
EXTRAS = "__extras"
# synthetic source columns of an unpivoted wide indicators table
IND, VAL, UNIT = "__indicator", "__value", "__unit"

POLARS_TYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "enum": pl.String(),
    "integer": pl.Int64(),
    "count": pl.Int64(),
    "number": pl.Float64(),
    "rate": pl.Float64(),
    "bandwidth_mbps": pl.Float64(),
    "boolean": pl.Boolean(),
    "date": pl.Date(),
    "timestamp": pl.Datetime("us"),
    "month": pl.Date(),
    "period": pl.String(),
    "as_of": pl.Date(),
    "rating": pl.Int8(),
    "indicator": pl.String(),
}
NUMERIC_TYPES = {"integer", "count", "number", "rate", "bandwidth_mbps"}

PLACEHOLDERS = [
    "-",
    "--",
    "---",
    "—",
    "——",
    "–",
    "/",
    "\\",
    "null",
    "NULL",
    "Null",
    "none",
    "None",
    "NONE",
    "nan",
    "NaN",
    "NAN",
    "n/a",
    "N/A",
    "#N/A",
    "#n/a",
]
TYPED_PLACEHOLDERS = [*PLACEHOLDERS, "无", "暂无", "空"]
TOTAL_WORDS = {"合计", "小计", "总计", "总量", "总数", "共计", "计"}
PII_HEADER = re.compile(
    r"姓名|名字|身份证|证件号|证件号码|身份号码|电话|手机|联系方式|住址|地址|邮箱|e-?mail|phone|mobile|idcard|id_?no|银行卡"
    r"|填报人|联系人|经办人|负责人|审核人|^申请人(名称)?$"
)


# --------------------------------------------------------------------------------------------------
# the KPI catalogue (indicator names)


@cache
def indicator_catalogue() -> tuple[dict[str, str], dict[str, str]]:
    """(header_key of every code / name_zh / indicator_name → KPI code, code → value_type)."""
    raw = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    names: dict[str, str] = {}
    value_types: dict[str, str] = {}
    for kpi in raw["kpis"]:
        code = kpi["code"]
        value_types[code] = kpi.get("value_type", "number")
        for name in (code, kpi.get("name_zh"), *kpi.get("indicator_names", ())):
            if name:
                names.setdefault(header_key(str(name)), code)
    return names, value_types


def _indicator_code(text: str) -> str | None:
    names, _ = indicator_catalogue()
    for key in _header_keys(text):
        if key in names:
            return names[key]
    return None


# --------------------------------------------------------------------------------------------------
# header matching


@dataclass
class HeaderMatch:
    mapping: dict[str, str]  # source header -> contract column name
    extras: list[str]  # source headers that match no column (data only, never identifiers)
    missing_required: list[str]  # required contract columns not found
    header_units: dict[str, str]  # contract column -> unit text of its header / unit row
    # Beyond the brief (optional):
    wide_indicators: dict[str, str] = field(
        default_factory=dict
    )  # wide table: source header -> KPI code
    wide_units: dict[str, str] = field(
        default_factory=dict
    )  # wide table: source header -> unit text
    hashed_extras: list[str] = field(
        default_factory=list
    )  # extras that look like personal data (hashed)
    levels: dict[str, int] = field(default_factory=dict)  # source header -> match level (0 = exact)

    @property
    def is_wide(self) -> bool:
        return bool(self.wide_indicators)


def _header_keys(text: str) -> list[str]:
    base, unit = split_unit(text)
    keys = [header_key(text)]
    if unit:
        keys.append(header_key(base))
    keys += [re.sub(r"^其中[:：]?", "", k) for k in keys]
    return [k for k in dict.fromkeys(keys) if k]


def _candidates(header: str, parts: tuple[str, str] | None) -> list[tuple[int, str]]:
    out = [(0, k) for k in _header_keys(header)]
    if parts:
        parent, child = parts
        child_keys, parent_keys = _header_keys(child), _header_keys(parent)
        out += [(1, k) for k in child_keys]
        out += [(2, c + p) for c in child_keys for p in parent_keys]
        out += [(2, p + c) for c in child_keys for p in parent_keys]
        if header_key(split_unit(child)[0]) in TOTAL_WORDS:
            out += [(3, k) for k in parent_keys]
    return out


def match_headers(table: SourceTable, contract: Contract) -> HeaderMatch:
    """Match the table's headers to the contract's columns (see the module docstring)."""
    by_key: dict[str, tuple[str, int]] = {}
    for col in contract.columns:
        canonical = {header_key(col.name), header_key(col.zh)}
        for key in col.header_keys:
            by_key.setdefault(key, (col.name, 0 if key in canonical else 1))

    parts = getattr(table, "header_parts", {}) or {}
    hits: list[tuple[int, int, int, str, str]] = []  # (level, alias rank, position, source, column)
    for position, src in enumerate(table.columns):
        for level, key in _candidates(src, parts.get(src)):
            if key in by_key:
                name, rank = by_key[key]
                hits.append((level, rank, position, src, name))
                break
    mapping: dict[str, str] = {}
    levels: dict[str, int] = {}
    taken: set[str] = set()
    for level, _rank, _pos, src, name in sorted(hits):
        if name in taken or src in mapping:
            continue
        mapping[src] = name
        levels[src] = level
        taken.add(name)
    mapping = {src: mapping[src] for src in table.columns if src in mapping}  # file order
    extras = [src for src in table.columns if src not in mapping]

    units = table.units or {}
    header_units = {name: units[src] for src, name in mapping.items() if units.get(src)}

    wide: dict[str, str] = {}
    wide_units: dict[str, str] = {}
    indicator_col = next((c for c in contract.columns if c.type == "indicator"), None)
    value_col = _value_column(contract)
    if (
        indicator_col is not None
        and value_col is not None
        and indicator_col.name not in taken
        and value_col.name not in taken
    ):
        for src in extras:
            code = _indicator_code(src)
            if code is None and src in parts:
                code = _indicator_code(parts[src][1])
            if code is not None:
                wide[src] = code
                if units.get(src):
                    wide_units[src] = units[src]
        extras = [src for src in extras if src not in wide]

    filled = set(taken)
    if wide:
        filled |= {indicator_col.name, value_col.name}  # type: ignore[union-attr]
        if _unit_column(contract):
            filled.add("unit")
    missing = [c.name for c in contract.columns if c.required and c.name not in filled]

    pii_keys = {k for c in contract.columns if c.pii for k in c.header_keys}
    hashed = [
        src
        for src in extras
        if PII_HEADER.search(header_key(src)) or any(k in pii_keys for k in _header_keys(src))
    ]
    return HeaderMatch(mapping, extras, missing, header_units, wide, wide_units, hashed, levels)


def _value_column(contract: Contract) -> Column | None:
    return next((c for c in contract.columns if c.type in NUMERIC_TYPES and not c.pii), None)


def _unit_column(contract: Contract) -> Column | None:
    return next((c for c in contract.columns if c.name == "unit" and c.type == "string"), None)


# --------------------------------------------------------------------------------------------------
# expression building blocks
#
# A parse is written as a plan of stages (one ``with_columns`` each) whose columns refer only to
# earlier stages: polars does not reliably share a sub-expression used several times inside one
# expression tree, and a parse that reuses an intermediate value five times would otherwise compute
# it (and everything under it) five times — 30x slower on a 250,000-row chunk.


class _Plan:
    def __init__(self) -> None:
        self.stages: list[list[pl.Expr]] = []
        self.names: list[str] = []

    def put(self, level: int, expr: pl.Expr, hint: str) -> str:
        while len(self.stages) <= level:
            self.stages.append([])
        name = f"__t{len(self.names)}_{hint}"
        self.names.append(name)
        self.stages[level].append(expr.alias(name))
        return name

    def run(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        for stage in self.stages:
            if stage:
                lf = lf.with_columns(stage)
        return lf


def C(name: str) -> pl.Expr:  # noqa: N802 - short on purpose: a plan column
    return pl.col(name)


def _key(e: pl.Expr) -> pl.Expr:
    """header_key() as an expression: NFKC, no whitespace, 【】[] as (), lower case."""
    return (
        e.str.normalize("NFKC")
        .str.replace_all(r"\s+", "")
        .str.replace_many(["【", "】", "[", "]"], ["(", ")", "(", ")"])
        .str.to_lowercase()
    )


def _compact(e: pl.Expr) -> pl.Expr:
    """Lower case, no whitespace, no thousands separators: the form numbers are matched in."""
    return e.str.to_lowercase().str.replace_all(r"[\s,']", "").str.replace_all("\u2212", "-")


def _p_present(plan: _Plan, raw: pl.Expr, level: int, placeholders: list[str]) -> tuple[str, int]:
    """NFKC-trimmed text, null when empty or a placeholder."""
    t = plan.put(level, nfkc_trimmed(raw), "nfkc")
    out = plan.put(
        level + 1,
        pl.when((C(t).str.len_bytes() == 0) | C(t).is_in(placeholders)).then(None).otherwise(C(t)),
        "text",
    )
    return out, level + 2


_MULT_EXP = {"万亿": 12, "千万": 7, "百万": 6, "亿": 8, "万": 4, "千": 3, "百": 2}
_POW10 = {i: 10.0**i for i in range(0, 64)}
_NUMBER_RE = (
    r"^(?P<sign>[+-]?)(?P<int>\d*)(?:\.(?P<frac>\d*))?(?:e(?P<exp>[+-]?\d{1,3}))?"
    r"(?P<mult>万亿|千万|百万|亿|万|千|百)?(?P<unit>[^\d.+\-]*)$"
)
_UNIT_RE = r"^(?P<mult>万亿|千万|百万|亿|万|千|百)?(?P<unit>.*)$"
_BANDWIDTH_MBPS = {
    "m": 1.0,
    "mb": 1.0,
    "mbps": 1.0,
    "mbit": 1.0,
    "mbit/s": 1.0,
    "mb/s": 1.0,
    "m/s": 1.0,
    "兆": 1.0,
    "mbits": 1.0,
    "兆bps": 1.0,
    "g": 1000.0,
    "gb": 1000.0,
    "gbps": 1000.0,
    "gbit": 1000.0,
    "gbit/s": 1000.0,
    "gb/s": 1000.0,
    "g/s": 1000.0,
    "gbits": 1000.0,
    "t": 1e6,
    "tb": 1e6,
    "tbps": 1e6,
    "tbit/s": 1e6,
    "k": 1e-3,
    "kb": 1e-3,
    "kbps": 1e-3,
    "kbit/s": 1e-3,
    "kb/s": 1e-3,
    "bps": 1e-6,
}


@dataclass
class _Number:
    value: str  # Float64, multiplier applied
    k: str  # effective decimal multiplier exponent (Int64)
    unit: str  # effective unit word without multiplier (lower case, '' when none)
    own: str  # whether the value carried its own multiplier or unit
    level: int  # next free stage


def _unit_text(e: pl.Expr) -> pl.Expr:
    return (
        _compact(nfkc_trimmed(e))
        .str.replace_all(r"^[(\[]+|[)\]]+$", "")
        .str.replace(r"^(?:计量|金额|数量)?单位[:：]?", "")
    )


def _p_number(
    plan: _Plan,
    text: str,
    level: int,
    ctx: pl.Expr | None,
    per_cent: bool = False,
    bandwidth: bool = False,
) -> _Number:
    """Parse a present text as a number; the context unit `ctx` applies when it has no unit.

    digits × 10^(multiplier + exponent − decimals): one exact multiplication or one correctly
    rounded
    division. With `per_cent`, % (‰) takes 2 (3) from the exponent in the same step.
    """
    src = _compact(C(text))
    if bandwidth:
        src = src.str.replace(r"^(百|千|万)兆", "1${1}兆")
    L = level
    g = plan.put(L, src.str.extract_groups(_NUMBER_RE), "g")
    cg = (
        plan.put(L, _unit_text(ctx).str.extract_groups(_UNIT_RE), "cg") if ctx is not None else None
    )
    f = C(g).struct.field
    int_ = plan.put(L + 1, f("int").fill_null(""), "int")
    frac = plan.put(L + 1, f("frac").fill_null(""), "frac")
    exp = plan.put(L + 1, f("exp").cast(pl.Int64, strict=False).fill_null(0), "exp")
    ownk = plan.put(
        L + 1, f("mult").replace_strict(_MULT_EXP, default=None, return_dtype=pl.Int64), "ownk"
    )
    ownw = plan.put(L + 1, f("unit").fill_null(""), "ownw")
    neg = plan.put(L + 1, f("sign") == "-", "neg")
    if cg is not None:
        ctxk = plan.put(
            L + 1,
            C(cg)
            .struct.field("mult")
            .replace_strict(_MULT_EXP, default=0, return_dtype=pl.Int64)
            .fill_null(0),
            "ctxk",
        )
        ctxw = plan.put(L + 1, C(cg).struct.field("unit").fill_null(""), "ctxw")
        ctx_k, ctx_w = C(ctxk), C(ctxw)
    else:
        ctx_k, ctx_w = pl.lit(0, dtype=pl.Int64), pl.lit("")
    own = plan.put(L + 2, C(ownk).is_not_null() | (C(ownw).str.len_bytes() > 0), "own")
    mant = plan.put(
        L + 2,
        pl.when((C(int_).str.len_bytes() + C(frac).str.len_bytes()) > 0)
        .then(pl.concat_str([C(int_), C(frac)]))
        .otherwise(None)
        .cast(pl.Float64, strict=False),
        "mant",
    )
    flen = plan.put(L + 2, C(frac).str.len_chars().cast(pl.Int64), "flen")
    k = plan.put(L + 3, pl.when(C(own)).then(C(ownk).fill_null(0)).otherwise(ctx_k), "k")
    w = plan.put(L + 3, pl.when(C(own)).then(C(ownw)).otherwise(ctx_w), "w")
    shift = pl.lit(0, dtype=pl.Int64)
    if per_cent:
        shift = (
            pl.when(C(w).str.contains("%"))
            .then(2)
            .when(C(w).str.contains("‰"))
            .then(3)
            .otherwise(0)
        )
    e10 = plan.put(L + 4, C(k) + C(exp) - C(flen) - shift, "e10")
    up = plan.put(L + 5, C(e10).replace_strict(_POW10, default=None, return_dtype=pl.Float64), "up")
    down = plan.put(
        L + 5, (-C(e10)).replace_strict(_POW10, default=None, return_dtype=pl.Float64), "down"
    )
    value = plan.put(
        L + 6,
        pl.when(C(e10) >= 0).then(C(mant) * C(up)).otherwise(C(mant) / C(down))
        * pl.when(C(neg)).then(-1.0).otherwise(1.0),
        "val",
    )
    return _Number(value, k, w, own, L + 7)


def _context(header_unit: str | None, row_unit: pl.Expr | None) -> pl.Expr | None:
    """The unit a value without its own takes: its row's unit column, else its header's."""
    header = pl.lit(header_unit, dtype=pl.String) if header_unit else None
    if row_unit is not None:
        row = nfkc_trimmed(row_unit)
        row = pl.when(row.str.len_bytes() > 0).then(row).otherwise(None)
        return pl.coalesce(row, header) if header is not None else row
    return header


def _p_count(plan: _Plan, text: str, level: int, ctx: pl.Expr | None) -> tuple[str, int]:
    n = _p_number(plan, text, level, ctx)
    L = n.level
    rounded = plan.put(L, C(n.value).round(0, mode="half_away_from_zero"), "round")
    whole = (C(n.value) - C(rounded)).abs() <= 1e-9 * pl.max_horizontal(
        pl.lit(1.0), C(n.value).abs()
    )
    ok = (whole | (C(n.k) > 0)) & ~C(n.unit).str.contains("[%‰]")
    out = plan.put(
        L + 1, pl.when(ok).then(C(rounded)).otherwise(None).cast(pl.Int64, strict=False), "count"
    )
    return out, L + 2


def _p_bandwidth(
    plan: _Plan, text: str, level: int, ctx: pl.Expr | None, default_factor: float
) -> tuple[str, int]:
    """A bandwidth in Mbit/s; a bare number is in the context unit, else `default_factor` Mbit/s."""
    n = _p_number(plan, text, level, ctx, bandwidth=True)
    L = n.level
    known = C(n.unit).replace_strict(_BANDWIDTH_MBPS, default=None, return_dtype=pl.Float64)
    factor = (
        pl.when(C(n.unit).str.len_bytes() == 0)
        .then(pl.lit(default_factor))
        .when(C(n.own))
        .then(known)  # an unknown unit written in the value: unreadable
        .otherwise(
            known.fill_null(default_factor)
        )  # a header unit that is no bandwidth unit: ignored
    )
    out = plan.put(L, C(n.value) * factor, "mbps")
    return out, L + 1


_TRUE = [
    "是",
    "y",
    "yes",
    "1",
    "1.0",
    "true",
    "t",
    "有",
    "已",
    "√",
    "✓",
    "✔",
    "对",
    "是的",
    "开通",
    "支持",
    "on",
    "ok",
]
_FALSE = [
    "否",
    "n",
    "no",
    "0",
    "0.0",
    "false",
    "f",
    "无",
    "未",
    "×",
    "✗",
    "✘",
    "错",
    "不是",
    "没有",
    "不支持",
    "off",
    "未开通",
]


def _column_words(col: Column) -> list[str]:
    words = []
    for text in (col.zh, *col.aliases):
        k = re.sub(r"^是否", "", header_key(text))
        if k and not re.search(r"[a-z]", k):
            words.append(k)
    return list(dict.fromkeys(words))


def _p_boolean(plan: _Plan, text: str, level: int, col: Column) -> tuple[str, int]:
    table = {**{w: True for w in _TRUE}, **{w: False for w in _FALSE}}
    for w in _column_words(col):
        table.setdefault(w, True)
        for neg in ("不", "非", "未", "没有", "无"):
            table.setdefault(neg + w, False)
    k = plan.put(level, _key(C(text)), "key")
    exact = plan.put(
        level + 1, C(k).replace_strict(table, default=None, return_dtype=pl.Boolean), "exact"
    )
    out = plan.put(
        level + 2,
        pl.when(C(exact).is_not_null())
        .then(C(exact))
        .when(C(k).str.starts_with("已"))
        .then(True)
        .when(C(k).str.contains(r"^(未|不|非|没|无)"))
        .then(False)
        .otherwise(None),
        "bool",
    )
    return out, level + 3


_RATING_WORDS = {
    "非常满意": 5,
    "很满意": 5,
    "满意": 4,
    "比较满意": 4,
    "基本满意": 3,
    "一般": 3,
    "不满意": 2,
    "比较不满意": 2,
    "非常不满意": 1,
    "很不满意": 1,
    "五星": 5,
    "四星": 4,
    "三星": 3,
    "二星": 2,
    "两星": 2,
    "一星": 1,
}


def _p_rating(plan: _Plan, text: str, level: int) -> tuple[str, int]:
    k = plan.put(level, _key(C(text)), "key")
    L = level + 1
    digit = plan.put(
        L, C(k).str.extract(r"^([1-5])(?:\.0+)?(?:星|分|级)?$", 1).cast(pl.Int64, strict=False), "d"
    )
    word = plan.put(L, C(k).replace_strict(_RATING_WORDS, default=None, return_dtype=pl.Int64), "w")
    stars = plan.put(
        L,
        pl.when(C(k).str.contains(r"^[★☆]+$"))
        .then(C(k).str.count_matches("★").cast(pl.Int64))
        .otherwise(None),
        "stars",
    )
    # '5(非常满意)', '5-非常满意', '非常满意(5)': the digit, when the word agrees with it
    g1 = plan.put(
        L,
        C(k).str.extract_groups(r"^(?P<d>[1-5])(?:星|分|级)?[-.、:()\s]*(?P<w>\p{Han}+)\)?$"),
        "g1",
    )
    g2 = plan.put(
        L, C(k).str.extract_groups(r"^(?P<w>\p{Han}+)[-:\s]*\(?(?P<d>[1-5])(?:星|分|级)?\)?$"), "g2"
    )
    both = []
    for g in (g1, g2):
        d = plan.put(L + 1, C(g).struct.field("d").cast(pl.Int64, strict=False), "gd")
        w = plan.put(
            L + 1,
            C(g)
            .struct.field("w")
            .replace_strict(_RATING_WORDS, default=None, return_dtype=pl.Int64),
            "gw",
        )
        both.append(pl.when(C(d) == C(w)).then(C(d)).otherwise(None))
    value = plan.put(L + 2, pl.coalesce(C(digit), C(word), C(stars), *both), "rv")
    out = plan.put(
        L + 3,
        pl.when(C(value).is_between(1, 5)).then(C(value)).otherwise(None).cast(pl.Int8),
        "rating",
    )
    return out, L + 4


_DATETIME_RE = (
    r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?"
    r"(?:(?:\s*|t)(?P<ap>上午|下午|凌晨|早上|晚上|中午)?\s*(?P<H>\d{1,2})\s*(?::|时|点)\s*(?P<M>\d{1,2})?"
    r"\s*(?:(?::|分)\s*(?P<S>\d{1,2})?(?:\.(?P<f>\d{1,9}))?\s*秒?)?\s*(?P<ap2>am|pm)?)?"
    r"\s*(?P<tz>z|[+-]\d{2}:?\d{2})?$"
)
_COMPACT_RE = (
    r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"
    r"(?:(?:\s*|t)(?P<H>\d{2}):?(?P<M>\d{2})(?::?(?P<S>\d{2}))?)?$"
)
_SERIAL_RE = r"^\d{5}(?:\.\d+)?$"
_EXCEL_EPOCH_DAYS = 25569  # 1970-01-01 as an Excel serial (1900 date system)


def _pad2(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.String).str.zfill(2)


def _p_datetime(plan: _Plan, text: str, level: int) -> tuple[str, int]:
    """Datetime('us') from the many ways a clerk writes a date or time; null when unreadable.

    Texts already in one of the machine forms of ``_FAST_FORMS`` are parsed directly; the general
    parse below sees only the other texts (null elsewhere, which its string kernels skip). A fast
    form's regex admits only texts whose general parse is the same ``strptime`` of the same
    digits, so both paths give the same value: it is one parser with a shortcut, 40x cheaper on
    a platform export where every timestamp is ``2023-01-01 09:30:00``. The forms are tried in
    turn, each on the texts the ones before did not take (all five on every text cost 1.7x more).
    """
    rest, parsed = text, []
    for pattern, fmt in _FAST_FORMS:  # each form tried only on the texts no earlier form took
        # no cache: it hashes every text to parse each distinct one once, and texts this path sees
        # are mostly distinct (a column with few values is parsed per value, see _parsed_by_value);
        # 0.070 -> 0.049 CPU-s per million timestamps
        parsed.append(plan.put(level, pl.when(C(rest).str.contains(pattern)).then(C(rest))
                               .str.strptime(pl.Datetime("us"), fmt, strict=False, cache=False), "dfast"))
        rest = plan.put(level + 1, pl.when(C(parsed[-1]).is_null()).then(C(rest)), "drest")
        level += 2
    general, after = _p_datetime_general(plan, rest, level)
    out = plan.put(after, pl.coalesce(*map(C, parsed), C(general)), "dt")
    return out, after + 1


_FAST_FORMS = [
    (r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", "%Y-%m-%d %H:%M:%S"),
    (r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}$", "%Y/%m/%d %H:%M:%S"),
    (r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}$", "%Y/%m/%d %H:%M"),
    (r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$", "%Y-%m-%d %H:%M"),
    (r"^\d{4}-\d{2}-\d{2}$", "%Y-%m-%d"),
]


def _p_datetime_general(plan: _Plan, text: str, level: int) -> tuple[str, int]:
    L = level
    t = plan.put(L, C(text).str.to_lowercase().str.replace_all(r"\s+", " "), "dl")
    g = plan.put(L + 1, C(t).str.extract_groups(_DATETIME_RE), "dg")
    c = plan.put(L + 1, C(t).str.extract_groups(_COMPACT_RE), "dc")
    serial = plan.put(
        L + 1,
        pl.when(C(t).str.contains(_SERIAL_RE))
        .then(C(t).cast(pl.Float64, strict=False))
        .otherwise(None),
        "serial",
    )
    gf, cf = C(g).struct.field, C(c).struct.field
    y = plan.put(L + 2, pl.coalesce(gf("y"), cf("y")), "y")
    m = plan.put(L + 2, pl.coalesce(gf("m"), cf("m")), "m")
    d = plan.put(L + 2, pl.coalesce(gf("d"), cf("d")), "d")
    hour = plan.put(
        L + 2, pl.coalesce(gf("H"), cf("H")).cast(pl.Int64, strict=False).fill_null(0), "H"
    )
    minute = plan.put(
        L + 2, pl.coalesce(gf("M"), cf("M")).cast(pl.Int64, strict=False).fill_null(0), "M"
    )
    second = plan.put(
        L + 2, pl.coalesce(gf("S"), cf("S")).cast(pl.Int64, strict=False).fill_null(0), "S"
    )
    ap = plan.put(L + 2, pl.coalesce(gf("ap"), gf("ap2")), "ap")
    micros = plan.put(
        L + 2,
        gf("f").str.pad_end(6, "0").str.slice(0, 6).cast(pl.Int64, strict=False).fill_null(0),
        "us",
    )
    tz = plan.put(L + 2, gf("tz"), "tz")
    from_serial = plan.put(
        L + 2,
        (((C(serial) - _EXCEL_EPOCH_DAYS) * 86_400).round(0) * 1_000_000)
        .cast(pl.Int64, strict=False)
        .cast(pl.Datetime("us")),
        "fs",
    )
    hour_adj = plan.put(
        L + 3,
        pl.when(C(ap).is_in(["下午", "晚上", "pm"]) & (C(hour) < 12))
        .then(C(hour) + 12)
        .when((C(ap) == "中午") & (C(hour) < 6))
        .then(C(hour) + 12)
        .when(C(ap).is_in(["上午", "凌晨", "早上", "am"]) & (C(hour) == 12))
        .then(0)
        .otherwise(C(hour)),
        "Ha",
    )
    tzg = plan.put(
        L + 3, C(tz).str.extract_groups(r"^(?P<s>[+-])(?P<h>\d{2}):?(?P<mm>\d{2})$"), "tzg"
    )
    canonical = plan.put(
        L + 4,
        pl.concat_str(
            [
                C(y),
                pl.lit("-"),
                _pad2(C(m)),
                pl.lit("-"),
                _pad2(C(d)),
                pl.lit(" "),
                _pad2(C(hour_adj)),
                pl.lit(":"),
                _pad2(C(minute)),
                pl.lit(":"),
                _pad2(C(second)),
            ]
        ),
        "canon",
    )
    tf = C(tzg).struct.field
    offset = plan.put(
        L + 4,
        pl.when(C(tz) == "z")
        .then(pl.lit(0, dtype=pl.Int64))
        .otherwise(
            pl.when(tf("s") == "-").then(-1).otherwise(1)
            * (tf("h").cast(pl.Int64, strict=False) * 60 + tf("mm").cast(pl.Int64, strict=False))
        ),
        "off",
    )
    parsed = plan.put(
        L + 5,
        C(canonical).str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
        + pl.duration(microseconds=C(micros)),
        "parsed",
    )
    out = plan.put(
        L + 6,
        pl.coalesce(
            pl.when(C(tz).is_null())
            .then(C(parsed))
            .otherwise(C(parsed) + pl.duration(minutes=480 - C(offset))),
            C(from_serial),
        ),
        "dt",
    )
    return out, L + 7


_MONTH_RE = r"^(?P<y>\d{4})\s*(?:[-/._]|年度?)\s*(?P<m>\d{1,2})\s*(?:月份?)?$"
_MONTH_COMPACT_RE = r"^(?P<y>\d{4})(?P<m>\d{2})$"


def _p_month_only(plan: _Plan, text: str, level: int) -> tuple[str, int]:
    """Date of the first day for texts that name a month only (2023年3月, 2023-03, 202303)."""
    t = plan.put(level, C(text).str.to_lowercase(), "ml")
    g = plan.put(level + 1, C(t).str.extract_groups(_MONTH_RE), "mg")
    c = plan.put(level + 1, C(t).str.extract_groups(_MONTH_COMPACT_RE), "mc")
    y = pl.coalesce(C(g).struct.field("y"), C(c).struct.field("y"))
    m = pl.coalesce(C(g).struct.field("m"), C(c).struct.field("m"))
    out = plan.put(
        level + 2,
        pl.concat_str([y, pl.lit("-"), _pad2(m), pl.lit("-01")]).str.strptime(
            pl.Date, "%Y-%m-%d", strict=False
        ),
        "month",
    )
    return out, level + 3


def _p_month(plan: _Plan, text: str, level: int) -> tuple[str, int]:
    month_only, l1 = _p_month_only(plan, text, level)
    when, l2 = _p_datetime(plan, text, level)
    out = plan.put(
        max(l1, l2), pl.coalesce(C(month_only), C(when).dt.month_start().dt.date()), "month"
    )
    return out, max(l1, l2) + 1


_QUARTER_RE = r"^(?P<y>\d{4})(?:年|-|/|\.|_)?(?:第)?(?:q(?P<q1>[1-4])|(?P<q2>[1-4一二三四])季度?)$"
_YEAR_RE = r"^(?P<y>\d{4})(?:年|\.0+)?$"


def _p_period(plan: _Plan, text: str, level: int) -> tuple[str, int]:
    t = plan.put(
        level,
        C(text)
        .str.to_lowercase()
        .str.replace_all(r"\s+", "")
        .str.replace(r"^(截至|截止到|截止|至|到)", "")
        .str.replace(r"年(全年|度|底|末)$", "年")
        .str.replace(r"(\d)(年底|年末|年度|全年)$", "${1}年")
        .str.replace(r"(月|\d)(底|末)$", "${1}"),
        "pt",
    )
    L = level + 1
    q = plan.put(L, C(t).str.extract_groups(_QUARTER_RE), "q")
    year = plan.put(L, C(t).str.extract(_YEAR_RE, 1), "year")
    month, l1 = _p_month_only(plan, t, L)
    when, l2 = _p_datetime(plan, t, L)
    qn = pl.coalesce(C(q).struct.field("q1"), C(q).struct.field("q2")).replace(
        {"一": "1", "二": "2", "三": "3", "四": "4"}
    )
    last = max(l1, l2)
    out = plan.put(
        last,
        pl.coalesce(
            pl.concat_str([C(q).struct.field("y"), pl.lit("-Q"), qn]),
            C(year),
            C(month).dt.strftime("%Y-%m"),
            C(when).dt.strftime("%Y-%m-%d"),
        ),
        "period",
    )
    return out, last + 1


def _p_as_of(plan: _Plan, text: str, level: int) -> tuple[str, int]:
    """The last day of the period a text names: '2023年3月底' -> 2023-03-31, '2022年' -> 2022-12-31."""
    period, L = _p_period(plan, text, level)
    p = C(period)
    month_end = lambda first: first.str.strptime(pl.Date, "%Y-%m-%d", strict=False).dt.month_end()  # noqa: E731
    out = plan.put(
        L,
        pl.when(p.str.contains(r"^\d{4}-\d{2}-\d{2}$"))
        .then(p.str.strptime(pl.Date, "%Y-%m-%d", strict=False))
        .when(p.str.contains(r"^\d{4}-\d{2}$"))
        .then(month_end(p + "-01"))
        .when(p.str.contains(r"^\d{4}-Q[1-4]$"))
        .then(month_end(pl.concat_str([p.str.slice(0, 4), pl.lit("-"),
                                       _pad2((p.str.slice(6, 1).cast(pl.Int32) * 3).cast(pl.String)),
                                       pl.lit("-01")])))
        .when(p.str.contains(r"^\d{4}$"))
        .then((p + "-12-31").str.strptime(pl.Date, "%Y-%m-%d", strict=False)),
        "as_of",
    )
    return out, L + 1


def _p_indicator(plan: _Plan, text: str, level: int) -> tuple[str, int]:
    names, _ = indicator_catalogue()
    k = plan.put(level, _key(C(text)), "ik")
    stripped = plan.put(level + 1, C(k).str.replace(r"\([^()]*\)$", ""), "is")
    out = plan.put(
        level + 2,
        pl.coalesce(
            C(k).replace_strict(names, default=None, return_dtype=pl.String),
            C(stripped).replace_strict(names, default=None, return_dtype=pl.String),
        ),
        "indicator",
    )
    return out, level + 3


def _gbps_codes() -> list[str]:
    _, value_types = indicator_catalogue()
    return [code for code, vt in value_types.items() if vt == "bandwidth_gbps"]


def plan_column(
    plan: _Plan,
    raw: pl.Expr,
    col: Column,
    header_unit: str | None = None,
    row_unit: pl.Expr | None = None,
    indicator: str | None = None,
) -> tuple[pl.Expr, pl.Expr]:
    """Add the parse of contract column `col` from the raw String `raw` to `plan`.

    Returns (typed value, invalid flag) as expressions over the plan's columns. `indicator` names
    the
    plan column holding the row's KPI code (for indicator values read as bandwidth in Gbit/s).
    """
    kind = col.type
    if kind in ("string", "enum"):
        text, _ = _p_present(plan, raw, 0, PLACEHOLDERS)
        return C(text), pl.lit(False)
    text, L = _p_present(plan, raw, 0, PLACEHOLDERS if kind == "boolean" else TYPED_PLACEHOLDERS)
    ctx = _context(header_unit, row_unit) if kind in NUMERIC_TYPES else None
    if kind in ("count", "integer"):
        out, _ = _p_count(plan, text, L, ctx)
        value = C(out)
    elif kind == "number":
        value = C(_p_number(plan, text, L, ctx).value)
        if indicator is not None and (gbps := _gbps_codes()):
            mbps, _ = _p_bandwidth(plan, text, L, ctx, 1000.0)
            value = pl.when(C(indicator).is_in(gbps)).then(C(mbps) / 1000.0).otherwise(value)
    elif kind == "rate":
        value = C(_p_number(plan, text, L, ctx, per_cent=True).value)
    elif kind == "bandwidth_mbps":
        out, _ = _p_bandwidth(plan, text, L, ctx, 1.0)
        value = C(out)
    elif kind == "boolean":
        out, _ = _p_boolean(plan, text, L, col)
        value = C(out)
    elif kind == "rating":
        out, _ = _p_rating(plan, text, L)
        value = C(out)
    elif kind in ("date", "timestamp"):
        out, _ = _p_datetime(plan, text, L)
        value = C(out).dt.date() if kind == "date" else C(out)
    elif kind == "month":
        out, _ = _p_month(plan, text, L)
        value = C(out)
    elif kind == "period":
        out, _ = _p_period(plan, text, L)
        value = C(out)
    elif kind == "as_of":
        out, _ = _p_as_of(plan, text, L)
        value = C(out)
    elif kind == "indicator":
        out, _ = _p_indicator(plan, text, L)
        value = C(out)
    else:  # pragma: no cover - contract validation rejects unknown types
        raise ValueError(f"unknown column type {kind!r}")
    value = value.cast(POLARS_TYPES[kind], strict=False)
    if kind in ("number", "rate", "bandwidth_mbps"):
        value = pl.when(value.is_finite()).then(value).otherwise(None)
    return value, C(text).is_not_null() & value.is_null()


# --------------------------------------------------------------------------------------------------
# normalise

# A column is parsed once per distinct value when it has fewer distinct values than this share of
# its rows (judged on a sample of SAMPLE_ROWS first, so a column of identifiers costs one small
# hash). Every parse is row-local, so a value parses the same either way; a 是/否 column of a
# million rows costs 0.06 CPU-s instead of 0.28, a Chinese enum 0.06-0.08 instead of 0.13-0.15.
# Plain strings are only trimmed: parsing them where they stand is as cheap (0.06).
REPEATED_SHARE = 0.25
SAMPLE_ROWS = 2_000


def _parsed_by_value(column: pl.Series, col: Column, header_unit: str | None,
                     n: int) -> tuple[pl.Series, pl.Series] | None:
    """``col`` parsed from the source ``column`` once per distinct value, spread back over the rows
    by the value's position among the distinct ones (an ``Enum`` code: a gather, no join); None
    when the column has too many distinct values for that to pay."""
    if col.type == "string" or column.len() < 4 * SAMPLE_ROWS:
        return None
    if column.head(SAMPLE_ROWS).n_unique() > REPEATED_SHARE * SAMPLE_ROWS:
        return None
    distinct = column.drop_nulls().unique()
    if distinct.len() > REPEATED_SHARE * column.len():
        return None
    plan = _Plan()
    value, invalid = plan_column(plan, pl.col(column.name), col, header_unit)
    parsed = (plan.run(distinct.to_frame().lazy())
              .select(value.alias(f"__v{n}"), invalid.alias(f"__i{n}"))
              .collect())
    codes = column.cast(pl.Enum(distinct)).to_physical()
    return parsed[f"__v{n}"].gather(codes), parsed[f"__i{n}"].gather(codes)


def _json_object(columns: list[str]) -> pl.Expr:
    return pl.struct([pl.col(c) for c in columns]).struct.json_encode()


def encode_raw(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``__raw`` as JSON text, whether ``normalise`` left it a struct or not."""
    if isinstance(frame.schema[RAW], pl.Struct):
        return frame.with_columns(pl.col(RAW).struct.json_encode())
    return frame


def _unpivot(frame: pl.DataFrame, match: HeaderMatch, sources: list[str]) -> pl.DataFrame:
    wide = [s for s in sources if s in match.wide_indicators]
    keep = [s for s in sources if s not in match.wide_indicators]
    frame = frame.with_row_index("__src")
    nonempty = [pl.col(w).str.strip_chars().str.len_chars().fill_null(0) > 0 for w in wide]
    parts = []
    for order, w in enumerate(wide):
        parts.append(
            frame.filter(nonempty[order]).select(
                "__src",
                *keep,
                ROW,
                TOTAL,
                pl.lit(match.wide_indicators[w], dtype=pl.String).alias(IND),
                pl.col(w).alias(VAL),
                pl.lit(match.wide_units.get(w), dtype=pl.String).alias(UNIT),
                _json_object([*keep, w]).alias(RAW),
                pl.lit(order, dtype=pl.Int64).alias("__order"),
            )
        )
    none = frame.filter(~pl.any_horizontal(nonempty)).select(
        "__src",
        *keep,
        ROW,
        TOTAL,
        pl.lit(None, dtype=pl.String).alias(IND),
        pl.lit(None, dtype=pl.String).alias(VAL),
        pl.lit(None, dtype=pl.String).alias(UNIT),
        _json_object([*keep, *wide]).alias(RAW),
        pl.lit(-1, dtype=pl.Int64).alias("__order"),
    )
    return (
        pl.concat([*parts, none], how="vertical")
        .sort(["__src", "__order"])
        .drop("__src", "__order")
    )


def normalise(
    frame: pl.DataFrame,
    match: HeaderMatch,
    contract: Contract,
    pii_key: bytes,
    *,
    raw_json: bool = True,
) -> pl.DataFrame:
    """Type one chunk of a ``SourceTable`` per the contract (see the module docstring for the
    columns).

    ``raw_json=False`` leaves ``__raw`` of a long (not unpivoted) table as a struct of the source
    cells, personal data hashed: the loader JSON-encodes it (``encode_raw``) for the few rows it
    quarantines only, since encoding every row cost 0.5 s per million.
    """
    sources = [c for c in frame.columns if c not in (ROW, TOTAL)]
    frame = frame.with_columns(
        [pl.col(c).cast(pl.String) for c in sources]
        + ([] if ROW in frame.columns else [pl.lit(None, dtype=pl.Int64).alias(ROW)])
        + ([] if TOTAL in frame.columns else [pl.lit(False).alias(TOTAL)])
    ).with_columns(pl.col(ROW).cast(pl.Int64), pl.col(TOTAL).cast(pl.Boolean).fill_null(False))

    pii = set(contract.pii_columns)
    to_hash = [s for s, name in match.mapping.items() if name in pii and s in sources]
    to_hash += [s for s in match.hashed_extras if s in sources]
    if to_hash:  # a placeholder ('-', 'N/A', '无') is no one's identity: missing, not hashed
        frame = pseudonymise(frame, to_hash, pii_key, missing=TYPED_PLACEHOLDERS)

    mapping = {s: n for s, n in match.mapping.items() if s in sources}
    header_units = dict(match.header_units)
    extras = [s for s in match.extras if s in sources]
    unit_col = _unit_column(contract)
    if match.wide_indicators:
        frame = _unpivot(frame, match, sources)
        indicator_col = next(c for c in contract.columns if c.type == "indicator")
        value_col = _value_column(contract)
        assert value_col is not None
        mapping[IND] = indicator_col.name
        mapping[VAL] = value_col.name
        if unit_col is not None and unit_col.name not in mapping.values():
            mapping[UNIT] = unit_col.name
        header_units.pop(
            value_col.name, None
        )  # each indicator header brings its own unit (in UNIT)
        raw = pl.col(RAW)
    elif sources:
        cells = pl.struct([pl.col(c) for c in sources])
        raw = cells.struct.json_encode() if raw_json else cells
    else:
        raw = pl.lit("{}")

    source_of = {name: src for src, name in mapping.items()}
    unit_src = source_of.get(unit_col.name) if unit_col is not None else None
    if unit_src is None and match.wide_indicators:
        unit_src = UNIT

    plan = _Plan()
    indicator_name = None
    indicator_col = next((c for c in contract.columns if c.type == "indicator"), None)
    if indicator_col is not None and indicator_col.name in source_of:
        text, level = _p_present(plan, pl.col(source_of[indicator_col.name]), 0, TYPED_PLACEHOLDERS)
        indicator_name, _ = _p_indicator(plan, text, level)

    values: list[pl.Expr] = []
    flags: list[pl.Expr] = []
    by_value: list[pl.Series] = []  # columns parsed once per distinct value (_parsed_by_value)
    for col in contract.columns:
        dtype = pl.String() if col.pii else POLARS_TYPES[col.type]
        src = source_of.get(col.name)
        if src is None:
            values.append(pl.lit(None, dtype=dtype).alias(col.name))
            flags.append(pl.lit(False).alias(f"{col.name}__invalid"))
            continue
        if col.pii:
            values.append(pl.col(src).cast(pl.String).alias(col.name))
            flags.append(pl.lit(False).alias(f"{col.name}__invalid"))
            continue
        row_unit = (
            pl.col(unit_src)
            if (unit_src and col.type in NUMERIC_TYPES and col.name != "unit")
            else None
        )
        indicator = indicator_name if col.type == "number" else None
        header_unit = header_units.get(col.name) or None
        parsed = None
        if row_unit is None and indicator is None and col.type != "indicator":
            parsed = _parsed_by_value(frame[src], col, header_unit, len(by_value))
        if parsed is not None:
            by_value.extend(parsed)
            value, invalid = (pl.col(p.name) for p in parsed)
        else:
            value, invalid = plan_column(plan, pl.col(src), col, header_unit, row_unit, indicator)
        values.append(value.alias(col.name))
        flags.append(invalid.fill_null(False).alias(f"{col.name}__invalid"))

    if extras:
        any_extra = pl.any_horizontal(
            [pl.col(e).is_not_null() & (pl.col(e).str.len_bytes() > 0) for e in extras]
        )
        extras_expr = pl.when(any_extra).then(_json_object(extras)).otherwise(None)
    else:
        extras_expr = pl.lit(None, dtype=pl.String)
    lf = frame.with_columns(by_value).lazy().with_columns(raw.alias(RAW), extras_expr.alias(EXTRAS))
    return (
        plan.run(lf)
        .select(*values, *flags, pl.col(ROW), pl.col(TOTAL), pl.col(RAW), pl.col(EXTRAS))
        .collect()
    )


# --------------------------------------------------------------------------------------------------
# scalar conveniences (tests, docs, the formatter round-trip)


def _scalar(text: str | None, col: Column, header_unit: str | None = None) -> object:
    plan = _Plan()
    value, _ = plan_column(plan, pl.col("v"), col, header_unit)
    lf = pl.DataFrame({"v": [text]}, schema={"v": pl.String}).lazy()
    return plan.run(lf).select(value.alias("v")).collect().item()


def parse_value(
    text: str | None, type_: str, header_unit: str | None = None, **column: object
) -> object:
    """Parse one value as a contract type, e.g. ``parse_value('7085.4万', 'count') == 70854000``."""
    return _scalar(text, Column(name="v", zh="值", type=type_, **column), header_unit)  # type: ignore[arg-type]


def parse_number(text: str, header_unit: str | None = None) -> float | None:
    """``'7085.4万'`` → 70854000.0, ``'4,652.2万条'`` → 46522000.0, ``'３９９１'`` → 3991.0, else
    None.
    """
    return _scalar(text, Column(name="v", zh="值", type="number"), header_unit)  # type: ignore[return-value]


def parse_period(text: str) -> str | None:
    """``'2023年第一季度'`` → ``'2023-Q1'``, ``'2023年3月'`` → ``'2023-03'``, ``'2023年'`` →
    ``'2023'``.
    """
    return _scalar(text, Column(name="v", zh="值", type="period"))  # type: ignore[return-value]


def parse_timestamp(text: str) -> datetime | None:
    return _scalar(text, Column(name="v", zh="值", type="timestamp"))  # type: ignore[return-value]
