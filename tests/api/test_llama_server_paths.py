"""llama-server's routes without ``/v1``, as clients configured with a llama-server base URL call them.

llama-server (``tools/server/server.cpp``) serves ``GET /models`` and ``POST /chat/completions`` with the
same OpenAI answers as under ``/v1``, and ``POST /completions`` and ``/embeddings`` as its native routes
(those of ``/completion`` and ``/embedding``). Run against the session's ``neurectomy serve`` (the real
model and embedder); the credentials and scopes of these paths are checked in
``test_auth_limits_metrics.py`` (a server with auth on).
"""

from __future__ import annotations

import math

import httpx
import pytest
from openai import OpenAI

pytestmark = pytest.mark.slow


def test_the_openai_client_works_with_a_base_url_without_v1(service: str, served_model: str) -> None:
    with OpenAI(base_url=service, api_key="-") as root, OpenAI(base_url=f"{service}/v1", api_key="-") as v1:
        assert [m.id for m in root.models.list()] == [m.id for m in v1.models.list()]
        assert root.models.retrieve(served_model).id == served_model
        ask = {
            "model": served_model,
            "messages": [{"role": "user", "content": "Name a colour."}],
            "max_tokens": 8,
            "temperature": 0,
        }
        a = root.chat.completions.create(**ask)  # type: ignore[call-overload]
        b = v1.chat.completions.create(**ask)  # type: ignore[call-overload]
        assert a.choices[0].message.content == b.choices[0].message.content
        assert a.usage is not None and a.usage.completion_tokens >= 1
        chunks = list(root.chat.completions.create(**ask, stream=True))  # type: ignore[call-overload]
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == a.choices[0].message.content


def test_completions_without_v1_is_llama_servers_native_completion(service: str) -> None:
    body = {"prompt": "One, two, three,", "n_predict": 6, "temperature": 0}
    native = httpx.post(f"{service}/completion", json=body, timeout=120).json()
    alias = httpx.post(f"{service}/completions", json=body, timeout=120).json()
    assert alias["content"] == native["content"] and alias["tokens_predicted"] == 6
    assert alias["stop"] is True and "choices" not in alias
    # llama-server reads max_tokens when n_predict is absent
    capped = httpx.post(
        f"{service}/completions", json={"prompt": "One,", "max_tokens": 3, "temperature": 0}, timeout=120
    )
    assert capped.json()["tokens_predicted"] == 3


def test_embeddings_without_v1_is_llama_servers_native_shape(service: str) -> None:
    texts = ["The cat sat on the mat.", "Quarterly revenue grew."]
    asked = {"model": "any", "input": texts, "encoding_format": "float"}
    openai_shape = httpx.post(f"{service}/v1/embeddings", json=asked, timeout=60).json()
    expected = [d["embedding"] for d in openai_shape["data"]]
    for path, field in (("/embeddings", "input"), ("/embeddings", "content"), ("/embedding", "content")):
        native = httpx.post(f"{service}{path}", json={field: texts}, timeout=60)
        assert native.status_code == 200, native.text
        body = native.json()
        assert [e["index"] for e in body] == [0, 1]
        for entry, vector in zip(body, expected, strict=True):
            assert len(entry["embedding"]) == 1  # pooled: one vector, wrapped as llama-server wraps it
            assert entry["embedding"][0] == pytest.approx(vector, abs=1e-6)
            assert math.isclose(math.fsum(x * x for x in entry["embedding"][0]), 1.0, rel_tol=1e-5)
    one = httpx.post(f"{service}/embeddings", json={"content": texts[0]}, timeout=60).json()
    assert len(one) == 1 and one[0]["embedding"][0] == pytest.approx(expected[0], abs=1e-6)
    missing = httpx.post(f"{service}/embeddings", json={"text": "x"}, timeout=60)
    assert missing.status_code == 400 and "input" in missing.text
