"""``send_now``'s per-connection view (``agents._natsfast._SendView``) across a reconnect (real nats-server).

The view keeps what nats-py sets once per connection (the flusher task, its queue, the transport, the
server's ``max_payload``, the send buffer's limit, the counters) and is read again when nats-py has made a
new flusher task, which it does on each (re)connection. A bus whose server restarts with another
``max_payload`` sends through the new connection, counts what it sends in nats-py's counters, and takes the
new server's limit: a payload over it is left to ``nc.publish``, which refuses it as nats-py does.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from agents import Bus
from agents._natsfast import _VIEW, send_now
from neurectomy.server.natsserver import EmbeddedNats
from neurectomy.testing import free_port

pytestmark = pytest.mark.anyio


async def _connected(bus: Bus) -> None:
    with anyio.fail_after(30):
        while not bus.is_connected:
            await anyio.sleep(0.02)


async def test_the_view_follows_a_reconnect_to_a_server_with_another_max_payload(tmp_path: Path) -> None:
    port = free_port()
    server = EmbeddedNats(tmp_path / "a", port=port, max_payload_bytes=64 * 1024)
    await server.start()
    try:
        bus = await Bus.connect(server.url, name="tests-send-view")
        try:
            nc = bus._nc
            async with bus.inbox("t.view") as box:
                await bus.flush()
                assert bus.publish_now("t.view", b"first")
                assert (await box.next(5)).data == b"first"
                view = getattr(nc, _VIEW)
                first_flusher = view.flusher
                assert first_flusher is nc._flusher_task
                assert view.max_payload == 64 * 1024
                assert send_now(nc, "t.view", b"x" * 100_000) is False  # over this server's limit

                await server.stop()
                with anyio.fail_after(30):
                    while bus.is_connected:
                        await anyio.sleep(0.02)
                assert bus.publish_now("t.view", b"while away") is False  # not connected: nc.publish's

                server = EmbeddedNats(tmp_path / "b", port=port, max_payload_bytes=256 * 1024)
                await server.start()
                await _connected(bus)
                await bus.flush()  # the inbox's subscription is back on the new server
                sent = nc.stats["out_msgs"]
                with anyio.fail_after(30):
                    while not bus.publish_now("t.view", b"x" * 100_000):  # the new flusher may start late
                        await anyio.sleep(0.02)
                assert (await box.next(5)).data == b"x" * 100_000
                assert getattr(nc, _VIEW) is view
                assert view.flusher is nc._flusher_task
                assert view.flusher is not first_flusher
                assert view.max_payload == 256 * 1024 == nc._max_payload
                assert nc.stats["out_msgs"] == sent + 1
                assert send_now(nc, "t.view", b"x" * (256 * 1024 + 1)) is False
        finally:
            with anyio.fail_after(30):
                await bus.aclose()
    finally:
        await server.stop()
