"""Access-token state of the WeChat emulator (getAccessToken and getStableAccessToken:
https://developers.weixin.qq.com/miniprogram/dev/server/API/mp-access-token).

Two isolated families per appid:

* classic (``/cgi-bin/token``): every fetch mints a token and supersedes the previous one, which
  keeps working for ``grace`` seconds (never past its own expiry), then answers 40001;
* stable (``/cgi-bin/stable_token``): normal mode hands everyone the same token with the
  *remaining* lifetime and rotates it in the last ``grace`` seconds (the old one lives on until
  its own expiry); force mode kills both current and previous at once, at most once per
  ``force_spacing`` seconds and ``force_per_day`` times a day, otherwise it quietly does not
  refresh (getStableAccessToken: 20 force refreshes a day, 30 s apart, "否则不会刷新",
  https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-access-token/getStableAccessToken.html;
  what it answers then is our assumption: we return the current token).
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.sandbox._wechat_errors import WeChatError

# Anything outside this shape is "malformed" (40014) rather than merely unknown (40001).
WELL_FORMED = re.compile(r"[0-9A-Za-z_-]{32,512}")
BEIJING = 8 * 3600


def beijing_day(now: float) -> int:
    """WeChat's daily quotas reset at midnight China time."""
    return int((now + BEIJING) // 86400)


@dataclass
class Token:
    value: str
    appid: str
    stable: bool
    expires_at: float
    dead_at: float = math.inf  # when a superseded / force-killed token stops working (40001)


@dataclass
class _StableState:
    current: Token | None = None
    previous: Token | None = None
    last_force_at: float | None = None
    force_day: int = -1
    forces_today: int = 0


@dataclass
class TokenStore:
    apps: dict[str, str]
    clock: Callable[[], float]
    ttl: float = 7200
    grace: float = 300
    force_spacing: float = 30
    force_per_day: int = 20
    _tokens: dict[str, Token] = field(default_factory=dict)
    _classic: dict[str, Token] = field(default_factory=dict)
    _stable: dict[str, _StableState] = field(default_factory=dict)

    def check_credentials(self, grant_type: object, appid: object, secret: object) -> str:
        """The appid, or the errcode the token endpoints give for these credentials."""
        if grant_type != "client_credential":
            raise WeChatError(40002)
        if not appid:
            raise WeChatError(41002)
        if not isinstance(appid, str) or appid not in self.apps:
            raise WeChatError(40013)
        if not secret:
            raise WeChatError(41004)
        if secret != self.apps[appid]:
            raise WeChatError(40125)
        return appid

    def _mint(self, appid: str, stable: bool, now: float) -> Token:
        # "86_..."-like opaque value, long enough that clients must not assume a short column.
        value = f"{secrets.randbelow(90) + 10}_{secrets.token_urlsafe(108)}"
        token = Token(value, appid, stable, expires_at=now + self.ttl)
        self._tokens[value] = token
        return token

    def remaining(self, token: Token) -> int:
        return max(0, math.ceil(token.expires_at - self.clock()))

    def classic(self, appid: str) -> Token:
        now = self.clock()
        previous = self._classic.get(appid)
        if previous is not None:
            previous.dead_at = min(previous.dead_at, now + self.grace)
        token = self._mint(appid, stable=False, now=now)
        self._classic[appid] = token
        return token

    def stable(self, appid: str, force: bool) -> Token:
        now = self.clock()
        state = self._stable.setdefault(appid, _StableState())
        if force and self._may_force(state, now):
            for old in (state.current, state.previous):
                if old is not None:
                    old.dead_at = min(old.dead_at, now)
            state.current = self._mint(appid, stable=True, now=now)
            state.previous = None
            return state.current
        current = state.current
        if current is None or current.dead_at <= now or current.expires_at - now < self.grace:
            # Early rotation: the old token is left alone and simply runs out at its own expiry.
            state.previous = current
            current = state.current = self._mint(appid, stable=True, now=now)
        return current

    def _may_force(self, state: _StableState, now: float) -> bool:
        day = beijing_day(now)
        if day != state.force_day:
            state.force_day, state.forces_today = day, 0
        if state.last_force_at is not None and now - state.last_force_at < self.force_spacing:
            return False
        if state.forces_today >= self.force_per_day:
            return False
        state.last_force_at = now
        state.forces_today += 1
        return True

    def check(self, value: str | None) -> str:
        """The appid a business call's token belongs to, or the errcode WeChat gives for it."""
        if value is None or value == "":
            raise WeChatError(41001)
        token = self._tokens.get(value)
        if token is None:
            raise WeChatError(40001 if WELL_FORMED.fullmatch(value) else 40014)
        now = self.clock()
        if now >= token.dead_at:
            raise WeChatError(40001)
        if now >= token.expires_at:
            raise WeChatError(42001)
        return token.appid

    def revoke(self, value: str) -> None:
        """Test helper: make one token answer 40001 from now on."""
        token = self._tokens.get(value)
        if token is not None:
            token.dead_at = min(token.dead_at, self.clock())
