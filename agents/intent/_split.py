"""A goal → its sub-goals (instructions) and the payloads they apply to, in linear time.

The payload is not the instruction. Before a goal is split, the text it applies to is set aside:

1. a JSON object or array, and quoted text (``'…'``, ``"…"``, ``“…”``, ``‘…’``, backticks; an
   apostrophe inside a word is not a quote) become a placeholder ``⟦n⟧`` that stays with the sub-goal
   it was written in;
2. a following paragraph (after the first blank line) is the goal's payload;
3. text after a colon (``Summarize the following: …``) is the goal's payload, unless a quote follows
   the colon (``Save this note: '…'. Then …``) or a list of steps does.

What remains is split into sub-goals: numbered or bulleted lines when there are two or more; otherwise
sentences, ``;``, "then" / "and then" / "after that" / "afterwards" / "finally", and "and" when the next
word is one of the action verbs the routing examples start with. Every regular expression here is free
of nested quantifiers, so the whole pass is linear in the goal's length.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ("ParsedGoal", "SubGoal", "parse_goal")

_QUOTES = re.compile(
    r"(?<![\w])'([^'\n]{1,4000})'(?![\w])|\"([^\"]{1,20000})\"|“([^”]{1,20000})”|‘([^’\n]{1,4000})’|"
    r"```(?:[a-z0-9]*\n)?([^`]{1,20000})```|`([^`\n]{1,4000})`"
)
_PLACEHOLDER = re.compile(r"⟦(\d+)⟧")
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_COLON = re.compile(r":(?:[ \t]+|[ \t]*\n)")
_LIST_ITEM = re.compile(r"^\s*(?:\(?\d+[.):]|[-*•]|step\s+\d+[.:)]?)\s+(.*\S)\s*$", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)|\n+")
_SEPARATORS = re.compile(
    r"\s*;(?=\s|$)\s*|,?\s+(?:and\s+)?then\b,?\s*|,?\s+after\s+that\b,?\s*|,?\s+afterwards\b,?\s*|"
    r",?\s+(?:and\s+)?finally\b,?\s*|,\s+and\s+also\s+|\s+once\s+(?:that\s+is|that's|it\s+is)\s+done,?\s*",
    re.IGNORECASE,
)
_AND = re.compile(r",?\s+and\s+(?=([a-z-]+)\b)", re.IGNORECASE)
_LEAD = re.compile(
    r"^(?:(?:first(?:ly)?|second(?:ly)?|third(?:ly)?|next|finally|lastly|then|and|also|after\s+that|"
    r"afterwards|please|now|ok(?:ay)?|so)\b[,:]?\s*)+",
    re.IGNORECASE,
)
_STEP_WORD = re.compile(
    r"^(?:(?:please|now|ok(?:ay)?|so|and)\b[,:]?\s*)*(?:first(?:ly)?|second(?:ly)?|third(?:ly)?|next|"
    r"finally|lastly|then|also|after\s+that|afterwards)\b",
    re.IGNORECASE,
)
"""A sequence word opening a piece (not mere politeness: "Please store it" after a sentence is no step)."""
_INLINE_STEP = re.compile(r"(?:^|(?<=\s))(?:step\s+\d{1,2}\s*[:.)]|\(\d{1,2}\))\s+", re.IGNORECASE)
"""An inline "Step 1: … Step 2: …" or "(1) … (2) …" marker, made a list item before the colon rule can
read it as one."""
_COLON_WORDS = 40
"""Most words of the sentence before a colon for the text after it to be payload."""
_MAX_QUOTES = 64
_JSON_START = re.compile(r"[\[{]")
_JSON_BEFORE = frozenset(" \t\n\r:")
"""What may precede a JSON block's opening bracket (it does not start inside a word)."""
_MAX_JSON_TRIES = 8
_DECODER = json.JSONDecoder()
_BARE = "\x00"
"""Marks a quote restored without quotation marks (a JSON block) while a goal is taken apart."""


@dataclass(frozen=True, slots=True)
class SubGoal:
    """One instruction of a goal.

    Attributes:
        instruction: What to match against the examples: the words, with quoted payloads removed.
        text: The sub-goal as written, quotes restored (parameters are read from it).
        quotes: Indexes into :attr:`ParsedGoal.quotes` of the payloads written inside it.
        marked: It was marked as a step (a list item, or after "then", ";", "and <verb>", "next", …),
            not merely a sentence that follows.
    """

    instruction: str
    text: str
    quotes: tuple[int, ...] = ()
    marked: bool = False


@dataclass(frozen=True, slots=True)
class ParsedGoal:
    """A goal taken apart.

    Attributes:
        subgoals: The instructions, in order.
        quotes: Quoted payloads, in order of appearance.
        payload: The text after a colon or the following paragraph (None if there is none).
    """

    subgoals: tuple[SubGoal, ...]
    quotes: tuple[str, ...] = ()
    payload: str | None = None


def _quote_sub(quotes: list[str]) -> Callable[[re.Match[str]], str]:
    def sub(m: re.Match[str]) -> str:
        if len(quotes) >= _MAX_QUOTES:
            return m.group(0)
        value = next(g for g in m.groups() if g is not None)
        quotes.append(value.strip("\n"))
        return f" ⟦{len(quotes) - 1}⟧ "

    return sub


def _json_blocks(text: str, quotes: list[str]) -> str:
    """``text`` with each JSON object or array in it (``{"a": 1}``) set aside as a quote.

    A brace in a goal is almost always data: its quoted keys are not quotes, and its colons do not end
    an instruction. At most :data:`_MAX_JSON_TRIES` openings are tried, each decoded once (linear).
    """
    out, start, tries = [], 0, 0
    for m in _JSON_START.finditer(text):
        if tries >= _MAX_JSON_TRIES or len(quotes) >= _MAX_QUOTES:
            break
        if m.start() < start or (m.start() > 0 and text[m.start() - 1] not in _JSON_BEFORE):
            continue
        tries += 1
        try:
            value, end = _DECODER.raw_decode(text, m.start())
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the decoder recurses
            continue
        if not isinstance(value, dict | list) or not value:
            continue
        out.append(text[start : m.start()])
        quotes.append(_BARE + text[m.start() : end])
        out.append(f" ⟦{len(quotes) - 1}⟧ ")
        start = end
    out.append(text[start:])
    return "".join(out)


def _restore(text: str, quotes: list[str]) -> str:
    return _PLACEHOLDER.sub(lambda m: _shown(quotes[int(m.group(1))]), text)


def _shown(quote: str) -> str:
    return quote.removeprefix(_BARE) if quote.startswith(_BARE) else f"'{quote}'"


def _clean(piece: str) -> str:
    return _LEAD.sub("", piece.strip()).strip(" \t.,;:!")


def _split_and(piece: str, verbs: frozenset[str]) -> list[str]:
    """Split ``piece`` at "and <verb>" when <verb> starts an example request."""
    out: list[str] = []
    start = 0
    for m in _AND.finditer(piece):
        if m.group(1).lower() in verbs:
            out.append(piece[start : m.start()])
            start = m.end()
    out.append(piece[start:])
    return out


def _split_instruction(text: str, verbs: frozenset[str]) -> list[tuple[str, bool]]:
    """The pieces of ``text``, each with whether a step marker introduced it."""
    lines = [line for line in text.splitlines() if line.strip()]
    items = [m.group(1) for line in lines if (m := _LIST_ITEM.match(line))]
    if len(items) >= 2:
        return [(item, True) for item in items]
    pieces: list[tuple[str, bool]] = []
    for s, sentence in enumerate(_SENTENCE.split(text)):
        for p, part in enumerate(_SEPARATORS.split(sentence)):
            for a, piece in enumerate(_split_and(part, verbs)):
                marked = s == 0 or p > 0 or a > 0 or _STEP_WORD.match(piece.strip()) is not None
                pieces.append((piece, marked and bool(piece.strip())))
    return pieces


def parse_goal(goal: str, *, verbs: frozenset[str] = frozenset()) -> ParsedGoal:
    """Take ``goal`` apart into sub-goals and payloads (see the module docstring).

    Args:
        goal: The user's goal.
        verbs: Lower-case words that start a new sub-goal after "and" (the examples' first words).
    """
    quotes: list[str] = []
    text = _QUOTES.sub(_quote_sub(quotes), _json_blocks(goal, quotes))
    if ("step" in text.lower() or "(" in text) and len(_INLINE_STEP.findall(text)) >= 2:
        text = _INLINE_STEP.sub("\n- ", text)
    payload: str | None = None
    para = _PARAGRAPH.search(text.strip())
    stripped = text.strip()
    if para is not None:
        head, tail = stripped[: para.start()], stripped[para.end() :]
        head_items = sum(1 for line in head.splitlines() if _LIST_ITEM.match(line))
        tail_items = sum(1 for line in tail.splitlines() if _LIST_ITEM.match(line))
        if tail_items >= 2 and head_items == 0 and head.rstrip().endswith(":"):
            stripped = f"{head}\n{tail}"  # "Do this:\n\n1. … 2. …": the list is the instruction
        else:
            stripped, payload = head, _restore(tail, quotes).strip()
    colon = _COLON.search(stripped)
    if colon is not None:
        after = stripped[colon.end() :]
        only_quotes = not _PLACEHOLDER.sub("", after).strip(" \t\n.,;") or after.lstrip().startswith("⟦")
        after_items = sum(1 for line in after.splitlines() if _LIST_ITEM.match(line))
        if only_quotes:
            stripped = stripped[: colon.start()] + " " + after
        elif after_items < 2 and len(_SENTENCE.split(stripped[: colon.start()])[-1].split()) <= _COLON_WORDS:
            rest = _restore(after, quotes).strip()
            payload = rest if payload is None else f"{rest}\n\n{payload}"
            stripped = stripped[: colon.start()]
    subgoals: list[SubGoal] = []
    for piece, marked in _split_instruction(stripped, verbs):
        cleaned = _clean(piece)
        if not _PLACEHOLDER.sub("", cleaned).strip(" \t.,;:!'\""):
            if cleaned and subgoals:  # a lone quote after a split: it belongs to the sub-goal before
                prev = subgoals[-1]
                found = tuple(int(i) for i in _PLACEHOLDER.findall(cleaned))
                subgoals[-1] = SubGoal(
                    prev.instruction,
                    prev.text + " " + _restore(cleaned, quotes),
                    prev.quotes + found,
                    prev.marked,
                )
            continue
        found = tuple(int(i) for i in _PLACEHOLDER.findall(cleaned))
        instruction = " ".join(_PLACEHOLDER.sub(" ", cleaned).split())
        subgoals.append(SubGoal(instruction, " ".join(_restore(cleaned, quotes).split()), found, marked))
    return ParsedGoal(tuple(subgoals), tuple(q.removeprefix(_BARE) for q in quotes), payload or None)
