"""``Bus.aclose`` of a connection whose nats-server is gone (a process shutting down after its server).

nats-py's ``close`` writes what waits in its send buffer into the lost connection's transport, which raises
(``ConnectionResetError`` on asyncio, ``RuntimeError`` on uvloop): ``neurectomy agent`` stopped that way
ended with a traceback and exit code 1. The bus drops what can no longer be sent and closes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from agents import Bus
from neurectomy.server.natsserver import EmbeddedNats
from neurectomy.testing import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
        pytest.param(("asyncio", {"use_uvloop": False}), id="asyncio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


async def test_closing_a_bus_whose_server_is_gone_drops_the_unsent_messages(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path, port=free_port())
    await server.start()
    try:
        bus = await Bus.connect(server.url, name="tests-bus-close")
    finally:
        await server.stop()
    try:
        with anyio.fail_after(30):
            while bus.is_connected:  # the client has seen the connection go
                await anyio.sleep(0.02)
        await bus.publish("neurectomy.test.gone", b"published while reconnecting")  # buffered
        assert bus._nc._pending_data_size > 0
    finally:
        with anyio.fail_after(30):
            await bus.aclose()
    assert bus._nc.is_closed
    assert bus._nc._pending_data_size == 0
