"""Small landing folders shaped like what departments really send, built fresh under tmp_path.

Each builder writes files the way a department's Excel or export tool would (GBK CSV with
shuffled Chinese headers, JSON from the platform, Parquet, duplicates, broken files) and
returns the facts the tests assert against.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

# Personal data planted in the fixtures: no output may contain any of these in clear.
ID_NUMBERS = ["210102199001011234", "21010319851231567X", "210104200002029876", "210105197707070011"]
PHONES = ["13800000001", "13900000002", "13700000003", "13600000004"]


def write_csv(path: Path, header: list[str], rows: list[list[object]], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def registers(landing: Path) -> None:
    """org_units and service_items that the case files reference."""
    write_csv(landing / "org_units" / "部门与区划.csv",
              ["编码", "名称", "类型", "上级编码", "是否接入平台", "是否开通服务主页"],
              [["D001", "市营商局", "市级部门", "", "是", "否"],
               ["D002", "市公安局", "市级部门", "", "Y", "N"],
               ["D003", "和平区政数局", "区县级部门", "210102", "1", "0"],
               ["210102", "和平区", "区县", "", "否", "否"],
               ["210102001", "太原街街道", "街道乡镇", "210102", "否", "是"],
               ["210102001001", "太原街社区", "社区村", "210102001", "否", "是"]],
              encoding="gbk")
    write_csv(landing / "service_items" / "事项清单.csv",
              ["事项编码", "事项名称", "实施部门编码", "办理类型", "是否可网办", "是否全程网办",
               "到现场次数", "承诺办结时限（工作日）", "版本号", "事项状态"],
              [["I001", "营业执照核发", "D001", "即办件", "是", "是", "0", "1", "1", "在用"],
               ["I002", "户口迁移", "D002", "承诺件", "是", "否", "1", "5", "1", "在用"],
               ["I003", "居住证办理", "D003", "承诺件", "是", "是", "0", "3", "1", "在用"]])


CASE_HEADER = ["联系电话", "办件编号", "事项编码", "申请时间", "申办渠道", "实施部门编码", "行政区划代码",
               "受理时间", "办结时间", "办理状态", "是否全程网办", "申请人证件号码", "备注"]


def cases_gbk(landing: Path) -> dict:
    """A GBK CSV of cases, headers shuffled, with one bad row of each common kind."""
    rows = [
        # phone, case_no, item, applied, channel, dept, region, accepted, finished, status, full_online, id, note
        [PHONES[0], "C0001", "I001", "2023/3/5 9:30", "网上办理", "D001", "210102001", "2023-03-05 10:00", "2023年3月5日 11:00:00", "已办结", "是", ID_NUMBERS[0], "加急"],
        [PHONES[1], "C0002", "I002", "2023-03-06 08:00", "窗口办理", "D002", "210102", "2023-03-06 08:30", "", "在办", "否", ID_NUMBERS[1], ""],
        [PHONES[2], "C0003", "I003", "2023-03-07 09:00", "移动端", "D003", "210102001001", "2023-03-07 09:10", "2023-03-08 09:00", "已办结", "1", ID_NUMBERS[2], ""],
        # row 5: finished before accepted
        [PHONES[3], "C0004", "I001", "2023-03-08 09:00", "网上办理", "D001", "210102", "2023-03-08 10:00", "2023-03-08 09:30", "已办结", "是", ID_NUMBERS[3], ""],
        # row 6: unknown item code
        [PHONES[0], "C0005", "I999", "2023-03-08 09:00", "网上办理", "D001", "210102", "", "", "在办", "是", ID_NUMBERS[0], ""],
        # row 7: channel not in the list
        [PHONES[0], "C0006", "I001", "2023-03-09 09:00", "电话", "D001", "210102", "", "", "在办", "否", ID_NUMBERS[0], ""],
        # row 8: duplicate of C0001 (first occurrence kept)
        [PHONES[0], "C0001", "I001", "2023-03-05 09:30", "网上办理", "D001", "210102", "", "", "在办", "是", ID_NUMBERS[0], ""],
        # row 9: unreadable application time
        [PHONES[1], "C0007", "I002", "2023年13月45日", "窗口办理", "D002", "210102", "", "", "在办", "否", ID_NUMBERS[1], ""],
    ]
    path = write_csv(landing / "service_cases" / "办件明细_202303.csv", CASE_HEADER, rows, encoding="gbk")
    return {"path": path, "read": 8, "loaded": 3, "quarantined": 5,
            "rules": {5: "finished_after_accepted", 6: "unknown_reference", 7: "not_in_set",
                      8: "duplicate_key", 9: "unreadable_value"}}


def cases_json(landing: Path) -> dict:
    records = [
        {"办件编号": "C1001", "事项编码": "I002", "实施部门编码": "D002", "行政区划代码": "210102",
         "申办渠道": "自助终端", "申请时间": "2023-02-01 10:00:00", "受理时间": "2023-02-01 10:05:00",
         "办结时间": "2023-02-03 10:00:00", "办理状态": "已办结", "是否全程网办": "false",
         "申请人证件号码": ID_NUMBERS[1], "联系电话": PHONES[1]},
        {"办件编号": "C1002", "事项编码": "I001", "实施部门编码": "D001", "行政区划代码": "210102",
         "申办渠道": "网上办理", "申请时间": "2023-02-02 10:00:00", "受理时间": None, "办结时间": None,
         "办理状态": "在办", "是否全程网办": "true", "申请人证件号码": ID_NUMBERS[2], "联系电话": PHONES[2]},
    ]
    path = landing / "service_cases" / "platform_export.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return {"path": path, "read": 2, "loaded": 2, "quarantined": 0}


def cases_parquet(landing: Path) -> dict:
    frame = pl.DataFrame({
        "case_no": ["C2001", "C2002"], "item_code": ["I003", "I003"], "dept_code": ["D003", "D003"],
        "region_code": ["210102001", "210102001"], "channel": ["移动端", "移动端"],
        "applied_at": ["2023-01-10 09:00:00", "2023-01-11 09:00:00"], "accepted_at": [None, None],
        "finished_at": [None, None], "status": ["在办", "在办"], "full_online": ["Y", "N"],
        "applicant_id_no": [ID_NUMBERS[3], ID_NUMBERS[0]], "applicant_phone": [PHONES[3], PHONES[0]],
    })
    path = landing / "service_cases" / "cases_2023_01.parquet"
    frame.write_parquet(path)
    return {"path": path, "read": 2, "loaded": 2, "quarantined": 0}


def sql_header_file(landing: Path) -> dict:
    """A header that looks like SQL must end up as data (extras), never as SQL."""
    header = ["办件编号", "事项编码", "实施部门编码", "行政区划代码", "申办渠道", "申请时间", "办理状态",
              '"x"; DROP TABLE core.service_cases; --']
    path = write_csv(landing / "service_cases" / "odd_header.csv", header,
                     [["C3001", "I001", "D001", "210102", "窗口办理", "2023-03-10 09:00", "在办", "evil"]])
    return {"path": path, "read": 1, "loaded": 1, "quarantined": 0}


def broken_files(landing: Path) -> dict:
    folder = landing / "service_cases"
    folder.mkdir(parents=True, exist_ok=True)
    garbage = folder / "损坏文件.xlsx"
    garbage.write_bytes(b"PK\x03\x04 this is not really a workbook \x00\xff\xfe" * 10)
    empty = folder / "empty.csv"
    empty.write_bytes(b"")
    return {"garbage": garbage, "empty": empty}
