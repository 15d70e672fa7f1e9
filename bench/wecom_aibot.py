"""200 @-mentions in one WeCom group at once, against a real ``minpcode serve`` on the AI bot's long connection.

    .venv/bin/python bench/wecom_aibot.py [--mentions 200]

``minpcode serve`` runs in its own process and connects out to the gateway emulator
(``tests/emulators/wecom_aibot.py``) on a loopback port, as it would to ``wss://openws.work.weixin.qq.com``;
WeChat (the sandbox emulator) runs in this process, as a remote upstream would. Each mention is
``@minpcode 新建 pages/index/index type=B scene=…`` from its own member in one group.

Three rounds: ``帮助`` from every member at once (no code made: the front-end and its connection alone); all
the ``新建`` mentions pushed at once; then as many again with the connection dropped by the gateway half-way
(the rest are pushed while the bot is away, and go when it is back). Making a code is the core's work (its job
workers and WeChat): the second and third rounds measure that as much as the front-end. Prints p50/p99/max from a
mention's push to its finished answer, and checks that every mention got exactly one finished answer (with
its code image and the asker mentioned) and that no answer was refused (none sent twice).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import sandbox  # noqa: E402
from bot.sandbox.server import ServerThread  # noqa: E402
from bot.sandbox.wechat import WeChatEmulator  # noqa: E402
from tests.emulators.wecom_aibot import BOT_ID, SECRET, AiBotGateway  # noqa: E402
from tests.served import Served  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def round_of(gw: AiBotGateway, name: str, count: int, *, drop_at: int | None = None, help_only: bool = False) -> int:
    ids: list[tuple[str, str]] = []
    started = time.monotonic()
    for n in range(count):
        if drop_at is not None and n == drop_at:
            gw.drop()
        user = f"{name}{n:03d}"
        text = "帮助" if help_only else f"新建 pages/index/index type=B scene={name}={n}"
        msgid = gw.say(user, text, chat="bench-group")
        assert msgid is not None
        ids.append((user, msgid))
    gw.wait(lambda: all(gw.finished(m) for _, m in ids), timeout=600)
    took = time.monotonic() - started
    time.sleep(1.0)  # anything more that was coming (a second answer) would show now
    latencies = [(gw.callback(m).finished_at or 0.0) - gw.pushed_at(m) for _, m in ids]
    finals_ok = True
    for user, msgid in ids:
        finals = [a for a in gw.answers(msgid) if a.get("stream", {}).get("finish")]
        finals_ok &= len(finals) == 1 and finals[0]["stream"]["content"].startswith(f"<@{user}>") \
            and len(finals[0]["stream"].get("msg_item") or []) == (0 if help_only else 1)
    checks = {"every mention answered": all(gw.finished(m) for _, m in ids),
              "one finished answer each, mentioning the asker" + ("" if help_only else ", with its code"): finals_ok,
              "nothing refused (no answer sent twice)": gw.refusals == []}
    what = f"{count} mentions at once" + (f", the connection dropped after {drop_at}" if drop_at is not None else "") \
        + (" — 帮助 only: no code made, the front-end and its connection alone" if help_only else "")
    print(what)
    print(f"  push → answer   p50 {statistics.median(latencies) * 1000:8.1f} ms   p99 {percentile(latencies, 0.99) * 1000:8.1f} ms"
          f"   max {max(latencies) * 1000:8.1f} ms   (all answered {took:.2f} s after the first push)")
    failures = 0
    for label, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {label}")
        failures += not ok
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=int, default=200)
    args = parser.parse_args()
    wechat = WeChatEmulator()
    upstream = ServerThread(wechat.app).start()
    failures = 0
    with AiBotGateway() as gw, tempfile.TemporaryDirectory(prefix="minpcode-aibot-bench-") as tmp:
        env = {"MINPCODE_SANDBOX": "false", "WECHAT_APPID": sandbox.SANDBOX_APPID,
               "WECHAT_SECRET": sandbox.SANDBOX_SECRET, "WECHAT_API_URL": upstream.url,
               "WECOM_BOT_ID": BOT_ID, "WECOM_BOT_SECRET": SECRET, "WECOM_BOT_WS_URL": gw.url}
        proc = Served(Path(tmp) / "data", env).start()
        try:
            gw.wait_subscribed(1, timeout=60)
            warm = gw.say("warmup", "新建 pages/index/index type=B scene=warm=1", chat="bench-group")
            gw.wait(lambda: gw.finished(warm or ""), timeout=60)
            failures += round_of(gw, "h", args.mentions, help_only=True)
            failures += round_of(gw, "a", args.mentions)
            failures += round_of(gw, "b", args.mentions, drop_at=args.mentions // 2)
            print(f"  subscriptions: {gw.subscriptions} (one reconnect after the drop)")
        finally:
            proc.stop()
            upstream.stop()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
