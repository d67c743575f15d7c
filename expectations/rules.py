"""Row-level quarantine rules, derived from a contract.

Every rule is a SQL predicate that is TRUE when a staged row *breaks* it, plus a message a
department clerk can act on. The loader evaluates them all over the whole staged batch in
one DuckDB query, so every bad row is caught (not a sample). Column identifiers come from
the contract, never from a department file.
"""

from __future__ import annotations

from dataclasses import dataclass

from expectations.contract import Column, Contract
from expectations.sql import literal, quote

TYPE_ZH = {
    "string": "文本", "enum": "文本", "integer": "整数", "count": "数量（如 7085.4万）",
    "number": "数字", "rate": "百分比（如 99.4%）", "bandwidth_mbps": "带宽（如 20G、100Mbps）",
    "boolean": "是/否", "date": "日期（如 2023-03-05）", "timestamp": "日期时间（如 2023-03-05 09:30）",
    "month": "月份（如 2023-03）", "period": "统计期（如 2023年、2023Q1、2023-03）",
    "as_of": "统计日期（如 2023-03-31、2023年3月底）",
    "rating": "评价等级（1-5 或 非常满意…非常不满意）", "indicator": "指标目录中的指标名称",
}


@dataclass(frozen=True)
class RowRule:
    name: str  # generic kind (required, not_in_set, ...) or the contract rule's own name
    column: str | None
    broken_sql: str  # TRUE when the row breaks the rule
    message: str


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def column_rules(column: Column) -> list[RowRule]:
    c, zh = quote(column.name), f"“{column.zh}”"
    rules = [RowRule("unreadable_value", column.name, quote(column.name + "__invalid"),
                     f"{zh}的值无法识别，应填写{TYPE_ZH[column.type]}")]
    if column.required:
        rules.append(RowRule("required", column.name, f"{c} IS NULL AND NOT {quote(column.name + '__invalid')}",
                             f"{zh}为必填项，不能为空"))
    if column.values:
        allowed = ", ".join(literal(v) for v in column.values)
        rules.append(RowRule("not_in_set", column.name, f"{c} IS NOT NULL AND {c} NOT IN ({allowed})",
                             f"{zh}只能填写：{'、'.join(column.values)}"))
    if column.min is not None:
        rules.append(RowRule("out_of_range", column.name, f"{c} < {column.min}",
                             f"{zh}不能小于{_fmt(column.min)}"))
    if column.max is not None:
        rules.append(RowRule("out_of_range", column.name, f"{c} > {column.max}",
                             f"{zh}不能大于{_fmt(column.max)}"))
    if column.pattern:
        rules.append(RowRule("pattern", column.name,
                             f"{c} IS NOT NULL AND NOT regexp_full_match({c}, {literal(column.pattern)})",
                             f"{zh}格式不正确" + (f"（{column.hint}）" if column.hint else "")))
    return rules


def reference_rule(column: Column, referenced_title: str) -> RowRule:
    """A value that is absent from the referenced dataset's current rows (quarantine kind)."""
    ref_ds, ref_col = column.reference
    c = quote(column.name)
    return RowRule(
        "unknown_reference", column.name,
        f"{c} IS NOT NULL AND {c} NOT IN "
        f"(SELECT {quote(ref_col)} FROM latest.{quote(ref_ds)} WHERE {quote(ref_col)} IS NOT NULL)",
        f"“{column.zh}”在{referenced_title}中不存在，请核对编码，或先报送{referenced_title}",
    )


def row_rules(contract: Contract) -> list[RowRule]:
    """Rules that need nothing but the row itself, in the order they are reported."""
    rules = [r for col in contract.columns for r in column_rules(col)]
    rules += [RowRule(r.name, None, f"NOT coalesce(({r.sql}), true)", r.message) for r in contract.rules]
    return rules
