"""References (``${...}``) in a plan: finding them, and resolving them against the plan's input and outputs.

The reference syntax is described in :mod:`agents.plans`, which re-exports :class:`PlanError` and
:func:`resolve`. Short templates and paths are parsed once (cached).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+|\*)\]")


class PlanError(ValueError):
    """A plan is malformed, or a reference cannot be resolved.

    Attributes:
        field: Where in the plan (``steps.2.input``), when known.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


def _ref_step(ref: str) -> str:
    parts = _split_path(ref)
    return str(parts[1]) if len(parts) > 1 else ""


def _scan_refs(text: str) -> list[tuple[int, int, str]]:
    r"""Every ``${...}`` in ``text`` as (start, end, the reference without surrounding spaces).

    Linear in ``len(text)``: each ``${`` is closed by the next ``}``, and once a ``${`` has no ``}`` after
    it, no later one has either. (The regular expression this replaces, ``\$\{\s*([^}]+?)\s*\}``,
    backtracked cubically on ``"${"`` followed by spaces.)
    """
    refs: list[tuple[int, int, str]] = []
    pos = 0
    while (start := text.find("${", pos)) >= 0:
        end = text.find("}", start + 2)
        if end < 0:
            break
        inner = text[start + 2 : end]
        if not inner:  # "${}" is plain text
            pos = start + 1
            continue
        refs.append((start, end + 1, inner.strip() or inner))
        pos = end + 1
    return refs


def _refs_in(value: Any, where: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        if "${" in value:
            found.extend((where, ref) for _, _, ref in _scan_refs(value))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            found.extend(_refs_in(v, f"{where}.{k}"))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found.extend(_refs_in(v, f"{where}.{i}"))
    return found


@functools.lru_cache(maxsize=4096)
def _split_path(ref: str) -> tuple[str | int, ...]:
    """``ref`` as keys and indexes (``-1`` for ``[*]``); cached: plans reuse a few references.

    Raises:
        PlanError: ``ref`` is not a path (not cached).
    """
    parts: list[str | int] = []
    for segment in ref.split("."):
        pos = 0
        for m in _PATH_PART.finditer(segment):
            if m.start() != pos:
                raise PlanError(f"cannot read the reference ${{{ref}}}")
            pos = m.end()
            if m.group(1) is not None:
                parts.append(m.group(1))
            else:
                parts.append(-1 if m.group(2) == "*" else int(m.group(2)))
        if pos != len(segment):
            raise PlanError(f"cannot read the reference ${{{ref}}}")
    return tuple(parts)


def _walk(value: Any, parts: Sequence[str | int], ref: str) -> Any:
    for i, part in enumerate(parts):
        if part == -1:  # [*]: map the rest of the path over a list
            if not isinstance(value, list):
                raise PlanError(f"${{{ref}}}: [*] needs a list, found {type(value).__name__}")
            return [_walk(item, parts[i + 1 :], ref) for item in value]
        if isinstance(part, int):
            if not isinstance(value, list) or not -len(value) <= part < len(value):
                raise PlanError(f"${{{ref}}}: no item [{part}]")
            value = value[part]
        else:
            if not isinstance(value, Mapping) or part not in value:
                raise PlanError(f"${{{ref}}}: no key {part!r}")
            value = value[part]
    return value


def _lookup(ref: str, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    parts = _split_path(ref)
    if parts[0] == "input":
        return _walk(inputs, parts[1:], ref)
    if parts[0] == "steps" and len(parts) >= 2:
        step = str(parts[1])
        if step not in outputs:
            raise PlanError(f"${{{ref}}}: step {step!r} has no output")
        return _walk(outputs[step], parts[2:], ref)
    raise PlanError(f"${{{ref}}}: a reference starts with input. or steps.<id>")


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n\n".join(value)
    return json.dumps(value, ensure_ascii=False)


def _parse_template(template: str) -> tuple[str | None, tuple[str, ...]]:
    """(the reference if ``template`` is exactly one, else None; text and references, alternating).

    Short templates (the usual ``"${steps.x.text}"``) are parsed once; long texts are not kept.
    """
    if "${" not in template:
        return None, (template,)
    if len(template) <= 512:
        return _parse_template_cached(template)
    return _parse_template_once(template)


def _parse_template_once(template: str) -> tuple[str | None, tuple[str, ...]]:
    stripped = template.strip()
    refs = _scan_refs(stripped)
    if len(refs) == 1 and refs[0][0] == 0 and refs[0][1] == len(stripped):
        return refs[0][2], ()
    pieces: list[str] = []
    pos = 0
    for start, end, ref in _scan_refs(template):
        pieces += [template[pos:start], ref]
        pos = end
    pieces.append(template[pos:])
    return None, tuple(pieces)


_parse_template_cached = functools.lru_cache(maxsize=4096)(_parse_template_once)


def resolve(
    template: Any, inputs: Mapping[str, Any], outputs: Mapping[str, Any], *, where: str = "input"
) -> Any:
    """``template`` with every ``${...}`` reference replaced (see the module docstring).

    Args:
        template: JSON-like value (dicts, lists, strings, numbers).
        inputs: The plan's input.
        outputs: Step id → output of the steps finished so far.
        where: Field path of ``template``, for error messages.

    Raises:
        PlanError: A reference cannot be resolved (the message names the field and the reference).
    """
    if isinstance(template, str):
        whole, pieces = _parse_template(template)
        try:
            if whole is not None:
                return _lookup(whole, inputs, outputs)
            if len(pieces) == 1:  # no reference
                return template
            # pieces alternate: text, reference, text, ..., text
            return "".join(
                piece if i % 2 == 0 else _as_text(_lookup(piece, inputs, outputs))
                for i, piece in enumerate(pieces)
            )
        except PlanError as exc:
            raise PlanError(str(exc), field=where) from None
    if isinstance(template, Mapping):
        return {k: resolve(v, inputs, outputs, where=f"{where}.{k}") for k, v in template.items()}
    if isinstance(template, list | tuple):
        return [resolve(v, inputs, outputs, where=f"{where}.{i}") for i, v in enumerate(template)]
    return template
