"""The service's event loop: uvloop by default, the standard loop on request, a wrong name refused."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from typer.testing import CliRunner

from agents.eventloop import ENV_VAR, backend_options, loop_name
from neurectomy.cli import app


def _running_loop_module() -> str:
    async def probe() -> str:
        return type(asyncio.get_running_loop()).__module__

    return anyio.run(probe, backend_options=backend_options())


def test_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert loop_name() == "uvloop"
    assert _running_loop_module().startswith("uvloop")


def test_the_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "asyncio")
    assert backend_options() == {"use_uvloop": False}
    assert _running_loop_module().startswith("asyncio")


def test_an_unknown_loop_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "trio")
    with pytest.raises(ValueError, match=f"{ENV_VAR}: unknown event loop 'trio'"):
        backend_options()


def test_the_cli_refuses_an_unknown_loop_before_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "trio")
    result = CliRunner().invoke(app, ["agent", "--team", "analysis", "--nats-url", "nats://127.0.0.1:1"])
    assert result.exit_code == 2
    assert f"{ENV_VAR}: unknown event loop 'trio'" in result.output
