"""Our client of WeCom's AI-bot gateway: connect out, subscribe, heartbeat, reconnect; send frames and wait
for their answers (https://developer.work.weixin.qq.com/document/path/101463).

Why our own, over ``websockets``, rather than a port of the official Node SDK: the Python packages are
young (the WeCom team's ``wecom-aibot-python-sdk`` 1.0.2 of March 2026 and a community ``wecom-aibot-sdk``)
and ship no type information; they dispatch callbacks through an event emitter with no hook to save a
message before it is handled, and reconnect without jitter. The protocol is small: ~200 lines here.

* **Connect and subscribe**: ``aibot_subscribe {bot_id, secret}``; the gateway answers
  ``{headers: {req_id}, errcode, errmsg}``. Connected: one log line. Refused: one log line saying what to
  fix (said once, not at every retry), and retries at the slowest pace (the secret may be fixed in the
  admin console meanwhile).
* **Heartbeat**: a ``ping`` every :data:`~.protocol.HEARTBEAT` seconds; :data:`~.protocol.MISSED_PINGS`
  unanswered in a row and the connection is closed and made again.
* **Reconnect**: exponential backoff from 1 s to 30 s with full jitter, so a fleet (or a gateway restart)
  does not come back in lockstep; reset once subscribed.
* **Displaced**: a ``disconnected_event`` means another process subscribed as this bot (one connection per
  bot): logged, and not fought over (no reconnect), like the official SDK.
* **Sending** (:meth:`Gateway.call`): frames for one ``req_id`` go one at a time, each waiting for its
  answer (the SDK's rule: a stream's refreshes keep their order); a frame whose connection dropped is
  sent again on the next connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from bot.concurrency import KeyedLocks
from bot.errors import UpstreamError

from . import protocol as p

log = logging.getLogger("minpcode.wecom.aibot")

BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0
RESEND_WAIT = 60.0  # how long a frame waits for a connection before its sender is told it failed

OnCallback = Callable[[dict[str, Any]], None]


class GatewayRefused(UpstreamError):
    """The gateway answered a frame with a non-zero errcode."""

    code_name = "wecom_aibot_refused"

    def __init__(self, cmd: str, errcode: int, errmsg: str) -> None:
        super().__init__("wecom_aibot", errcode, f"企业微信拒绝了 {cmd}（{errcode}）。", f"WeCom refused {cmd} ({errcode}).",
                         errmsg)
        self.cmd, self.errcode, self.errmsg = cmd, errcode, errmsg


class GatewayUnreachable(UpstreamError):
    code_name = "wecom_aibot_unreachable"

    def __init__(self) -> None:
        super().__init__("wecom_aibot", None, "暂时连不上企业微信。", "WeCom cannot be reached just now.")


class Gateway:
    """One long connection for one bot. ``on_callback`` gets each pushed frame and must return quickly."""

    def __init__(self, url: str, bot_id: str, secret: SecretStr, on_callback: OnCallback, *,
                 heartbeat: float = p.HEARTBEAT, ack_timeout: float = p.ACK_TIMEOUT,
                 backoff_first: float = BACKOFF_FIRST, backoff_cap: float = BACKOFF_CAP,
                 rng: Callable[[], float] = random.random) -> None:
        self.url, self.bot_id, self._secret = url, bot_id, secret
        self.on_callback = on_callback
        self.heartbeat, self.ack_timeout = heartbeat, ack_timeout
        self.backoff_first, self.backoff_cap, self.rng = backoff_first, backoff_cap, rng
        self.state = "stopped"  # connecting | connected | refused | displaced | stopped
        self.since = time.time()
        self.connects = 0
        self.failures = 0
        self._ws: ClientConnection | None = None
        self._up = asyncio.Event()
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._order: KeyedLocks[str] = KeyedLocks()
        self._task: asyncio.Task[None] | None = None
        self._refusal_said = False

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._set("connecting")
        self._task = asyncio.create_task(self._run(), name="wecom-aibot-gateway")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        self._set("stopped")

    @property
    def connected(self) -> bool:
        return self.state == "connected" and self._up.is_set()

    def _set(self, state: str) -> None:
        if state != self.state:
            self.state, self.since = state, time.time()

    def delay(self, attempt: int) -> float:
        """Full jitter over an exponential backoff: uniform in [0, min(cap, first·2^attempt)]."""
        return self.rng() * min(self.backoff_cap, self.backoff_first * 2 ** attempt)

    async def _run(self) -> None:
        attempt = 0
        while True:
            outcome = await self._session()
            if outcome == "displaced":
                return
            if outcome == "subscribed":
                attempt = 0  # it worked for a while: start the backoff again from the bottom
            wait = self.backoff_cap if outcome == "refused" else self.delay(attempt)
            attempt += 1
            if self.state != "refused":
                self._set("connecting")
            await asyncio.sleep(wait)

    async def _session(self) -> str:
        """One connection from connect to close: 'subscribed' (it was up), 'refused', 'displaced' or 'failed'."""
        try:
            async with connect(self.url, ping_interval=None, max_size=4 * 1024 * 1024, open_timeout=10,
                               proxy=None) as ws:
                refused = await self._subscribe(ws)
                if refused is not None:
                    self._refused(*refused)
                    return "refused"
                self._ws = ws
                self.connects += 1
                self._refusal_said = False
                self._set("connected")
                self._up.set()
                log.info("WeCom AI bot: connected to %s as bot %s", self.url, self.bot_id)
                beat = asyncio.create_task(self._beat(ws), name="wecom-aibot-heartbeat")
                try:
                    displaced = await self._read(ws)
                finally:
                    beat.cancel()
                    self._up.clear()
                    self._ws = None
                    self._fail_waiting()
                if displaced:
                    self._set("displaced")
                    log.warning("WeCom AI bot: another process connected as bot %s and took its messages: this one "
                                "stops; run one minpcode serve per bot", self.bot_id)
                    return "displaced"
                log.warning("WeCom AI bot: the connection closed (%s); connecting again",
                            ws.close_reason or ws.close_code)
                return "subscribed"
        except asyncio.CancelledError:
            raise
        except (OSError, InvalidHandshake, InvalidURI, ConnectionClosed, TimeoutError) as exc:
            self.failures += 1
            log.info("WeCom AI bot: cannot reach %s (%s); trying again", self.url, type(exc).__name__)
            return "failed"
        except Exception:  # a gateway answering what we cannot read: never the end of the reconnect loop
            self.failures += 1
            log.exception("WeCom AI bot: the connection to %s failed; trying again", self.url)
            return "failed"

    async def _subscribe(self, ws: ClientConnection) -> tuple[int, str] | None:
        req_id = p.new_req_id(p.SUBSCRIBE)
        await ws.send(json.dumps(p.frame(p.SUBSCRIBE, req_id, {"bot_id": self.bot_id,
                                                              "secret": self._secret.get_secret_value()})))
        while True:
            answer = json.loads(await asyncio.wait_for(ws.recv(), timeout=self.ack_timeout * 2))
            if (answer.get("headers") or {}).get("req_id") == req_id:
                code = int(answer.get("errcode") or 0)
                return None if code == 0 else (code, str(answer.get("errmsg") or ""))

    def _refused(self, errcode: int, errmsg: str) -> None:
        self.failures += 1
        self._set("refused")
        if not self._refusal_said:
            self._refusal_said = True
            log.error("WeCom AI bot: the gateway refused bot %s (errcode %s, %s): copy the Bot ID and Secret from "
                      "WeCom's admin console (管理后台 → 智能机器人 → API 模式 → 长连接) into WECOM_BOT_ID and "
                      "WECOM_BOT_SECRET; retrying every %.0f s", self.bot_id, errcode, errmsg, self.backoff_cap)

    async def _beat(self, ws: ClientConnection) -> None:
        missed = 0
        while True:
            await asyncio.sleep(self.heartbeat)
            if missed >= p.MISSED_PINGS:
                log.warning("WeCom AI bot: %d heartbeats unanswered; connecting again", missed)
                await ws.close(1001, "heartbeat lost")
                return
            missed += 1
            req_id = p.new_req_id(p.PING)
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._waiting[req_id] = future
            try:
                await ws.send(json.dumps(p.frame(p.PING, req_id)))
                await asyncio.wait_for(asyncio.shield(future), timeout=self.heartbeat)
                missed = 0
            except (TimeoutError, ConnectionClosed):
                pass
            finally:
                self._waiting.pop(req_id, None)

    async def _read(self, ws: ClientConnection) -> bool:
        """Read frames until the connection closes; True when the gateway said another connection took over."""
        try:
            async for raw in ws:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    log.warning("WeCom AI bot: a frame that is not JSON was ignored")
                    continue
                if not isinstance(frame, dict):
                    continue
                cmd = frame.get("cmd")
                if cmd in p.CALLBACKS:
                    if ((frame.get("body") or {}).get("event") or {}).get("eventtype") == "disconnected_event":
                        return True
                    self.on_callback(frame)
                    continue
                future = self._waiting.get(str((frame.get("headers") or {}).get("req_id") or ""))
                if future is not None and not future.done():
                    future.set_result(frame)
        except ConnectionClosed:
            pass
        return False

    def _fail_waiting(self) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionResetError("the connection closed"))

    # -- sending --------------------------------------------------------------------------------------------

    async def call(self, cmd: str, body: dict[str, Any], req_id: str | None = None) -> dict[str, Any]:
        """Send one frame and return the gateway's answer (its ``body``, or {}). Frames of one ``req_id`` go
        in order; a frame whose connection dropped before its answer is sent again on the next one (a
        repeat the gateway refuses is the caller's to judge). Raises :class:`GatewayRefused` on a non-zero
        errcode, :class:`GatewayUnreachable` after :data:`RESEND_WAIT` seconds without a connection."""
        req_id = req_id or p.new_req_id(cmd)
        async with self._order.hold(req_id):
            deadline = time.monotonic() + RESEND_WAIT
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or self.state in ("displaced", "stopped"):
                    raise GatewayUnreachable()
                try:
                    await asyncio.wait_for(self._up.wait(), timeout=left)
                except TimeoutError:
                    raise GatewayUnreachable() from None
                ws = self._ws
                if ws is None:
                    continue
                future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
                self._waiting[req_id] = future
                try:
                    await ws.send(json.dumps(p.frame(cmd, req_id, body), ensure_ascii=False))
                    answer = await asyncio.wait_for(future, timeout=self.ack_timeout)
                except (ConnectionClosed, ConnectionResetError):
                    continue  # sent again on the next connection
                except TimeoutError:
                    log.warning("WeCom AI bot: no answer to %s within %.0f s; sending it again", cmd, self.ack_timeout)
                    continue
                finally:
                    if self._waiting.get(req_id) is future:
                        del self._waiting[req_id]
                code = int(answer.get("errcode") or 0)
                if code:
                    raise GatewayRefused(cmd, code, str(answer.get("errmsg") or ""))
                return dict(answer.get("body") or {})


__all__ = ["Gateway", "GatewayRefused", "GatewayUnreachable"]
