"""Prometheus metrics: one registry, the names below, and :func:`render` for ``GET /metrics``.

    from bot.metrics import METRICS, render
    METRICS.codes.labels(type="B", provider="wechat", outcome="done").inc()
    METRICS.ack_latency.labels(front_end="slack").observe(0.12)
    METRICS.feed_quota(lambda: [("wx123", 1200, 98800)])     # read at scrape time
    body, content_type = render()

The upstream wire (bot/upstream/wire.py) records every WeChat and GrowingIO call itself. Figures
that live in SQLite (quota, pending rows, batch rows) are not kept here: the process gives a function
at wiring time and it is called on each scrape, so the numbers are never stale. A function that fails
only drops its own figures from that scrape (the failure is logged), never the whole page.

Label values are bounded: HTTP answers are counted by route template and status class; endpoints are URL paths with id-like segments folded to ``{id}``, codes are
WeChat errcodes, HTTP statuses or a transport failure's name.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.models import CodeType
from bot.version import __commit__, __version__

__all__ = ["METRICS", "Metrics", "endpoint_label", "kind_label", "render"]

log = logging.getLogger("minpcode.metrics")

# Seconds. WeChat answers in tens of milliseconds to a few seconds; acks must beat Slack's 3 s, WeCom's 1 s.
UPSTREAM_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0)
ACK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)

QuotaRow = tuple[str, int, int]  # (mini program, used, left)
Reach = tuple[bool, float, str | None]  # (answered, when (epoch seconds), why not)
GatewayState = tuple[str, float]  # (connected | connecting | refused | displaced | stopped, since (epoch seconds))
_ID_SEGMENT = re.compile(r"\d")
_VERSION_SEGMENT = re.compile(r"v\d{1,2}")


def kind_label(raw: object) -> str:
    """The code type a request asked for, as a bounded label ("unknown" for anything else)."""
    kind = str(getattr(raw, "value", raw) or "").strip().upper()
    return {t.value.upper(): t.value for t in CodeType}.get(kind, "unknown")


def endpoint_label(path: str) -> str:
    """A URL path as a label: segments holding digits (ids, keys, file names) become ``{id}``."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    folded = ["{id}" if (_ID_SEGMENT.search(p) and not _VERSION_SEGMENT.fullmatch(p)) or len(p) > 40 else p
              for p in parts[:6]]
    return "/" + "/".join(folded)


class _Fed(Collector):
    """Gauges read from a function given later (``None``: the family is absent from the page)."""

    def __init__(self, build: Callable[[], Iterable[Metric]]) -> None:
        self._build = build

    def collect(self) -> Iterator[Metric]:
        try:
            yield from list(self._build())
        except Exception:  # a broken source must not take the other metrics down with it
            log.exception("a metrics source failed; its figures are left out of this scrape")

    def describe(self) -> Iterator[Metric]:
        return iter(())


class Metrics:
    """Every metric minpcode exposes, in its own registry (tests may make one each)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.codes = Counter("minpcode_codes", "Code requests finished, by code type, provider and outcome "
                             "(done, reused, failed, refused).", ["type", "provider", "outcome"], registry=r)
        self.upstream_calls = Counter("minpcode_upstream_calls", "HTTP calls to WeChat and GrowingIO.",
                                      ["provider", "endpoint"], registry=r)
        self.upstream_errors = Counter("minpcode_upstream_errors", "Upstream calls that failed: WeChat errcode, "
                                       "HTTP status, or the transport failure.",
                                       ["provider", "endpoint", "code"], registry=r)
        self.upstream_latency = Histogram("minpcode_upstream_latency_seconds", "Upstream call latency.",
                                          ["provider", "endpoint"], buckets=UPSTREAM_BUCKETS, registry=r)
        self.ack_latency = Histogram("minpcode_ack_latency_seconds", "Time to acknowledge a Slack or WeCom "
                                     "request (Slack allows 3 s, WeCom 1 s).", ["front_end"],
                                     buckets=ACK_BUCKETS, registry=r)
        self.resolver_scans = Counter("minpcode_resolver_scans", "GET /api/scenes/{key} and /q/{key} lookups: "
                                      "a person scanned a B code whose scene is a key (long parameters or a live "
                                      "code) or a live code's plain link (found or unknown key).", ["outcome"],
                                      registry=r)
        self.scans_found, self.scans_unknown = self.resolver_scans.labels("found"), self.resolver_scans.labels("unknown")
        self.scans_uncounted = Counter("minpcode_resolver_scans_uncounted", "Scans of live codes answered and not "
                                       "counted: beyond MINPCODE_RESOLVER_RATE a minute from one address for one "
                                       "code (rate), or asked by another mini program (other_app).", ["reason"],
                                       registry=r)
        self.http_responses = Counter("minpcode_http_responses", "HTTP answers by route template (\"unmatched\" when "
                                      "no route matched) and status class (2xx, 3xx, 4xx, 5xx).", ["route", "status"],
                                      registry=r)
        self.webhook_deliveries = Counter("minpcode_webhook_deliveries", "Webhook delivery attempts by outcome: "
                                          "delivered (2xx), retrying (failed, tried again later), failed (given "
                                          "up, or the endpoint removed).", ["outcome"], registry=r)
        # Which build answers, so a dashboard can tell a fleet mid-upgrade apart, and two builds of one version.
        # commit="" when the installation does not know it (bot/version.py): an empty label is no label in
        # PromQL, so `minpcode_build_info{commit=""}` finds them, and nothing pretends to a commit.
        self.build_info = Gauge("minpcode_build_info", "The running minpcode's version and commit; always 1.",
                                ["version", "commit"], registry=r)
        self.build_info.labels(__version__, __commit__ or "").set(1)
        self._quota: Callable[[], Iterable[QuotaRow]] | None = None
        self._pending: Callable[[], int] | None = None
        self._batch: Callable[[], Mapping[str, int]] | None = None
        self._reach: dict[str, Reach] = {}
        self._gateways: dict[str, Callable[[], GatewayState]] = {}
        r.register(_Fed(self._quota_families))
        r.register(_Fed(self._row_families))
        r.register(_Fed(self._gateway_families))

    # -- figures read at scrape time ---------------------------------------------------------------
    def feed_quota(self, source: Callable[[], Iterable[QuotaRow]] | None) -> None:
        """``source()`` → (mini program, A+C used, A+C left) for each mini program."""
        self._quota = source

    def feed_rows(self, pending: Callable[[], int] | None = None,
                  batch: Callable[[], Mapping[str, int]] | None = None) -> None:
        """``pending()`` → rows waiting for the upstream; ``batch()`` → batch rows by state. Each source is
        given on its own (the process feeds ``pending``, batches feed ``batch``); one left out is kept."""
        self._pending = pending or self._pending
        self._batch = batch or self._batch

    def feed_gateway(self, front_end: str, source: Callable[[], GatewayState]) -> None:
        """A long connection a front-end keeps (the WeCom AI bot's): ``source()`` → (state, since when), read
        at scrape time and by ``/readyz``."""
        self._gateways[front_end] = source

    def unfeed_gateway(self, front_end: str, source: Callable[[], GatewayState]) -> None:
        """Forget ``source`` (its front-end stopped), unless a newer one took its place meanwhile."""
        if self._gateways.get(front_end) == source:  # equal: the same front-end's bound method
            del self._gateways[front_end]

    def gateways(self) -> dict[str, GatewayState]:
        """front-end → (state, since) of each long connection: ``connected``, ``connecting``, ``refused``…"""
        return {name: source() for name, source in list(self._gateways.items())}

    def _gateway_families(self) -> Iterator[Metric]:
        found = self.gateways()
        if not found:
            return
        up = GaugeMetricFamily("minpcode_gateway_connected", "1 while a front-end's long connection is "
                               "subscribed (the WeCom AI bot's), else 0.", labels=["front_end"])
        for name, (state, _) in sorted(found.items()):
            up.add_metric([name], 1.0 if state == "connected" else 0.0)
        yield up

    def unfeed(self) -> None:
        """Forget every scrape-time source: their database is about to close, and reading a closed (or
        closing) connection from a scrape would crash, not fail."""
        self._quota = self._pending = self._batch = None

    def _quota_families(self) -> Iterator[Metric]:
        if self._quota is None:
            return
        used = GaugeMetricFamily("minpcode_quota_used", "A+C codes counted against the lifetime cap.",
                                 labels=["app"])
        left = GaugeMetricFamily("minpcode_quota_left", "A+C codes left before the lifetime cap.",
                                 labels=["app"])
        for app, spent, remaining in self._quota():
            used.add_metric([app], spent)
            left.add_metric([app], remaining)
        yield used
        yield left

    def _row_families(self) -> Iterator[Metric]:
        if self._pending is not None:
            yield GaugeMetricFamily("minpcode_pending_rows", "Code requests waiting for the upstream.",
                                    value=self._pending())
        if self._batch is not None:
            batch = GaugeMetricFamily("minpcode_batch_rows", "Batch rows by state.", labels=["state"])
            for state, count in sorted(self._batch().items()):
                batch.add_metric([state], count)
            yield batch

    # -- what the upstream wire calls --------------------------------------------------------------
    def upstream(self, provider: str, endpoint: str, seconds: float, error: str | None) -> None:
        self.upstream_calls.labels(provider, endpoint).inc()
        self.upstream_latency.labels(provider, endpoint).observe(seconds)
        if error is not None:
            self.upstream_errors.labels(provider, endpoint, error).inc()
        # A refusal (an errcode, a 4xx) is an answer; a transport failure or a 5xx is not.
        down = error is not None and (not error.lstrip("-").isdigit() or 500 <= int(error) <= 599)
        self.reached(provider, not down, error if down else None)

    def responded(self, route: str, status: int) -> None:
        """One HTTP answer: ``route`` is the route's template (``/api/codes/{code_id:str}``), never the raw
        path, so the label stays bounded whatever paths people send."""
        self.http_responses.labels(route, f"{status // 100}xx").inc()

    @contextlib.contextmanager
    def ack(self, front_end: str) -> Iterator[None]:
        """Time the block as ``front_end``'s acknowledgement of one request (Slack, WeCom)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ack_latency.labels(front_end).observe(time.perf_counter() - started)

    # -- /readyz: was each upstream reachable at its last call --------------------------------------
    def reached(self, provider: str, answered: bool, why: str | None = None) -> None:
        self._reach[provider] = (answered, time.time(), why)

    def reachability(self) -> dict[str, Reach]:
        """provider → (answered, when, why not) of its last call; absent until the first call."""
        return dict(self._reach)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


METRICS = Metrics()


def render() -> tuple[bytes, str]:
    """The process-wide metrics page, for ``GET /metrics``."""
    return METRICS.render()
