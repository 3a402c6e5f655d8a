"""Header blocks: ours parse exactly as nats-py's own parser does, for any bytes (property test)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from nats.aio.client import Client

from agents.natsheaders import header_block, parse_header_lines

_PIECES = st.sampled_from(
    [b"\r\n", b":", b": ", b" ", b"\t", b"\x1c", b"\x0b", b"\r", b"\n", b"\xc3\xa9", b"\xff", b"a", b"X-Id"]
)
_LINES = st.lists(st.one_of(_PIECES, st.binary(max_size=6)), max_size=24).map(b"".join)


@given(_LINES)
@example(b"A: 1\r\nB:2\r\n C :\t3 \r\n\r\n")
@example(b"Bad Name: x\r\nOk: y")
@example(b"N\x1cX: x\r\n\xc3\xa9: y\r\nV: \xff\r\n:empty\r\nno colon\r\nA: 1\r\nA: 2")
def test_parse_header_lines_matches_nats_py(raw: bytes) -> None:
    assert parse_header_lines(raw) == Client._parse_header_lines(raw)


def test_a_block_we_write_reads_back() -> None:
    headers = {"Neurectomy-Request-Id": "r1", "X-Value": " a\r\nb ", "X-B": "é"}
    block = header_block(headers)
    assert block.startswith(b"NATS/1.0\r\n") and block.endswith(b"\r\n\r\n")
    parsed = parse_header_lines(block[len(b"NATS/1.0\r\n") :])
    assert parsed == {"Neurectomy-Request-Id": "r1", "X-Value": "a  b", "X-B": "é"}
    with pytest.raises(ValueError, match="header name"):
        header_block({"Bad Name": "v"})
