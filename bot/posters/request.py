"""What a person asks for: the poster's texts, template, logo and format, and the placeholders.

``{name}``, ``{campaign}``, ``{channel}``, ``{page}`` and ``{scene}`` are filled from the code, so
one batch prints each store's own name. Every problem is a bilingual :class:`FieldError`.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import FieldError, InvalidRequest
from bot.models import CodeRecord

PLACEHOLDERS = ("name", "campaign", "channel", "page", "scene")
TEXT_MAX = 120
PosterFormat = Literal["png", "pdf"]
MIME = {"png": "image/png", "pdf": "application/pdf"}
_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_LABELS = {"title": ("标题", "title"), "subtitle": ("副标题", "subtitle"), "footer": ("底部文字", "footer")}


def _clean(value: str | None, field: str) -> str | None:
    if value is None or not value.strip():
        return None
    zh, en = _LABELS.get(field, (field, field))
    if _BAD_TEXT.search(value):
        raise ValueError(f"{zh}含有控制字符或无效字符。|The {en} contains control or invalid characters.")
    if len(value.strip()) > TEXT_MAX:
        raise ValueError(f"{zh}最多 {TEXT_MAX} 个字符，现在是 {len(value.strip())} 个。|"
                         f"The {en} may have at most {TEXT_MAX} characters; it has {len(value.strip())}.")
    return value.strip()


class PosterFields(BaseModel):
    """The poster's own texts, before placeholders are filled."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    title: str | None = None
    subtitle: str | None = None
    footer: str | None = None

    @field_validator("title", "subtitle", "footer")
    @classmethod
    def _text(cls, value: str | None, info: Any) -> str | None:
        return _clean(value, info.field_name)

    def filled(self, values: Mapping[str, str | None]) -> dict[str, str | None]:
        """Each field with its placeholders replaced; FieldError for an unknown or empty one."""
        return {field: fill(getattr(self, field), values, field) for field in ("title", "subtitle", "footer")}


def fill(text: str | None, values: Mapping[str, str | None], field: str) -> str | None:
    if text is None:
        return None
    zh, en = _LABELS.get(field, (field, field))
    known = "、".join("{" + p + "}" for p in PLACEHOLDERS)
    out = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        raise FieldError(field, f"{zh}里的花括号不成对；占位符请写成 {known} 之一，字面花括号写成 {{{{ }}}}。",
                         f"The {en} has an unmatched brace; use one of {known}, or write {{{{ }}}} for a literal brace."
                         ) from None
    for literal, name, spec, conversion in parsed:
        out.append(literal)
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise FieldError(field, f"{zh}里的占位符 {{{name}}} 不认识，可用的有：{known}。",
                             f"The {en} has an unknown placeholder {{{name}}}; the ones available are {known}.")
        value = values.get(name)
        if not value:
            raise FieldError(field, f"这个码没有 {name}，{zh}里的 {{{name}}} 无法填写。",
                             f"This code has no {name}, so {{{name}}} in the {en} cannot be filled.")
        out.append(str(value))
    return "".join(out)


def record_values(record: CodeRecord) -> dict[str, str | None]:
    """The placeholder values of one code."""
    return {"name": record.name, "campaign": record.campaign, "channel": record.channel, "page": record.page,
            "scene": record.scene}


class PosterRequest(BaseModel):
    """One poster to make of one code; :meth:`key` names it, so it is rendered once."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    template: str = Field(min_length=1, max_length=40)
    title: str | None = None
    subtitle: str | None = None
    footer: str | None = None
    logo_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    format: PosterFormat = "png"
    bleed: bool = False

    @field_validator("title", "subtitle", "footer")
    @classmethod
    def _text(cls, value: str | None, info: Any) -> str | None:
        return _clean(value, info.field_name)

    @field_validator("template", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> PosterRequest:
        """From loose input (a form, a text command, JSON); every problem in one InvalidRequest."""
        cleaned = {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        if isinstance(cleaned.get("format"), str):
            cleaned["format"] = cleaned["format"].strip().lower().lstrip(".")
        try:
            return cls.model_validate(cleaned)
        except ValidationError as exc:
            raise _invalid(exc) from None

    @property
    def fields(self) -> PosterFields:
        return PosterFields(title=self.title, subtitle=self.subtitle, footer=self.footer)

    @property
    def mime(self) -> str:
        return MIME[self.format]

    def key(self, code_id: str, template_fingerprint: str, values: Mapping[str, str | None]) -> str:
        """Same code, template (as it is now), texts as filled, logo, format and bleed → same key."""
        blob = json.dumps({
            "code": code_id, "template": self.template, "layout": template_fingerprint,
            "texts": self.fields.filled(values), "logo": self.logo_sha256, "format": self.format,
            "bleed": self.bleed,
        }, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def format_for_path(path: str) -> PosterFormat:
    """The format a file name asks for (``poster.pdf`` → pdf); FieldError for anything else."""
    lower = path.lower()
    if lower.endswith(".png"):
        return "png"
    if lower.endswith(".pdf"):
        return "pdf"
    raise FieldError("out", "海报文件名须以 .png 或 .pdf 结尾。", "The poster's file name must end in .png or .pdf.")


def _invalid(exc: ValidationError) -> InvalidRequest:
    errors: list[FieldError] = []
    for item in exc.errors():
        field = str((item.get("loc") or ("poster",))[0])
        message = str(item.get("msg", ""))
        if "|" in message:  # our own bilingual rule: "zh|en"
            zh, en = message.removeprefix("Value error, ").split("|", 1)
            errors.append(FieldError(field, zh, en))
        elif item.get("type") == "extra_forbidden":
            errors.append(FieldError(field, f"海报不认识字段 {field}。", f"A poster has no field {field}."))
        elif field == "format":
            errors.append(FieldError(field, "海报格式只能是 png 或 pdf。", "The poster format must be png or pdf."))
        elif field == "logo_sha256":
            errors.append(FieldError(field, "标志的哈希须为 64 位十六进制 SHA-256。",
                                     "The logo hash must be a 64-character hex SHA-256."))
        elif field == "template":
            errors.append(FieldError(field, "请给出海报模板名（1 到 40 个字符）。",
                                     "Give a poster template name (1 to 40 characters)."))
        else:
            errors.append(FieldError(field, f"{field} 的值不对：{message}", f"The {field} is not valid: {message}"))
    return InvalidRequest(errors)
