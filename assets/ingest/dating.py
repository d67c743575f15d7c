"""The date a register or indicator delivery describes, read from the file itself.

A register is a full snapshot "as of" a date, and that date is what its figures are true for:
a late file for February corrects February, whenever it arrives. An indicator sheet reports
for a 统计期. Departments state the date in one of three places, tried in this order:

1. a 统计日期 / 截至日期 column (the contract's ``as_of`` column, or an indicator sheet's 统计期
   column; matched like any other);
2. a title or note row above the header: ``部门与区划名录（截至2023年3月31日）``,
   ``截至2023年3月底``, ``统计期：2023年3月`` (a month, quarter or year means its last day);
3. the sheet's name, when it names a period (``2023年3月``).

A sheet that states no date takes the date its workbook's other sheets agree on (a title on
the first sheet often dates the whole workbook). Only when the file states none at all is the
delivery date (the file's modification time) used, and the batch says so, so that a clerk can
add the date and re-deliver.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from assets.ingest.normalise import parse_value
from assets.ingest.readers import SourceTable

# A date phrase: 2023年3月31日 / 2023年3月底 / 2023年第一季度 / 2023-03-31 / 2023.3 / 2023年.
_DATE = (
    r"(?<!\d)\d{4}\s*(?:"
    r"年\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?(?:底|末)?"
    r"|年\s*第?[一二三四1-4]\s*季度"
    r"|[-/.]\d{1,2}(?:[-/.]\d{1,2})?(?!\d)"
    r"|年(?:底|末|度)?"
    r")"
)
# A phrase that says which date the table is as of, preferred over a date merely mentioned.
_STATED = re.compile(
    r"(?:截至|截止到|截止|统计日期|统计期|截至日期|报告期|数据日期)\s*[:：为]?\s*(?P<d>" + _DATE + ")"
)
_ANY = re.compile(_DATE)
# When the sheet was made or sent, not what it describes: never its date.
_PAPERWORK = re.compile(
    r"(?:制表|填报|报送|填表|打印|导出|生成|上报)(?:日期|时间)\s*[:：]?\s*" + _DATE
)


def stated_period(texts: Iterable[str]) -> str | None:
    """The period the texts (title rows, then a sheet name) say a table is for, as
    ``normalise.parse_period`` writes it (``'2023-03-31'``, ``'2023-03'``, ``'2023-Q1'``, ``'2023'``).

    A phrase introduced by 截至/统计期/统计日期… wins; otherwise a text naming exactly one date
    (a title such as ``政务云业务系统清单（2022年4月）``). A range (``2021-2023年``) names none,
    and a 制表日期/填报日期 (when the sheet was made, not what it describes) is never taken.
    """
    texts = [t for t in texts if t]
    for text in texts:
        for m in _STATED.finditer(text):
            if (p := parse_value(m.group("d"), "period")) is not None:
                return p
    for text in (_PAPERWORK.sub(" ", t) for t in texts):
        found = {p for m in _ANY.finditer(text) if (p := parse_value(m.group(0), "period"))}
        if len(found) == 1 and not re.search(r"\d{4}\s*[-—~至到]\s*\d{4}", text):
            return found.pop()
    return None


def stated_date(texts: Iterable[str]) -> date | None:
    """The last day of the stated period: the date a register described so is as of."""
    period = stated_period(texts)
    return None if period is None else parse_value(period, "as_of")


@dataclass(frozen=True)
class Dating:
    """The period a table's rows are for when they do not carry one, and where it came from."""

    period: str  # as parse_period writes it: '2023-03-31', '2023-03', '2023-Q1', '2023'
    source: str  # 'title' (title row or sheet name), 'workbook' (another sheet), 'delivery'

    @property
    def as_of(self) -> date:
        return parse_value(self.period, "as_of")

    def value(self, column_type: str) -> date | str:
        """What fills an empty dated column: a date (``as_of``) or the period text (``period``)."""
        return self.as_of if column_type == "as_of" else self.period

    def note(self, where: str, rows: int) -> str | None:
        """The warning for the batch row when the delivery date had to stand in."""
        if self.source != "delivery" or rows == 0:
            return None
        return (
            f"{where}未注明统计日期（截至日期），{rows}行按送达日期"
            f"{self.as_of.year}年{self.as_of.month}月{self.as_of.day}日计入；"
            f"请在标题行注明“截至YYYY年M月D日”或增加“统计日期”列后重新报送"
        )


def date_tables(tables: list[SourceTable], path: Path) -> list[Dating]:
    """One ``Dating`` per table of a file (see the module docstring for the order)."""
    own = [stated_period([*t.preamble, t.sheet or ""]) for t in tables]
    agreed = {d for d in own if d is not None}
    delivered = datetime.fromtimestamp(path.stat().st_mtime).date().isoformat()
    out = []
    for d in own:
        if d is not None:
            out.append(Dating(d, "title"))
        elif len(agreed) == 1:
            out.append(Dating(next(iter(agreed)), "workbook"))
        else:
            out.append(Dating(delivered, "delivery"))
    return out
