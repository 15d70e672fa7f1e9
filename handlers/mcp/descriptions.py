"""What each MCP tool says about itself, so an assistant picks the right tool, code type and arguments.

Every rule said here is one the core enforces (docs/codes.md, docs/live-codes.md) and, where it is WeChat's,
one WeChat's pages state:

- B codes (getUnlimitedQRCode): "永久有效，数量暂无限制"; the scene is "最大32个可见字符，只支持数字，大小写英文以及部分
  特殊字符：!#$&'()*+,/:;=?@-._~"; the page takes no query; with ``check_path`` on, the page "必须是已经发布的小程序
  存在的页面" (https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/qr-code/api_getunlimitedqrcode.md).
- A codes (getQRCode) and C codes (createQRCode) "有数量限制": "与 wxacode.get 总共生成的码数量限制为 100,000"
  (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/qr-code/createQRCode.html).
- Short Links open inside WeChat only ("适用于微信内拉起小程序",
  https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/shortlink.html); URL Links from SMS, email
  and web pages (https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/url-link.html); URL
  Schemes from SMS and web pages (https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/url-scheme.html).

The words are the tools' own; tests/mcp checks that each tool lists and says what it is for.
"""

from __future__ import annotations

INSTRUCTIONS = (
    "minpcode makes WeChat mini-program codes (小程序码) and links, keeps their history, and steers live codes (活码). "
    "Every code is recorded under your name (mcp:<name>) with the same permissions, audit log and quota as the "
    "team's chat bot: you may change only the codes you made unless you are an admin. An identical request reuses "
    "the code made before and spends no quota. Answers carry Chinese and English; a refused call is a tool error "
    "naming each field to change."
)

SCENE = (
    "A scene is the parameter string a B code carries to its page (WeChat hands it to the page as "
    "query.scene), e.g. 'id=42' or 'sku=9&from=poster': at most 32 characters of letters, digits and "
    "!#$&'()*+,/:;=?@-._~ (no Chinese, spaces or %). Longer or other parameters are refused unless long_scene "
    "is 'key': they are stored and the code carries k=<key>, which the mini program resolves with "
    "GET /api/scenes/{key}."
)

TOOLS: dict[str, str] = {
    "make_code": (
        "Make one mini-program code or link (or reuse the identical one made before), and return its record with "
        "image_url (the PNG under MINPCODE_PUBLIC_URL); include_image=true also returns the image itself.\n"
        "Which type:\n"
        "- B (the default when you give a scene): for most printed codes. Unlimited in number. The page must be "
        "a published page of the mini program (check_path=false skips that check, for pages not yet released) and "
        "takes no ?query: the parameters go in the scene.\n"
        "- A (the default without a scene): any page, with its ?query (up to 1024 bytes). A and C together are "
        "capped at 100,000 per mini program for ever, so prefer B where a scene will do.\n"
        "- C: the older square QR code; same cap as A; legacy uses only.\n"
        "- shortlink: a link (#小程序://…) that opens only inside WeChat (a chat, an article); 30 days, or "
        "permanent=true.\n"
        "- urllink / scheme: links that open the mini program from outside WeChat (SMS, email, web pages); "
        "expire_days 1-30.\n"
        "- live=true: a live code (活码), a B code whose destination (path with its ?query) can be changed later "
        "with repoint_live_code and paused with pause_live_code, without reprinting; useful for posters and "
        "packaging whose target may change. No scene with it.\n"
        + SCENE + "\n"
        "With GrowingIO configured, A and C codes become tracking links: give campaign and channel (or "
        "via='wechat' for a plain code)."
    ),
    "find_codes": (
        "Search the code history, newest first: q matches names, pages, scenes, campaigns and comments (Chinese "
        "too); filter by type, status, requested_by (e.g. mcp:<name>, slack:<user>, api:<key name>) or mine=true "
        "for your own codes. Pages of limit records; next_offset is where the next page starts."
    ),
    "show_code": (
        "One code by id: its fields, image_url or link, and for a live code its destinations, pause state and "
        "scan counts."
    ),
    "make_poster": (
        "A print-ready poster (PNG or PDF) of a code: give id for an existing code, or path (and scene) to make "
        "or reuse one as make_code would. Templates: a4, a5-tent, sticker-60, moments, or a team template. "
        "Returns the poster's url."
    ),
    "repoint_live_code": (
        "Send a live code's scans to another page (page with its ?query) from now on. No WeChat call; the "
        "printed image stays the same. Only its creator or an admin may."
    ),
    "pause_live_code": (
        "Pause a live code (paused=true: scans open the fallback page) or resume it (paused=false). Only its "
        "creator or an admin may."
    ),
    "code_stats": (
        "A live code's scans: total, today, last 7 days, unique visitors, test scans apart, and per day for the "
        "last days days."
    ),
    "quota": (
        "How much of each mini program's quota is used: A+C codes of their lifetime cap (100,000 by default), "
        "URL Links and URL Schemes made today of WeChat's 500,000 a day, permanent Short Links of 100,000."
    ),
}

TITLES: dict[str, str] = {
    "make_code": "Make a mini-program code or link",
    "find_codes": "Find codes",
    "show_code": "Show a code",
    "make_poster": "Make a poster",
    "repoint_live_code": "Re-point a live code",
    "pause_live_code": "Pause or resume a live code",
    "code_stats": "Live code scans",
    "quota": "Quota",
}

__all__ = ["INSTRUCTIONS", "SCENE", "TITLES", "TOOLS"]
