"""The inter-token latency histogram, observed through :meth:`api.Metrics.inter_token`'s short path, is
exposed exactly as prometheus-client's own ``Histogram.observe`` exposes the same observations."""

from __future__ import annotations

from prometheus_client import generate_latest

from api import Metrics
from api._metrics import TOKEN_BUCKETS_S

_FAMILY = b"neurectomy_inter_token_latency_seconds"


def _itl_lines(metrics: Metrics) -> list[bytes]:
    """The family's exposed sample lines, without ``_created`` (each registry's own creation time)."""
    return [
        line
        for line in generate_latest(metrics.registry).splitlines()
        if line.startswith(_FAMILY) and not line.startswith(_FAMILY + b"_created")
    ]


def test_inter_token_exposes_what_histogram_observe_does() -> None:
    # every bound exactly, just above each bound, zero, tiny and above the largest bound (+Inf bucket)
    values = [0.0, 1e-9, 99.0, *TOKEN_BUCKETS_S, *(b * 1.0001 for b in TOKEN_BUCKETS_S), 0.004, 0.031]
    short, reference = Metrics(), Metrics()
    for seconds in values:
        short.inter_token(seconds)
        reference.itl_seconds.observe(seconds)
    lines = _itl_lines(short)
    assert lines == _itl_lines(reference)
    assert _FAMILY + b'_bucket{le="0.005"} 4.0' in lines  # 0, 1e-9, 0.004 and 0.005 itself
    assert _FAMILY + b'_bucket{le="+Inf"} ' + str(float(len(values))).encode() in lines
    assert _FAMILY + b"_count " + str(float(len(values))).encode() in lines
