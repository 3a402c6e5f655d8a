"""Constrained generation: JSON Schema → GBNF grammar for llama.cpp's grammar sampler, with size limits.

The converter expands what a schema asks for: ``"minItems": 100000`` or a pattern ``a{100000}`` becomes
a grammar with that many copies of a rule, and a deeply nested schema recurses as deep. So a schema is
checked first (:func:`check_schema`: size, depth, node count, repetition bounds, pattern length), the
grammar it yields is bounded too (:data:`MAX_GRAMMAR_BYTES`, also the limit of a grammar given as text),
and callers on an event loop run the conversion in a worker thread.
"""

from __future__ import annotations

import json
import re
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

from ryot.errors import InvalidRequestError

__all__ = (
    "MAX_GRAMMAR_BYTES",
    "MAX_REPETITION",
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_NODES",
    "check_grammar",
    "check_schema",
    "grammar_from_json_schema",
)

MAX_SCHEMA_BYTES = 64 * 1024
"""Largest JSON schema, as JSON, in bytes."""
MAX_SCHEMA_DEPTH = 32
"""Deepest nesting of objects and lists in a schema."""
MAX_SCHEMA_NODES = 4096
"""Most objects, lists and values in a schema."""
MAX_REPETITION = 1024
"""Largest repetition bound: ``minItems``/``maxItems``/``minLength``/``maxLength``/``minProperties``/
``maxProperties`` and ``{n,m}`` in a pattern."""
MAX_GRAMMAR_BYTES = 256 * 1024
"""Largest GBNF grammar, in bytes (a grammar given as text, or one made from a schema)."""
_BOUNDS = frozenset({"minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"})
_PATTERN_REPEAT = re.compile(r"\{(\d{1,9})(?:,(\d{0,9}))?\}")


def _too_big(reason: str) -> InvalidRequestError:
    return InvalidRequestError("json_schema", reason)


def check_schema(schema: Any) -> None:
    """Raise unless ``schema`` is within the limits above (linear in its size).

    Raises:
        InvalidRequestError: A limit is exceeded (field ``json_schema``; the message names the limit).
    """
    size = len(json.dumps(schema))
    if size > MAX_SCHEMA_BYTES:
        raise _too_big(f"is {size} bytes as JSON; at most {MAX_SCHEMA_BYTES} are accepted")
    nodes = 0
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_SCHEMA_NODES:
            raise _too_big(f"has more than {MAX_SCHEMA_NODES} values")
        if depth > MAX_SCHEMA_DEPTH:
            raise _too_big(f"is nested deeper than {MAX_SCHEMA_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if key in _BOUNDS and isinstance(item, int) and item > MAX_REPETITION:
                    raise _too_big(f"{key} is {item}; at most {MAX_REPETITION} is accepted")
                if key == "pattern" and isinstance(item, str):
                    _check_pattern(item)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def _check_pattern(pattern: str) -> None:
    if len(pattern) > MAX_REPETITION:
        raise _too_big(f"a pattern is {len(pattern)} characters; at most {MAX_REPETITION} are accepted")
    for m in _PATTERN_REPEAT.finditer(pattern):
        bound = max(int(m.group(1)), int(m.group(2) or 0))
        if bound > MAX_REPETITION:
            raise _too_big(f"a pattern repeats {bound} times; at most {MAX_REPETITION} is accepted")


def check_grammar(grammar: str, *, field: str = "grammar") -> None:
    """Raise if ``grammar`` is longer than :data:`MAX_GRAMMAR_BYTES`.

    Raises:
        InvalidRequestError: It is (naming ``field``).
    """
    size = len(grammar.encode())
    if size > MAX_GRAMMAR_BYTES:
        raise InvalidRequestError(field, f"is {size} bytes; at most {MAX_GRAMMAR_BYTES} are accepted")


def grammar_from_json_schema(schema: dict[str, Any]) -> str:
    """A GBNF grammar whose sentences are the JSON documents valid for ``schema``.

    Uses llama.cpp's converter (``json_schema_to_grammar``, as ported in llama-cpp-python's
    ``llama_grammar.json_schema_to_gbnf``); it covers the usual subset of JSON Schema (types, properties,
    required, enum, const, arrays, ``anyOf``/``oneOf``, string patterns and formats). CPU-bound: run it
    in a worker thread from an event loop.

    Raises:
        InvalidRequestError: The schema exceeds a limit (:func:`check_schema`), or cannot be converted,
            or yields a grammar over :data:`MAX_GRAMMAR_BYTES` (field ``json_schema``).
    """
    check_schema(schema)
    try:
        grammar = str(json_schema_to_gbnf(json.dumps(schema)))
    except RecursionError:
        raise _too_big("is nested too deeply to convert") from None
    except Exception as exc:  # the converter raises plain exceptions of several kinds
        raise InvalidRequestError("json_schema", f"cannot be turned into a grammar: {exc}") from exc
    check_grammar(grammar, field="json_schema")
    return grammar
