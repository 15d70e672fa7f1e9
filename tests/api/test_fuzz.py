"""Fuzz the HTTP API from its own OpenAPI document (schemathesis) against the live server.

The server is ``create_app`` on a loopback port with the sandbox upstreams. Every operation gets
schema-valid and schema-breaking inputs, with a valid key (and schemathesis also retries without
one); no input may give a 500, and every answer must match the document (status, content type,
body schema, headers). Examples are few per operation so the run stays well under a minute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bot.config import Settings
from bot.sandbox.server import ServerThread, free_port
from bot.server import create_app
from handlers.api import openapi_document

KEY = "fuzz-7c1e0a9b3d5f4e21a8b6"
MAX_EXAMPLES = 60


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    port = free_port()
    config = Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=Path(tmp_path_factory.mktemp("fuzz")),
                      minpcode_public_url=f"http://127.0.0.1:{port}", minpcode_api_keys=SecretStr(f"fuzz:{KEY}"))
    with ServerThread(create_app(config), port=port) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                        max_examples=MAX_EXAMPLES, deterministic=True,
                                        with_security_parameters=False)
        yield schema


# schemathesis' own pytest plugin (``from_fixture``) trips over pytest 9's nodes, so each operation is
# driven here through its hypothesis strategy; the operations come from the same document, built offline.
# Operations without inputs have no negative cases.
DOCUMENT = openapi_document()
OPERATIONS = [(path, method, mode) for path, ops in DOCUMENT["paths"].items() for method, op in ops.items()
              for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
              if mode is GenerationMode.POSITIVE or op.get("parameters") or op.get("requestBody")]


@pytest.mark.parametrize(("path", "method", "mode"), OPERATIONS,
                         ids=[f"{m.upper()} {p} {mode.value}" for p, m, mode in OPERATIONS])
def test_no_input_gives_a_500_and_answers_match_the_document(
    api_schema: schemathesis.BaseSchema, path: str, method: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        # Schema-valid input may still be refused for reasons JSON Schema cannot say (a B page with a
        # ?query, a path over 128 bytes, an unknown id): those answers are documented 4xx, not 2xx.
        case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, excluded_checks=[positive_data_acceptance], timeout=30)

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


@settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(body=_bodies)
def test_code_requests_never_give_a_500(api_schema: schemathesis.BaseSchema, body: object) -> None:
    url = str(api_schema.raw_schema["servers"][0]["url"])
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    response = httpx.post(f"{url}/api/weapp/qrcode", content=raw, timeout=30, trust_env=False,
                          headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    assert response.status_code < 500, (body, response.text)
    answer = response.json()
    assert set(answer) >= {"code", "msg", "data"}
    assert answer["code"] in (0, -1, 3001, 3002)
    assert (answer["code"] == 0) == (response.status_code == 200)
