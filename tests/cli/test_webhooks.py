"""``minpcode webhooks`` in this process (tests/cli/test_cli.py's runner) against a receiver on 127.0.0.1."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.test_cli import Cli
from tests.served import free_port
from tests.webhooks.receiver import Receiver

ALLOW = {"MINPCODE_WEBHOOKS_ALLOW_PRIVATE": "1"}


def test_the_secret_is_shown_once_and_never_listed(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    receiver = Receiver().start()
    try:
        added = cli.run("webhooks", "add", receiver.url, **ALLOW)
        assert added.returncode == 0, added.stderr
        secret = re.findall(r"^([A-Za-z0-9_-]{43})$", added.stdout, re.M)
        assert len(secret) == 1, added.stdout
        receiver.secret = secret[0]
        endpoint = json.loads(cli.ok("webhooks", "list", "--json", **ALLOW))[0]
        assert endpoint["url"] == receiver.url and endpoint["events"] == []
        tested = cli.run("webhooks", "test", receiver.url, **ALLOW)
        assert tested.returncode == 0 and "delivered" in tested.stdout
        assert receiver.wait(1)[0].verified  # signed with the secret printed at add
        for shown in (cli.ok("webhooks", "list", **ALLOW), cli.ok("webhooks", "list", "--json", **ALLOW),
                      cli.ok("webhooks", "deliveries", "--json", **ALLOW)):
            assert secret[0] not in shown
        assert "ping" in cli.ok("webhooks", "list", **ALLOW)  # each endpoint's last deliveries
        removed = cli.run("webhooks", "remove", endpoint["id"], **ALLOW)
        assert removed.returncode == 0 and json.loads(cli.ok("webhooks", "list", "--json", **ALLOW)) == []
    finally:
        receiver.stop()


def test_refusals_exit_2_and_a_ping_nobody_answers_exits_1(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    url = f"http://127.0.0.1:{free_port()}/hooks"
    refused = cli.run("webhooks", "add", url)  # loopback, not allowed
    assert refused.returncode == 2 and "MINPCODE_WEBHOOKS_ALLOW_PRIVATE" in refused.stderr
    assert cli.run("webhooks", "add", url, "--events", "code.made,nope", **ALLOW).returncode == 2
    assert cli.run("webhooks", "add", url, "--secret", "short", **ALLOW).returncode == 2
    assert cli.run("webhooks", "add", url, "--secret", "long-enough-secret-123", **ALLOW).returncode == 0
    down = cli.run("webhooks", "test", url, **ALLOW)
    assert down.returncode == 1 and "not delivered" in down.stderr
    assert cli.run("webhooks", "test", "https://unknown.example/x", **ALLOW).returncode == 2
