"""Constrained generation: JSON Schema → GBNF grammar for llama.cpp's grammar sampler."""

from __future__ import annotations

import json
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

from ryot.errors import InvalidRequestError


def grammar_from_json_schema(schema: dict[str, Any]) -> str:
    """A GBNF grammar whose sentences are the JSON documents valid for ``schema``.

    Uses llama.cpp's converter (``json_schema_to_grammar``, as ported in llama-cpp-python's
    ``llama_grammar.json_schema_to_gbnf``); it covers the usual subset of JSON Schema (types, properties,
    required, enum, const, arrays, ``anyOf``/``oneOf``, string patterns and formats).

    Raises:
        InvalidRequestError: The schema cannot be converted (field ``json_schema``).
    """
    try:
        return str(json_schema_to_gbnf(json.dumps(schema)))
    except Exception as exc:  # the converter raises plain exceptions of several kinds
        raise InvalidRequestError("json_schema", f"cannot be turned into a grammar: {exc}") from exc
