"""A call's ``Chunk``/``End`` JSON (``agents._call._wire_json``, a prebuilt ``any``-schema serializer):
byte for byte what ``pydantic_core.to_json(..., inf_nan_mode="null")`` and the wire models write, for
values of every kind a handler's output may hold, infinity and NaN included; the same error for what JSON
cannot take.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import math
import uuid
from typing import Any

import pydantic
import pydantic_core
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents._call import _wire_json
from agents.protocol import Chunk, End


class _Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class _Point:
    x: float
    label: str


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(ser_json_inf_nan="constants")  # its own rule wins inside it
    value: float
    raw: bytes


_VALUES: tuple[Any, ...] = (
    math.inf,
    -math.inf,
    math.nan,
    -0.0,
    1e300,
    10**30,
    "é\n\u2028\x00",
    b"bytes",
    bytearray(b"ab"),
    [1, (2, 3), {4}],
    frozenset({5}),
    {"k": math.nan, 3: "int key", 1.5: "float key", None: "none key", True: "bool key"},
    datetime.datetime(2026, 12, 6, 23, 0, 0, 1, tzinfo=datetime.UTC),
    datetime.date(2026, 12, 6),
    datetime.time(23, 0),
    datetime.timedelta(seconds=1.5),
    decimal.Decimal("1.10"),
    decimal.Decimal("NaN"),
    uuid.UUID(int=7),
    _Colour.RED,
    _Point(math.nan, "p"),
    _Model(value=math.inf, raw=b"r"),
)


def _reference(kind: str, seq: int, key: str, value: dict[str, Any]) -> bytes:
    return pydantic_core.to_json({"type": kind, "seq": seq, key: value}, inf_nan_mode="null")


@pytest.mark.parametrize("value", _VALUES, ids=[type(v).__name__ for v in _VALUES])
def test_the_bytes_are_to_json_s_for_values_of_every_kind(value: Any) -> None:
    output = {"value": value, "nested": [value, {"again": value}]}
    assert _wire_json("end", 3, "output", output) == _reference("end", 3, "output", output)
    assert _wire_json("chunk", 0, "data", output) == _reference("chunk", 0, "data", output)


def test_infinity_and_nan_are_null_as_the_models_write_them() -> None:
    output = {"a": math.inf, "b": -math.inf, "c": math.nan, "d": [math.nan]}
    body = _wire_json("end", 1, "output", output)
    assert body == b'{"type":"end","seq":1,"output":{"a":null,"b":null,"c":null,"d":[null]}}'
    assert body == End(seq=1, output=output).model_dump_json().encode()
    assert _wire_json("chunk", 2, "data", output) == Chunk(seq=2, data=output).model_dump_json().encode()


def test_a_mapping_that_is_not_a_dict_is_written_as_one() -> None:
    class Frozen(dict[str, Any]):
        pass

    assert _wire_json("end", 0, "output", Frozen(a=1)) == b'{"type":"end","seq":0,"output":{"a":1}}'


def test_what_json_cannot_take_raises_to_json_s_error() -> None:
    with pytest.raises(pydantic_core.PydanticSerializationError) as ours:
        _wire_json("end", 0, "output", {"x": object()})
    with pytest.raises(pydantic_core.PydanticSerializationError) as reference:
        _reference("end", 0, "output", {"x": object()})
    assert str(ours.value) == str(reference.value)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(output=st.dictionaries(st.text(max_size=8), _JSON, max_size=5), seq=st.integers(0, 2**40))
def test_the_bytes_are_the_models_for_any_json_output(output: dict[str, Any], seq: int) -> None:
    body = _wire_json("end", seq, "output", output)
    assert body == _reference("end", seq, "output", output)
    assert body == End(seq=seq, output=output).model_dump_json().encode()
