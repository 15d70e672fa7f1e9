"""Posters in Slack and WeCom, over the real server and the emulators of their APIs (sandbox WeChat).

Slack: the poster is the file posted in the channel (PNG, or a PDF as a file) with a "bare code" link.
WeCom: the poster comes back as an image message, or as a file when it is a PDF or over the image limit.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pypdf
from PIL import Image

from bot import links
from bot.models import Requester
from tests.emulators.slack import DM_CHANNEL, PUBLIC_CHANNEL, USER_ID
from tests.slack.test_e2e import _home_where, make_harness, scan, state  # noqa: F401  (the fixture)
from tests.wecom.test_callback import USER, WeComSite, make_site, public_site, wecom  # noqa: F401  (the fixture)

NEW = "new pages/shop/index type=B scene=s=77 name=徐汇店 poster=a4 title=春季大促 subtitle=扫码领券 footer={name}"


def test_slack_posts_the_poster_with_a_bare_code_link(make_harness: Any) -> None:  # noqa: F811
    h = make_harness()
    assert h.command(NEW, channel=PUBLIC_CHANNEL).status_code == 200
    upload = h.uploads_for("/codes/")[0]
    assert upload.data is not None and upload.filename.endswith(".png")
    assert upload.channels == [PUBLIC_CHANNEL]
    img = Image.open(io.BytesIO(upload.data))
    assert img.size == (2480, 3508) and round(img.info["dpi"][0]) == 300
    assert (scan(upload.data).page, scan(upload.data).scene) == ("pages/shop/index", "s=77")
    code_id = re.search(r"/codes/([a-z0-9]{12})\.png", upload.initial_comment or "")
    assert code_id is not None
    assert h.service.get(code_id.group(1)).width == 1182

    calls = sum(h.service.upstream.emulators[0].calls.values())
    assert h.command(f"海报 {code_id.group(1)} sticker-60 格式=pdf 标题=贴纸").status_code == 200
    pdf = next(u for u in h.uploads_for("/codes/", 2) if u.filename.endswith(".pdf"))
    assert pdf.data is not None and pdf.data.startswith(b"%PDF-")
    page = pypdf.PdfReader(io.BytesIO(pdf.data)).pages[0]
    assert round(float(page.mediabox.width) * 25.4 / 72, 1) == 60.0
    assert sum(h.service.upstream.emulators[0].calls.values()) == calls  # the stored 1182 px image sufficed

    assert h.command(f"show {code_id.group(1)}").status_code == 200
    shown = h.ephemeral(lambda m: "sticker-60" in (m.get("text") or ""))
    assert "/posters/" in shown["text"]


def test_slack_explains_a_sharper_copy_and_spends_only_when_asked(make_harness: Any) -> None:  # noqa: F811
    h = make_harness()
    code = h.service.storage.history
    assert h.command("new pages/shop/index?id=3 type=A via=wechat").status_code == 200
    made = h.uploads_for("pages/shop/index?id=3")[0]
    code_id = re.search(r"`([a-z0-9]{12})`", made.initial_comment or "")
    assert code_id is not None and code.count() == 1
    wechat = h.service.upstream.emulators[0]
    before = wechat.calls["/wxa/getwxacode"]
    assert h.command(f"poster {code_id.group(1)} a4").status_code == 200
    refused = h.ephemeral(lambda m: "sharp=yes" in (m.get("text") or ""))
    assert "A/C" in refused["text"] and wechat.calls["/wxa/getwxacode"] == before
    assert h.command(f"poster {code_id.group(1)} a4 sharp=yes").status_code == 200
    h.uploads_for("/codes/")
    assert wechat.calls["/wxa/getwxacode"] == before + 1


def _poster_state(template: str, **texts: str) -> dict[str, Any]:
    values = state(type="wechat:B", page="pages/shop/index", scene="s=79", name="静安店")["values"]
    values["poster"] = {"poster": {"type": "static_select", "selected_option": {
        "text": {"type": "plain_text", "text": template}, "value": template}}}
    for block, value in texts.items():
        values[block] = {block: {"type": "plain_text_input", "value": value}}
    return {"values": values}


def test_slack_form_offers_templates_then_their_texts_and_home_links_the_poster(make_harness: Any) -> None:  # noqa: F811
    h = make_harness()
    view = h.open_form()
    h.action(view, "type", "wechat:B", kind="static_select", values=state(type="wechat:B", page="pages/a"))
    updated = h.emu.wait_for("views.update", ok=True)[-1].response["view"]
    select = next(b for b in updated["blocks"] if b.get("block_id") == "poster")
    assert {o["value"] for o in select["element"]["options"]} >= {"none", "a4", "a5-tent", "sticker-60", "moments"}
    assert "poster_title" not in {b.get("block_id") for b in updated["blocks"]}
    view = h.emu.views[view["id"]]
    h.action(view, "poster", "a4", kind="static_select", values=_poster_state("a4"))
    updated = h.emu.wait_for("views.update", 2, ok=True)[-1].response["view"]
    assert {"poster_title", "subtitle", "footer"} <= {b.get("block_id") for b in updated["blocks"]}

    view = h.emu.views[view["id"]]
    bad = h.submit(view, _poster_state("a4", footer="{campaign}"))
    assert bad.json()["response_action"] == "errors" and "footer" in bad.json()["errors"]
    assert h.service.storage.history.count() == 0
    ok = h.submit(view, _poster_state("a4", poster_title="开业大吉", footer="{name}"))
    assert ok.status_code == 200
    upload = h.uploads_for("/codes/")[0]
    assert upload.data is not None and Image.open(io.BytesIO(upload.data)).size == (2480, 3508)
    assert scan(upload.data).scene == "s=79"

    h.event({"type": "app_home_opened", "user": USER_ID, "channel": DM_CHANNEL, "tab": "home"}, "EvP1")
    record = h.service.recent(limit=1)[0]
    poster = h.service.posters.for_code(record.id)[0]
    url = links.poster_url(h.settings.people_url or "", poster.id, poster.format)
    home = _home_where(h, lambda t: url in t)
    assert any(e.get("action_id", "").endswith("download") and e.get("url", "") == url
               for b in home["blocks"] if b.get("type") == "actions" for e in b["elements"])


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return found


def test_wecom_sends_a_png_poster_as_an_image_and_a_pdf_as_a_file(wecom: WeComSite) -> None:  # noqa: F811
    wecom.sender.send_text(USER, NEW)
    image = wait_for(lambda: next((m for m in wecom.emu.sent_messages if m.msgtype == "image"), None))
    data = wecom.emu.uploaded_media[image.media_id or ""]
    assert Image.open(io.BytesIO(data)).size == (2480, 3508) and len(data) <= 2 * 1024 * 1024
    assert scan(data).scene == "s=77"
    text = wait_for(lambda: next((t for t in wecom.texts() if "海报已做好" in t), None))
    code_id = re.search(r"\b([a-z0-9]{12})\b", text)
    assert code_id is not None

    wecom.sender.send_text(USER, f"海报 {code_id.group(1)} a5-tent 格式=pdf")
    sent = wait_for(lambda: next((m for m in wecom.emu.sent_messages if m.msgtype == "file"), None))
    pdf = wecom.emu.uploaded_media[sent.media_id or ""]
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    assert round(float(page.mediabox.width) * 25.4 / 72) == 148


def _show_in_wecom(site: WeComSite) -> tuple[str, str]:
    """A poster made over WeCom, then ``show`` of its code: the code's id and what show said."""
    site.sender.send_text(USER, NEW)
    made = wait_for(lambda: next((t for t in site.texts() if "海报已做好" in t), None))
    code_id = re.search(r"\b([a-z0-9]{12})\b", made)
    assert code_id is not None
    site.sender.send_text(USER, f"show {code_id.group(1)}")
    shown = wait_for(lambda: next((t for t in site.texts() if "海报 a4" in t and "海报已做好" not in t), None))
    return code_id.group(1), shown


def test_wecom_show_links_posters_only_at_an_address_people_reach(
        serve: Callable[[Any], str], tmp_path: Path) -> None:
    # No MINPCODE_PUBLIC_URL: the default (where serve would listen) is no address for a phone, so show
    # lists the poster without a link rather than with one that leads nowhere (as handlers/attachments.py).
    site = make_site(serve, tmp_path / "plain")
    _, shown = _show_in_wecom(site)
    assert "/posters/" not in shown and "127.0.0.1" not in shown
    with public_site(serve, tmp_path / "public") as (public, _):
        code_id, shown = _show_in_wecom(public)
        poster = public.service.posters.for_code(code_id)[0]
        assert links.poster_url(public.service.settings.people_url or "", poster.id, poster.format) in shown


def test_wecom_sends_a_poster_over_the_image_limit_as_a_file(serve: Callable[[Any], str], tmp_path: Path) -> None:
    site = make_site(serve, tmp_path, image_max_bytes=10 * 1024 * 1024)
    # A photo-like team background makes a poster too big for an image message (2 MB, WeCom's safe limit).
    noise = Image.fromarray(np.random.default_rng(7).integers(0, 255, (2480, 2480, 3), dtype=np.uint8))
    art = io.BytesIO()
    noise.save(art, "PNG")
    layout = {"width": 210, "height": 210, "code": {"x": 55, "y": 55, "size": 100},
              "panels": [{"box": {"x": 50, "y": 50, "w": 110, "h": 110}, "colour": "#FFFFFF"}]}
    asyncio.run(site.service.posters.add_template("photo", json.dumps(layout), art.getvalue(), Requester(chat="cli")))
    site.sender.send_text(USER, "new pages/shop/index type=B scene=s=78 poster=photo")
    sent = wait_for(lambda: next((m for m in site.emu.sent_messages if m.msgtype in ("file", "image")), None))
    assert sent.msgtype == "file"
    data = site.emu.uploaded_media[sent.media_id or ""]
    assert len(data) > 2 * 1024 * 1024 and data.startswith(b"\x89PNG")
    assert scan(data).scene == "s=78"
