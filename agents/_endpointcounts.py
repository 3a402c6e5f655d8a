"""nats.micro's per-endpoint ``$SRV.STATS`` counters, read from where a direct delivery keeps them.

nats.micro's ``Endpoint`` keeps ``_num_requests``, ``_processing_time`` (nanoseconds) and
``_average_processing_time`` as plain attributes, which ``Service.stats()`` (``$SRV.STATS``) reads; its own
request handler updates all three per request. A :class:`agents.natsdelivery.DirectDelivery` handles an
endpoint's requests in its place and keeps the first two in native integer fields of its own (the attribute
updates of an interpreted object were ~3.7k instructions of the agent's ~87k per call; docs/collective.md,
"Round 14"). :func:`count_in` turns the endpoint into a :class:`CountedEndpoint`, whose three attributes are
properties over those fields: whatever reads them — ``$SRV.STATS``, ``Service.stats()``, a test — sees the
exact counts at that moment, the average computed as nats.micro computes it after each request
(``int(processing_time / num_requests)``). Writes (nats.micro's ``Endpoint._reset``) go to the same fields.

Not compiled (``agents._compiled.MODULES``): it runs only when the counters are read or reset.
"""

from __future__ import annotations

from typing import Any, Protocol

from nats.micro.service import Endpoint

__all__ = ("CountedEndpoint", "EndpointCounts", "count_in")


class EndpointCounts(Protocol):
    """Where an endpoint's counts live (a :class:`agents.natsdelivery.DirectDelivery`)."""

    requests: int
    """Requests handled (nats.micro's ``num_requests``)."""
    processing_ns: int
    """Their handling time in all, nanoseconds (nats.micro's ``processing_time``)."""


class CountedEndpoint(Endpoint):
    """A nats.micro ``Endpoint`` whose request count and processing time are an :class:`EndpointCounts`'.

    Made only by :func:`count_in` (the class of an existing endpoint is switched); everything else is
    nats.micro's.
    """

    _counts: EndpointCounts
    _average_unset: Any
    """``_average_processing_time`` while no request is counted: what nats.micro last stored there (``0``,
    or the ``timedelta()`` its ``_reset`` writes)."""

    @property
    def _num_requests(self) -> int:
        return self._counts.requests

    @_num_requests.setter
    def _num_requests(self, value: int) -> None:
        self._counts.requests = value

    @property
    def _processing_time(self) -> int:
        return self._counts.processing_ns

    @_processing_time.setter
    def _processing_time(self, value: int) -> None:
        self._counts.processing_ns = value

    @property
    def _average_processing_time(self) -> Any:
        counts = self._counts
        if not counts.requests:
            return self._average_unset
        return int(counts.processing_ns / counts.requests)

    @_average_processing_time.setter
    def _average_processing_time(self, value: Any) -> None:
        self._average_unset = value


def count_in(endpoint: Endpoint, counts: EndpointCounts) -> None:
    """Have ``endpoint``'s request count and processing time read from (and written to) ``counts``.

    ``counts`` takes over what the endpoint had counted so far. Once per endpoint.

    Raises:
        RuntimeError: ``endpoint`` counts in another place already.
    """
    if isinstance(endpoint, CountedEndpoint):
        raise RuntimeError(f"endpoint {endpoint._name!r} already counts elsewhere")
    state = vars(endpoint)
    counts.requests = state.pop("_num_requests")
    counts.processing_ns = state.pop("_processing_time")
    average = state.pop("_average_processing_time")
    endpoint.__class__ = CountedEndpoint
    state["_counts"] = counts
    state["_average_unset"] = average
