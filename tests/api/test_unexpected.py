"""A bug of ours meeting a request (issue 22): the answer, the access line, the traceback and /metrics
all carry what an operator needs to find it — the request id, the route.

No wire produces a bug on demand (the API's inputs are fuzzed in test_fuzz.py and none crashes), so one
service method is patched to raise; everything around it is the real app on a real loopback server.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot import logs
from bot.config import Settings
from bot.sandbox.server import ServerThread, free_port
from bot.server import create_app

KEY = "cms-unexpected-5b1e9c7d3a"


pytestmark = pytest.mark.usefixtures("root_logger_restored")


def responses(page: str, route: str, status: str) -> float:
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == "minpcode_http_responses_total" and sample.labels == {"route": route, "status": status}:
                return sample.value
    return 0.0


def test_an_unexpected_error_answers_500_in_the_envelope_with_its_request_id_logged_and_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("INFO", "text")
    port = free_port()
    settings = Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=tmp_path,
                        minpcode_public_url=f"http://127.0.0.1:{port}/", minpcode_api_keys=SecretStr(f"cms:{KEY}"))
    app = create_app(settings)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug nobody anticipated")

    app.state.service.history = broken
    with ServerThread(app, port=port) as server, httpx.Client(base_url=server.url, trust_env=False, timeout=30) as http:
        before = responses(http.get("/metrics").text, "/api/codes", "5xx")
        answer = http.get("/api/codes", params={"q": "x"}, headers={"X-API-Key": KEY, "X-Request-Id": "crash-7e3f01",
                                                                       "Accept-Language": "en"})
        page = http.get("/metrics").text
        assert http.get("/api/codes", headers={"X-API-Key": KEY}).status_code == 500  # and it keeps serving
        assert http.get("/healthz").status_code == 200
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "crash-7e3f01"
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["code"] == -1 and body["data"] is None
    assert "crash-7e3f01" in body["msg"] and body["msg"].startswith("Something went wrong") and "服务器" in body["msg"]
    assert "a bug nobody anticipated" not in body["msg"]  # the traceback is for the log, not the caller
    assert responses(page, "/api/codes", "5xx") == before + 1
    assert responses(page, "/metrics", "2xx") >= 1
    assert not any(s.labels.get("route", "").startswith("/api/codes?")
                   for f in text_string_to_metric_families(page) for s in f.samples)

    lines = capsys.readouterr().err.splitlines()
    access = [line for line in lines if "minpcode.access" in line and "[rid=crash-7e3f01]" in line]
    assert any('"GET /api/codes" 500 ' in line for line in access), lines
    traceback = [line for line in lines if "[rid=crash-7e3f01]" in line and "RuntimeError: a bug nobody anticipated" in line]
    assert len(traceback) == 1, lines  # logged once, under the request's id
    assert not any("[rid=-]" in line and "Traceback" in line for line in lines), lines


def test_an_unexpected_error_outside_the_api_answers_bilingual_text_with_the_id(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=tmp_path,
                        minpcode_public_url=f"http://127.0.0.1:{port}/")
    app = create_app(settings)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug nobody anticipated")

    app.state.service.image = broken
    with ServerThread(app, port=port) as server:
        answer = httpx.get(server.url + "/codes/abcdefabcdef.png", headers={"X-Request-Id": "crash-png-4242"},
                           trust_env=False, timeout=30)
    assert answer.status_code == 500 and answer.headers["x-request-id"] == "crash-png-4242"
    assert answer.text.startswith("服务器内部出错") and "crash-png-4242" in answer.text and "Something went wrong" in answer.text
