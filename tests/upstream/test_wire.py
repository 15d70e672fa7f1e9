"""The wire: image-vs-error by bytes whatever Content-Type says, transport failures, bounded backoff."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.errors import (
    ConfigError,
    RateLimited,
    TokenInvalid,
    UpstreamBusy,
    UpstreamQuotaExhausted,
    UpstreamRejected,
)
from bot.media import JPEG_MAGIC, PDF_MAGIC, PNG_MAGIC
from bot.sandbox import SANDBOX_APPID, SANDBOX_SECRET, qr
from bot.sandbox.server import free_port
from bot.upstream.wechat import WeChatClient
from bot.upstream.wire import image_type, json_body, send, with_backoff
from tests.conftest import new_http

JSON_TYPE = "application/json; encoding=utf-8"
CODE_TEXT = qr.code_url(SANDBOX_APPID, "A", "pages/index/index?x=1")
JPEG = qr.render(CODE_TEXT, 300, "JPEG")
PNG = qr.render(CODE_TEXT, 300, "PNG", transparent=True)


def error_body(code: int, msg: str = "err") -> bytes:
    return json.dumps({"errcode": code, "errmsg": f"{msg} rid: 0a1b2c3d-0a1b2c3d-0a1b2c3d"}).encode()


class Liar:
    """A WeChat stand-in whose code endpoint answers a scripted list of (body, content type, status)
    in turn (the last one repeats), often with a Content-Type that lies about the body."""

    def __init__(self) -> None:
        self.script: list[tuple[bytes, str, int]] = []
        self.code_calls = 0
        self.token_calls = 0
        self.app = Starlette(routes=[
            Route("/cgi-bin/stable_token", self._token, methods=["POST"]),
            Route("/wxa/getwxacode", self._code, methods=["POST"]),
            Route("/slow", self._slow, methods=["GET"]),
            Route("/status/{code:int}", self._status, methods=["GET"]),
        ])

    async def _token(self, request: Request) -> Response:
        self.token_calls += 1
        # Even the token answer lies: JSON served as text/html.
        body = {"access_token": f"{self.token_calls:02d}_" + "t" * 40, "expires_in": 7200}
        return Response(json.dumps(body), media_type="text/html")

    async def _code(self, request: Request) -> Response:
        self.code_calls += 1
        body, content_type, status = self.script[min(self.code_calls, len(self.script)) - 1]
        return Response(body, status_code=status, media_type=content_type)

    async def _slow(self, request: Request) -> Response:
        await asyncio.sleep(1.0)
        return Response(b"late")

    async def _status(self, request: Request) -> Response:
        return Response(b"<html>oops</html>", status_code=request.path_params["code"], media_type="text/html")


@pytest.fixture
def liar(serve: Callable[[Any], str]) -> tuple[Liar, str]:
    fake = Liar()
    return fake, serve(fake.app)


@pytest.fixture
def client(http: httpx.AsyncClient, liar: tuple[Liar, str]) -> WeChatClient:
    return WeChatClient(http, liar[1], SANDBOX_APPID, SecretStr(SANDBOX_SECRET))


# ---- sniffing ---------------------------------------------------------------------------------------


def test_image_type_reads_magic_bytes_only() -> None:
    assert image_type(JPEG) == "image/jpeg" and JPEG.startswith(JPEG_MAGIC)
    assert image_type(PNG) == "image/png" and PNG.startswith(PNG_MAGIC)
    assert image_type(error_body(40001)) is None
    assert image_type(b"") is None
    assert image_type(b"\xff\xd8") is None  # too short to be sure
    assert image_type(b"GIF89a...") is None
    assert image_type(PDF_MAGIC + b"1.7\n") is None  # bot.media knows PDFs; an upstream code is never one


def test_json_body_only_accepts_json_objects() -> None:
    assert json_body(error_body(45009)) == {"errcode": 45009, "errmsg": "err rid: 0a1b2c3d-0a1b2c3d-0a1b2c3d"}
    assert json_body(b"  \n{\"errcode\": -1}\n") == {"errcode": -1}
    for not_an_object in (b"[1, 2]", b"\"text\"", b"<html/>", JPEG, b"", b"\xff\xfe{}"):
        assert json_body(not_an_object) is None


# ---- image vs error, whatever the Content-Type says -----------------------------------------------


@pytest.mark.parametrize(("body", "content_type", "mime"), [
    (JPEG, JSON_TYPE, "image/jpeg"),
    (JPEG, "application/json", "image/jpeg"),
    (PNG, "text/plain", "image/png"),
    (PNG, "image/jpeg", "image/png"),
    (JPEG, "application/octet-stream", "image/jpeg"),
])
async def test_an_image_is_an_image_whatever_the_header_says(
    liar: tuple[Liar, str], client: WeChatClient, body: bytes, content_type: str, mime: str,
    scan: Callable[[bytes], qr.ScannedCode],
) -> None:
    fake, _ = liar
    fake.script = [(body, content_type, 200)]
    result = await client.a_code("pages/index/index?x=1")
    assert result.mime == mime and result.image == body
    assert scan(result.image).page == "pages/index/index?x=1"
    assert fake.code_calls == 1


@pytest.mark.parametrize(("code", "content_type", "error_type"), [
    (45009, "image/jpeg", RateLimited),
    (40159, "image/png", UpstreamRejected),
    (45029, "application/octet-stream", UpstreamQuotaExhausted),
    (48001, "text/plain", ConfigError),
    (40129, JSON_TYPE, UpstreamRejected),
])
async def test_an_error_is_an_error_whatever_the_header_says(
    liar: tuple[Liar, str], client: WeChatClient, code: int, content_type: str, error_type: type[Exception],
) -> None:
    fake, _ = liar
    fake.script = [(error_body(code), content_type, 200)]
    with pytest.raises(error_type) as caught:
        await client.a_code("pages/index/index")
    assert getattr(caught.value, "code", None) == code
    assert fake.code_calls == 1  # none of these is retried


async def test_a_token_error_in_image_clothing_still_refreshes_once(liar: tuple[Liar, str], client: WeChatClient) -> None:
    fake, _ = liar
    fake.script = [(error_body(40001), "image/jpeg", 200), (JPEG, JSON_TYPE, 200)]
    result = await client.a_code("pages/index/index?x=1")
    assert result.mime == "image/jpeg"
    assert (fake.code_calls, fake.token_calls) == (2, 2)


async def test_busy_in_image_clothing_is_retried(liar: tuple[Liar, str], client: WeChatClient) -> None:
    fake, _ = liar
    fake.script = [(error_body(-1), "image/png", 200), (b"", "image/jpeg", 502), (PNG, "text/html", 200)]
    result = await client.a_code("pages/index/index?x=1")
    assert result.mime == "image/png" and fake.code_calls == 3


async def test_neither_image_nor_error_is_reported_not_saved(liar: tuple[Liar, str], client: WeChatClient) -> None:
    fake, _ = liar
    fake.script = [(b"<html><body>502 Bad Gateway</body></html>", "image/jpeg", 200)]
    with pytest.raises(UpstreamBusy) as caught:
        await client.a_code("pages/index/index")
    assert caught.value.code == "bad-body" and "502 Bad Gateway" in caught.value.raw
    assert "图片" in caught.value.zh and "image" in caught.value.en


async def test_endless_5xx_is_retried_a_bounded_number_of_times(liar: tuple[Liar, str], client: WeChatClient) -> None:
    fake, _ = liar
    fake.script = [(b"", "text/html", 503)]
    with pytest.raises(UpstreamBusy) as caught:
        await client.a_code("pages/index/index")
    assert fake.code_calls == 3 and "HTTP 503" in caught.value.en


# ---- send(): transport failures become UpstreamBusy -------------------------------------------------


async def test_connection_refused_is_busy() -> None:
    async with new_http() as http:
        with pytest.raises(UpstreamBusy) as caught:
            await send(http, "wechat", "GET", f"http://127.0.0.1:{free_port()}/")
    assert caught.value.code == "network" and "ConnectError" in caught.value.en
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_timeout_is_busy(liar: tuple[Liar, str]) -> None:
    async with new_http(timeout=0.1) as http:
        started = time.monotonic()
        with pytest.raises(UpstreamBusy) as caught:
            await send(http, "gio", "GET", liar[1] + "/slow")
    assert time.monotonic() - started < 0.9
    assert "timeout" in caught.value.en and "GrowingIO" in caught.value.en and "GrowingIO" in caught.value.zh


async def test_5xx_is_busy_for_wechat_but_left_to_the_gio_client(liar: tuple[Liar, str]) -> None:
    async with new_http() as http:
        with pytest.raises(UpstreamBusy):
            await send(http, "wechat", "GET", liar[1] + "/status/500")
        response = await send(http, "gio", "GET", liar[1] + "/status/500")
        assert response.status_code == 500
        assert (await send(http, "wechat", "GET", liar[1] + "/status/404")).status_code == 404


# ---- with_backoff(): only passing failures, a bounded number of times, capped delays ----------------


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def busy() -> UpstreamBusy:
    return UpstreamBusy("wechat", -1, "忙", "busy")


@pytest.mark.parametrize(("attempts", "base", "cap"), [(3, 0.2, 2.0), (6, 0.5, 2.0), (10, 1.0, 3.0)])
async def test_backoff_gives_up_after_attempts_with_jittered_capped_delays(attempts: int, base: float, cap: float) -> None:
    calls = 0

    async def always_busy() -> None:
        nonlocal calls
        calls += 1
        raise busy()

    sleeps = Sleeps()
    with pytest.raises(UpstreamBusy):
        await with_backoff(always_busy, attempts=attempts, base=base, cap=cap, sleep=sleeps)
    assert calls == attempts and len(sleeps.delays) == attempts - 1
    for n, delay in enumerate(sleeps.delays, start=1):
        ceiling = min(cap, base * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling


async def test_backoff_returns_the_first_success() -> None:
    answers: list[Any] = [busy(), busy(), "ok"]

    async def flaky() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    sleeps = Sleeps()
    assert await with_backoff(flaky, sleep=sleeps) == "ok"
    assert len(sleeps.delays) == 2


@pytest.mark.parametrize("error", [
    RateLimited("wechat", 45009, "限", "limited"),
    TokenInvalid("wechat", 40001, "失效", "invalid"),
    UpstreamRejected("wechat", 40159, "拒绝", "refused"),
    ValueError("not ours"),
])
async def test_backoff_never_retries_anything_but_busy(error: Exception) -> None:
    calls = 0

    async def fails() -> None:
        nonlocal calls
        calls += 1
        raise error

    sleeps = Sleeps()
    with pytest.raises(type(error)):
        await with_backoff(fails, sleep=sleeps)
    assert calls == 1 and sleeps.delays == []


async def test_tokens_in_request_urls_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import httpx

    from bot.upstream.wire import send

    async def app(scope, receive, send_):  # type: ignore[no-untyped-def]
        await send_({"type": "http.response.start", "status": 200, "headers": []})
        await send_({"type": "http.response.body", "body": b"{}"})

    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        await send(http, "wechat", "POST", "http://wx.test/wxa/getwxacode",
                   params={"access_token": "TOKEN-SHOULD-NOT-LEAK"})
    assert "HTTP Request" in caplog.text
    assert "TOKEN-SHOULD-NOT-LEAK" not in caplog.text and "access_token=***" in caplog.text
