"""Checks before any work: a misconfigured refresh stops with one line, not an empty success.

Issue 8: a missing landing folder gave exit 0 and published an empty warehouse; an unwritable
warehouse folder printed only a Dagster step error; an unset key silently used the
development key. Each check raises ``PreflightError`` with one line an operator can act on.
The CLI runs them all before it starts a run; inside a run, the ``Warehouse`` and
``PersonalDataKey`` resources and the core assets call the ones they need.

``GOVMETRICS_ENV=production`` (set by ``deploy/govmetrics.env``) makes the development key an
error instead of a warning.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

DEV_KEY = "DEVELOPMENT-ONLY-KEY-not-for-production"
DEV_KEY_WARNING = ("警告：正在使用开发用个人信息密钥（GOVMETRICS_PII_KEY 未设置），哈希值任何人都能复现；"
                   "生产环境请设置自己的密钥")


class PreflightError(Exception):
    """Configuration that makes a refresh pointless or harmful; the message is one line."""


def is_production(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get("GOVMETRICS_ENV", "").strip().lower() == "production"


def check_landing(root: Path) -> None:
    if not root.exists():
        raise PreflightError(f"落地目录不存在：{root}（GOVMETRICS_LANDING），未做任何处理")
    if not root.is_dir():
        raise PreflightError(f"落地目录不是文件夹：{root}（GOVMETRICS_LANDING），未做任何处理")
    if not os.access(root, os.R_OK | os.X_OK):
        raise PreflightError(f"落地目录无法读取（权限不足）：{root}（GOVMETRICS_LANDING），未做任何处理")


def check_warehouse(published: Path) -> None:
    """The warehouse folder exists (or can be made) and a file can really be created in it."""
    folder = published.parent
    if folder.exists() and not folder.is_dir():
        raise PreflightError(f"仓库目录不是文件夹：{folder}（GOVMETRICS_WAREHOUSE），未做任何处理")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".govmetrics-probe-"):
            pass
    except OSError as exc:
        raise PreflightError(f"仓库目录不可写（{exc.strerror or type(exc).__name__}）：{folder}"
                             f"（GOVMETRICS_WAREHOUSE），未做任何处理") from None
    for path in (published, published.with_name(published.stem + ".writer" + (published.suffix or ".duckdb"))):
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise PreflightError(f"仓库文件不可写（权限不足）：{path}（GOVMETRICS_WAREHOUSE），未做任何处理")


def check_key(key: str | None, production: bool) -> list[str]:
    """Errors for a missing key (or the development key in production); the warnings to print."""
    if key is None:
        raise PreflightError("未设置 GOVMETRICS_PII_KEY（个人信息密钥），无法对身份证号和电话号码脱敏，未做任何处理")
    if not key.strip():
        raise PreflightError("个人信息密钥为空（GOVMETRICS_PII_KEY），无法对身份证号和电话号码脱敏，未做任何处理")
    if key == DEV_KEY:
        if production:
            raise PreflightError("生产环境（GOVMETRICS_ENV=production）不能使用开发用个人信息密钥，"
                                 "请设置 GOVMETRICS_PII_KEY，未做任何处理")
        return [DEV_KEY_WARNING]
    return []


def check_all(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every check the CLI runs before a refresh; returns the warnings to print."""
    environ = os.environ if environ is None else environ
    for var in ("GOVMETRICS_LANDING", "GOVMETRICS_WAREHOUSE", "GOVMETRICS_EXPORTS"):
        if not environ.get(var, "").strip():
            raise PreflightError(f"未设置 {var}，未做任何处理")
    warnings = check_key(environ.get("GOVMETRICS_PII_KEY"), is_production(environ))
    check_landing(Path(environ["GOVMETRICS_LANDING"]).resolve())
    check_warehouse(Path(environ["GOVMETRICS_WAREHOUSE"]).resolve())  # the only check that creates a folder
    return warnings
