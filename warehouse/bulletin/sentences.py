"""The bureau's sentences: which figures go into which sentence, in the bureau's own words.

The wording is data (``SECTIONS``); :func:`sentences` picks, for one bulletin, the alternatives
whose figures exist and returns them as edition-neutral pieces that the HTML and Markdown
renderers only have to escape and mark up. A figure is used once; the rest go to 其他指标.
A figure whose period is not the bulletin month says which period it is for; when every figure
of a sentence shares that period (or their sources), it is said once for the sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from warehouse.bulletin.collect import BulletinData, Figure, in_month
from warehouse.bulletin.volume import SOURCE_ZH
from warehouse.formatting import format_kpi, format_magnitude, format_percent

MISSING_NOTE = "以下指标本期无数据（缺少输入数据的统计期不出数，不记为0）"

# ---------------------------------------------------------------------------------------------
# The bureau's sentences. A sentence is (prefix, clauses, suffix); a clause is a list of
# alternatives, the first whose figures are all present is used, a clause with none is left out,
# and a sentence without any clause is left out. ``{code}`` is the figure as formatted,
# ``{code@prev}`` the previous different value of that KPI, ``{code|text}`` the figure written
# as ``text``. An alternative may carry a condition on the figures.

Alternative = tuple[str, object] | str


def _levels_full(figs: dict) -> bool:
    f = figs.get("extranet_levels_covered")
    return f is not None and f.value == 4


def _bandwidth_raised(figs: dict) -> bool:
    f = figs.get("egress_bandwidth_gbps")
    return f is not None and f.previous is not None and f.previous < f.value


SECTIONS: list[tuple[str, list[tuple[str, list[list[Alternative]], str]]]] = [
    (
        "一、政务服务“一网通办”",
        [
            (
                "截至{period}，",
                [
                    ["一体化政务服务平台累计办件量{case_volume_cumulative}"],
                    ["归集有效“好差评”数据{review_valid_cumulative}"],
                ],
                "。",
            ),
            (
                "全市依申请政务服务事项",
                [
                    ["可网办率达{item_online_rate}"],
                    ["全程网办事项占比达{item_full_online_share}"],
                    ["即办事项占比达{item_instant_share}"],
                    ["网上实办率达{case_online_rate}"],
                ],
                "。",
            ),
            (
                "",
                [
                    ["一体化政务服务平台汇聚市、区两级{departments_onboarded}部门网上办事能力"],
                    [
                        "全市已有{street_portals}街道（乡镇）、{community_portals}社区（村）建设线上服务主页",
                        "全市已有{street_portals}街道（乡镇）建设线上服务主页",
                        "全市已有{community_portals}社区（村）建设线上服务主页",
                    ],
                ],
                "。",
            ),
        ],
    ),
    (
        "二、数字底座",
        [
            (
                "",
                [
                    ["全市政务外网接入点位已达{extranet_nodes}"],
                    [
                        ("实现{extranet_levels_covered|四级}全覆盖", _levels_full),
                        "覆盖{extranet_levels_covered}",
                    ],
                    [
                        (
                            "互联网出口带宽由{egress_bandwidth_gbps@prev}提升至{egress_bandwidth_gbps}",
                            _bandwidth_raised,
                        ),
                        "互联网出口带宽达{egress_bandwidth_gbps}",
                    ],
                    ["IPv4/IPv6双栈运行的接入点占比达{ipv6_dual_stack_share}"],
                ],
                "。",
            ),
            (
                "",
                [
                    ["政务云现已承载业务系统{cloud_systems_hosted}"],
                    ["非涉密业务系统上云率达{cloud_rate_nonclassified}"],
                    ["累计关停部门自有机房{machine_rooms_closed}"],
                ],
                "。",
            ),
        ],
    ),
    (
        "三、政务数据资源",
        [
            (
                "",
                [
                    ["建成{base_libraries}基础库"],
                    ["形成{theme_libraries}主题库"],
                    [
                        "通过政务数据共享交换平台发布可共享的政务数据资源目录{shared_catalog_entries}"
                    ],
                    ["累计归集数据信息{records_aggregated}"],
                ],
                "。",
            ),
        ],
    ),
    (
        "四、数字社会",
        [
            (
                "",
                [
                    ["完成{internet_hospitals}互联网医院建设"],
                    [
                        "在{grassroots_medical_on_system}基层医疗卫生机构部署上线疫情防控信息化管理系统"
                    ],
                ],
                "。",
            ),
            (
                "",
                [
                    ["“便捷停车”应用场景已接入{parking_lots_connected}备案公共经营性停车场"],
                    ["{mobile_services}高频便民服务事项实现“掌上办”"],
                    ["{one_thing_items}“一件事”上线运行"],
                ],
                "。",
            ),
        ],
    ),
    (
        "五、企业上云",
        [
            (
                "",
                [
                    ["全市累计政策支持上云企业{enterprises_to_cloud}"],
                    ["市区两级累计拨付上云补贴资金{cloud_subsidy_yuan}"],
                ],
                "。",
            ),
        ],
    ),
    (
        "六、服务质量（内部监测指标）",
        [
            (
                "",
                [
                    ["政务服务好评率为{satisfaction_rate}"],
                    ["差评整改率为{bad_review_rectification_rate}"],
                    ["其中系统默认好评占有效评价的{auto_review_share}"],
                ],
                "。",
            ),
            (
                "",
                [
                    ["办件按时办结率为{on_time_completion_rate}"],
                    ["办理时长中位数为{median_handling_days}"],
                ],
                "。",
            ),
        ],
    ),
]

_PLACEHOLDER = re.compile(r"\{([a-z0-9_]+)(?:@(prev)|\|([^}]*))?\}")


@dataclass
class FigurePiece:
    figure: Figure
    text: str  # the figure as written in the sentence
    previous: bool = False  # the earlier value of 由…提升至… (no note, no source mark)
    note: bool = True  # say the figure's period after it (not the bulletin month)
    own_refs: bool = True  # source marks after the figure (else once at the sentence's end)

    @property
    def when(self) -> str | None:
        return None if self.previous or not self.note else self.figure.period_label


@dataclass
class Sentence:
    pieces: list  # str | FigurePiece
    end: str  # the closing punctuation
    label: str | None = None  # 截至{label}，said once for the whole sentence
    shared: list[Figure] | None = None  # figures whose source marks go once at the end


def _pieces(template: str, figs: dict[str, Figure], period: str) -> list | None:
    out: list = []
    pos = 0
    template = template.replace("{period}", period)
    for m in _PLACEHOLDER.finditer(template):
        code, prev, override = m[1], m[2], m[3]
        fig = figs.get(code)
        if fig is None or (prev and fig.previous is None):
            return None
        out.append(template[pos : m.start()])
        if prev:
            out.append(FigurePiece(fig, format_kpi(fig.previous, fig.unit), previous=True))
        else:
            out.append(FigurePiece(fig, override if override is not None else fig.text))
        pos = m.end()
    out.append(template[pos:])
    return [p for p in out if p != ""]


def _finish(pieces: list, end: str, data: BulletinData) -> Sentence:
    """Say a period or the source marks once for the sentence when all its figures share them."""
    figs = [p for p in pieces if isinstance(p, FigurePiece) and not p.previous]
    sentence = Sentence(pieces, end)
    if len(figs) < 2:
        for p in figs:
            p.note = not in_month(p.figure.grain, p.figure.period_start, data.period)
        return sentence
    labels = {
        None if in_month(p.figure.grain, p.figure.period_start, data.period) else p.figure.period_label
        for p in figs
    }
    label = labels.pop() if len(labels) == 1 else None
    if label and isinstance(pieces[0], str) and pieces[0].startswith("截至"):
        label = None  # the sentence already says its period
    shared = len({tuple(p.figure.sources) for p in figs}) == 1
    for p in figs:
        p.note = label is None and not in_month(p.figure.grain, p.figure.period_start, data.period)
        p.own_refs = not shared
    sentence.label = label
    sentence.shared = [p.figure for p in figs] if shared else None
    return sentence


def sentences(data: BulletinData) -> list[tuple[str, list[Sentence]]]:
    """[(section title, [sentence, ...])] in the bureau's wording; figures used once each."""
    figs = data.figures
    used: set[str] = set()
    result = []
    for title, paragraph in SECTIONS:
        stated = []
        for prefix, clauses, suffix in paragraph:
            parts = []
            for alternatives in clauses:
                for alt in alternatives:
                    text, cond = (alt, None) if isinstance(alt, str) else alt
                    if cond is not None and not cond(figs):
                        continue
                    pieces = _pieces(text, figs, data.period_label)
                    if pieces is not None:
                        parts.append(pieces)
                        used.update(p.figure.code for p in pieces if isinstance(p, FigurePiece))
                        break
            if parts:
                sentence = _pieces(prefix, figs, data.period_label) or []
                for i, part in enumerate(parts):
                    sentence += (["，"] if i else []) + part
                stated.append(_finish(sentence, suffix, data))
        if stated:
            result.append((title, stated))
    others = [figs[c] for c in data.order if c in figs and c not in used]
    if others:
        sentence: list = ["此外，"]
        for i, f in enumerate(others):
            sentence += (["，"] if i else []) + [f"{f.name_zh}为", FigurePiece(f, f.text)]
        result.append(("七、其他指标", [_finish(sentence, "。", data)]))
    return result


def _change_text(percent: float | None, note: str, kind: str) -> str:
    if percent is None:
        return f"{kind}：{note}"
    if format_percent(abs(percent)) == "0%":
        return f"{kind}持平"
    return f"{kind}{'增长' if percent > 0 else '下降'}{format_percent(abs(percent))}"


def change_sentences(data: BulletinData) -> list[str]:
    """``2023年3月办件量3720件（办件明细），环比增长3.2%，同比：上年同月为月报数据，口径不同，不作比较。``"""
    out = []
    for c in data.changes:
        out.append(
            f"{data.period_label}全市{c.measure}{format_magnitude(c.value, c.unit)}"
            f"（{SOURCE_ZH[c.source]}口径），{_change_text(c.mom, c.mom_note, '环比')}，"
            f"{_change_text(c.yoy, c.yoy_note, '同比')}。"
        )
    return out
