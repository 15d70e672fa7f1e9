"""Whose lease may be taken over at once (bot/jobs.py ``gone``): only a dead process of this machine and this pid
namespace. Replicas on other machines may share the host name (machines cloned from one image, containers
with host networking): a pid of theirs means nothing here, so their leases are left to lapse (issue 25)."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from bot.jobs import gone, new_owner, run_leased, where
from storage import Storage


def dead_pid() -> int:
    """A pid no process of this namespace has now."""
    for pid in range(4_194_000, 4_000_000, -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    pytest.skip("no free pid found")


def test_a_dead_process_of_this_machine_and_namespace_is_gone_at_once() -> None:
    assert gone(f"{where()}:{dead_pid()}:0badf00d")
    assert not gone(new_owner())  # this very process
    assert not gone(f"{where()}:1:0badf00d")  # alive (init, or whatever holds pid 1 here)


@pytest.mark.skipif(not Path("/proc/self/ns/pid").exists(), reason="Linux /proc: boots and pid namespaces")
def test_a_process_of_another_machine_with_the_same_host_name_is_never_taken_for_gone() -> None:
    twin = socket.gethostname()
    pid = dead_pid()  # not running here; it may well be running there
    assert not gone(f"{twin}:{pid}:0badf00d")                   # as the older versions named an owner
    assert not gone(f"{twin}/00000000/{where().rsplit('/', 1)[-1]}:{pid}:0badf00d")  # another boot
    assert not gone(f"{where().rsplit('/', 1)[0]}/1:{pid}:0badf00d")               # another pid namespace


def test_a_job_held_by_a_twin_machine_waits_for_its_lease_to_lapse(tmp_path: Path) -> None:
    store = Storage.open(tmp_path)
    ran: list[str] = []

    async def work() -> None:
        ran.append("here")

    try:
        twin = f"{socket.gethostname()}:{dead_pid()}:0badf00d"
        assert store.leases.claim("code:x", twin, 30)
        assert not asyncio.run(run_leased(store.leases, "code:x", new_owner(), work))
        assert ran == []  # the twin may be making the code right now: no second WeChat call
        mine = f"{where()}:{dead_pid()}:0badf00d"  # a process of ours that was killed: taken over at once
        assert store.leases.claim("code:y", mine, 30)
        assert asyncio.run(run_leased(store.leases, "code:y", new_owner(), work))
        assert ran == ["here"]
    finally:
        store.close()
