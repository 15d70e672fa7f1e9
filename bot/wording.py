"""Pydantic's complaints in our words: every input error a person sees is ours, in Chinese and English.

``field_errors(exc)`` turns a :class:`pydantic.ValidationError` (a request, an API body, query
parameters) into :class:`~bot.errors.FieldError` s that name the field and say what to put there;
pydantic's own English sentence never reaches a person.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from bot.errors import FieldError

# How a field reads in a sentence (zh, en); a field not listed reads as its own name.
LABELS: dict[str, tuple[str, str]] = {
    "type": ("码类型", "code type"),
    "via": ("生成方式", "provider"),
    "page": ("页面路径", "page path"),
    "path": ("页面路径 path", "path"),
    "scene": ("scene 参数", "scene"),
    "width": ("宽度", "width"),
    "name": ("名称", "name"),
    "env_version": ("版本", "env_version"),
    "expires": ("到期日", "expiry date"),
    "limit": ("条数 limit", "limit"),
    "offset": ("偏移 offset", "offset"),
}
_NUMBER_BOUNDS = {
    "greater_than_equal": ("ge", "不能小于", "at least"),
    "greater_than": ("gt", "须大于", "more than"),
    "less_than_equal": ("le", "不能大于", "at most"),
    "less_than": ("lt", "须小于", "less than"),
}


def describe(field: str, item: Mapping[str, Any], labels: Mapping[str, tuple[str, str]] = LABELS) -> FieldError:
    """One pydantic error item as our sentence about ``field``."""
    zh_label, en_label = labels.get(field, (field, field))
    kind = str(item.get("type", ""))
    ctx = item.get("ctx") or {}
    if kind == "extra_forbidden":
        return FieldError(field, f"不认识的字段 {field}。", f"Unknown field {field}.")
    if kind == "missing":
        return FieldError(field, f"请填写{zh_label}。", f"Please give the {en_label}.")
    if kind.startswith("int_"):
        zh_eg, en_eg = ("，例如 430", " such as 430") if field == "width" else ("", "")
        return FieldError(field, f"{zh_label}须是整数{zh_eg}，现在是 {item.get('input')!r}。",
                          f"The {en_label} must be a whole number{en_eg}, not {item.get('input')!r}.")
    if kind in _NUMBER_BOUNDS:
        key, zh, en = _NUMBER_BOUNDS[kind]
        return FieldError(field, f"{zh_label}{zh} {ctx.get(key)}，现在是 {item.get('input')}。",
                          f"The {en_label} must be {en} {ctx.get(key)}; it is {item.get('input')}.")
    if kind.startswith("bool_"):
        return FieldError(field, f"{zh_label}只能是 yes 或 no。", f"The {en_label} must be yes or no.")
    if kind in ("enum", "literal_error"):
        allowed = str(ctx.get("expected", ""))
        return FieldError(field, f"{zh_label}只能是 {allowed}，现在是 {item.get('input')!r}。",
                          f"The {en_label} must be {allowed}, not {item.get('input')!r}.")
    if kind.startswith("date_"):
        return FieldError(field, f"{zh_label}须是日期，例如 2027-01-31。", f"The {en_label} must be a date such as 2027-01-31.")
    if kind.startswith("string_too_long"):
        return FieldError(field, f"{zh_label}最多 {ctx.get('max_length')} 个字符。",
                          f"The {en_label} may have at most {ctx.get('max_length')} characters.")
    if kind.startswith("string_"):
        return FieldError(field, f"{zh_label}须是文字。", f"The {en_label} must be text.")
    return FieldError(field, f"{zh_label}的值不对，请检查。", f"The {en_label} is not valid; check it.")


def suggest_name(value: str, allowed: re.Pattern[str]) -> str | None:
    """``value`` with each run of characters ``allowed`` refuses (GrowingIO's name rule) turned into one ``-`` (``spring sale`` →
    ``spring-sale``), or None when nothing valid is left."""
    fixed = re.sub(r"-{2,}", "-", "".join(ch if allowed.match(ch) else "-" for ch in value)).strip("-")
    return fixed if fixed and allowed.match(fixed) else None


def field_errors(exc: ValidationError, labels: Mapping[str, tuple[str, str]] = LABELS) -> list[FieldError]:
    """Every problem pydantic found, one :class:`FieldError` each, in our words."""
    found: list[FieldError] = []
    for item in exc.errors():
        loc = item.get("loc") or ("request",)
        found.append(describe(str(loc[0]), item, labels))
    return found


__all__ = ["LABELS", "describe", "field_errors", "suggest_name"]
