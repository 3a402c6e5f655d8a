"""A request's JSON (``orchestrator._dispatch._REQUEST_JSON``, a prebuilt ``any``-schema serializer): byte for
byte what ``pydantic_core.to_json(payload)`` writes (NaN and infinity as its constants), for inputs of every
kind a caller may send, and the same error for what JSON cannot take."""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from typing import Any

import pydantic_core
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.protocol import Attached
from orchestrator._dispatch import _REQUEST_JSON

_INPUTS: tuple[Any, ...] = (
    math.inf,
    -math.inf,
    math.nan,
    -0.0,
    10**30,
    "é\n\u2028\x00",
    b"bytes",
    [1, (2, 3), {4}],
    {"k": math.nan, 3: "int key", None: "none key"},
    datetime.datetime(2026, 12, 6, 23, 0, tzinfo=datetime.UTC),
    datetime.timedelta(seconds=1.5),
    decimal.Decimal("1.10"),
    uuid.UUID(int=7),
)


@pytest.mark.parametrize("value", _INPUTS, ids=[type(v).__name__ for v in _INPUTS])
def test_the_bytes_are_to_json_s(value: Any) -> None:
    payload = {"value": value, "nested": [value, {"again": value}]}
    assert _REQUEST_JSON.to_json(payload) == pydantic_core.to_json(payload)


def test_nan_and_infinity_are_written_as_constants() -> None:
    assert _REQUEST_JSON.to_json({"a": [math.nan, math.inf, -math.inf]}) == b'{"a":[NaN,Infinity,-Infinity]}'


def test_an_attached_payload_is_written_as_its_dict() -> None:
    payload = Attached({"a": 1}, attachment=b"\x00raw")
    assert _REQUEST_JSON.to_json(payload) == pydantic_core.to_json(payload) == b'{"a":1}'


def test_what_json_cannot_take_raises_to_json_s_error() -> None:
    with pytest.raises(pydantic_core.PydanticSerializationError) as ours:
        _REQUEST_JSON.to_json({"x": object()})
    with pytest.raises(pydantic_core.PydanticSerializationError) as reference:
        pydantic_core.to_json({"x": object()})
    assert str(ours.value) == str(reference.value)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(payload=st.dictionaries(st.text(max_size=8), _JSON, max_size=5))
def test_the_bytes_are_to_json_s_for_any_json_input(payload: dict[str, Any]) -> None:
    assert _REQUEST_JSON.to_json(payload) == pydantic_core.to_json(payload)
