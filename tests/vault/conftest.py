"""Fixtures for the ΣVAULT suite: one real all-MiniLM-L6-v2 model per session, vaults in tmp dirs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from vault import MiniLMEmbedder, Vault, VaultConfig

VaultFactory = Callable[..., Vault]


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    model = MiniLMEmbedder()
    model.load()
    return model


@pytest.fixture(autouse=True)
def _no_kek_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No KEK from the environment; per-vault key files under a private config dir (never ~/.config)."""
    monkeypatch.delenv("NEURECTOMY_VAULT_KEK", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "vault"


@pytest.fixture
def make_vault(data_dir: Path, embedder: MiniLMEmbedder) -> Iterator[VaultFactory]:
    """Open vaults (default: on ``data_dir`` with the real embedder); all are closed at teardown."""
    opened: list[Vault] = []

    def factory(directory: Path | None = None, config: VaultConfig | None = None, **kwargs: object) -> Vault:
        kwargs.setdefault("embedder", embedder)
        v = Vault(directory or data_dir, config=config, **kwargs)  # type: ignore[arg-type]
        opened.append(v)
        return v

    yield factory
    for v in opened:
        v.close()


@pytest.fixture
def unit_vectors() -> Callable[..., np.ndarray]:
    """``unit_vectors(n, seed=0)``: ``(n, 384)`` float32 random unit vectors."""

    def make(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return make
