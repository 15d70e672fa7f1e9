"""A team template from an admin's background image and a small JSON layout file.

    {"width": 210, "height": 297, "unit": "mm", "dpi": 300,
     "code": {"x": 55, "y": 110, "size": 100},
     "texts": [{"field": "title", "box": {"x": 15, "y": 20, "w": 180, "h": 40}, "size": 72,
                "colour": "#C0392B", "align": "center", "bold": true},
               {"field": "footer", "box": {"x": 15, "y": 240, "w": 180, "h": 30}, "size": 36}]}

Keys are those of :class:`PosterTemplate`: ``unit`` is ``mm`` (print, rendered at ``dpi``) or ``px``
(screens); ``panels`` are optional filled boxes (a white card behind the code on a dark photo);
a text box's ``field`` is ``title``, ``subtitle``, ``footer`` or ``text`` (fixed ``text``), with
``size`` in points, optional ``min_size``, ``colour`` ``#RRGGBB``, ``align`` left/center/right.

Every problem is a :class:`FieldError` naming where it is (``texts[0].colour``), in Chinese and
English; :func:`team_template` raises them together in one :class:`InvalidRequest`. A new template is checked
with :func:`load_template`, which decodes its background in a worker process within :data:`TEMPLATE_BUDGET`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from bot import workers
from bot.errors import FieldError, InvalidRequest
from bot.posters.images import LOGO_BUDGET, open_image
from bot.posters.templates import BUILTIN, PosterTemplate
from bot.text import Text

MAX_LAYOUT_BYTES = 64 * 1024
# A background is an image like a logo (the same MAX_PIXELS), so it gets the logo's budget.
TEMPLATE_BUDGET = workers.Budget(seconds=LOGO_BUDGET.seconds, memory_mb=LOGO_BUDGET.memory_mb,
                                 what=Text(zh="模板背景图检查", en="checking the template's background"))
ASPECT_TOLERANCE = 0.02
_WHAT: dict[str, tuple[str, str]] = {
    "missing": ("缺少这一项", "is missing"),
    "extra_forbidden": ("不认识这一项", "is not a layout key"),
    "greater_than": ("必须大于 {gt}", "must be greater than {gt}"),
    "greater_than_equal": ("不能小于 {ge}", "must be at least {ge}"),
    "less_than_equal": ("不能大于 {le}", "must be at most {le}"),
    "literal_error": ("只能是 {expected}", "must be one of {expected}"),
    "float_parsing": ("必须是数字", "must be a number"),
    "float_type": ("必须是数字", "must be a number"),
    "int_parsing": ("必须是整数", "must be a whole number"),
    "int_type": ("必须是整数", "must be a whole number"),
    "int_from_float": ("必须是整数", "must be a whole number"),
    "bool_type": ("必须是 true 或 false", "must be true or false"),
    "bool_parsing": ("必须是 true 或 false", "must be true or false"),
    "string_type": ("必须是文字", "must be text"),
    "string_too_long": ("太长，最多 {max_length} 个字符", "is too long; at most {max_length} characters"),
    "model_type": ("必须是一个对象 {...}", "must be an object {...}"),
    "tuple_type": ("必须是一个列表 [...]", "must be a list [...]"),
    "string_pattern_mismatch": ("只能用小写字母、数字、- 和 _", "may use only lowercase letters, digits, - and _"),
}


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "layout"


def _errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for item in exc.errors():
        where = _where(tuple(item.get("loc") or ()))
        kind = item.get("type", "")
        ctx = {k: v for k, v in (item.get("ctx") or {}).items()}
        if kind == "value_error" and "colour" in str(item.get("msg", "")):
            zh, en = "必须是 #RRGGBB 形式的颜色，例如 #D4372C", "must be a colour like #D4372C (#RRGGBB)"
        elif kind in _WHAT:
            zh, en = (text.format(**ctx) if ctx else text for text in _WHAT[kind])
        else:
            zh, en = f"不对：{item.get('msg', '')}", f"is not valid: {item.get('msg', '')}"
        errors.append(FieldError(where, f"布局文件的 {where} {zh}。", f"The layout's {where} {en}."))
    return errors


def _inside(template: PosterTemplate) -> list[FieldError]:
    """Boxes must lie on the page, and text must not sit on the code."""
    errors = []
    code = template.code
    if code.x + code.size > template.width + 1e-6 or code.y + code.size > template.height + 1e-6:
        errors.append(FieldError("code", "布局文件的 code 超出了页面，请调整 x、y 或 size。",
                                 "The layout's code box runs off the page; change its x, y or size."))
    for i, box in enumerate(t.box for t in template.texts):
        where = f"texts[{i}].box"
        if box.x + box.w > template.width + 1e-6 or box.y + box.h > template.height + 1e-6:
            errors.append(FieldError(where, f"布局文件的 {where} 超出了页面。", f"The layout's {where} runs off the page."))
        elif (box.x < code.x + code.size and code.x < box.x + box.w
              and box.y < code.y + code.size and code.y < box.y + box.h):
            errors.append(FieldError(where, f"布局文件的 {where} 压在码上了，文字会挡住码。",
                                     f"The layout's {where} overlaps the code; text would cover it."))
    for i, text in enumerate(template.texts):
        if text.field == "text" and not text.text:
            errors.append(FieldError(f"texts[{i}].text", f"布局文件的 texts[{i}] 是固定文字，请给出 text。",
                                     f"The layout's texts[{i}] is fixed text; give its text."))
    return errors


async def load_template(name: str, layout: bytes | str, background: bytes | None) -> PosterTemplate:
    """:func:`team_template` in a worker process within :data:`TEMPLATE_BUDGET`, the event loop serving meanwhile."""
    return await workers.run(team_template, name, layout, background, budget=TEMPLATE_BUDGET)


def team_template(name: str, layout: bytes | str, background: bytes | None, *, stored: bool = False) -> PosterTemplate:
    """Validate a team's layout (and background) into a template; InvalidRequest lists every problem.

    ``stored``: a template read back from the store, whose background was checked when it was added, is not
    decoded again: that would be in the serving process, and drawing it is the worker's
    (:func:`bot.posters.render.draw_poster`).
    """
    raw = layout.encode("utf-8") if isinstance(layout, str) else layout
    if len(raw) > MAX_LAYOUT_BYTES:
        raise InvalidRequest([FieldError("layout", "布局文件太大，最多 64 KB。", "The layout file is too large; at most 64 KB.")])
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f"（第 {exc.lineno} 行）" if isinstance(exc, json.JSONDecodeError) else ""
        where_en = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidRequest([FieldError("layout", f"布局文件不是有效的 JSON{where}。",
                                         f"The layout file is not valid JSON{where_en}.")]) from None
    if not isinstance(data, dict):
        raise InvalidRequest([FieldError("layout", "布局文件须是一个 JSON 对象 {...}。",
                                         "The layout file must be one JSON object {...}.")])
    errors: list[FieldError] = []
    if name.strip().lower() in BUILTIN:
        errors.append(FieldError("name", f"{name} 是内置模板的名字，请换一个。",
                                 f"{name} is a built-in template's name; choose another."))
    for key in ("name", "team", "background_image"):
        data.pop(key, None)
    data = {"texts": [], **data, "name": name.strip().lower(), "team": True}
    try:
        template = PosterTemplate.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(errors + _errors(exc)) from None
    errors += _inside(template)
    if background is not None and not stored:
        try:
            img = open_image(background, "background")
            want = template.width / template.height
            if abs(img.width / img.height - want) > ASPECT_TOLERANCE * want:
                errors.append(FieldError("background", f"背景图的宽高比（{img.width}×{img.height}）与页面不一致，请按页面比例裁切。",
                                         f"The background's shape ({img.width}×{img.height}) does not match the page's; "
                                         "crop it to the page's proportions."))
        except FieldError as error:
            errors.append(error)
    if errors:
        raise InvalidRequest(errors)
    return template.model_copy(update={"background_image": background})
