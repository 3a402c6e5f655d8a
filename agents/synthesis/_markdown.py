"""Rendering JSON values as Markdown (GitHub-flavoured tables, bullet lists, fenced JSON).

* a string is a paragraph; ``None`` is ``_No result._``; a number or boolean is its text;
* a list of objects is a table whose columns are the objects' keys in first-seen order;
* an object whose values are all scalars is a two-column ``Key | Value`` table;
* a list of scalars is a bullet list;
* an object with nested values: its scalars as a table, then each nested value under a bold label;
* anything deeper than that is fenced JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ("cell", "is_scalar", "markdown_table", "render_value", "table_columns")

_MAX_DEPTH = 2


def is_scalar(value: Any) -> bool:
    """True for strings, numbers, booleans and None."""
    return value is None or isinstance(value, str | int | float | bool)


def cell(value: Any) -> str:
    """``value`` as the text of one table cell (nested values as compact JSON, ``|`` escaped)."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")


def table_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys of ``rows`` in first-seen order."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(str(k) for k in row))
    return list(columns)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned when a column holds only numbers)."""
    numeric = [
        bool(rows)
        and all(
            isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in rows if r[i] is not None
        )
        for i in range(len(header))
    ]
    lines = [
        "| " + " | ".join(cell(h) for h in header) + " |",
        "| " + " | ".join("---:" if num else "---" for num in numeric) + " |",
    ]
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return "\n".join(lines)


def _fenced_json(value: Any) -> str:
    return "```json\n" + json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n```"


def render_value(value: Any, *, depth: int = 0) -> str:
    """``value`` as Markdown (see the module docstring for the rules)."""
    if value is None:
        return "_No result._"
    if isinstance(value, str):
        return value.strip() or "_Empty._"
    if is_scalar(value):
        return cell(value)
    if isinstance(value, Sequence):
        items = list(value)
        if not items:
            return "_None._"
        if all(isinstance(v, Mapping) for v in items):
            columns = table_columns(items)
            return markdown_table(columns, [[row.get(c) for c in columns] for row in items])
        if all(is_scalar(v) for v in items):
            return "\n".join(f"- {cell(v)}" for v in items)
        return _fenced_json(items)
    if isinstance(value, Mapping):
        if not value:
            return "_None._"
        scalars = [(str(k), v) for k, v in value.items() if is_scalar(v)]
        nested = [(str(k), v) for k, v in value.items() if not is_scalar(v)]
        if not nested:
            return markdown_table(["Key", "Value"], scalars)
        if depth >= _MAX_DEPTH:
            return _fenced_json(value)
        parts = [markdown_table(["Key", "Value"], scalars)] if scalars else []
        parts.extend(f"**{key}**\n\n{render_value(v, depth=depth + 1)}" for key, v in nested)
        return "\n\n".join(parts)
    return _fenced_json(value)
