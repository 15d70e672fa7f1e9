"""``minpcode doctor``: run every part's preflight check and give one list of rows.

    rows = await diagnose(preflights)           # bot.ports.Preflight each; the process composes them
    code = exit_status(rows)                    # 0 when every configured part passes, 1 otherwise
    data = rows_json(rows)                      # for --json

Each check runs with its own time limit and at the same time as the others; a check that crashes or
hangs becomes a failed row of its own, never the whole report. Every text that leaves here goes
through :func:`bot.redact.redact` (the configured secrets were given to it by the caller), so an
upstream that echoes a credential cannot put it on the screen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from bot.ports import Check, Preflight
from bot.redact import redact
from bot.text import Text

log = logging.getLogger("minpcode.doctor")

CHECK_TIMEOUT = 20.0


def unparsed(exc: ValidationError) -> list[Check]:
    """The rows for settings that do not even parse (a number that is not one, an unknown choice)."""
    rows = []
    for error in exc.errors():
        name = str(error["loc"][0]).upper() if error.get("loc") else "settings"
        rows.append(Check(part="settings", name="parse", status="failed", setting=name,
                          detail=Text(zh=f"{name} 的值不能用：{error['msg']}", en=f"{name} cannot be used: {error['msg']}"),
                          fix=Text(zh=f"改正 {name}。", en=f"Correct {name}.")))
    return rows


async def _run(check: Preflight, timeout: float) -> list[Check]:
    try:
        return await asyncio.wait_for(check.checks(), timeout)
    except TimeoutError:
        return [Check(part=check.name, name="answer", status="failed",
                      detail=Text(zh=f"{timeout:.0f} 秒内没有回答。", en=f"No answer within {timeout:.0f} s."),
                      fix=Text(zh="检查网络与这一部分的地址设置。", en="Check the network and this part's URL setting."))]
    except Exception as exc:  # one broken check must not hide the others' rows
        log.exception("doctor: the %s check failed", check.name)
        return [Check(part=check.name, name="check", status="failed",
                      detail=Text(zh=f"检查出错：{type(exc).__name__}", en=f"The check itself failed: {type(exc).__name__}"))]


async def diagnose(checks: Sequence[Preflight], *, timeout: float = CHECK_TIMEOUT) -> list[Check]:
    """Every check's rows, in the order of ``checks``, redacted."""
    results = await asyncio.gather(*(_run(check, timeout) for check in checks))
    return [_redacted(row) for rows in results for row in rows]


def _redacted(row: Check) -> Check:
    def clean(text: Text | None) -> Text | None:
        return None if text is None else Text(zh=redact(text.zh), en=redact(text.en))

    return row.model_copy(update={"detail": clean(row.detail), "fix": clean(row.fix)})


def exit_status(rows: Iterable[Check]) -> int:
    """0 when no row failed (skipped parts are not failures), 1 otherwise."""
    return 1 if any(row.status == "failed" for row in rows) else 0


def rows_json(rows: Iterable[Check]) -> dict[str, Any]:
    listed = [row.model_dump() for row in rows]
    return {"ok": not any(r["status"] == "failed" for r in listed), "checks": listed}


__all__ = ["CHECK_TIMEOUT", "diagnose", "exit_status", "rows_json", "unparsed"]
