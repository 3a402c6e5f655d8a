"""Split text into selectable units (sentences or paragraphs) without ever cutting code, JSON or numbers.

Atomic regions are fenced code blocks (```` ``` ```` or ``~~~`` fences, CommonMark section 4.5; an
unclosed fence runs to the end), JSON objects and arrays (anything `json.JSONDecoder.raw_decode`
accepts starting at ``{`` or ``[``, with at least one ``"``, ``:`` or ``,`` inside) and caller-marked
protected spans. Unit boundaries are only placed in whitespace outside atomic regions, so every
non-whitespace run of the input (a number, a word, a URL) lies whole inside one unit.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

_FENCE_OPEN = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})[^\n]*$", re.MULTILINE)
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n(?=[ \t]*(?:[-*+]|\d+[.)]|#{1,6})[ \t])")
_DECODER = json.JSONDecoder()


class UnitKind(enum.Enum):
    """What a unit holds."""

    PROSE = "prose"
    CODE = "code"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Unit:
    """A selectable piece of the text: ``text == source[start:end]``, stripped of outer whitespace."""

    start: int
    end: int
    text: str
    kind: UnitKind
    paragraph: int
    protected: bool


def _code_regions(text: str) -> list[tuple[int, int]]:
    regions: list[tuple[int, int]] = []
    pos = 0
    while True:
        m = _FENCE_OPEN.search(text, pos)
        if m is None:
            return regions
        fence = m.group(1)
        close = re.compile(rf"^[ ]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE)
        c = close.search(text, m.end() + 1) if m.end() < len(text) else None
        end = c.end() if c is not None else len(text)
        regions.append((m.start(), end))
        pos = end


def _json_regions(text: str, skip: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    regions: list[tuple[int, int]] = []
    pos = 0
    skip_iter = iter(sorted(skip))
    next_skip = next(skip_iter, None)
    n = len(text)
    while pos < n:
        m = re.compile(r"[\[{]").search(text, pos)
        if m is None:
            break
        start = m.start()
        while next_skip is not None and next_skip[1] <= start:
            next_skip = next(skip_iter, None)
        if next_skip is not None and next_skip[0] <= start < next_skip[1]:
            pos = next_skip[1]
            continue
        try:
            _, end = _DECODER.raw_decode(text, start)
        except ValueError:
            pos = start + 1
            continue
        except (
            RecursionError
        ):  # nested past the recursion limit ("[[[[…"): no start in this run can do better
            pos = start + 1
            while pos < n and text[pos] in "[{ \t\r\n":
                pos += 1
            continue
        if any(ch in text[start:end] for ch in '":,'):
            regions.append((start, end))
        pos = end
    return regions


def _merge(regions: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(regions):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _inside(pos: int, regions: Sequence[tuple[int, int]]) -> bool:
    return any(s < pos < e for s, e in regions)


def _line_bounds(text: str, start: int, end: int) -> bool:
    before = text.rfind("\n", 0, start)
    head_ok = not text[before + 1 : start].strip()
    after = text.find("\n", end)
    tail_ok = not text[end : after if after >= 0 else len(text)].strip()
    return head_ok and tail_ok


def segment(text: str, *, by_paragraph: bool, protected: Sequence[tuple[int, int]] = ()) -> list[Unit]:
    """Split `text` into units in order.

    Args:
        text: The text.
        by_paragraph: Units are paragraphs (blank-line separated) instead of sentences.
        protected: ``(start, end)`` character offsets that must stay whole and be kept.

    Returns:
        Units covering every non-whitespace character of `text` exactly once, in order.
    """
    code = _code_regions(text)
    jsons = _json_regions(text, code)
    user = [(max(0, s), min(len(text), e)) for s, e in protected if e > s]
    atomic = _merge(code + jsons + user)
    # Block-level code and JSON are paragraphs of their own.
    blocks = [(s, e) for s, e in code + jsons if _line_bounds(text, s, e)]
    cuts: list[tuple[int, int, bool]] = []  # (start, end, is_paragraph_break) of separator whitespace
    for m in _PARAGRAPH.finditer(text):
        cuts.append((m.start(), m.end(), True))
    for s, e in blocks:
        cuts.append((s, s, True))
        cuts.append((e, e, True))
    if not by_paragraph:
        for m in _SENTENCE.finditer(text):
            cuts.append((m.start(), m.end(), False))
    cuts = [c for c in cuts if not _inside(c[0], atomic) and not _inside(c[1], atomic)]
    cuts.sort(key=lambda c: (c[0], not c[2], -c[1]))  # a paragraph break wins over a sentence end
    units: list[Unit] = []
    pos = 0
    paragraph = 0
    for cut_start, cut_end, is_para in [*cuts, (len(text), len(text), True)]:
        if cut_start < pos:
            continue
        _add(units, text, pos, cut_start, paragraph, code, jsons, user)
        pos = max(pos, cut_end)
        if is_para:
            paragraph += 1
    return units


def _add(
    units: list[Unit],
    text: str,
    start: int,
    end: int,
    paragraph: int,
    code: Sequence[tuple[int, int]],
    jsons: Sequence[tuple[int, int]],
    user: Sequence[tuple[int, int]],
) -> None:
    raw = text[start:end]
    stripped = raw.strip()
    if not stripped:
        return
    s = start + (len(raw) - len(raw.lstrip()))
    e = s + len(stripped)
    for cs, _ in code:  # keep a fence's indentation: the block stays byte-identical
        if start <= cs < s:
            s = cs
            stripped = text[s:e]
    kind = UnitKind.PROSE
    if any(cs <= s and e <= ce for cs, ce in code):
        kind = UnitKind.CODE
    elif any(js <= s and e <= je for js, je in jsons):
        kind = UnitKind.JSON
    is_protected = any(us < e and s < ue for us, ue in user)
    units.append(Unit(s, e, stripped, kind, paragraph, is_protected))
