"""Slack ack latency under a burst: N concurrent signed ``/minpcode new …`` commands at once.

    .venv/bin/python bench/slack_ack.py [--n 200] [--kind B|A|gio|help ...] [--json]

Three processes, as in production where Slack, the bot and the people are on different machines:

* the bot: ``create_app()`` (sandbox upstream, a temporary data dir) under uvicorn on a loopback port,
  its own process, with ``SLACK_API_URL`` pointing at
* the Slack Web API emulator (tests/emulators/slack.py), in this process, which records when each
  image upload completes;
* the client: a separate process firing the N signed commands at once, each on its own kept-alive
  HTTP/1.1 connection (opened beforehand), and timing every answer.

Prints the ack latency p50/p99/max and the count of non-200 answers (target: p99 under 100 ms, none
failed), and the time from command sent to image upload completed in the emulator
(``files.completeUploadExternal``), median and p90. ``--kind help`` sends ``help`` instead: the ack
path alone, nothing made.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.sandbox.server import free_port  # noqa: E402
from tests.emulators.slack import APP_ID, PUBLIC_CHANNEL, TEAM_ID, USER_ID, SlackEmulator  # noqa: E402

SECRET = "bench-signing-secret"
KINDS = {
    "B": "new pages/index/index type=B scene={marker}",
    "A": "new pages/index/index?m={marker} type=A via=wechat",
    "gio": "new pages/index/index?m={marker} type=A campaign=spring-sale channel=微博",
    "help": "help {marker}",
}
SERVER = (
    "import logging, sys, uvicorn\n"
    "from bot.server import create_app\n"
    "logging.basicConfig(level=logging.WARNING)\n"
    "uvicorn.run(create_app(), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning', backlog=4096)\n"
)


def signed(text: str, trigger: str) -> tuple[bytes, dict[str, str]]:
    body = urllib.parse.urlencode({
        "token": "legacy", "team_id": TEAM_ID, "channel_id": PUBLIC_CHANNEL, "user_id": USER_ID,
        "user_name": "alice", "command": "/minpcode", "text": text, "api_app_id": APP_ID, "trigger_id": trigger,
    })
    ts = str(int(time.time()))
    signature = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return body.encode(), {"content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts,
                           "x-slack-signature": signature}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# ---------------------------------------------------------------------------------------------- the client process


def client_burst(url: str, n: int, template: str) -> dict[str, Any]:
    """Runs in its own process: open N connections, then send every command at once."""
    return asyncio.run(_client_burst(url, n, template))


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def _client_burst(url: str, n: int, template: str) -> dict[str, Any]:
    # Plain HTTP/1.1 over asyncio streams: Slack's senders are not Python, and a Python HTTP client
    # on the same two cores would spend more time than the server (httpx adds seconds at N=200).
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    connections = [await asyncio.open_connection(host, port) for _ in range(n)]
    ping = f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    await asyncio.gather(*(_exchange(r, w, ping) for r, w in connections))  # every connection accepted
    requests = []
    for i in range(n):
        body, headers = signed(template.format(marker=f"bench{i:04d}"), f"1.{i}.{i:08x}")
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        requests.append(f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}"
                        f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    sent: dict[str, float] = {}
    acks: list[float] = []
    statuses: list[int] = []

    async def one(i: int) -> None:
        reader, writer = connections[i]
        sent[f"bench{i:04d}"] = time.time()
        start = time.perf_counter()
        try:
            statuses.append(await asyncio.wait_for(_exchange(reader, writer, requests[i]), 10))
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            statuses.append(0)
        acks.append((time.perf_counter() - start) * 1000)

    await asyncio.gather(*(one(i) for i in range(n)))
    for _, writer in connections:
        writer.close()
    return {"sent": sent, "acks": acks, "statuses": statuses}


# ---------------------------------------------------------------------------------------------- orchestration


def start_server(emu: SlackEmulator, data: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith(
        ("SLACK_", "WECHAT_", "GIO_", "WECOM_", "MINPCODE_"))}
    env.update(MINPCODE_SANDBOX="true", MINPCODE_DATA_DIR=data, SLACK_BOT_TOKEN=emu.bot_token,
               SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=emu.api_url, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env, cwd=data)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1, trust_env=False).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the bot did not start")
        time.sleep(0.1)


def run(n: int, kind: str) -> dict[str, Any]:
    template = KINDS[kind]
    with tempfile.TemporaryDirectory() as data, SlackEmulator() as emu:
        proc, url = start_server(emu, data)
        try:
            with httpx.Client(timeout=10, trust_env=False) as warm:  # Bolt's authorize, caches, one code
                for i in range(3):
                    body, headers = signed(KINDS["B"].format(marker=f"warm{i}"), f"9.9.{i}")
                    warm.post(url + "/slack/events", content=body, headers=headers)
            emu.wait_for("files.completeUploadExternal", 3, timeout=60)
            emu.reset()
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                result = pool.apply(client_burst, (url + "/slack/events", n, template))
            method = "chat.postEphemeral" if kind == "help" else "files.completeUploadExternal"
            deadline = time.monotonic() + 300
            while len(emu.calls_to(method, ok=True)) < n and time.monotonic() < deadline:
                time.sleep(0.05)
            done: list[float] = []
            sent: dict[str, float] = result["sent"]
            for call in emu.calls_to(method, ok=True):
                text = str(call.get("initial_comment") or call.get("text") or "")
                marker = next((m for m in sent if m in text), None)
                if marker is not None:
                    done.append((call.time - sent[marker]) * 1000)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    acks: list[float] = result["acks"]
    return {
        "commands": n,
        "kind": kind,
        "ack_p50_ms": round(statistics.median(acks), 1),
        "ack_p99_ms": round(percentile(acks, 99), 1),
        "ack_max_ms": round(max(acks), 1),
        "non_200": sum(1 for s in result["statuses"] if s != 200),
        "answered": len(done),
        "to_answer_median_ms": round(statistics.median(done), 1) if done else None,
        "to_answer_p90_ms": round(percentile(done, 90), 1) if done else None,
        "to_answer_max_ms": round(max(done), 1) if done else None,
    }


def server_stack() -> str:
    """What uvicorn picks here: uvloop and httptools with ``uvicorn[standard]`` (a dependency), else asyncio/h11."""
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"uvicorn with {loop} + {http}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="concurrent slash commands (default 200)")
    parser.add_argument("--kind", choices=sorted(KINDS), nargs="+", default=["B", "help"],
                        help="B: WeChat B codes; A: WeChat A codes; gio: GrowingIO tracking links; "
                             "help: the ack path alone (default: B, then help: both figures)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results = {kind: run(args.n, kind) for kind in args.kind}
    if args.json:
        print(json.dumps(results if len(results) > 1 else next(iter(results.values()))))
        return
    print(server_stack())
    for kind, figures in results.items():
        what = "ephemeral answer posted" if kind == "help" else "image uploaded in the emulator"
        print(f"{figures['commands']} concurrent signed /minpcode commands ({kind})")
        print(f"  ack latency   p50 {figures['ack_p50_ms']} ms   p99 {figures['ack_p99_ms']} ms   "
              f"max {figures['ack_max_ms']} ms   non-200: {figures['non_200']}")
        print(f"  command → {what}: median {figures['to_answer_median_ms']} ms   p90 {figures['to_answer_p90_ms']} ms"
              f"   max {figures['to_answer_max_ms']} ms   ({figures['answered']}/{figures['commands']})")


if __name__ == "__main__":
    main()
