"""The private nats-server's role credentials: 0600, reused when the server restarts, refused otherwise."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import anyio
import pytest

from agents import Bus, NatsAuth
from neurectomy.server.natsserver import CREDENTIALS_FILE_NAME, ROLES, EmbeddedNats, NatsCredentials
from neurectomy.settings import NatsSettings

pytestmark = pytest.mark.anyio


async def test_credentials_survive_a_restart_and_strangers_are_refused(tmp_path: Path) -> None:
    path = tmp_path / CREDENTIALS_FILE_NAME
    first = NatsCredentials(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    server = EmbeddedNats(tmp_path, credentials=first)
    for _ in range(2):  # the second start reads the same file, as a supervisor's restart does
        async with server:
            again = NatsCredentials(path)
            assert again.passwords == first.passwords and set(again.passwords) == set(ROLES)
            assert stat.S_IMODE((tmp_path / "nats-server.conf").stat().st_mode) == 0o600
            for role in ROLES:
                async with await Bus.connect(server.url, name=role, auth=again.auth(role)) as bus:
                    assert bus.is_connected
            with pytest.raises(ConnectionError, match="Authorization Violation"):
                await Bus.connect(server.url, name="stranger")
            with anyio.fail_after(5), pytest.raises(ConnectionError, match="Authorization Violation"):
                await Bus.connect(server.url, name="guess", auth=NatsAuth(user="api", password="guess"))
    os.chmod(path, 0o640)
    with pytest.raises(PermissionError):
        NatsCredentials(path)


def test_external_nats_settings_become_client_options(tmp_path: Path) -> None:
    creds = tmp_path / "user.creds"
    settings = NatsSettings(
        url="nats://a:4222, nats://b:4222",
        user="svc",
        password="pw",
        credentials_file=creds,  # type: ignore[arg-type]
    )
    options = settings.auth().connect_options()
    assert options == {"user": "svc", "password": "pw", "user_credentials": str(creds)}
    assert NatsSettings().auth().connect_options() == {}
