"""Webhook secrets at rest and URLs as shown, on both backends: no clear secret in the database (a row an earlier
version wrote clear is sealed when a service opens), a receiver still verifies every delivery, a database moved
without its key cannot sign and says so, and a token in an endpoint's URL is never listed or audited."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.errors import NotConfigured
from bot.models import Requester
from bot.server import open_service
from bot.service import Service
from storage import Storage
from tests.emulators.upstreams import Upstreams
from tests.webhooks.receiver import Receiver

ADMIN = Requester(chat="cli", user_id="ops", user_name="ops")
CLEAR = "an-old-clear-secret-0123456789"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def stored_secrets(service: Service) -> list[str]:
    """``webhook_endpoints.secret`` as the database holds it, read with plain SQL."""
    return [str(r[0]) for r in service.storage.db.execute("SELECT secret FROM webhook_endpoints").fetchall()]


async def test_no_secret_is_stored_clear_and_a_receiver_still_verifies(
        upstreams: Upstreams, tmp_path: Path, database_url: str | None, receiver: Receiver) -> None:
    settings = upstreams.settings(tmp_path, minpcode_database_url=database_url, minpcode_webhooks_allow_private=True)
    async with open_service(settings) as service:
        made = await service.webhooks.add(receiver.url, requester=ADMIN)
        given = await service.webhooks.add(receiver.url + "?given=1", ("batch.finished",), secret=CLEAR,
                                           requester=ADMIN)
        receiver.secret = made.secret
        (stored, stored_given) = stored_secrets(service)
        assert stored.startswith("v1:") and made.secret not in stored
        assert stored_given.startswith("v1:") and CLEAR not in stored_given and given.secret == CLEAR
        ping = await service.webhooks.test(made.endpoint.id, ADMIN)
        assert ping.state == "done"
        await service.webhooks.sender.start()
        try:
            await service.submit({"type": "B", "page": "pages/index/index", "scene": "id=7"}, ADMIN)
            got = await asyncio.to_thread(receiver.wait, 2)
        finally:
            await service.webhooks.sender.stop()
    assert [r.event["type"] for r in got] == ["ping", "code.made"] and all(r.verified for r in got)


async def test_secrets_an_earlier_version_stored_clear_are_sealed_once(
        upstreams: Upstreams, tmp_path: Path, database_url: str | None, receiver: Receiver) -> None:
    old = Storage.open(tmp_path, database_url, migrate=True)  # what today's main wrote: the secret as given
    old.webhooks.add("wh_old", receiver.url, CLEAR, [], "cli:ops")
    old.webhooks.add("wh_gone", receiver.url + "?gone", CLEAR + "-2", [], "cli:ops")
    old.webhooks.remove("wh_gone")
    old.close()
    receiver.secret = CLEAR
    settings = upstreams.settings(tmp_path, minpcode_database_url=database_url, minpcode_webhooks_allow_private=True)
    async with open_service(settings) as service:
        sealed = stored_secrets(service)
        assert all(s.startswith("v1:") and CLEAR not in s for s in sealed) and len(sealed) == 2
        assert service.webhooks.seal_clear() == 0  # already sealed: left as it is
        assert (await service.webhooks.test("wh_old", ADMIN)).state == "done"
    async with open_service(settings) as service:
        assert stored_secrets(service) == sealed  # a second open seals nothing again
    assert receiver.wait(1)[0].verified


async def test_a_database_moved_without_its_key_cannot_sign(
        upstreams: Upstreams, tmp_path: Path, database_url: str | None, receiver: Receiver) -> None:
    # The operator kept the install key out of the database (MINPCODE_SCAN_HASH_KEY): a copy of the database on a
    # host without that setting holds sealed secrets it cannot open.
    here = upstreams.settings(tmp_path, minpcode_database_url=database_url, minpcode_webhooks_allow_private=True,
                              minpcode_scan_hash_key=SecretStr("the-operators-own-key-0123456789"))
    async with open_service(here) as service:
        added = await service.webhooks.add(receiver.url, requester=ADMIN)
    elsewhere = here.model_copy(update={"minpcode_scan_hash_key": None})
    async with open_service(elsewhere) as service:
        with pytest.raises(NotConfigured) as refused:
            await service.webhooks.test(added.endpoint.id, ADMIN)
        assert "MINPCODE_SCAN_HASH_KEY" in refused.value.en and "secrets table" in refused.value.en
        assert "MINPCODE_SCAN_HASH_KEY" in refused.value.zh and "secrets" in refused.value.zh
        # the sender does not sign with anything else: the attempt fails, naming why
        await service.webhooks.sender.start()
        try:
            await service.submit({"type": "B", "page": "pages/index/index", "scene": "id=8"}, ADMIN)
            for _ in range(100):
                (delivery,) = service.webhooks.deliveries(ADMIN)
                if delivery.attempts:
                    break
                await asyncio.sleep(0.05)
        finally:
            await service.webhooks.sender.stop()
        assert delivery.last_error is not None and "MINPCODE_SCAN_HASH_KEY" in delivery.last_error
    assert receiver.received == []


async def test_a_token_in_an_endpoints_url_is_never_listed_or_audited(
        upstreams: Upstreams, tmp_path: Path, database_url: str | None, receiver: Receiver) -> None:
    settings = upstreams.settings(tmp_path, minpcode_database_url=database_url, minpcode_webhooks_allow_private=True)
    url = receiver.url + "?sig=s3cr3t-tok3n&team=ops"
    async with open_service(settings) as service:
        added = await service.webhooks.add(url, requester=ADMIN)
        receiver.secret = added.secret
        (listed,) = service.webhooks.endpoints(ADMIN)
        assert listed.url == receiver.url + "?sig=***&team=***" and added.endpoint.url == listed.url
        ping = await service.webhooks.test(url, ADMIN)  # the whole URL still names it, and is what is POSTed to
        assert ping.state == "done" and receiver.wait(1)[0].verified
        assert "s3cr3t" not in receiver.received[0].body.decode()
        service.webhooks.remove(url, ADMIN)
        audited = service.storage.audit.recent(limit=20)
        assert {"webhook_added", "webhook_removed"} <= {a["action"] for a in audited}
        assert "s3cr3t" not in repr(audited)
        assert "s3cr3t" not in repr(service.webhooks.deliveries(ADMIN))
