"""``/healthz`` (the process runs), ``/readyz`` (it can do its work) and ``/metrics`` (Prometheus).

    alive(service)      -> {"ok": True, "version": ..., "sandbox": ..., "pending": ...}
    ready(service)      -> (ok, {"ok": ..., "database": ..., "upstreams": {...}})
    routes(service)     -> the three routes, for the process to mount

``/metrics`` is off (404) unless ``MINPCODE_METRICS_TOKEN`` is set — then ``Authorization: Bearer
<token>`` is required from everyone — or the request comes straight from loopback (no proxy header:
a reverse proxy on the same host would otherwise make every outside request look local).

Ready means every long connection a front-end keeps is subscribed (the WeCom AI bot's, shown under
``gateways`` with its state), the database answers and can keep what is written (its file is still the one opened, not
deleted or replaced; its disk is not full: storage/writes.py) and every configured upstream (WeChat, GrowingIO, the WeCom app)
answered its last call — a refusal is an answer; a timeout, a refused connection or a 5xx is not. An
upstream not called yet since start counts as ready ("unknown"): readiness must not spend a call.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import metrics
from bot.metrics import METRICS
from bot.net import is_loopback
from bot.service import Service
from bot.version import __commit__, __version__
from storage.engine import database_errors

log = logging.getLogger("minpcode.health")


def alive(service: Service) -> dict[str, Any]:
    return {"ok": True, "version": __version__, "commit": __commit__, "sandbox": service.sandbox,
            "pending": service.pending_count()}


def configured_upstreams(service: Service) -> list[str]:
    settings = service.settings
    # In the sandbox WeChat and GrowingIO are emulators answering in-process: nothing to reach.
    wanted = [] if service.sandbox else [name for name, on in (("wechat", service.upstream.wechat is not None),
                                                                ("gio", service.upstream.gio is not None)) if on]
    if settings.wecom_corp_id and settings.wecom_secret:
        wanted.append("wecom")
    return wanted


def ready(service: Service) -> tuple[bool, dict[str, Any]]:
    try:
        service.storage.ping()
        database: dict[str, Any] = {"ok": True}
    except database_errors() as exc:
        log.warning("readyz: the database does not answer: %s", exc)
        database = {"ok": False, "error": type(exc).__name__}
    unwritable = service.storage.unwritable()  # the storage logs it itself, once
    if unwritable is not None:
        database = {"ok": False, "error": unwritable.cause, "message": unwritable.en}
    seen = METRICS.reachability()
    upstreams: dict[str, dict[str, Any]] = {}
    for name in configured_upstreams(service):
        if name not in seen:
            upstreams[name] = {"ok": True, "last_call": "unknown"}
            continue
        answered, when, why = seen[name]
        upstreams[name] = {"ok": answered, "last_call": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))}
        if not answered:
            upstreams[name]["error"] = why
    # a long connection a front-end keeps (the WeCom AI bot's) is ready once subscribed: until then its
    # people's messages wait at WeCom (connecting) or never come (refused credentials)
    gateways = {name: {"ok": state == "connected", "state": state,
                       "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))}
                for name, (state, since) in METRICS.gateways().items()}
    ok = database["ok"] and all(u["ok"] for u in upstreams.values()) and all(g["ok"] for g in gateways.values())
    body = {"ok": ok, "version": __version__, "commit": __commit__, "database": database, "upstreams": upstreams}
    if gateways:
        body["gateways"] = gateways
    return ok, body


_PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def metrics_allowed(request: Request, token: str | None) -> bool:
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
    host = request.client.host if request.client else ""
    return is_loopback(host) and not any(h in request.headers for h in _PROXY_HEADERS)


def feed(service: Service) -> None:
    """The figures ``/metrics`` reads from the database at scrape time: A/C quota, pending rows, batch rows.

    Fed while the service runs (the server's lifespan), and forgotten with :func:`unfeed` before it closes.
    """
    METRICS.feed_quota(lambda: [(q.app, q.used, q.left) for q in service.quota()])
    METRICS.feed_rows(pending=service.pending_count, batch=service.storage.batches.row_states)


def unfeed() -> None:
    METRICS.unfeed()


def routes(service: Service) -> list[BaseRoute]:
    secret = service.settings.minpcode_metrics_token
    token = secret.get_secret_value().strip() if secret is not None else None

    async def healthz(request: Request) -> Response:
        return JSONResponse(alive(service))

    async def readyz(request: Request) -> Response:
        ok, body = ready(service)
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics_page(request: Request) -> Response:
        if not metrics_allowed(request, token):
            return JSONResponse({"error": "not_found"}, status_code=404)
        body, content_type = metrics.render()
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"])]


__all__ = ["alive", "configured_upstreams", "feed", "metrics_allowed", "ready", "routes", "unfeed"]
