"""Dataset contracts: one YAML declaration per dataset drives loader, rules, suite, table and docs.

A contract lives in ``expectations/contracts/<dataset>.yaml``. Adding a dataset is adding a
file there (see ``docs/adding-a-dataset.md``); nothing else has to be edited.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

CONTRACTS_DIR = Path(__file__).parent / "contracts"

# Logical types a contract column may declare, and the DuckDB type each is stored as.
DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "enum": "VARCHAR",
    "integer": "BIGINT",
    "count": "BIGINT",  # a non-negative quantity that may be written as 7085.4万
    "number": "DOUBLE",
    "rate": "DOUBLE",  # a share in [0, 1]; '99.4%' is read as 0.994
    "bandwidth_mbps": "DOUBLE",  # '20G' is read as 20000
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "month": "DATE",  # first day of the month
    "period": "VARCHAR",  # '2022', '2022-Q1', '2022-04' or '2022-04-28', see normalise.parse_period
    # The date a register snapshot describes; a month, quarter or year means its last day
    # ('截至2023年3月底' -> 2023-03-31). Filled from the file's title or sheet when no column has it.
    "as_of": "DATE",
    "rating": "TINYINT",  # 1..5, written as a digit or as 非常满意 .. 非常不满意
    "indicator": "VARCHAR",  # a KPI code; written as the code or as one of its Chinese names
}

Kind = Literal["records", "register", "aggregate"]
Severity = Literal["error", "warn"]


def header_key(text: str) -> str:
    """The form headers are matched in: NFKC, no whitespace, brackets and unit suffix folded.

    ``'数值（万件）'``, ``' 数值(万件) '`` and ``'数值 (万件)'`` all give ``'数值(万件)'``.
    """
    text = unicodedata.normalize("NFKC", str(text))
    text = "".join(text.split())
    return text.replace("【", "(").replace("】", ")").replace("[", "(").replace("]", ")").lower()


@dataclass(frozen=True)
class Column:
    name: str
    zh: str
    type: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    values: tuple[str, ...] = ()  # enumerations
    min: float | None = None
    max: float | None = None
    unit: str | None = None
    pattern: str | None = None
    hint: str | None = None  # how a correct value looks, shown to the clerk when a value is rejected
    pii: bool = False
    references: str | None = None  # "<dataset>.<column>"
    on_missing_reference: Literal["quarantine", "flag"] = "quarantine"

    @property
    def duckdb_type(self) -> str:
        # Personal data is stored as its keyed hash, whatever its declared type.
        return "VARCHAR" if self.pii else DUCKDB_TYPES[self.type]

    @property
    def header_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(header_key(h) for h in (self.name, self.zh, *self.aliases)))

    @property
    def reference(self) -> tuple[str, str] | None:
        if not self.references:
            return None
        dataset, column = self.references.split(".", 1)
        return dataset, column

    @property
    def flag_column(self) -> str | None:
        """Name of the boolean column that marks rows whose reference is not loaded yet."""
        if self.references and self.on_missing_reference == "flag":
            return f"{self.name}_unmatched"
        return None


@dataclass(frozen=True)
class Rule:
    """A row rule as a SQL predicate over the typed columns; a row where it is false is quarantined."""

    name: str
    sql: str
    message: str


@dataclass(frozen=True)
class Contract:
    name: str
    title_zh: str
    description: str
    kind: Kind
    keys: tuple[str, ...]
    columns: tuple[Column, ...]
    rules: tuple[Rule, ...] = ()
    period: str | None = None  # the column that places a row in time
    freshness_days: int | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def pii_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.pii]

    @property
    def flag_columns(self) -> list[str]:
        return [c.flag_column for c in self.columns if c.flag_column]

    @property
    def as_of_column(self) -> str | None:
        """The column holding the date a register delivery describes (type ``as_of``), if any."""
        return next((c.name for c in self.columns if c.type == "as_of"), None)

    @property
    def dated_column(self) -> str | None:
        """The column the loader fills from the date a file states (title row, sheet name) when
        the file has no such column or leaves a cell empty: a register's ``as_of``, or an
        aggregate's ``period`` column of type ``period`` (an indicator sheet's 统计期)."""
        if self.as_of_column:
            return self.as_of_column
        if self.period and self.column(self.period).type == "period":
            return self.period
        return None

    @property
    def upstream(self) -> list[str]:
        """Datasets this one references (they must load first)."""
        deps = [c.reference[0] for c in self.columns if c.reference]
        return sorted({d for d in deps if d != self.name})


def _column(raw: dict) -> Column:
    raw = dict(raw)
    for key in ("aliases", "values"):
        raw[key] = tuple(str(v) for v in raw.get(key, ()))
    return Column(**raw)


def load_contract(path: Path) -> Contract:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    contract = Contract(
        name=raw["name"],
        title_zh=raw["title_zh"],
        description=raw.get("description", ""),
        kind=raw["kind"],
        keys=tuple(raw["keys"]),
        columns=tuple(_column(c) for c in raw["columns"]),
        rules=tuple(Rule(**r) for r in raw.get("rules", ())),
        period=raw.get("period"),
        freshness_days=raw.get("freshness_days"),
        path=path,
    )
    _validate(contract)
    return contract


def _validate(contract: Contract) -> None:
    names = contract.column_names
    problems = [f"unknown type {c.type!r} on {c.name}" for c in contract.columns if c.type not in DUCKDB_TYPES]
    problems += [f"key {k!r} is not a column" for k in contract.keys if k not in names]
    if contract.period and contract.period not in names:
        problems.append(f"period column {contract.period!r} is not a column")
    problems += [f"enum column {c.name} has no values" for c in contract.columns if c.type == "enum" and not c.values]
    seen: dict[str, str] = {}
    for c in contract.columns:
        for key in c.header_keys:
            if key in seen and seen[key] != c.name:
                problems.append(f"header {key!r} is claimed by both {seen[key]} and {c.name}")
            seen[key] = c.name
    if problems:
        raise ValueError(f"contract {contract.name}: " + "; ".join(problems))


@cache
def all_contracts() -> dict[str, Contract]:
    """Every declared contract, in load order (a dataset after the ones it references)."""
    found = {c.name: c for c in (load_contract(p) for p in sorted(CONTRACTS_DIR.glob("*.yaml")))}
    ordered: dict[str, Contract] = {}

    def visit(name: str, trail: tuple[str, ...] = ()) -> None:
        if name in ordered:
            return
        if name in trail:
            raise ValueError(f"contracts reference each other in a cycle: {' -> '.join(trail + (name,))}")
        for dep in found[name].upstream:
            if dep not in found:
                raise ValueError(f"contract {name} references unknown dataset {dep}")
            visit(dep, trail + (name,))
        ordered[name] = found[name]

    for name in sorted(found):
        visit(name)
    return ordered


def get_contract(name: str) -> Contract:
    return all_contracts()[name]
