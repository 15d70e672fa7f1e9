"""The OpenAPI document and the server agree: schemathesis, driven by the document a real ``minpcode serve`` serves.

One ``serve`` process (tests/served.py) on the sandbox upstreams with one API key. Every operation of the
served ``/openapi.json`` gets schema-valid (positive) and schema-breaking (negative) inputs, with a fixed
seed (``derandomize``) and a bounded number of examples per operation, and every answer is checked:

- no input gives a 5xx (``not_a_server_error``);
- the status, content type, body and headers are the ones the document names (``status_code_conformance``,
  ``content_type_conformance``, ``response_schema_conformance``, ``response_headers_conformance``);
- an input the document forbids is refused with a 4xx (``negative_data_rejection``): the document says
  nothing the server does not enforce;
- where every rule fits JSON Schema, an input the document allows is accepted (``positive_data_acceptance``,
  2xx only; a live code's destination included): the server enforces nothing the document does not say.
  Making codes and posters is left out of
  that last check: WeChat's page rules depend on each other (a B page has no ``?query``, a path's limit is in
  UTF-8 bytes and depends on the code type) in ways a schema cannot state; ``tests/api/test_openapi.py``
  holds the document and the server to the same answer on each rule it does state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from handlers.api import openapi_document
from tests.served import Served

pytestmark = pytest.mark.slow

KEY = "fuzz-7c1e0a9b3d5f4e21a8b6"
AUTH = {"Authorization": f"Bearer {KEY}"}
# Few examples per operation: the code-making operations spend sandbox WeChat calls, and a poster is drawn
# in a worker process (seconds each on a busy 2-core machine), so the file stays near a minute or two.
MAX_EXAMPLES = 25
EXAMPLES = {"/api/posters": 6}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection]


@dataclass
class Target:
    schema: schemathesis.BaseSchema
    url: str
    live_id: str  # a live code made with this key: its record, destination, scans
    scene_key: str  # the live code's k= key
    image_id: str  # a code with an image
    poster: tuple[str, str]  # a stored poster's id and format


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with Served(Path(tmp) / "data", env={"MINPCODE_API_KEYS": f"fuzz:{KEY}"}) as served:
        with httpx.Client(base_url=served.url, headers=AUTH, timeout=30, trust_env=False) as http:
            live = http.post("/api/weapp/qrcode", json={"path": "pages/fuzz/index?id=1", "live": True}).json()
            image = http.post("/api/weapp/qrcode", json={"path": "pages/fuzz/index", "scene": "f=1"}).json()
            poster = http.post("/api/posters", json={"id": image["id"], "template": "moments"}).json()
        assert live["code"] == image["code"] == poster["code"] == 0, (live, image, poster)
        schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
        schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                        max_examples=MAX_EXAMPLES, deterministic=True,
                                        with_security_parameters=False)
        # A valid input is accepted: 2xx (or 304), never a refusal and never "not found" (the ids are real).
        schema.config.checks.positive_data_acceptance.expected_statuses = ["2xx", "3xx"]
        yield Target(schema=schema, url=served.url, live_id=live["id"], scene_key=live["scene"], image_id=image["id"],
                     poster=(poster["id"], poster["format"]))


# The operations, read from the same document built offline (schemathesis' own pytest plugin, ``from_fixture``,
# trips over pytest 9's nodes, so each operation is driven through its hypothesis strategy).
DOCUMENT = openapi_document()
# Where an operation takes an id, positive inputs name a real one, so a valid request must succeed.
REAL_IDS = {"/api/codes/{code_id}": "live", "/api/codes/{code_id}/destination": "live",
            "/api/codes/{code_id}/scans.csv": "live", "/codes/{code_id}.png": "image",
            "/posters/{poster_id}.{format}": "poster", "/api/scenes/{key}": "scene"}
# Making a code or a poster: WeChat's page rules are not all JSON Schema (see the module's docstring); a live
# code's routes neither (weights adding up to 100, a dated window not yet past, one page given twice).
NOT_ALL_SCHEMA = {"/api/weapp/qrcode", "/api/posters", "/api/codes/{code_id}/destination"}
OPERATIONS = [(path, method, mode) for path, ops in DOCUMENT["paths"].items() for method, op in ops.items()
              for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
              if mode is GenerationMode.POSITIVE or op.get("parameters") or op.get("requestBody")]


def _ids(target: Target, path: str) -> dict[str, Any] | None:
    kind = REAL_IDS.get(path)
    if kind == "live":
        return {"code_id": target.live_id}
    if kind == "image":
        return {"code_id": target.image_id}
    if kind == "poster":
        return {"poster_id": target.poster[0], "format": target.poster[1]}
    if kind == "scene":
        return {"key": target.scene_key}
    return None


@pytest.mark.parametrize(("path", "method", "mode"), OPERATIONS,
                         ids=[f"{m.upper()} {p} {mode.value}" for p, m, mode in OPERATIONS])
def test_the_served_document_and_the_server_agree(target: Target, path: str, method: str, mode: GenerationMode) -> None:
    operation = target.schema[path][method]
    checks = list(CHECKS)
    if mode is GenerationMode.POSITIVE and path not in NOT_ALL_SCHEMA:
        checks.append(positive_data_acceptance)
    # A body or query is refused for itself, not because the id is unknown: negative ones go to a real id too.
    spec = DOCUMENT["paths"][path][method]
    others = spec.get("requestBody") or any(p["in"] == "query" for p in spec.get("parameters", []))
    fixed = _ids(target, path) if mode is GenerationMode.POSITIVE or others else None
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)
    examples = EXAMPLES.get(path, MAX_EXAMPLES)

    @given(case=strategy)
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=target.url, headers=AUTH, checks=checks, timeout=30)

    run()


# schemathesis keeps strings short; this adds long, mixed and malformed bodies aimed at the scene rules.
_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=30, max_size=1100),
    st.text(alphabet="abcXYZ019=&_-.~!*()中文 %?/\x00\t", min_size=1, max_size=80),
    st.sampled_from(["k=0000000000", "k=", "/", "//pages/a", "pages/a?x=1", "pages/index/index"]),
)
_value = st.one_of(_text, st.none(), st.integers(), st.floats(allow_nan=False), st.booleans(),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_bodies = st.one_of(
    st.fixed_dictionaries({"path": _text}, optional={"scene": _text, "width": st.integers(200, 1400)}),
    st.dictionaries(st.sampled_from(["path", "scene", "width", "extra"]), _value, max_size=4),
    _value,
)


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(body=_bodies)
def test_code_requests_never_give_a_500(target: Target, body: object) -> None:
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    response = httpx.post(f"{target.url}/api/weapp/qrcode", content=raw, timeout=30, trust_env=False,
                          headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code < 500, (body, response.text)
    answer = response.json()
    assert set(answer) >= {"code", "msg", "data"}
    assert answer["code"] in (0, -1, 3001, 3002)
    assert (answer["code"] == 0) == (response.status_code == 200)
