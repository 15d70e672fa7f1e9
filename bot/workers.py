"""Heavy work off the event loop: one function in a child process, inside a wall-time and a memory budget.

    budget = Budget(seconds=10, memory_mb=768, what=Text(zh="表格解析", en="reading the sheet"))
    sheet = await workers.run(read_sheet, data, name, budget=budget)   # the loop keeps serving meanwhile
    sheet = workers.run_sync(read_sheet, data, name, budget=budget)    # the same budgets, for a script

Parsing what a person uploads is where a few kilobytes can ask for minutes and gigabytes (issue 22). The
function runs in a child of its own, which sets ``RLIMIT_AS`` on itself before starting and is killed when
it overruns the time; either overrun is an :class:`~bot.errors.OverBudget` naming the limit. Whatever the
function raises of our error tree comes back as itself; anything else is a bug and comes back as a
``RuntimeError``. The function and its arguments and result must pickle (a module-level function).

The children come from the "forkserver" context: forking the serving process itself would copy its
threads' locks mid-use (uvicorn, the job workers, the asyncio loop), while the fork server is a fresh
single-threaded interpreter started once, which forks each child with :func:`preload`'s modules already
imported. Measured on the shared 2-core test machine (load average about 7): the first call pays for
starting the server, 3-4 s with openpyxl and pydantic preloaded, which is not charged to the budget (the
clock starts once the child exists); every later call costs 17-50 ms (fork, pipe, reap) on top of the
work. "spawn" costs 1.2-1.5 s a call, since each child imports everything again.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import resource
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from bot.errors import MinpcodeError, OverBudget
from bot.text import Text

T = TypeVar("T")

_CONTEXT = multiprocessing.get_context("forkserver")
_PRELOAD: list[str] = [__name__]  # the child runs _child, so it needs this module (and asyncio)


@dataclass(frozen=True)
class Budget:
    """What one call may spend, and how a person would name the work (for the refusal)."""

    seconds: float
    memory_mb: int  # the child's whole address space (RLIMIT_AS), the interpreter included
    what: Text  # e.g. 表格解析 / reading the sheet

    def too_slow(self) -> OverBudget:
        return OverBudget(f"{self.what.zh}超过 {self.seconds:g} 秒上限，已停止。",
                          f"{_capital(self.what.en)} took longer than the {self.seconds:g}-second limit, "
                          "so it was stopped.")

    def too_big(self) -> OverBudget:
        return OverBudget(f"{self.what.zh}超过 {self.memory_mb} MB 内存上限，已停止。",
                          f"{_capital(self.what.en)} needed more than the {self.memory_mb} MB memory limit, "
                          "so it was stopped.")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def preload(*modules: str) -> None:
    """Modules the fork server imports once, so a child starts with them (takes effect before the first call)."""
    for module in modules:
        if module not in _PRELOAD:
            _PRELOAD.append(module)
    _CONTEXT.set_forkserver_preload(["__main__", *_PRELOAD])  # __main__ once, not again in every child


preload()


def _child(conn: multiprocessing.connection.Connection, memory_mb: int, fn: Callable[..., Any],
           args: tuple[Any, ...]) -> None:
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        answer: tuple[str, Any] = ("ok", fn(*args))
    except MemoryError:
        answer = ("memory", None)
    except MinpcodeError as exc:
        answer = ("error", exc)
    except BaseException:  # a bug: the parent raises it with this traceback
        answer = ("bug", traceback.format_exc())
    try:
        conn.send(answer)
    except MemoryError:  # pickling a result that just fits is still over the budget
        conn.send(("memory", None))
    finally:
        conn.close()


def _start(fn: Callable[..., Any], args: tuple[Any, ...],
           budget: Budget) -> tuple[BaseProcess, multiprocessing.connection.Connection]:
    ours, theirs = _CONTEXT.Pipe(duplex=False)
    process = _CONTEXT.Process(target=_child, args=(theirs, budget.memory_mb, fn, args), daemon=True)
    process.start()
    theirs.close()  # so that a child that dies leaves the pipe at end of file
    return process, ours


def _answer(conn: multiprocessing.connection.Connection, process: BaseProcess, budget: Budget) -> Any:
    try:
        kind, value = conn.recv()
    except (EOFError, OSError):
        process.join(1)
        if process.exitcode is not None and process.exitcode > 0:  # it failed before reaching the function
            raise RuntimeError(f"the worker exited with code {process.exitcode} before answering") from None
        raise budget.too_big() from None  # a signal: the kernel or the allocator stopped it
    if kind == "ok":
        return value
    if kind == "memory":
        raise budget.too_big()
    if kind == "error":
        raise value
    raise RuntimeError(f"the worker failed:\n{value}")


def _reap(process: BaseProcess) -> None:
    if process.is_alive():
        process.kill()
    process.join()
    process.close()


async def run(fn: Callable[..., T], *args: Any, budget: Budget) -> T:
    """``fn(*args)`` in a child within ``budget``; the event loop keeps serving while it runs."""
    loop = asyncio.get_running_loop()
    process, conn = await loop.run_in_executor(None, _start, fn, args, budget)
    readable: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(conn.fileno(), ready)
    try:
        try:
            await asyncio.wait_for(readable, budget.seconds)
        except TimeoutError:
            raise budget.too_slow() from None
        finally:
            loop.remove_reader(conn.fileno())
        # uvloop (uvicorn's loop) leaves a descriptor it watched non-blocking, and an answer over the pipe's
        # 64 KB (a poster) arrives in pieces: it was cut at the first piece. Read it whole, blocking, off the loop.
        os.set_blocking(conn.fileno(), True)
        return await loop.run_in_executor(None, _answer, conn, process, budget)
    finally:
        conn.close()
        if process.is_alive():
            process.kill()
        await asyncio.shield(loop.run_in_executor(None, _reap, process))


def run_sync(fn: Callable[..., T], *args: Any, budget: Budget) -> T:
    """:func:`run` for a caller without an event loop (a script): the same child and the same budgets."""
    process, conn = _start(fn, args, budget)
    try:
        if not conn.poll(budget.seconds):
            raise budget.too_slow()
        return _answer(conn, process, budget)
    finally:
        conn.close()
        _reap(process)


__all__ = ["Budget", "OverBudget", "preload", "run", "run_sync"]
