"""Every package's ``__all__`` is a tuple of names that exist."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    *("neurectomy", "neurectomy.sdk", "neurectomy.cli", "neurectomy.server.teams"),
    *(
        "api",
        "api.generate",
        "api.openai",
        "api.agents",
        "api.tasks",
        "api.vault",
        "api.sigma",
        "api.keys",
        "api.ws",
    ),
    *("orchestrator", "agents", "agents.inference", "bridges", "ryot", "sigmalang", "vault"),
    *("agents.actor", "agents.plans"),  # public modules split into private ones: their names re-exported
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_a_tuple_of_existing_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert isinstance(exported, tuple)
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr}"
