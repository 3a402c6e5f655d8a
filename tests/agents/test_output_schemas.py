"""Every agent the service runs publishes the JSON schema of its output (``GET /v1/agents/{name}``)."""

from __future__ import annotations

import pytest

from agents.actor import Agent
from agents.collective import spec_of
from agents.roster import AGENTS_BY_TEAM, HELPERS, ROSTER, ROSTER_SIZE

CLASSES: list[type[Agent]] = [*(c for classes in AGENTS_BY_TEAM.values() for c in classes), *HELPERS]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.name)
def test_the_agent_publishes_the_schema_of_its_declared_output_model(cls: type[Agent]) -> None:
    assert cls.output_model is not None, f"{cls.name} declares no output model"
    schema = spec_of(cls).output_schema
    assert schema == cls.output_model.model_json_schema()
    assert schema["type"] == "object" and schema["properties"], f"{cls.name}: {schema}"
    assert set(schema.get("required", [])) <= set(schema["properties"])


def test_the_roster_is_forty_agents_and_its_helpers() -> None:
    assert ROSTER_SIZE == len(ROSTER) == 40 and len(CLASSES) == 40 + len(HELPERS)
