"""Settings: environment > YAML file > defaults; invalid values name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from neurectomy.settings import Settings, load_settings


def test_defaults_are_the_embedded_runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NEURECTOMY_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    settings = Settings()
    assert settings.api.host == "127.0.0.1"
    assert settings.api.port == 8420
    assert settings.nats.url is None
    assert settings.state_dir == tmp_path / "state" / "neurectomy"


def test_env_beats_yaml_beats_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "neurectomy.yaml"
    config.write_text("api:\n  port: 9000\n  host: 0.0.0.0\nryot:\n  n_ctx: 1024\n")
    monkeypatch.setenv("NEURECTOMY_API__PORT", "9100")
    settings = load_settings(config)
    assert settings.api.port == 9100  # env
    assert settings.api.host == "0.0.0.0"  # YAML
    assert settings.ryot.n_ctx == 1024  # YAML
    assert settings.ryot.queue_size == 16  # default


def test_invalid_setting_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEURECTOMY_CONFIG", raising=False)
    monkeypatch.setenv("NEURECTOMY_RYOT__N_CTX", "12")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert info.value.errors()[0]["loc"] == ("ryot", "n_ctx")
