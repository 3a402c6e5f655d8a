"""The ``aggregator`` agent: combines the results of several steps (or agents) into one.

=========  ==========================================================================================
mode       result
=========  ==========================================================================================
concat     the texts joined by ``separator``, identical texts (after trimming) kept once
merge      the objects deep-merged left to right; where they disagree the last value wins and the
           path is listed in ``conflicts``
mean       mean, median, min, max, sum and standard deviation of the numbers (or of ``field``)
union      the lists' items, each distinct item once, in first-seen order
vote       the most frequent value (or ``field``); a tie goes to the value seen first
=========  ==========================================================================================
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from agents.actor import Call
from agents.errors import BadInputError
from agents.synthesis._base import SynthesisAgent
from agents.synthesis._wire import AggregateInput, AggregateOutput, MergeConflict, VoteCount

__all__ = ("AggregatorAgent", "aggregate")

_MISSING = object()


def _key(value: Any) -> str:
    """A canonical text of a JSON value (equal values, equal keys; dict order ignored)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _pick(item: Any, field: str | None) -> Any:
    if field is None:
        return item
    value = item
    for part in field.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _concat(items: list[Any], separator: str) -> AggregateOutput:
    seen: dict[str, None] = {}
    for item in items:
        text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        text = text.strip()
        if text:
            seen.setdefault(text)
    kept = list(seen)
    blanks = sum(1 for i in items if isinstance(i, str) and not i.strip())
    counts = {"items": len(items), "kept": len(kept), "duplicates": len(items) - len(kept) - blanks}
    return AggregateOutput(mode="concat", result=separator.join(kept), counts={**counts, "empty": blanks})


def _merge_into(
    target: dict[str, Any], source: Mapping[str, Any], path: str, conflicts: dict[str, list[Any]]
) -> None:
    for key, value in source.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in target:
            target[key] = json.loads(json.dumps(value))  # a copy: later merges must not alter the input
        elif isinstance(target[key], dict) and isinstance(value, Mapping):
            _merge_into(target[key], value, where, conflicts)
        elif _key(target[key]) != _key(value):
            values = conflicts.setdefault(where, [target[key]])
            values.append(value)
            target[key] = json.loads(json.dumps(value))


def _merge(items: list[Any]) -> AggregateOutput:
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise BadInputError(f"merge combines objects; this is {type(item).__name__}", field=f"items.{i}")
    merged: dict[str, Any] = {}
    conflicts: dict[str, list[Any]] = {}
    for item in items:
        _merge_into(merged, item, "", conflicts)
    return AggregateOutput(
        mode="merge",
        result=merged,
        counts={"items": len(items), "keys": len(merged), "conflicts": len(conflicts)},
        conflicts=[MergeConflict(path=p, values=v) for p, v in conflicts.items()],
    )


def _mean(items: list[Any], field: str | None) -> AggregateOutput:
    values: list[float] = []
    for item in items:
        value = _pick(item, field)
        if isinstance(value, str):
            try:
                value = float(value.replace(",", ""))
            except ValueError:
                continue
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value:  # not NaN
            values.append(float(value))
    if not values:
        where = f"the field {field!r} of " if field else ""
        raise BadInputError(
            f"no numbers among {where}the {len(items)} items", field="field" if field else "items"
        )
    stats = {
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "sum": sum(values),
        "stdev": statistics.pstdev(values),
    }
    counts: dict[str, int | float] = {
        "items": len(items),
        "numbers": len(values),
        "skipped": len(items) - len(values),
    }
    return AggregateOutput(mode="mean", result=stats, counts=counts)


def _union(items: list[Any]) -> AggregateOutput:
    seen: dict[str, Any] = {}
    total = 0
    for item in items:
        members = item if isinstance(item, list) else [item]
        total += len(members)
        for member in members:
            seen.setdefault(_key(member), member)
    result = list(seen.values())
    counts: dict[str, int | float] = {
        "items": len(items),
        "members": total,
        "distinct": len(result),
        "duplicates": total - len(result),
    }
    return AggregateOutput(mode="union", result=result, counts=counts)


def _vote(items: list[Any], field: str | None) -> AggregateOutput:
    tally: dict[str, list[Any]] = {}  # key → [value, count], in first-seen order
    abstained = 0
    for item in items:
        value = _pick(item, field)
        if value is _MISSING or value is None:
            abstained += 1
            continue
        entry = tally.setdefault(_key(value), [value, 0])
        entry[1] += 1
    if not tally:
        raise BadInputError(f"no item has the field {field!r}", field="field")
    ranked = sorted(tally.values(), key=lambda e: -int(e[1]))  # stable: a tie keeps first-seen order
    winner, top = ranked[0]
    tied = sum(1 for _, c in ranked if c == top) > 1
    voters = len(items) - abstained
    return AggregateOutput(
        mode="vote",
        result=winner,
        counts={
            "items": len(items),
            "voters": voters,
            "abstained": abstained,
            "distinct": len(ranked),
            "winner_votes": top,
            "share": top / voters,
            "tied": int(tied),
        },
        votes=[VoteCount(value=v, count=c) for v, c in ranked],
    )


def aggregate(inp: AggregateInput) -> AggregateOutput:
    """Combine ``inp.items`` in ``inp.mode`` (see the module docstring).

    Raises:
        BadInputError: An item does not fit the mode, naming it (``items.3``) or the ``field``.
    """
    items = list(inp.items)
    if inp.mode == "concat":
        return _concat(items, inp.separator)
    if inp.mode == "merge":
        return _merge(items)
    if inp.mode == "mean":
        return _mean(items, inp.field)
    if inp.mode == "union":
        return _union(items)
    return _vote(items, inp.field)


class AggregatorAgent(SynthesisAgent):
    """Combines many results into one: concatenation, deep merge, numeric summary, union or plurality vote."""

    name = "aggregator"
    description = (
        "Combines a list of results into one: concatenates texts without duplicates, deep-merges "
        "objects, averages numbers, unions lists or takes a plurality vote."
    )
    capabilities = ("aggregate", "combine", "merge", "concat", "mean", "union", "vote")
    input_model: ClassVar[type[BaseModel]] = AggregateInput
    output_model: ClassVar[type[BaseModel]] = AggregateOutput
    text_input = None
    text_output = None

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Aggregate ``items`` in ``mode``."""
        inp: AggregateInput = call.input
        return aggregate(inp).model_dump()
