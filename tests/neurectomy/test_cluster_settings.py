"""Cluster settings: several NATS servers, stream replicas, and the teams ``serve --teams`` runs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from neurectomy.cli import app
from neurectomy.server.runtime import TEAM_STARTERS, parse_teams
from neurectomy.settings import NatsSettings, Settings


def test_nats_url_takes_a_comma_separated_server_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEURECTOMY_CONFIG", raising=False)
    monkeypatch.setenv("NEURECTOMY_NATS__URL", "nats://a:4222, nats://b:4222,,nats://c:4222")
    monkeypatch.setenv("NEURECTOMY_NATS__STREAM_REPLICAS", "3")
    nats = Settings().nats
    assert nats.servers == ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
    assert nats.stream_replicas == 3
    assert NatsSettings().servers == [] and NatsSettings().stream_replicas == 1


def test_stream_replicas_out_of_range_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEURECTOMY_CONFIG", raising=False)
    monkeypatch.setenv("NEURECTOMY_NATS__STREAM_REPLICAS", "0")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert info.value.errors()[0]["loc"] == ("nats", "stream_replicas")


def test_teams_all_none_or_a_list() -> None:
    assert parse_teams("all") == tuple(TEAM_STARTERS)
    assert parse_teams("none") == ()
    assert parse_teams(" storage, analysis,storage ") == ("storage", "analysis")
    with pytest.raises(ValueError, match="--teams: unknown team storag "):
        parse_teams("storag")
    with pytest.raises(ValueError, match="--teams"):
        parse_teams(",")


def test_serve_refuses_an_unknown_team_before_starting_anything() -> None:
    result = CliRunner().invoke(app, ["serve", "--teams", "inference,bogus"])
    assert result.exit_code == 2
    assert "unknown team bogus" in result.output
