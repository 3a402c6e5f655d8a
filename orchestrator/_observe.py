"""Observing calls: the orchestrator reports hop latency, stream timings and token usage to an observer.

The API plugs its Prometheus metrics in here (:class:`api._metrics.Metrics`); the orchestrator itself
depends on no metrics library.
"""

from __future__ import annotations

from typing import Protocol

from agents.protocol import GenerateOutput


class CallObserver(Protocol):
    """Receives measurements of the orchestrator's calls (all durations in seconds)."""

    def hop(self, team: str, agent: str, outcome: str, seconds: float) -> None:
        """One call to an agent ended: ``outcome`` is ``ok``, an error code, or ``cancelled``."""
        ...

    def first_token(self, seconds: float) -> None:
        """Time from dispatching a generation to its first streamed text (TTFT seen by the orchestrator)."""
        ...

    def inter_token(self, seconds: float) -> None:
        """Time between two consecutive streamed text chunks of one generation."""
        ...

    def generation(self, output: GenerateOutput) -> None:
        """A generation finished with ``output`` (token usage, engine timings)."""
        ...
