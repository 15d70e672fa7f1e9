"""bot/metrics.py: the registry, the fed gauges, and the upstream wire counting real calls to the emulators."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.errors import UpstreamRejected
from bot.metrics import METRICS, Metrics, endpoint_label, render
from bot.upstream.growingio import GrowingIOClient
from bot.upstream.wechat import WeChatClient
from bot.version import __commit__, __version__
from tests.conftest import Site

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(body: bytes | None = None) -> Samples:
    """Every sample of the page, parsed by prometheus-client's own parser (so the page must parse)."""
    text = (body if body is not None else render()[0]).decode("utf-8")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(page: Samples, name: str, **labels: str) -> float:
    return page.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_the_wire_counts_real_calls_errors_and_latency(wechat: Site, wechat_client: WeChatClient) -> None:
    before = samples()
    code = "/wxa/getwxacodeunlimit"
    await wechat_client.b_code("id=42", "pages/index/index")
    wechat.emu.inject(41030, path=code)  # "invalid page": a refusal, not retried
    with pytest.raises(UpstreamRejected):
        await wechat_client.b_code("id=43", "pages/nowhere/index")
    after = samples()
    delta = {key: after[key] - before.get(key, 0.0) for key in after}
    assert value(delta, "minpcode_upstream_calls_total", provider="wechat", endpoint=code) == 2
    assert value(delta, "minpcode_upstream_calls_total", provider="wechat", endpoint="/cgi-bin/stable_token") == 1
    assert value(delta, "minpcode_upstream_errors_total", provider="wechat", endpoint=code, code="41030") == 1
    assert value(delta, "minpcode_upstream_errors_total", provider="wechat", endpoint="/cgi-bin/stable_token",
                 code="41030") == 0
    assert value(delta, "minpcode_upstream_latency_seconds_count", provider="wechat", endpoint=code) == 2
    assert value(after, "minpcode_upstream_latency_seconds_bucket", provider="wechat", endpoint=code, le="+Inf") >= 2
    assert wechat.log.count(code) == 2  # what the counters say is what reached the emulator


async def test_growingio_calls_are_counted_with_the_project_folded(gio: Site, gio_client: GrowingIOClient) -> None:
    before = samples()
    await gio_client.products()
    after = samples()
    moved = {dict(k[1])["endpoint"]: after[k] - before.get(k, 0.0) for k in after
             if k[0] == "minpcode_upstream_calls_total" and ("provider", "gio") in k[1] and after[k] > before.get(k, 0.0)}
    assert list(moved.values()) == [1] and next(iter(moved)).startswith("/api/v1/projects/")
    assert next(iter(moved)).endswith("/meta/products")


def test_fed_gauges_are_read_at_scrape_time_and_a_broken_source_drops_only_itself() -> None:
    metrics = Metrics()
    used = {"wx1": 10}
    metrics.feed_quota(lambda: [(app, n, 100_000 - n) for app, n in used.items()])
    metrics.feed_rows(pending=lambda: 3, batch=lambda: {"done": 7, "failed": 1})
    metrics.codes.labels(type="B", provider="wechat", outcome="done").inc()
    page = samples(metrics.render()[0])
    assert value(page, "minpcode_quota_used", app="wx1") == 10 and value(page, "minpcode_quota_left", app="wx1") == 99_990
    assert value(page, "minpcode_pending_rows") == 3 and value(page, "minpcode_batch_rows", state="failed") == 1
    assert value(page, "minpcode_codes_total", type="B", provider="wechat", outcome="done") == 1
    used["wx1"] = 11
    assert value(samples(metrics.render()[0]), "minpcode_quota_used", app="wx1") == 11

    def broken() -> list[tuple[str, int, int]]:
        raise RuntimeError("database is locked")

    metrics.feed_quota(broken)
    page = samples(metrics.render()[0])
    assert not any(k[0].startswith("minpcode_quota") for k in page) and value(page, "minpcode_pending_rows") == 3
    metrics.ack_latency.labels(front_end="wecom").observe(0.2)
    metrics.resolver_scans.labels(outcome="found").inc()
    page = samples(metrics.render()[0])
    assert value(page, "minpcode_ack_latency_seconds_bucket", front_end="wecom", le="0.25") == 1
    assert value(page, "minpcode_resolver_scans_total", outcome="found") == 1
    assert metrics.render()[1].startswith("text/plain") and METRICS is not metrics


def test_endpoint_labels_stay_bounded() -> None:
    assert endpoint_label("/wxa/getwxacodeunlimit") == "/wxa/getwxacodeunlimit"
    assert endpoint_label("/v1/projects/AbC9x2/minplinks?x=1") == "/v1/projects/{id}/minplinks"
    assert endpoint_label("/qrcode/5f3a9e.png") == "/qrcode/{id}"
    assert endpoint_label("") == "/"


def test_build_info_names_the_running_version_and_commit() -> None:
    page = samples()
    # The tests run from a git checkout, so bot/version.py knows the commit (tests/cli/test_version.py checks
    # it against git); an installation that does not know it has commit="".
    assert __commit__
    assert [key for key in page if key[0] == "minpcode_build_info"] == [
        ("minpcode_build_info", (("commit", __commit__), ("version", __version__)))]
    assert value(page, "minpcode_build_info", version=__version__, commit=__commit__) == 1
