"""A faithful local emulator of the GrowingIO Open API used for mini-program links
(https://help.growingio.com/v3/developer-manual/api-reference/query-productid/definition/minp-api) and of its
name rules (https://growingio.gitbook.io/old_docs/api/ads-tracking-api).

Routes (``{uid}`` = ``project_uid``):

    GET       /api/v1/projects/{uid}/meta/products
    GET/POST  /api/v1/projects/{uid}/meta/campaigns | channels | minplinks
    GET       /buckets/uploads/files/{n}/wxcode/{A|C}/{ms}/wxcode.jpg?sign=...&expires=...

Request checks, in order: fault injection → ``Authorization`` (401) → ``X-Client-Id`` (403) →
project uid (404) → ``rate_per_second`` (429 + ``Retry-After``) → validation (400).
Pass ``wechat=`` to make A/C codes spend that WeChat emulator's A+C quota for the product's spn.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import random
import secrets
import string
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox import qr
from bot.sandbox._gio_rules import (
    CODE_TYPES,
    GioError,
    Problem,
    bad_request,
    check_name,
    check_redirect,
    invalid,
    optional_str,
    required,
    tracking_url,
)
from bot.sandbox.faults import FaultQueue, delay
from bot.sandbox.identities import (
    GIO_ALIP_PRODUCT_ID,
    GIO_CLIENT_ID,
    GIO_PRODUCT_ID,
    GIO_PROJECT_UID,
    GIO_TOKEN,
    SANDBOX_APP_NAME,
    SANDBOX_APPID,
)
from bot.sandbox.wechat import WeChatEmulator, WeChatError

__all__ = ["GrowingIOEmulator", "GioError", "default_campaigns", "default_channels", "default_products"]

META = "/api/v1/projects/{uid}/meta/{resource}"
FILE = "/buckets/uploads/files/{n:int}/wxcode/{kind}/{ms:int}/wxcode.jpg"
SEED_TIME_MS = 1_700_000_000_000
_ID_CHARS = string.ascii_letters + string.digits


def default_products() -> list[dict[str, Any]]:
    return [
        {"id": GIO_PRODUCT_ID, "name": SANDBOX_APP_NAME, "displayName": "minpcode sandbox", "activated": True,
         "spn": SANDBOX_APPID, "urlSchema": "5bx0000000000001", "platform": "minp", "createdAt": SEED_TIME_MS},
        {"id": GIO_ALIP_PRODUCT_ID, "name": "沙盒支付宝小程序", "displayName": "alipay sandbox", "activated": True,
         "spn": "2021000000000001", "urlSchema": "5bx0000000000002", "platform": "alip",
         "createdAt": SEED_TIME_MS},
    ]


def default_campaigns() -> list[dict[str, Any]]:
    return [
        {"id": "SbxCmp01", "name": "双十一推广", "productId": GIO_PRODUCT_ID},
        {"id": "SbxCmp02", "name": "新品上市", "productId": GIO_PRODUCT_ID},
        {"id": "SbxCmp03", "name": "spring-sale"},
    ]


def default_channels() -> list[dict[str, Any]]:
    """``system: True`` marks GIO's predefined channels (slug ids); the flag is never served."""
    return [
        {"id": "jinritoutiao", "name": "今日头条", "system": True},
        {"id": "weibo", "name": "微博", "system": True},
        {"id": "SbxChn01", "name": "二维码推广"},
        {"id": "SbxChn02", "name": "线下地推"},
        {"id": "SbxChn03", "name": "wechat-moments"},
    ]


def _xml_error(status: int, code: str, message: str, **extra: str) -> Response:
    """Object-storage style error: the qrCode URL points at a bucket, not at the Open API."""
    fields = "".join(f"  <{key}>{value}</{key}>\n" for key, value in {"Code": code, "Message": message, **extra}.items())
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n{fields}</Error>\n'
    return Response(body, status, media_type="application/xml")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GrowingIOEmulator:
    def __init__(
        self,
        *,
        project_uid: str = GIO_PROJECT_UID,
        project_id: str | None = None,
        client_id: str = GIO_CLIENT_ID,
        tokens: Iterable[str] = (GIO_TOKEN,),
        products: list[dict[str, Any]] | None = None,
        campaigns: list[dict[str, Any]] | None = None,
        channels: list[dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
        rate_per_second: int | None = 10,
        qr_ttl: float = 300,
        wechat: WeChatEmulator | None = None,
        latency: float = 0.0,
        creator: tuple[str, str] = ("SbxUser1", "沙盒机器人"),
        seed: int | None = None,
        error_shape: str = "errors",
        require_client_id: bool = False,
        created_status: int = 200,
    ) -> None:
        self.project_uid = project_uid
        self.project_id = project_id or project_uid
        self.client_id = client_id
        self.tokens = set(tokens)
        self.products = products if products is not None else default_products()
        self.campaigns = campaigns if campaigns is not None else default_campaigns()
        self.channels = channels if channels is not None else default_channels()
        self.links: list[dict[str, Any]] = []
        self.clock = clock
        self.rate_per_second = rate_per_second  # None or 0 turns the limit off
        self.qr_ttl = qr_ttl
        self.wechat = wechat
        self.latency = latency
        self.creator = creator
        self.error_shape = error_shape  # the body shape of refusals (bot/sandbox/_gio_rules.py)
        # The current Open API document needs only Authorization; the older one also X-Client-Id.
        self.require_client_id = require_client_id
        # The documents show the created object but not the status: 200 (OUR ASSUMPTION) or 201.
        self.created_status = created_status
        self.calls: Counter[str] = Counter()
        self._faults: FaultQueue[GioError] = FaultQueue()
        self._rng = random.Random(seed)
        self._sign_key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._recent: deque[float] = deque()
        self._files: dict[int, dict[str, Any]] = {}
        self._next_file = 81624
        self.app = Starlette(routes=[
            Route(META, self._meta, methods=["GET", "POST", "PUT", "DELETE"]),
            Route(FILE, self._file, methods=["GET"]),
        ])

    # ---- test controls ----------------------------------------------------------------------

    def inject(self, status: int, code: str, message: str, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` Open-API calls (to ``path``: a full path or a tail like ``minplinks``)
        answer ``status`` with ``message`` in the emulator's ``error_shape`` (for "errors":
        ``{"message": message, "errors": [{"code": code, "message": message}]}``). A 2xx ``status``
        gives a success answer without the fields a client needs."""
        headers = {"Retry-After": "1"} if status in (429, 503) else {}
        self._faults.add(GioError(status, message, [{"code": code, "message": message}], headers), times, path)

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self._recent.clear()
        self._faults.clear()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- request plumbing -------------------------------------------------------------------

    async def _meta(self, request: Request) -> Response:
        with self._lock:
            self.calls[request.url.path] += 1
        await delay(self.latency)
        try:
            fault = self._faults.take(request.url.path)
            if fault is not None:
                raise fault
            self._authorize(request)
            resource = request.path_params["resource"]
            handler = self._handlers().get((request.method, resource))
            if handler is None:
                if resource in ("products", "campaigns", "channels", "minplinks"):
                    raise GioError(405, "Method Not Allowed", [{"code": "method_not_allowed", "message": "不支持的请求方法"}])
                raise GioError(404, "Not Found", [{"code": "not_found", "message": "接口不存在"}])
            body = await self._json(request) if request.method == "POST" else {}
            result = await handler(request, body)
            return JSONResponse(result, self.created_status if request.method == "POST" else 200)
        except GioError as error:
            return error.response(self.error_shape)

    def _handlers(self) -> dict[tuple[str, str], Callable[..., Any]]:
        return {
            ("GET", "products"): self._get_products,
            ("GET", "campaigns"): self._get_campaigns,
            ("POST", "campaigns"): self._post_campaign,
            ("GET", "channels"): self._get_channels,
            ("POST", "channels"): self._post_channel,
            ("GET", "minplinks"): self._get_links,
            ("POST", "minplinks"): self._post_link,
        }

    def _authorize(self, request: Request) -> None:
        auth = request.headers.get("authorization", "").strip()
        # GrowingIO's Authorization header is the bare token
        # (https://growingio.gitbook.io/v3/developer-manual/api-reference/authenticate);
        # a "Token " prefix is accepted too (our assumption).
        if auth[:6].lower() == "token ":
            auth = auth[6:].strip()
        if not auth or auth not in self.tokens:
            raise GioError(401, "Unauthorized")
        client_id = request.headers.get("x-client-id")
        # A wrong X-Client-Id is refused whenever one is sent (OUR ASSUMPTION); a missing one only
        # when the older document's rule is switched on.
        if (client_id is not None or self.require_client_id) and client_id != self.client_id:
            raise GioError(403, "Forbidden", [{"code": "forbidden", "message": "X-Client-Id 无效"}])
        if request.path_params["uid"] != self.project_uid:
            raise GioError(404, "Project not found", [{"code": "not_found", "message": "项目不存在"}])
        self._take_rate_slot()

    def _take_rate_slot(self) -> None:
        if not self.rate_per_second:
            return
        now = self.clock()
        with self._lock:
            while self._recent and self._recent[0] <= now - 1:
                self._recent.popleft()
            if len(self._recent) >= self.rate_per_second:
                wait = max(1, math.ceil(self._recent[0] + 1 - now))
                raise GioError(429, "Too Many Requests",
                               [{"code": "rate_limited", "message": f"请求过于频繁，每秒最多 {self.rate_per_second} 次"}],
                               {"Retry-After": str(wait)})
            self._recent.append(now)

    @staticmethod
    async def _json(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("Request body is not valid JSON", "请求体不是合法的 JSON") from None
        if not isinstance(body, dict):
            raise bad_request("Request body must be a JSON object", "请求体必须是 JSON 对象")
        return body

    def _new_id(self) -> str:
        taken = {c["id"] for c in self.campaigns} | {c["id"] for c in self.channels} | {x["id"] for x in self.links}
        while True:
            candidate = "".join(self._rng.choice(_ID_CHARS) for _ in range(8))
            if candidate not in taken:
                return candidate

    # ---- products, campaigns, channels ------------------------------------------------------

    async def _get_products(self, request: Request, body: dict[str, Any]) -> list[dict[str, Any]]:
        return [dict(p) for p in self.products]

    async def _get_campaigns(self, request: Request, body: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self.campaigns]

    async def _get_channels(self, request: Request, body: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:
            return [{"id": c["id"], "name": c["name"]} for c in self.channels]

    async def _post_campaign(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        problems: list[Problem] = []
        product_id = optional_str(body, "productId", problems)
        if product_id and not any(p["id"] == product_id for p in self.products):
            problems.append(Problem("productId", "unknown_product", "no such product in this project",
                                    "应用不存在或不属于当前项目"))
        with self._lock:
            name = required(body, "name", str, problems)
            if name is not None:
                check_name(name, {c["name"] for c in self.campaigns}, "campaign", "推广活动", problems)
            if problems:
                raise invalid(problems)
            campaign: dict[str, Any] = {"id": self._new_id(), "name": name}
            if product_id:
                campaign["productId"] = product_id
            self.campaigns.append(campaign)
            return dict(campaign)

    async def _post_channel(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        problems: list[Problem] = []
        with self._lock:
            name = required(body, "name", str, problems)
            if name is not None:
                # Unique including GIO's predefined channels (https://growingio.gitbook.io/old_docs/api/ads-tracking-api).
                check_name(name, {c["name"] for c in self.channels}, "channel", "渠道", problems)
            if problems:
                raise invalid(problems)
            channel = {"id": self._new_id(), "name": name}
            self.channels.append(channel)
            return dict(channel)

    # ---- minplinks --------------------------------------------------------------------------

    async def _get_links(self, request: Request, body: dict[str, Any]) -> list[dict[str, Any]]:
        # qrCode URLs are signed per answer, so a listing always hands out fresh, unexpired ones.
        with self._lock:
            return [self._present(link, str(request.base_url)) for link in self.links]

    async def _post_link(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            link = self._validate_link(body)
            if link["_file"] is not None:
                self._spend_wechat_quota(link)
            self.links.append(link)
            return self._present(link, str(request.base_url))

    def _validate_link(self, body: dict[str, Any]) -> dict[str, Any]:
        """A stored link (with private ``_`` keys) or a 400 listing every broken rule."""
        problems: list[Problem] = []
        name = required(body, "name", str, problems)
        product_id = required(body, "productId", str, problems)
        redirect = required(body, "redirectUrl", str, problems)
        campaign_id = required(body, "campaignId", str, problems)
        channel_id = required(body, "channelId", str, problems)
        build = body.get("buildQrCode")
        if build is None:
            problems.append(Problem("buildQrCode", "required", "is required", "buildQrCode 为必填项"))
        elif not isinstance(build, bool):
            problems.append(Problem("buildQrCode", "invalid_type", "must be a boolean", "buildQrCode 类型错误"))
        # codeType is "A码或C码" with no default given
        # (https://help.growingio.com/v3/developer-manual/api-reference/query-productid/definition/minp-api);
        # A when it is left out is our assumption.
        code_type = body.get("codeType") or "A"
        if code_type not in CODE_TYPES:
            problems.append(Problem("codeType", "invalid_code_type", "must be A or C", "codeType 只能是 A 或 C"))
        utm = {key: optional_str(body, key, problems) for key in ("utmMedium", "utmContent", "utmTerm", "comments")}
        if name is not None:
            check_name(name, {x["name"] for x in self.links}, "tracking link", "监测链接", problems)
        product = next((p for p in self.products if p["id"] == product_id), None)
        if product_id is not None and product is None:
            problems.append(Problem("productId", "unknown_product", "no such product in this project",
                                    "应用不存在或不属于当前项目"))
        elif product is not None and product.get("platform") != "minp":
            problems.append(Problem("productId", "unknown_product", "the product is not a WeChat mini program",
                                    "该应用不是微信小程序"))
        campaign = next((c for c in self.campaigns if c["id"] == campaign_id), None)
        if campaign_id is not None and campaign is None:
            problems.append(Problem("campaignId", "unknown_campaign", "no such campaign", "推广活动不存在"))
        channel = next((c for c in self.channels if c["id"] == channel_id), None)
        if channel_id is not None and channel is None:
            problems.append(Problem("channelId", "unknown_channel", "no such channel", "推广渠道不存在"))
        if redirect is not None:
            check_redirect(redirect, problems)
        if problems or product is None or campaign is None or channel is None or redirect is None:
            raise invalid(problems)
        link_id = self._new_id()
        now = self.now_ms()
        return {
            "id": link_id, "linkId": link_id, "name": name, "projectId": self.project_id,
            "spn": product["spn"], "trackingUrl": tracking_url(redirect, link_id), "redirectUrl": redirect,
            "campaignId": campaign["id"], "campaignName": campaign["name"],
            "channelId": channel["id"], "channelName": channel["name"], **utm,
            "status": "activated", "creatorId": self.creator[0], "creatorName": self.creator[1],
            "updaterId": self.creator[0], "updaterName": self.creator[1], "createdAt": now, "updatedAt": now,
            "_file": {"kind": code_type, "ms": now} if build else None,
        }

    def _spend_wechat_quota(self, link: dict[str, Any]) -> None:
        """GIO calls WeChat A or C for the app
        (https://help.growingio.com/v3/developer-manual/api-reference/query-productid/definition/minp-api),
        so WeChat's A+C lifetime cap applies
        (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/qr-code/createQRCode.html)."""
        file = link["_file"]
        if self.wechat is not None:
            try:
                self.wechat.issue_code(link["spn"], file["kind"], link["trackingUrl"])
            except WeChatError as error:
                if error.errcode == 45029:
                    raise GioError(400, "WeChat code quota of this mini program is used up (45029)", [
                        {"code": "bad_request", "message": "小程序码生成数量已达微信上限（45029）"}]) from None
                status = 500 if error.errcode == -1 else 400
                raise GioError(status, f"WeChat refused the code: {error.errcode} {error.errmsg}", [
                    {"code": "bad_request", "message": f"微信接口返回错误 {error.errcode}：{error.errmsg}"}]) from None
        file["n"] = self._next_file
        self._next_file += 1
        self._files[file["n"]] = {"kind": file["kind"], "ms": file["ms"], "spn": link["spn"],
                                  "text": link["trackingUrl"]}

    def _present(self, link: dict[str, Any], base_url: str) -> dict[str, Any]:
        """The public link object, fields in the documented order (qrCode just before status)."""
        file = link["_file"]
        out: dict[str, Any] = {}
        for key, value in link.items():
            if key == "status" and file is not None:
                out["qrCode"] = self._qr_url(base_url, file)
            if not key.startswith("_"):
                out[key] = value
        return out

    def _qr_url(self, base_url: str, file: dict[str, Any]) -> str:
        expires = self.now_ms() + int(self.qr_ttl * 1000)
        sign = quote(self._sign(file["n"], file["kind"], file["ms"], expires), safe="")
        return (f"{base_url.rstrip('/')}/buckets/uploads/files/{file['n']}/wxcode/{file['kind']}/"
                f"{file['ms']}/wxcode.jpg?sign={sign}&expires={expires}")

    # ---- qrCode downloads -------------------------------------------------------------------

    def _sign(self, n: int, kind: str, ms: int, expires: int) -> str:
        message = f"{n}/{kind}/{ms}/{expires}".encode()
        return base64.b64encode(hmac.new(self._sign_key, message, hashlib.sha256).digest()).decode()

    async def _file(self, request: Request) -> Response:
        with self._lock:
            self.calls[request.url.path] += 1
        await delay(self.latency)
        n, kind, ms = request.path_params["n"], request.path_params["kind"], request.path_params["ms"]
        record = self._files.get(n)
        if record is None or record["kind"] != kind or record["ms"] != ms:
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        sign, expires = request.query_params.get("sign", ""), request.query_params.get("expires", "")
        good = expires.isdigit() and hmac.compare_digest(sign.encode(), self._sign(n, kind, ms, int(expires)).encode())
        if not good:
            return _xml_error(403, "SignatureDoesNotMatch",
                              "The request signature we calculated does not match the signature you provided.")
        now = self.now_ms()
        if now >= int(expires):
            return _xml_error(403, "AccessDenied", "Request has expired", Expires=_iso(int(expires)), ServerTime=_iso(now))
        text = qr.code_url(record["spn"], kind, record["text"])
        image = await run_in_threadpool(qr.render, text, 430, "JPEG", False)
        return Response(image, media_type="image/jpeg")
