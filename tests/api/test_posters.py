"""POST /api/posters and GET /posters/{id}.{format} on the real server (sandbox WeChat, real SQLite)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pypdf
import pytest
from PIL import Image

from tests.api.test_api import CMS_KEY, Live, _start, ok, scan
from tests.posters.test_engine import pixel_logo, svg_bomb
from tests.served import Served, probing

MB = 1024 * 1024


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    server, running = _start(tmp_path_factory.mktemp("poster-api"))
    try:
        yield running
    finally:
        server.stop()


def post(live: Live, body: Any, **headers: str) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=60) as client:
        return client.post(live.url + "/api/posters", json=body,
                           headers={"Authorization": f"Bearer {CMS_KEY}", **headers})


def wx(live: Live) -> int:
    return sum(n for path, n in live.wechat.calls.items() if path.startswith("/wxa/"))


def test_a_poster_from_the_codes_fields_then_by_id_served_from_the_store(live: Live) -> None:
    body = ok(post(live, {"path": "/pages/shop/index", "scene": "s=88", "template": "a4", "title": "春季大促",
                          "footer": "{scene}"}))
    assert body["data"] == f"{live.url}/posters/{body['id']}.png" and body["reused"] is False
    assert (body["width_px"], body["height_px"], body["dpi"]) == (2480, 3508, 300)
    png = live.get(body["data"], key=None)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert round(Image.open(io.BytesIO(png.content)).info["dpi"][0]) == 300
    assert (scan(png.content).page, scan(png.content).scene) == ("pages/shop/index", "s=88")
    assert live.get(body["data"], key=None, headers={"If-None-Match": png.headers["etag"]}).status_code == 304
    assert live.get(body["data"].replace(".png", ".pdf"), key=None).status_code == 404

    calls = wx(live)
    again = ok(post(live, {"id": body["code_id"], "template": "a4", "title": "春季大促", "footer": "{scene}"}))
    assert again["reused"] is True and again["id"] == body["id"] and wx(live) == calls
    record = ok(live.get(f"/api/codes/{body['code_id']}"))["data"]
    assert record["width"] == 1182  # made at the size the template prints it


def test_pdf_bytes_when_accept_asks_for_them(live: Live) -> None:
    answer = post(live, {"path": "pages/shop/index", "scene": "s=89", "template": "a5-tent", "format": "pdf"},
                  Accept="application/pdf")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    page = pypdf.PdfReader(io.BytesIO(answer.content)).pages[0]
    assert (round(float(page.mediabox.width) * 25.4 / 72), round(float(page.mediabox.height) * 25.4 / 72)) == (148, 210)
    assert answer.headers["x-poster-id"] and answer.headers["x-code-id"]


def test_an_a_code_asks_before_spending_and_errors_are_the_apis(live: Live) -> None:
    code = ok(live.post({"path": "pages/shop/index?id=5"}))
    calls = wx(live)
    refused = post(live, {"id": code["id"], "template": "a4"})
    assert refused.status_code == 400 and refused.json()["code"] == -1
    assert "1 个 A/C 码额度" in refused.json()["msg"] and wx(live) == calls
    made = ok(post(live, {"id": code["id"], "template": "a4", "sharper": True}))
    assert made["sharper_copy"] and wx(live) == calls + 1
    assert post(live, {"id": "nosuchcode00", "template": "a4"}).status_code == 404
    bad = post(live, {"path": "pages/shop/index", "scene": "s=1", "template": "a4", "footer": "{store}"})
    assert bad.status_code == 400 and "{store}" in bad.json()["msg"]
    assert post(live, {"path": "pages/x", "template": "a4", "colour": "red"}).status_code == 400
    assert post(live, {"path": "pages/shop/index", "scene": "s=1", "logo": "not base64!"}).status_code == 400
    with httpx.Client(trust_env=False) as client:
        assert client.post(live.url + "/api/posters", json={"id": code["id"]}).status_code == 401


def test_a_logo_goes_in_base64_and_makes_its_own_poster(live: Live) -> None:
    logo = io.BytesIO()
    Image.new("RGB", (240, 240), "#E53935").save(logo, "PNG")
    plain = ok(post(live, {"path": "pages/shop/index", "scene": "s=90", "template": "sticker-60"}))
    body = ok(post(live, {"path": "pages/shop/index", "scene": "s=90", "template": "sticker-60",
                          "logo": base64.b64encode(logo.getvalue()).decode()}))
    assert body["reused"] is False and body["id"] != plain["id"] and body["code_id"] == plain["code_id"]
    assert live.get(body["data"], key=None).content != live.get(plain["data"], key=None).content


def test_openapi_documents_the_poster_route(live: Live) -> None:
    doc = live.get("/openapi.json", key=None).json()
    operation = doc["paths"]["/api/posters"]["post"]
    schema = {**operation["responses"]["200"]["content"]["application/json"]["schema"], "components": doc["components"]}
    made = post(live, {"path": "pages/doc/index", "scene": "d=9", "template": "moments"})
    jsonschema.Draft202012Validator(schema).validate(made.json())
    request = doc["components"]["schemas"]["PosterApiRequest"]
    assert request["additionalProperties"] is False and "template" in request["properties"]


def test_a_live_codes_poster_prints_its_key_and_registers_no_second_live_code(live: Live) -> None:
    """Issue 22: the sharper copy registered the live key again (500, and a stray pending row)."""
    code = ok(live.post({"path": "pages/shop/index?id=7", "live": True}))
    storage = live.service.storage
    record = storage.history.get(code["id"])
    assert record is not None and record.scene is not None and storage.live.for_code(record.id) is not None
    key = record.scene
    made = ok(post(live, {"id": code["id"], "template": "a4"}))
    assert made["code_id"] == code["id"] and made["sharper_copy"]
    scanned = scan(live.get(made["data"], key=None).content)
    assert (scanned.kind, scanned.page, scanned.scene) == ("B", live.service.settings.minpcode_router_page, key)
    # One live code for the key; the only other code carrying it is the poster's sharper copy, made and not live.
    listed = storage.history.recent(limit=500) + storage.history.copies(code["id"])  # a copy is listed under it
    same_key = [r for r in listed if r.scene == key]
    assert sorted(r.id for r in same_key) == sorted([code["id"], made["sharper_copy"]])
    copy = storage.history.get(made["sharper_copy"])
    assert copy is not None and copy.status.value == "done" and storage.live.for_code(copy.id) is None
    assert storage.live.get(key) is not None and storage.live.get(key).code_id == code["id"]  # type: ignore[union-attr]
    assert storage.history.pending() == []
    again = ok(post(live, {"id": code["id"], "template": "a4", "title": "again"}))
    assert again["sharper_copy"] == made["sharper_copy"]  # the copy is reused, not made again


def test_a_poster_body_over_its_limit_names_the_routes_limit(live: Live) -> None:
    """Issue 22: the answer said the code route's 16384 bytes while this route takes 1.5 MB."""
    with httpx.Client(trust_env=False, timeout=60) as client:
        too_big = client.post(live.url + "/api/posters", content=b"{" + b" " * 1_500_001 + b"}",
                              headers={"Authorization": f"Bearer {CMS_KEY}", "Content-Type": "application/json",
                                       "Accept-Language": "en"})
    assert too_big.status_code == 413
    assert "at most 1500000 bytes" in too_big.json()["msg"] and "16384" not in too_big.json()["msg"]
    fits = post(live, {"path": "pages/shop/index", "scene": "s=91", "template": "sticker-60", "title": "x" * 20_000})
    assert fits.status_code != 413  # over the code route's 16 KB, within this one's
    code_route = live.post({"path": "pages/a", "comments": "x" * 20_000})
    assert code_route.status_code == 413 and "16384" in code_route.json()["msg"]


HEALTHZ_WAIT = 2.5  # seconds a health check may wait while a logo or poster is drawn (in a worker)


@pytest.mark.slow  # a real `minpcode serve`, whose logos and posters are drawn in worker processes
def test_logo_bombs_are_drawn_off_the_event_loop_healthz_keeps_answering_and_memory_stays_flat(
        tmp_path: Path) -> None:
    """Issue 22: a 1.4 KB SVG held the event loop for a minute; a 152 KB PNG took the process to 960 MB."""
    with Served(tmp_path / "data", {"MINPCODE_API_KEYS": f"cms:{CMS_KEY}"}) as proc:
        def poster(logo: bytes, scene: str) -> httpx.Response:
            return proc.post("/api/posters", json={"path": "pages/shop/index", "scene": scene, "template": "a4",
                                                   "logo": base64.b64encode(logo).decode()},
                             headers={"Authorization": f"Bearer {CMS_KEY}"}, timeout=180)

        small = io.BytesIO()
        Image.new("RGB", (600, 600), "#E53935").save(small, "PNG")
        ok(poster(small.getvalue(), "s=1"))  # the worker's fork server started, a poster drawn: the baseline
        before = proc.rss()

        # The loop is never held for the drawing: an SVG bomb held it for its whole minute before. The bound leaves
        # room for a loaded CI machine (2 cores, 4 test workers), where a check can wait behind other processes.
        refused, wait = probing(proc.url, lambda: poster(svg_bomb(), "s=2"))
        assert wait < HEALTHZ_WAIT, f"/healthz waited {wait:.1f} s"
        assert refused.status_code == 400 and refused.json()["code"] == -1, refused.text
        msg = refused.json()["msg"]
        assert "标志处理超过 10 秒上限" in msg and "Reading the logo took longer than the 10-second limit" in msg

        # 39.7 Mpx is within the 40 Mpx a logo may have: the poster is made, in a worker
        big = pixel_logo()
        made, wait = probing(proc.url, lambda: poster(big, "s=3"))  # decoded on the loop it took 633 MB (below)
        assert wait < HEALTHZ_WAIT, f"/healthz waited {wait:.1f} s"
        body = ok(made)
        printed = Image.open(io.BytesIO(proc.http.get(body["data"]).content)).convert("RGB")
        # An A4 poster with the logo's blue at the code's centre (the sandbox's square stand-in for a round code
        # does not scan under a round code's logo, so it is not scanned here)
        assert printed.size == (2480, 3508) and printed.getpixel((1240, 1913)) == (30, 136, 229)
        assert proc.rss() - before < 60 * MB, (before, proc.rss())
        assert proc.peak() - before < 100 * MB, (before, proc.peak())  # it was 960 MB
        assert proc.get("/healthz").status_code == 200
