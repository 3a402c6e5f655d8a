"""The agent instance's mailbox: bounded, a put never waits, workers wait, close lets the buffer drain."""

from __future__ import annotations

import anyio
import pytest

from agents.mailbox import Mailbox, MailboxClosedError, MailboxFullError

pytestmark = pytest.mark.anyio


async def test_a_waiting_worker_takes_a_call_without_a_buffer_place() -> None:
    box: Mailbox[str] = Mailbox(1)
    got: list[str | None] = []
    async with anyio.create_task_group() as tg:

        async def worker() -> None:
            got.append(await box.get())

        tg.start_soon(worker)
        while not box._waiting:  # the worker is waiting
            await anyio.lowlevel.checkpoint()
        box.put_nowait("a")  # to the worker
        box.put_nowait("b")  # into the buffer (one place)
        assert box.depth == 1
        with pytest.raises(MailboxFullError):
            box.put_nowait("c")
    assert got == ["a"]
    assert await box.get() == "b"


async def test_close_lets_workers_take_the_buffer_then_ends_them() -> None:
    box: Mailbox[int] = Mailbox(4)
    for n in range(3):
        box.put_nowait(n)
    box.close()
    with pytest.raises(MailboxClosedError):
        box.put_nowait(9)
    assert [await box.get() for _ in range(4)] == [0, 1, 2, None]


async def test_a_worker_cancelled_while_waiting_is_skipped() -> None:
    box: Mailbox[str] = Mailbox(1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(box.get)
        while not box._waiting:
            await anyio.lowlevel.checkpoint()
        tg.cancel_scope.cancel()
    box.put_nowait("a")  # not handed to the cancelled worker: buffered
    assert box.depth == 1
    assert await box.get() == "a"


async def test_close_wakes_waiting_workers_with_none() -> None:
    box: Mailbox[int] = Mailbox(4)
    ended: list[int | None] = []
    async with anyio.create_task_group() as tg:
        for _ in range(2):

            async def worker() -> None:
                ended.append(await box.get())

            tg.start_soon(worker)
        while len(box._waiting) < 2:
            await anyio.lowlevel.checkpoint()
        box.close()
    assert ended == [None, None]
