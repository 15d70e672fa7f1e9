"""Posters in the SQLite store: rendered once per key, listed per code, team templates, default logo."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pypdf
import pytest
from PIL import Image

from bot.models import CodeRequest, CodeType, Requester
from bot.posters import PosterRequest, find_template, record_values, render_poster, team_template
from bot.sandbox import SANDBOX_APPID, qr
from storage import Storage
from storage.migrations import MIGRATIONS


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> Iterator[Storage]:
    opened = Storage.open(tmp_path, database_url)
    yield opened
    opened.close()


def a_code(store: Storage, name: str = "shop-1001", scene: str = "s=1001") -> str:
    request = CodeRequest(type=CodeType.B, page="pages/shop/index", scene=scene, name=name)
    return store.history.save_pending(request, Requester(user_id="alice"), key=request.reuse_key(), app=SANDBOX_APPID,
                                      sandbox=True).record.id


def render(store: Storage, code_id: str, request: PosterRequest) -> tuple[str, bytes]:
    record = store.history.get(code_id)
    assert record is not None
    template = find_template(request.template)
    values = record_values(record)
    image = qr.render(qr.code_url(SANDBOX_APPID, "B", record.page, record.scene), 1280)
    data = render_poster(image, record.type, template, request.fields, record_values=values, fmt=request.format)
    return request.key(code_id, template.fingerprint(), values), data


def test_a_poster_round_trips_and_is_found_by_its_key(store: Storage, scan: Callable[[bytes], qr.ScannedCode]) -> None:
    code_id = a_code(store)
    request = PosterRequest.parse({"template": "a4", "title": "春季大促", "footer": "{name}"})
    key, data = render(store, code_id, request)
    assert store.posters.find(key) is None
    saved = store.posters.save(code_id, key, template="a4", fmt="png", data=data, mime=request.mime,
                               width_px=2480, height_px=3508, dpi=300, request=request.model_dump(), created_by="alice")
    found = store.posters.find(key)
    assert found is not None
    assert found == saved and found.code_id == code_id and found.size == len(data)
    assert found.request["title"] == "春季大促" and found.created_by == "alice"
    assert store.posters.data(found) == data
    assert scan(store.posters.data(found)).scene == "s=1001"
    assert store.posters.get(saved.id) == saved
    assert len(saved.id) == 12


def test_the_same_key_is_stored_once(store: Storage) -> None:
    code_id = a_code(store)
    request = PosterRequest.parse({"template": "sticker-60", "title": "扫码", "format": "pdf"})
    key, data = render(store, code_id, request)
    results: list[str] = []

    def save() -> None:
        results.append(store.posters.save(code_id, key, template="sticker-60", fmt="pdf", data=data,
                                          mime="application/pdf", width_px=709, height_px=709, dpi=300,
                                          request=request.model_dump()).id)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and store.posters.count() == 1
    assert store.images.count() == 1
    found = store.posters.find(key)
    assert found is not None
    page = pypdf.PdfReader(io.BytesIO(store.posters.data(found))).pages[0]
    assert round(float(page.mediabox.width), 2) == 170.08


def test_posters_are_listed_per_code_newest_first(store: Storage) -> None:
    first, second = a_code(store), a_code(store, name="shop-1002", scene="s=1002")
    ids = []
    for title in ("一", "二", "三"):
        request = PosterRequest.parse({"template": "a4", "title": title})
        key, data = render(store, first, request)
        ids.append(store.posters.save(first, key, template="a4", fmt="png", data=data, mime="image/png",
                                      width_px=2480, height_px=3508, dpi=300, request=request.model_dump()).id)
    assert [p.id for p in store.posters.for_code(first)] == ids[::-1]
    assert store.posters.for_code(second) == []
    assert store.posters.counts([first, second, "nope"]) == {first: 3}


def test_a_poster_needs_a_real_code(store: Storage) -> None:
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
        store.posters.save("no-such-code", "k" * 64, template="a4", fmt="png", data=b"x", mime="image/png",
                           width_px=1, height_px=1, dpi=300, request={})


LAYOUT = json.dumps({"width": 100, "height": 100, "code": {"x": 20, "y": 20, "size": 60},
                     "texts": [{"field": "title", "box": {"x": 5, "y": 3, "w": 90, "h": 14}, "size": 24}]})


def art(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (600, 600), colour).save(out, "PNG")
    return out.getvalue()


def test_team_templates_are_saved_replaced_listed_and_deleted(store: Storage) -> None:
    saved = store.posters.save_template("spring", LAYOUT, art("#FFEEDD"), "image/png", created_by="admin")
    assert saved.name == "spring" and saved.layout == LAYOUT and saved.background_sha256
    store.posters.save_template("autumn", LAYOUT)
    replaced = store.posters.save_template("spring", LAYOUT, art("#DDEEFF"), "image/png", created_by="admin2")
    assert replaced.created_at == saved.created_at and replaced.updated_at >= saved.updated_at
    assert replaced.background_sha256 != saved.background_sha256 and replaced.created_by == "admin2"
    assert [t.name for t in store.posters.list_templates()] == ["autumn", "spring"]
    background = store.posters.template_background(replaced)
    assert background == art("#DDEEFF")
    template = team_template(replaced.name, replaced.layout, background)
    assert template.pixel_size() == (1181, 1181)
    autumn = store.posters.find_template("autumn")
    assert autumn is not None and store.posters.template_background(autumn) is None
    assert store.posters.delete_template("autumn") and not store.posters.delete_template("autumn")
    assert store.posters.find_template("autumn") is None


def test_the_default_logo(store: Storage) -> None:
    assert store.posters.default_logo() is None
    digest = store.posters.put_logo(art("#123456"), "image/png")
    store.posters.set_default_logo(digest, "admin")
    assert store.posters.default_logo() == digest and store.posters.logo(digest) == art("#123456")
    store.posters.set_default_logo(None)
    assert store.posters.default_logo() is None


def test_the_migration_is_appended_and_applies_once(tmp_path: Path) -> None:
    assert "006_posters" in [name for name, _ in MIGRATIONS]
    Storage.open(tmp_path).close()
    again = Storage.open(tmp_path)
    tables = {r[0] for r in again.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    assert {"posters", "poster_templates", "poster_settings"} <= tables
    applied = [r[0] for r in again.db.execute("SELECT name FROM _migrations").fetchall()]
    assert applied.count("006_posters") == 1
    again.close()
