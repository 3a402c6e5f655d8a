from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from sigmalang import DiskRSUStore, MemoryRSUStore, RSUStore

settings.register_profile(
    "sigmalang",
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("sigmalang")


@pytest.fixture(params=["memory", "disk"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RSUStore]:
    """Every RSU store implementation; the contract tests run against each."""
    made: RSUStore = MemoryRSUStore() if request.param == "memory" else DiskRSUStore(tmp_path / "rsu.db")
    try:
        yield made
    finally:
        made.close()
