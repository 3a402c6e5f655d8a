"""``neurectomy serve`` with its private nats-server: a streamed generation's answers skip nats-server.

The API, the orchestrator and the generator run in one process on separate connections (one per NATS
role); ``nats.local_replies`` (on by default) hands the generator's accept, chunks and end to the API's
inbox directly; ``neurectomy_nats_local_deliveries_total`` counts them. ``nats.local_requests`` (on by
default) hands the request itself to the generator instance's endpoint
(``neurectomy_nats_local_requests_total``).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from neurectomy import Client, GenerateResponse, TokenEvent
from neurectomy.testing import start_serve, stop_serve

LOCAL_DELIVERIES = "neurectomy_nats_local_deliveries"


LOCAL_REQUESTS = "neurectomy_nats_local_requests"


def local_deliveries(url: str, name: str = LOCAL_DELIVERIES) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        if family.name == name:
            (sample,) = family.samples
            return float(sample.value)
    raise AssertionError(f"{name} not in /metrics")


@pytest.mark.parametrize("setting", ["true", "false"])
def test_streamed_generation_skips_nats_server_unless_turned_off(tmp_path: Path, setting: str) -> None:
    env = {
        "NEURECTOMY_TEAMS": '["inference"]',
        "NEURECTOMY_NATS__LOCAL_REPLIES": setting,
        "NEURECTOMY_NATS__LOCAL_REQUESTS": setting,
    }
    proc, url = start_serve(tmp_path, env=env)  # healthy: the orchestrator has seen the generator's beat
    try:
        before = local_deliveries(url)
        requests_before = local_deliveries(url, LOCAL_REQUESTS)
        with Client(url) as client:
            events = list(client.stream("List three fruits:", max_tokens=12, temperature=0.0))
        after = local_deliveries(url)
        requests = local_deliveries(url, LOCAL_REQUESTS) - requests_before
    finally:
        stop_serve(proc)
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    done = events[-1]
    assert isinstance(done, GenerateResponse)
    assert done.usage.completion_tokens == 12
    assert "".join(t.text for t in tokens) == done.text
    if setting == "true":  # every chunk and the end (the accept too, unless the end went in its place)
        assert after - before >= len(tokens) + 1
        assert requests == 1  # the request to the generator instance the router chose, which runs here
    else:
        assert after == before == 0
        assert requests == 0
