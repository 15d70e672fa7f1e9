"""Draw the pictures of docs/guide.md into docs/img/ from the sandbox: real codes and a real poster made by
the built-in emulators, and mock-ups of a Slack and a WeCom answer around those very codes.

    .venv/bin/python scripts/doc_images.py          # rewrites docs/img/*.png

The mock-ups are drawn, not screenshots (a real workspace cannot be captured here); they follow the
layout of the answers the bot posts (handlers/slack/deliver.py, handlers/wecom/deliver.py).
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.models import CodeType, Requester  # noqa: E402
from bot.posters import find_template  # noqa: E402
from bot.posters.fonts import font  # noqa: E402
from bot.posters.render import render_poster  # noqa: E402
from bot.posters.request import PosterFields  # noqa: E402
from bot.server import open_service  # noqa: E402

OUT = ROOT / "docs" / "img"


def small_png(data: bytes, width: int, path: Path) -> Image.Image:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(path, optimize=True)
    return image


async def codes() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=Path(tmp))  # type: ignore[call-arg]
        me = Requester(chat="console", user_id="zhang.san", user_name="张三")
        async with open_service(settings) as service:
            asks = {
                "code-b": {"type": "B", "page": "pages/goods/detail", "scene": "id=42", "width": 280},
                "code-c": {"type": "C", "via": "wechat", "page": "pages/index/index?from=poster", "width": 280},
                "code-gio": {"type": "A", "page": "pages/list/list", "campaign": "双十一推广", "channel": "海报",
                             "create_missing": True, "width": 280},
            }
            made: dict[str, bytes] = {}
            for name, fields in asks.items():
                record = (await service.submit(fields, me)).record
                made[name] = service.image(record.id)[0]
            return made


def poster(code: bytes) -> bytes:
    return render_poster(code, CodeType.B, find_template("moments"),
                         PosterFields(title="双十一 会员日", subtitle="扫码领券 Scan for a coupon", footer="minpcode"),
                         record_values={})


def bubble(title: str, lines: list[str], code: Image.Image, *, slack: bool) -> Image.Image:
    """A chat answer: the bot's name, its lines, the code image (a mock-up of what people see)."""
    width, pad = 560, 16
    canvas = Image.new("RGB", (width, 130 + 22 * len(lines) + code.height), "white" if slack else "#ededed")
    draw = ImageDraw.Draw(canvas)
    bold, body = font(17), font(15)
    if slack:
        draw.rectangle((pad, pad, pad + 36, pad + 36), fill="#4a154b")
        draw.text((pad + 48, pad), "minpcode", font=bold, fill="#1d1c1d")
        draw.text((pad + 48 + bold.getlength("minpcode") + 8, pad + 3), "APP  10:02", font=font(12), fill="#616061")
        x, y = pad + 48, pad + 28
    else:
        draw.text((width // 2 - 60, pad), "minpcode · 应用消息", font=font(13), fill="#888888")
        draw.ellipse((pad, pad + 30, pad + 36, pad + 66), fill="#2b7de9")
        draw.rounded_rectangle((pad + 48, pad + 30, width - pad, canvas.height - pad), 6, fill="white")
        x, y = pad + 60, pad + 40
    draw.text((x, y), title, font=bold, fill="#1d1c1d")
    y += 28
    for line in lines:
        draw.text((x, y), line, font=body, fill="#1d1c1d")
        y += 22
    canvas.paste(code, (x, y + 8))
    return canvas


def aibot_group(code: Image.Image) -> Image.Image:
    """A mock-up of a group chat: a member @-mentions the AI bot; its answer mentions them, with the code."""
    width, pad = 560, 16
    canvas = Image.new("RGB", (width, 250 + code.height), "#ededed")
    draw = ImageDraw.Draw(canvas)
    draw.text((width // 2 - 70, pad), "市场部群 · 群聊", font=font(13), fill="#888888")
    ask = "@minpcode 新建 pages/goods/detail type=B scene=id=42"
    draw.ellipse((width - pad - 36, pad + 30, width - pad, pad + 66), fill="#7a9a5a")
    draw.rounded_rectangle((pad + 40, pad + 30, width - pad - 48, pad + 66), 6, fill="#95ec69")
    draw.text((pad + 52, pad + 40), ask, font=font(14), fill="#1d1c1d")
    top = pad + 84
    draw.ellipse((pad, top, pad + 36, top + 36), fill="#2b7de9")
    draw.text((pad + 48, top - 2), "minpcode（智能机器人）", font=font(12), fill="#888888")
    draw.rounded_rectangle((pad + 48, top + 16, width - pad, canvas.height - pad), 6, fill="white")
    x, y = pad + 60, top + 26
    for line, size in (("@张三", 15), ("码已生成。Your code is ready.", 17), ("类型: 小程序码（B，scene）", 15),
                       ("页面: pages/goods/detail  scene: id=42", 15)):
        draw.text((x, y), line, font=font(size), fill="#2b7de9" if line.startswith("@") else "#1d1c1d")
        y += 24
    canvas.paste(code, (x, y + 6))
    return canvas


def aibot_setup() -> Image.Image:
    """A mock-up of the admin console's AI-bot page in API mode with the long connection chosen."""
    width, height, pad = 560, 300, 16
    canvas = Image.new("RGB", (width, height), "#f5f6f7")
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, 40), fill="#2b7de9")
    draw.text((pad, 11), "管理后台 › 智能机器人 › minpcode", font=font(15), fill="white")
    draw.rounded_rectangle((pad, 56, width - pad, height - pad), 6, fill="white")
    rows = [("模式", "API 模式"), ("接收方式", "◉ 长连接    ○ 回调 URL"), ("Bot ID", "aib…（→ WECOM_BOT_ID）"),
            ("Secret", "••••••••  查看（→ WECOM_BOT_SECRET）"), ("可见范围", "市场部")]
    y = 76
    for label, value in rows:
        draw.text((pad + 16, y), label, font=font(14), fill="#888888")
        draw.text((pad + 130, y), value, font=font(14), fill="#1d1c1d")
        y += 36
    draw.rounded_rectangle((pad + 130, y + 4, pad + 210, y + 34), 4, fill="#2b7de9")
    draw.text((pad + 152, y + 10), "保存", font=font(14), fill="white")
    return canvas


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    made = asyncio.run(codes())
    shown = {name: small_png(data, 200, OUT / f"{name}.png") for name, data in made.items()}
    small_png(poster(made["code-b"]), 320, OUT / "poster.png")
    slack = bubble("码已生成。 Your code is ready.",
                   ["类型 Type: 小程序码（B，scene）", "页面 Page: pages/goods/detail  scene: id=42",
                    "名称 Name: pages_goods_detail-id_42"], shown["code-b"].resize((160, 160)), slack=True)
    slack.save(OUT / "slack-answer.png", optimize=True)
    wecom = bubble("码已生成。", ["类型: 小程序码（A）· GrowingIO", "推广活动: 双十一推广  推广渠道: 海报",
                                 "监测链接: pages/list/list?aid=…"], shown["code-gio"].resize((160, 160)), slack=False)
    wecom.save(OUT / "wecom-answer.png", optimize=True)
    aibot_group(shown["code-b"].resize((160, 160))).save(OUT / "wecom-aibot-group.png", optimize=True)
    aibot_setup().save(OUT / "wecom-aibot-setup.png", optimize=True)
    for path in sorted(OUT.glob("*.png")):
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
