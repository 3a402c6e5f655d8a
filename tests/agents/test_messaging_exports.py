"""``agents.messaging`` keeps every public name it had before it was split into parts."""

from __future__ import annotations

import agents.messaging as messaging


def test_every_public_name_is_importable_from_agents_messaging() -> None:
    expected = {"Bus", "Handler", "Inbox", "Message", "NatsAuth", "StatsData", "server_urls"}
    assert set(messaging.__all__) == expected
    for name in messaging.__all__:
        assert getattr(messaging, name) is not None, name
    assert messaging.server_urls("nats://a:4222, nats://b:4222,") == ["nats://a:4222", "nats://b:4222"]
