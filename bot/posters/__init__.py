"""Print-ready posters: a code on a template with title, store name and logo, as PNG or PDF.

    template = find_template("a4")                       # or a team's: team_template(name, layout, bg)
    plan = plan_code_image(CodeType.B, template, stored_png)     # reuse, or fetch plan.width px first
    request = PosterRequest.parse({"template": "a4", "title": "春季大促", "footer": "{name}"})
    data = render_poster(code_png, CodeType.B, template, request.fields,
                         record_values=record_values(record), logo=None, fmt=request.format)
    data = await draw_poster(…the same…)       # the serving process: in a worker, within POSTER_BUDGET
    png = await load_logo(logo_bytes)           # a logo checked (an SVG drawn) in a worker, within LOGO_BUDGET
    key = request.key(record.id, template.fingerprint(), record_values(record))   # render once per key
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.errors import FieldError
from bot.posters.code import AVATAR_SHARE, Sharpness, sharpness
from bot.posters.fonts import FontMissing
from bot.posters.images import LOGO_BUDGET, is_svg, load_logo, open_image
from bot.posters.layout import load_template, team_template
from bot.posters.pdf import png_to_pdf
from bot.posters.plan import CodePlan, SharperCopyNeeded, plan_code_image
from bot.posters.render import POSTER_BUDGET, draw_poster, render_poster
from bot.posters.request import (
    MIME,
    PLACEHOLDERS,
    PosterFields,
    PosterFormat,
    PosterRequest,
    fill,
    format_for_path,
    record_values,
)
from bot.posters.templates import BLEED_MM, BUILTIN, Box, CodeBox, Panel, PosterTemplate, TextBox


def builtin_templates() -> dict[str, PosterTemplate]:
    return dict(BUILTIN)


def all_templates(team: Mapping[str, PosterTemplate] | None = None) -> list[PosterTemplate]:
    """Built-in templates, then the team's by name: what ``minpcode posters`` lists (``t.size_text()``)."""
    team = team or {}
    return [*BUILTIN.values(), *(team[name] for name in sorted(team))]


def find_template(name: str, team: Mapping[str, PosterTemplate] | None = None) -> PosterTemplate:
    """A built-in template or one of ``team``'s by name; FieldError listing the choices otherwise."""
    wanted = name.strip().lower()
    if wanted in BUILTIN:
        return BUILTIN[wanted]
    if team and wanted in team:
        return team[wanted]
    choices = ", ".join([*BUILTIN, *sorted(team or {})])
    raise FieldError("template", f"没有名为 {name} 的海报模板，可选：{choices}。",
                     f"There is no poster template named {name}; choose one of: {choices}.")


__all__ = [
    "AVATAR_SHARE", "BLEED_MM", "BUILTIN", "LOGO_BUDGET", "MIME", "PLACEHOLDERS", "POSTER_BUDGET", "Box", "CodeBox",
    "CodePlan", "FontMissing", "Panel", "PosterFields", "PosterFormat", "PosterRequest", "PosterTemplate",
    "SharperCopyNeeded", "Sharpness", "TextBox", "all_templates", "builtin_templates", "draw_poster", "fill",
    "find_template", "format_for_path", "is_svg", "load_logo", "load_template", "open_image", "plan_code_image",
    "png_to_pdf", "record_values", "render_poster", "sharpness", "team_template",
]
