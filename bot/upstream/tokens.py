"""WeChat access tokens from ``stable_token`` (normal mode), one per app id, fetched in single flight.

Normal mode is idempotent on WeChat's side, so several processes may each call it without
invalidating each other (the classic ``/cgi-bin/token`` would). Within a process, concurrent
callers on a cold cache share one in-flight request.

That is why the token is cached per process and not in the database, even with several replicas on several
hosts: "普通模式，access_token 有效期内重复调用该接口不会更新 access_token", and near its end "新旧 access_token
都可用" for 5 minutes; only ``force_refresh`` (never sent here) invalidates the previous token
(https://developers.weixin.qq.com/minigame/dev/api-backend/open-api/access-token/auth.getStableAccessToken.html,
https://developers.weixin.qq.com/doc/service/api/base/api_getstableaccesstoken).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from pydantic import SecretStr

from bot.concurrency import SingleFlight
from bot.messages import wechat_error
from bot.text import clip
from bot.upstream.wire import json_body, send, with_backoff

# Refresh a little before WeChat says the token ends, so a call never carries a dying token.
EXPIRY_MARGIN = 60.0


class StableTokenSource:
    def __init__(self, http: httpx.AsyncClient, base_url: str, appid: str, secret: SecretStr,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + "/cgi-bin/stable_token"
        self.appid = appid
        self._secret = secret
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._flight: SingleFlight[str, str] = SingleFlight()
        self.fetches = 0

    async def get(self) -> str:
        if self._token and self._clock() < self._expires_at:
            return self._token
        return await self._flight.run(self.appid, self._fetch)

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (compare-and-swap: no refresh stampede)."""
        if self._token == token:
            self._token = None
            self._expires_at = 0.0

    async def _fetch(self) -> str:
        async def once() -> tuple[str, float]:
            self.fetches += 1
            body = {"grant_type": "client_credential", "appid": self.appid,
                    "secret": self._secret.get_secret_value(), "force_refresh": False}
            response = await send(self._http, "wechat", "POST", self._url, json=body)
            data = json_body(response.content) or {}
            if "access_token" not in data:
                raise wechat_error(int(data.get("errcode", -1)), str(data.get("errmsg", clip(response.text, 200))))
            return str(data["access_token"]), float(data.get("expires_in", 7200))

        token, expires_in = await with_backoff(once)
        self._token = token
        self._expires_at = self._clock() + max(0.0, expires_in - EXPIRY_MARGIN)
        return token
