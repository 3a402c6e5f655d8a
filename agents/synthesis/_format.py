"""Agents that turn data into documents: ``reporter`` (Markdown reports) and ``formatter`` (conversions)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel

from agents.actor import Call
from agents.errors import BadInputError
from agents.synthesis._base import SynthesisAgent
from agents.synthesis._markdown import cell, is_scalar, render_value, table_columns
from agents.synthesis._wire import FormatInput, FormatOutput, ReportInput, ReportOutput, SectionIn

__all__ = ("FormatterAgent", "ReporterAgent", "convert", "parse_data", "render_report")

_WORDS = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def render_report(title: str, sections: Mapping[str, Any] | list[SectionIn]) -> str:
    """A Markdown document: ``# title`` and one ``## heading`` per section, its content rendered."""
    pairs = (
        [(s.heading, s.content) for s in sections]
        if isinstance(sections, list)
        else [(str(k), v) for k, v in sections.items()]
    )
    parts = [f"# {title.strip()}"]
    parts.extend(f"## {heading.strip()}\n\n{render_value(content)}" for heading, content in pairs)
    return "\n\n".join(parts) + "\n"


class ReporterAgent(SynthesisAgent):
    """Builds a Markdown report from named sections of results (e.g. the outputs of a plan's steps)."""

    name = "reporter"
    description = (
        "Builds a Markdown report with headings, tables, bullet lists and JSON blocks from titled "
        "sections of results."
    )
    capabilities = ("report", "markdown", "document", "summary-table")
    input_model: ClassVar[type[BaseModel]] = ReportInput
    output_model: ClassVar[type[BaseModel]] = ReportOutput
    text_input = None
    text_output = "markdown"

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Render ``title`` and ``sections``; count sections and words."""
        inp: ReportInput = call.input
        markdown = render_report(inp.title, inp.sections)
        words = len(_WORDS.findall(re.sub(r"[#|*`>-]+", " ", markdown)))
        return ReportOutput(markdown=markdown, sections=len(inp.sections), words=words).model_dump()


def parse_data(text: str, source: str) -> Any:
    """``text`` parsed as ``json``, ``yaml`` or ``csv`` (a header row, then one object per row).

    Raises:
        BadInputError: Naming ``data``, when ``text`` is not valid in that format.
    """
    try:
        if source == "json":
            return json.loads(text)
        if source == "yaml":
            return yaml.safe_load(text)
        rows = list(csv.DictReader(io.StringIO(text), strict=True))
    except (ValueError, yaml.YAMLError, csv.Error) as exc:
        raise BadInputError(f"not valid {source}: {exc}", field="data") from None
    if any(None in row or None in row.values() for row in rows):
        raise BadInputError("not valid csv: a row has more or fewer cells than the header", field="data")
    return rows


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if is_scalar(value):
        return cell(value)
    if isinstance(value, list) and all(is_scalar(v) for v in value):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, Mapping) and all(is_scalar(v) for v in value.values()):
        return "\n".join(f"{k}: {_text(v)}" for k, v in value.items())
    return json.dumps(value, ensure_ascii=False, indent=2)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return cell(value) if is_scalar(value) else json.dumps(value, ensure_ascii=False)


def _csv(value: Any) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        columns = table_columns(value)
        writer.writerow(columns)
        writer.writerows([_csv_cell(row.get(c)) for c in columns] for row in value)
    elif isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        writer.writerows([_csv_cell(c) for c in row] for row in value)
    elif isinstance(value, list):
        writer.writerow(["value"])
        writer.writerows([_csv_cell(v)] for v in value)
    elif isinstance(value, Mapping):
        writer.writerow(["key", "value"])
        writer.writerows([str(k), _csv_cell(v)] for k, v in value.items())
    else:
        raise BadInputError("csv needs rows: a list or an object, not a single value", field="data")
    return buffer.getvalue()


def convert(data: Any, to: str, source: str | None = None) -> str:
    """``data`` (parsed from ``source`` first, if given) as ``json``, ``yaml``, ``markdown``, ``csv`` or text.

    Raises:
        BadInputError: ``data`` cannot be parsed as ``source`` or has no ``to`` form (field ``data``);
            ``source`` given for data that is not text (field ``from``).
    """
    if source is not None:
        if not isinstance(data, str):
            raise BadInputError(
                f"from={source} parses text; data is already {type(data).__name__}", field="from"
            )
        data = parse_data(data, source)
    if to == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if to == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if to == "markdown":
        return render_value(data) + "\n"
    if to == "csv":
        return _csv(data)
    return _text(data)


class FormatterAgent(SynthesisAgent):
    """Converts data between JSON, YAML, CSV, Markdown and plain text."""

    name = "formatter"
    description = "Converts data between JSON, YAML, CSV, Markdown tables and plain text."
    capabilities = ("format", "convert", "json", "yaml", "csv", "markdown")
    input_model: ClassVar[type[BaseModel]] = FormatInput
    output_model: ClassVar[type[BaseModel]] = FormatOutput
    text_input = "data"
    text_output = "text"

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Convert ``data`` to ``to`` (parsing it from ``from`` first, when given)."""
        inp: FormatInput = call.input
        text = convert(inp.data, inp.to, inp.source_format)
        return FormatOutput(text=text, to=inp.to, chars=len(text)).model_dump()
