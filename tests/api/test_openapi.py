"""The OpenAPI document states each rule the server enforces on a request, exactly: on every example below the
served document and the server give the same answer (refused for its shape, or not).

"Refused" is a 400 (or 413); anything else (200, or 404 for an id that does not exist) means the shape was
taken. The document is judged by jsonschema-rs, which reads patterns as ECMA-262 does (JSON Schema's regex
dialect: ``$`` is the end of the text). tests/api/test_fuzz.py runs schemathesis over the same document.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from pydantic import SecretStr

from bot.config import Settings
from bot.sandbox.server import ServerThread, free_port
from bot.server import create_app

KEY = "doc-5e2f9a0c7b1d4e63a8f2"
AUTH = {"Authorization": f"Bearer {KEY}"}


@dataclass
class Served:
    http: httpx.Client
    document: dict[str, Any]
    live_id: str

    def body_schema(self, path: str) -> Any:
        content = self.document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        return jsonschema_rs.validator_for({**content["schema"], "components": self.document["components"]},
                                           validate_formats=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = free_port()
    settings = Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=Path(tmp_path_factory.mktemp("doc")),
                        minpcode_public_url=f"http://127.0.0.1:{port}", minpcode_api_keys=SecretStr(f"doc:{KEY}"))
    with ServerThread(create_app(settings), port=port) as server, \
            httpx.Client(base_url=server.url, headers=AUTH, timeout=60, trust_env=False) as http:
        live = http.post("/api/weapp/qrcode", json={"path": "pages/doc/index", "live": True}).json()
        assert live["code"] == 0, live
        yield Served(http=http, document=http.get("/openapi.json").json(), live_id=live["id"])


def _taken(response: httpx.Response) -> bool:
    """The server took the request's shape: not refused with a 400 (or 413)."""
    assert response.status_code < 500, response.text
    return response.status_code not in (400, 413)


CODE_BODIES: list[tuple[dict[str, Any], bool]] = [  # (body, the server takes its shape)
    ({"path": "/pages/a"}, True),
    ({"path": ""}, False),  # path may not be empty ...
    ({"path": "   "}, False),
    ({"path": " / "}, False),  # ... nor only the one "/" that is dropped
    ({"path": "pages/b", "live": True}, True),
    ({"path": "pages/b", "live": "yes"}, False),  # live is a JSON boolean
    ({"path": "pages/b", "live": 1}, False),
    ({"path": "pages/c", "scene": "c=1", "check_path": "false"}, False),
    ({"path": "pages/c", "width": "500"}, False),
    ({"path": "pages/c", "width": 500}, True),
    ({"path": "pages/a\x01"}, False),  # control characters, in every text
    ({"path": "pages/a\x85"}, False),
    ({"path": "pages/a\n"}, False),
    ({"path": "pages/a", "scene": "a=1\x7f"}, False),
    ({"path": "pages/a", "scene": "a=1\t", "long_scene": "key"}, False),
    ({"path": "pages/d", "live": True, "expires": "2100-01-01"}, True),  # a date is a full-date string
    ({"path": "pages/d", "live": True, "expires": 4102444800}, False),
    ({"path": "pages/d", "live": True, "expires": "2100-01-01T00:00:00"}, False),
]


@pytest.mark.parametrize(("body", "taken"), CODE_BODIES, ids=[repr(b) for b, _ in CODE_BODIES])
def test_make_code_document_and_server_agree(served: Served, body: dict[str, Any], taken: bool) -> None:
    assert served.body_schema("/api/weapp/qrcode").is_valid(body) is taken
    assert _taken(served.http.post("/api/weapp/qrcode", json=body)) is taken


POSTER_BODIES: list[tuple[dict[str, Any], bool]] = [
    ({}, False),  # an id or a path is needed
    ({"template": "moments"}, False),
    ({"id": "", "template": "moments"}, False),
    ({"id": None, "path": None}, False),
    ({"id": "zzzzzzzzzzzz"}, True),  # taken, then not found (404)
    ({"id": "", "path": "pages/poster/index", "template": "moments"}, True),
    ({"path": "pages/poster/index", "template": "moments"}, True),
    ({"path": "/"}, False),
    ({"id": "zzzzzzzzzzzz", "bleed": "yes"}, False),
    ({"id": "zzzzzzzzzzzz", "sharper": 0}, False),
    ({"id": "zzzzzzzzzzzz", "title": "x\x01"}, False),
    ({"id": "zzzzzzzzzzzz", "subtitle": "x\x9f"}, False),
    ({"id": "zzzzzzzzzzzz", "footer": "\x00"}, False),
    ({"id": "zzzzzzzzzzzz", "template": "a4\n"}, False),
    ({"id": "zzzzzzzz\x1bzz"}, False),
    ({"id": "zzzzzzzzzzzz", "logo": "not base64!"}, False),
]


@pytest.mark.parametrize(("body", "taken"), POSTER_BODIES, ids=[repr(b) for b, _ in POSTER_BODIES])
def test_make_poster_document_and_server_agree(served: Served, body: dict[str, Any], taken: bool) -> None:
    assert served.body_schema("/api/posters").is_valid(body) is taken
    assert _taken(served.http.post("/api/posters", json=body)) is taken


DESTINATION_BODIES: list[tuple[dict[str, Any], bool]] = [
    ({}, False),  # a page or paused is needed
    ({"page": None}, False),
    ({"paused": None}, False),
    ({"page": None, "paused": None}, False),
    ({"paused": True}, True),
    ({"paused": False}, True),
    ({"paused": "yes"}, False),
    ({"page": "pages/coupon/get?id=2"}, True),
    ({"page": "pages/coupon/get?id=2\x00"}, False),
    ({"page": "pages/coupon/get?id=2", "paused": None}, True),
    ({"page": " /pages/coupon/get?id=3 "}, True),  # spaces around it and one leading "/" are dropped
    ({"page": ""}, False),
    ({"page": "/"}, False),
    ({"page": "/?id=1"}, False),  # a query without a page
    ({"page": "pages/a b"}, False),
    ({"page": "pages/a？id=1"}, False),  # full-width
    ({"page": "pages/a?scancode_time=1"}, False),  # WeChat's reserved key
    ({"page": "p" * 1024}, True),
    ({"page": "p" * 1025}, False),
]


@pytest.mark.parametrize(("body", "taken"), DESTINATION_BODIES, ids=[repr(b) for b, _ in DESTINATION_BODIES])
def test_destination_document_and_server_agree(served: Served, body: dict[str, Any], taken: bool) -> None:
    path = "/api/codes/{code_id}/destination"
    assert served.body_schema(path).is_valid(body) is taken
    assert _taken(served.http.post(f"/api/codes/{served.live_id}/destination", json=body)) is taken


@pytest.mark.parametrize(("name", "value", "taken"), [("q", "spring", True), ("q", "a\x01", False),
                                                      ("requested_by", "api:doc\x7f", False)])
def test_history_query_document_and_server_agree(served: Served, name: str, value: str, taken: bool) -> None:
    parameter = next(p for p in served.document["paths"]["/api/codes"]["get"]["parameters"] if p["name"] == name)
    assert jsonschema_rs.validator_for(parameter["schema"]).is_valid(value) is taken
    assert _taken(served.http.get("/api/codes", params={name: value})) is taken


@pytest.mark.parametrize(("value", "taken"), [("true", True), ("false", True), ("yes", False), ("1", False),
                                             ("True", False)])
def test_a_query_boolean_is_true_or_false_as_the_document_says(served: Served, value: str, taken: bool) -> None:
    parameter = next(p for p in served.document["paths"]["/api/codes"]["get"]["parameters"] if p["name"] == "mine")
    # OpenAPI writes a boolean query parameter (style form) as true or false.
    document_takes = value in ("true", "false") and jsonschema_rs.validator_for(parameter["schema"]).is_valid(
        value == "true")
    assert document_takes is taken
    assert _taken(served.http.get("/api/codes", params={"mine": value})) is taken


def test_refusals_say_what_to_fix(served: Served) -> None:
    """The stricter rules are refused in our words: a JSON boolean, and control characters named."""
    live = served.http.post("/api/weapp/qrcode", json={"path": "pages/b", "live": "yes"},
                            headers={"Accept-Language": "en"}).json()
    assert live["code"] == -1 and "live must be true or false" in live["msg"]
    title = served.http.post("/api/posters", json={"id": "zzzzzzzzzzzz", "title": "x\x01"},
                             headers={"Accept-Language": "en"}).json()
    assert "title cannot contain control characters" in title["msg"]
    scene = served.http.post("/api/weapp/qrcode", json={"path": "pages/a", "scene": "a\x01"}).json()
    assert scene["code"] == 3002
    blank = served.http.post("/api/weapp/qrcode", json={"path": " / "}).json()
    assert blank["code"] == 3001


def test_the_visitor_is_cut_not_refused_as_the_document_says(served: Served) -> None:
    live = served.http.get(f"/api/codes/{served.live_id}").json()["data"]
    key = live["scene"]
    parameter = next(p for p in served.document["paths"]["/api/scenes/{key}"]["get"]["parameters"]
                     if p["name"] == "visitor")
    long_visitor = "v" * 300
    assert jsonschema_rs.validator_for(parameter["schema"]).is_valid(long_visitor)
    assert served.http.get(f"/api/scenes/{key}", params={"visitor": long_visitor}).status_code == 200


def test_every_api_answer_the_server_gives_is_documented(served: Served) -> None:
    """The statuses of the API's envelope (handlers/api/errors.py) that each operation can give are documented."""
    paths = served.document["paths"]
    for path, method, statuses in [
        ("/api/weapp/qrcode", "post", {"200", "400", "401", "403", "409", "413", "500", "502", "503"}),
        ("/api/posters", "post", {"200", "400", "401", "403", "404", "409", "413", "500", "502", "503"}),
        ("/api/codes", "get", {"200", "400", "401", "403", "500", "503"}),
        ("/api/codes/{code_id}", "get", {"200", "401", "403", "404", "500", "503"}),
        ("/api/codes/{code_id}/destination", "post", {"200", "400", "401", "403", "404", "413", "500", "503"}),
        ("/api/scenes/{key}", "get", {"200", "404", "429", "500", "503"}),
    ]:
        assert statuses <= set(paths[path][method]["responses"]), (path, method)
    big = served.http.post(f"/api/codes/{served.live_id}/destination", content=b'{"page": "' + b"a" * 20000 + b'"}')
    assert big.status_code == 413 and big.json()["code"] == -1
