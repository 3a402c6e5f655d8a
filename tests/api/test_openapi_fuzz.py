"""Schemathesis against our own OpenAPI schema: generated requests never get a 5xx.

Runs through the real ``neurectomy serve`` of the ``service`` fixture with a bounded number of examples
per operation. Generation requests are capped at a few tokens (random ``max_tokens`` up to 32768 would
only make the run long, not find more bugs).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

MAX_EXAMPLES = 8
SKIP = {"GET /v1/ws"}  # WebSocket: covered by its own tests


def _operations(service: str) -> list[Any]:
    raw = httpx.get(f"{service}/schema/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(raw)
    return [result.ok() for result in schema.get_all_operations()]


def _cap(case: Any) -> None:
    """Bound the work of a generated request: a few tokens per choice, at most two choices.

    OpenAI's ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens`` and ``n``; Ollama's
    ``options.num_predict`` and llama-server's ``n_predict`` (absent means 256 tokens there, so it is set).
    """
    body = case.body
    if isinstance(body, dict):
        for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
            if isinstance(body.get(key), int) and body[key] > 4:
                body[key] = 4
        generation = str(case.path) in ("/v1/generate", "/v1/chat/completions", "/v1/completions")
        if generation and "max_tokens" not in body and "max_completion_tokens" not in body:
            body["max_tokens"] = 4  # absent: 256 tokens (OpenAI's routes: up to 16 / the default)
        if str(case.path) == "/v1/responses" and not isinstance(body.get("max_output_tokens"), int):
            body["max_output_tokens"] = 4
        if str(case.path) == "/completion" and (
            not isinstance(body.get("n_predict"), int) or not 0 < body["n_predict"] <= 4
        ):
            body["n_predict"] = 4  # llama-server's: absent or negative means 256 tokens here
        if isinstance(body.get("n"), int) and body["n"] > 2:
            body["n"] = 2
        body.pop("stream", None)
        if str(case.path).startswith("/api/"):
            options = body.get("options")
            if not isinstance(options, dict):
                options = body["options"] = {}
            if not isinstance(options.get("num_predict"), int) or not 0 <= options["num_predict"] <= 4:
                options["num_predict"] = 4


def test_generated_requests_never_get_a_server_error(service: str) -> None:
    operations = [op for op in _operations(service) if op.label not in SKIP]
    assert len(operations) >= 10
    failures: list[str] = []

    def make_check(operation: Any) -> Any:
        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,  # the same cases on every run: a CI result can be reproduced
        )
        def check(case: Any) -> None:
            _cap(case)
            response = case.call(base_url=service, timeout=60)
            if response.status_code >= 500:
                failures.append(
                    f"{operation.label} {case.body!r:.300}: {response.status_code} {response.text[:300]}"
                )

        return check

    for operation in operations:
        make_check(operation)()
    assert not failures, "\n".join(failures[:10])


@pytest.mark.parametrize("path", ["/schema/openapi.json"])
def test_schema_is_served(service: str, path: str) -> None:
    assert httpx.get(f"{service}{path}", timeout=30).status_code == 200


def test_empty_embedding_input_is_a_400_not_a_500(service: str) -> None:
    # found by the fuzz test above
    response = httpx.post(f"{service}/v1/embeddings", json={"model": "m", "input": []}, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input"
