"""Which code image a poster uses: the stored one, or a sharper copy from WeChat — never quota silently.

A poster of an existing code reuses its image when its pixels print at the template's dpi (or when
it is already WeChat's largest, 1280 px). Otherwise a B code simply gets a sharper copy (B codes
are free), while an A/C code gets one only when the person agreed to spend one code of the
100,000 A+C cap: until they answer, :class:`SharperCopyNeeded` says what it costs and what dpi the
stored image reaches, so the front-end can ask. ``sharper`` is the answer: True (make the copy), False
(print the current image as it is), None (not said). A screen template (``moments``) takes the current
image of an A/C code unless a copy is asked for: a phone shows the code, nobody prints it, so there is no
dpi to reach and no quota to spend.
"""

from __future__ import annotations

from pydantic import BaseModel

from bot.errors import InputError
from bot.models import WIDTH_MAX, CodeType
from bot.posters.code import Sharpness, sharpness
from bot.posters.templates import PosterTemplate

LARGEST_SLACK = 0.98  # WeChat's "1280" images may be a few pixels short of 1280


class SharperCopyNeeded(InputError):
    """An A/C code's stored image is too small for this template, and a sharper copy costs quota."""

    def __init__(self, code_type: CodeType, template: PosterTemplate, need: Sharpness) -> None:
        self.width = need.wechat_width
        self.image_dpi = need.image_dpi
        label_zh, label_en = template.label_zh or template.name, template.label_en or template.name
        super().__init__(
            f"这个 {code_type.value} 码的图片只有 {need.image_pixels} 像素，印在「{label_zh}」上只有 {need.image_dpi:g} dpi"
            f"（需要 {template.dpi} dpi）。生成 {need.wechat_width} 像素的清晰版会消耗 1 个 A/C 码额度（共 10 万个），"
            "确认后才会生成；也可以选择用现在的图片印（近看会发虚）。",
            f"This {code_type.value} code's image is {need.image_pixels} px, which prints at only {need.image_dpi:g} dpi on "
            f"the {label_en} (it needs {template.dpi} dpi). A sharper {need.wechat_width} px copy costs one A/C code "
            "of the 100,000 cap and is made only when you confirm; or choose to print the current image (soft up close).",
        )


class CodePlan(BaseModel):
    """What to render from: ``reuse`` the stored image, or fetch one ``width`` px wide first."""

    reuse: bool
    width: int  # the WeChat width of the image to render from (the stored one's when reusing)
    transparent: bool  # ask for is_hyaline (A/B codes on a backdrop that is not white)
    costs_quota: bool  # fetching counts against the A+C cap
    sharpness: Sharpness
    chosen: bool = False  # the stored image is reused though it is smaller than the template needs


def plan_code_image(code_type: CodeType, template: PosterTemplate, image: bytes | None = None, *,
                    sharper: bool | None = None) -> CodePlan:
    """Decide for one poster. ``image`` is the code's stored image (None for a code not made yet);
    ``sharper`` is the person's answer about a sharper copy (True: make it; False: print the current image;
    None: not said, so an A/C code for print is asked about)."""
    transparent = template.wants_transparent_code and code_type in (CodeType.A, CodeType.B)
    need = sharpness(template, image, code_type=code_type)
    if image is None:
        return CodePlan(reuse=False, width=need.wechat_width, transparent=transparent,
                        costs_quota=code_type.counts_against_cap, sharpness=need)
    pixels = need.image_pixels or 0
    if need.enough or pixels >= WIDTH_MAX * LARGEST_SLACK:
        return CodePlan(reuse=True, width=pixels, transparent=False, costs_quota=False, sharpness=need)
    screen_takes_it = sharper is None and template.kind == "screen" and code_type.counts_against_cap
    if sharper is False or screen_takes_it:
        return CodePlan(reuse=True, width=pixels, transparent=False, costs_quota=False, sharpness=need, chosen=True)
    if code_type.counts_against_cap and not sharper:
        raise SharperCopyNeeded(code_type, template, need)
    return CodePlan(reuse=False, width=need.wechat_width, transparent=transparent,
                    costs_quota=code_type.counts_against_cap, sharpness=need)
