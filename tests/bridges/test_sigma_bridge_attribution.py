"""``SigmaBridge`` measures each report's attribution in its worker thread, not on the event loop."""

from __future__ import annotations

import pytest

from bridges.sigma import SigmaBridge
from sigmalang import SigmaCodec

pytestmark = pytest.mark.anyio

_WORDS = b"planner retries storage agent tenant vector cache result queue document ".split()


def _turns() -> list[bytes]:
    system = b" ".join(_WORDS * 60) + b".\n"
    first = system + b" ".join(reversed(_WORDS * 40))
    return [first, first + b"\n" + b" ".join(_WORDS[3:] * 50)]


async def test_reports_leave_the_bridge_measured() -> None:
    async with SigmaBridge(SigmaCodec()) as bridge:
        outcomes = await bridge.compress_many(_turns(), tenant="acme", stream="s")
    later = outcomes[1].result.report
    assert later.glyphs > 0  # a frame with a context: the codec alone would have deferred the measure
    for outcome in outcomes:
        r = outcome.result.report
        assert r.alone.known is not None and r.alone.parts is None  # measured before returning
        assert r.bytes_in - r.bytes_out == r.dedup_saved + r.dictionary_saved + r.entropy_saved - r.framing
