from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from sigmalang import DiskRSUStore, MemoryRSUStore, Retention, RSUStore

settings.register_profile(
    "sigmalang",
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("sigmalang")


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


MakeStore = Callable[..., RSUStore]


@pytest.fixture(params=["memory", "disk"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    """Builds stores of one implementation (``retention``, ``clock``); the contract runs against each."""
    made: list[RSUStore] = []

    def make(retention: Retention | None = None, clock: Callable[[], float] = time.time) -> RSUStore:
        store: RSUStore = (
            MemoryRSUStore(retention=retention, clock=clock)
            if request.param == "memory"
            else DiskRSUStore(tmp_path / f"rsu{len(made)}.db", retention=retention, clock=clock)
        )
        made.append(store)
        return store

    try:
        yield make
    finally:
        for store in made:
            store.close()


@pytest.fixture
def store(make_store: MakeStore) -> RSUStore:
    """Every RSU store implementation with the default retention."""
    return make_store()
