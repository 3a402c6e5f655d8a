"""Step inputs: the parameters a sub-goal states (target language, labels, budget, k, id, …) → agent input.

:func:`step_input` builds one agent's input from a sub-goal, the text it applies to (a ``${…}``
reference) and, when known at planning time, that text itself (binary agents need it base64-encoded).
It returns the input and the names of required fields the goal did not give: a plan with a missing
required field is not run (the planner asks for clarification instead).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from agents.intent._split import SubGoal

__all__ = ("ANSWER_TOKENS", "INSTRUCTION_AGENTS", "PAYLOAD_FIELDS", "step_input")

Literal_ = Callable[[str], str]
"""Registers a plan-input value and returns its ``${input.<name>}`` reference."""

INSTRUCTION_AGENTS = frozenset({"generator", "coder", "chat", "rag-answerer", "retriever", "consensus"})
"""Agents whose text input is the request itself (a prompt, a task, a question), not a payload."""

ANSWER_TOKENS = 64
"""Most tokens of a planned ``rag-answerer`` answer: a short answer (the retrieved passages come with it)."""
PAYLOAD_FIELDS = frozenset({"context", "other", "items", "data", "frame", "messages", "texts", "plan"})
"""Inputs that carry the text or data a step works on (not a choice the user makes): when the goal lacks
one, the agent is still the right one and the caller adds it."""

_LANGUAGES = (
    "english french german spanish italian portuguese dutch polish russian ukrainian czech swedish "
    "norwegian danish finnish greek turkish arabic hebrew hindi bengali chinese mandarin japanese korean "
    "vietnamese thai indonesian malay romanian hungarian bulgarian croatian serbian slovak slovenian "
    "catalan basque welsh irish latin persian urdu swahili tagalog estonian latvian lithuanian"
).split()
_ENGLISH_2 = "am an as at be by do go he hi if in is it me my no of on or so to up us we".split()
"""Two-letter English words that are also ISO 639-1 codes or look like one ("translate this for me"): a
target language after them must be named in full ("to Italian", not "to it")."""
_LANGUAGE = re.compile(
    r"\b(?:in|into|to|for)\s+(" + "|".join(_LANGUAGES) + r"|(?!" + "|".join(_ENGLISH_2) + r")[a-z]{2}"
    r"(?:-[A-Za-z]{2})?)\b"
    r"|\b(" + "|".join(_LANGUAGES) + r")\s+(?:version|translation)\b",
    re.IGNORECASE,
)
_CODE_LANGUAGES = re.compile(
    r"\b(python|javascript|typescript|rust|go|golang|java|kotlin|c\+\+|c#|ruby|php|bash|shell|sql|swift|"
    r"scala|haskell|lua|perl|r)\b(?!\s*(?:code|file|module|source)\b(?=.*\b(?:analy|complex)))",
    re.IGNORECASE,
)
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "twenty": 20, "fifty": 50, "hundred": 100,
}  # fmt: skip
_NUM = r"(\d[\d,_]*|" + "|".join(_NUMBER_WORDS) + r")"
_TOKENS = re.compile(_NUM + r"[\s-]*(?:k\b)?\s*tokens?\b", re.IGNORECASE)
_SENTENCES = re.compile(_NUM + r"\s+(?:short\s+)?sentences?\b", re.IGNORECASE)
_WORDS = re.compile(_NUM + r"\s+words?\b", re.IGNORECASE)
_K = re.compile(
    r"\btop[\s-]*" + _NUM + r"|\b" + _NUM + r"\s+(?:most\s+\w+\s+|best\s+|nearest\s+|closest\s+)?"
    r"(?:results?|matches|hits|records?|passages?|documents?|notes?|keywords?|key\s*phrases|"
    r"phrases|terms|items|candidates|answers|samples|generations|times)\b",
    re.IGNORECASE,
)
_ID = re.compile(
    r"\b(?:id|identifier|key)\s*(?:#|is|of|[:=])?\s*['\"`]?([A-Za-z0-9][A-Za-z0-9_.:-]{0,127})['\"`]?"
    r"|\b(?:record|note|entry|item|document|doc)\s*(?:#|no\.?|number|called|named)?\s*[:=]?\s*['\"`]?"
    r"([A-Za-z0-9_.:-]{0,64}\d[A-Za-z0-9_.:-]{0,64}|[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)+)['\"`]?",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b(?:called|named|name)\s+['\"`]?([A-Za-z0-9][A-Za-z0-9_.-]{0,63})", re.IGNORECASE)
_LABELS = re.compile(
    r"\b(?:as|into|between|among|labels?|categories|classes|either)\s*:?\s+"
    r"((?:['\"]?[\w -]{1,40}?['\"]?\s*(?:,|/|\bor\b|\band\b)\s*)+(?:or\s+|and\s+)?['\"]?[\w -]{1,40}?['\"]?)"
    r"(?=[.;?!]|$|\s+(?:using|based|for)\b)",
    re.IGNORECASE,
)
_OR_TAIL = re.compile(
    r"\b((?:[\w-]+\s*,\s*)*[\w-]+,?\s+or\s+(?:not\s+)?[\w-]+(?:\s+[\w-]+){0,2})\s*\??\s*$", re.IGNORECASE
)  # "… spam or ham?", "… spam or not spam?", "… billing, delivery or account access?"
_LIST_INTRO = re.compile(r"\b(?:one\s+of|labels?|categories|classes|among|between|either)\s*$", re.IGNORECASE)
_FIELDS = re.compile(
    r"\b(?:fields?|properties|keys|attributes)\s*:?\s+((?:[\w -]{1,40}?\s*(?:,|\band\b)\s*)*[\w -]{1,40}?)"
    r"(?=[.;?!]|$|\s+(?:as|from|into|in|out|of)\b)|"
    r"\b(?:get|extract|pull)\s+(?:out\s+)?(?:the\s+)?((?:\w+\s*,\s*)*\w+,?\s+and\s+\w+)\s+(?:as|into|in)\s+"
    r"(?:a\s+)?json\b",
    re.IGNORECASE,
)
_FORMAT = re.compile(
    r"\b(?:to|into|as|in|like)\s+(?:a\s+)?(json|yaml|csv|markdown|md|text|plain text)\b", re.IGNORECASE
)
_FROM_FORMAT = re.compile(r"\b(json|yaml|csv)\s+(?:to|into)\b|\bfrom\s+(json|yaml|csv)\b", re.IGNORECASE)
_STOP_LABEL = frozenset({"the", "a", "an", "one", "of", "labels", "label", "categories", "either"})


def _number(text: str) -> int:
    text = text.lower().replace(",", "").replace("_", "")
    return _NUMBER_WORDS[text] if text in _NUMBER_WORDS else int(text)


def _first_int(pattern: re.Pattern[str], text: str) -> int | None:
    m = pattern.search(text)
    if m is None:
        return None
    value = next(g for g in m.groups() if g is not None)
    number = _number(value)
    if m.group(0).lower().rstrip().endswith("k tokens") or re.search(r"\dk\b", m.group(0), re.IGNORECASE):
        number *= 1000
    return number


_ANY_LANGUAGE = re.compile(r"\b(" + "|".join(_LANGUAGES) + r")\b", re.IGNORECASE)


def _language(text: str, instruction: str = "") -> str | None:
    m = _LANGUAGE.search(text)
    if m is None:
        named = _ANY_LANGUAGE.search(instruction)  # "how would a German say '…'"
        return named.group(1).capitalize() if named else None
    value = m.group(1) or m.group(2)
    if len(value) <= 5 and value.lower() not in _LANGUAGES:
        return value.lower() if value.islower() else None  # an ISO code such as "fr" or "pt-BR"
    return value.capitalize()


def _labels(sub: SubGoal, quotes: tuple[str, ...], tail: str | None) -> list[str]:
    quoted = [quotes[i] for i in sub.quotes if len(quotes[i]) <= 100 and "\n" not in quotes[i]]
    if len(quoted) >= 2:
        return quoted
    if tail is not None and _LIST_INTRO.search(sub.instruction) and len(tail) <= 400:
        labels = [x.strip(" .'\"") for x in re.split(r"\s*(?:,|/|\bor\b)\s*", tail)]  # "… one of: a, b, c"
        return [x for x in dict.fromkeys(labels) if x]
    m = _LABELS.search(sub.text) or _OR_TAIL.search(sub.instruction)  # the tail without its quotes
    if m is None:
        return []
    parts = re.split(r"\s*(?:,|/|\bor\b|\band\b)\s*", m.group(1))
    labels = [p.strip(" '\"") for p in parts]
    labels = [x for x in labels if x and x.lower() not in _STOP_LABEL]
    return list(dict.fromkeys(labels))


def _schema(sub: SubGoal) -> dict[str, Any] | None:
    m = _FIELDS.search(sub.text)
    if m is None:
        return None
    names = re.split(r"\s*(?:,|\band\b)\s*", m.group(1) or m.group(2))
    props = [re.sub(r"\W+", "_", n.strip().lower()).strip("_") for n in names]
    props = [p for p in dict.fromkeys(props) if p and p not in {"json", "a", "the"}]
    if not props:
        return None
    return {"type": "object", "properties": {p: {"type": "string"} for p in props}, "required": props}


def _b64(raw: str | None) -> str | None:
    return None if raw is None else base64.b64encode(raw.encode()).decode()


def _blocks(raw: str | None) -> list[str]:
    if raw is None:
        return []
    parts = re.split(r"\n[ \t]*\n", raw.strip())
    if len(parts) < 2:
        parts = [line for line in raw.splitlines() if line.strip()]
    return [p.strip() for p in parts if p.strip()]


def step_input(
    agent: str,
    sub: SubGoal,
    *,
    text: str | None,
    raw: str | None,
    request: str,
    quotes: tuple[str, ...],
    literal: Literal_,
    tail: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The input of ``agent`` for ``sub`` and the required fields still missing.

    Args:
        agent: The chosen agent.
        sub: The sub-goal.
        text: Reference to the text the step applies to (a payload or an earlier step's output), or None.
        raw: That text itself when it is known at planning time (for base64 fields and lists).
        request: Reference to the request as written (for agents whose input is the request).
        quotes: The goal's quoted payloads.
        literal: Registers a value as a plan input and returns its reference.
        tail: The goal's payload after a colon when the step's own text is a quote (labels such as
            "… with one of: a, b, c").
    """
    s = sub.text
    need: list[str] = []
    inp: dict[str, Any] = {}
    body = text or request
    if agent == "generator":
        inp["prompt"] = request if text is None else literal(f"{sub.text}\n\n") + text
    elif agent == "coder":
        inp["task"] = request if text is None else literal(f"{sub.text}\n\n") + text
        m = _CODE_LANGUAGES.search(s)
        if m:
            inp["language"] = m.group(1).lower()
    elif agent == "chat":
        inp["message"] = request if text is None else text
        m = re.search(r"\bsession\s+['\"]?([\w.-]{1,200})", s, re.IGNORECASE)
        inp["session"] = m.group(1) if m else "planner"
    elif agent == "summarizer":
        inp["text"] = body
        if (n := _first_int(_SENTENCES, s)) is not None:
            inp["max_sentences"] = max(1, min(n, 20))
        if (n := _first_int(_WORDS, s)) is not None:
            inp["max_words"] = max(1, min(n, 1000))
    elif agent == "classifier":
        inp["text"] = body
        labels = _labels(sub, quotes, tail)
        if len(labels) >= 2:
            inp["labels"] = labels
        else:
            need.append("labels")
    elif agent == "extractor":
        inp["text"] = body
        schema = _schema(sub)
        if schema is None:
            need.append("schema")
        else:
            inp["schema"] = schema
    elif agent == "translator":
        inp["text"] = body
        target = _language(s, sub.instruction)
        if target is None:
            need.append("target")
        else:
            inp["target"] = target
    elif agent in ("tokenizer", "sentiment", "keyword-extractor", "entity-extractor", "language-detector",
                   "quality-critic", "statistician"):  # fmt: skip
        inp["text"] = body
        if agent == "keyword-extractor" and (n := _first_int(_K, s)) is not None:
            inp["top_k"] = max(1, min(n, 100))
    elif agent == "context-optimizer":
        inp["text"] = body
        budget = _first_int(_TOKENS, s)
        if budget is None:
            need.append("budget_tokens")
        else:
            inp["budget_tokens"] = budget
    elif agent == "code-analyzer":
        inp["code"] = body
    elif agent == "similarity":
        if len(sub.quotes) >= 2:
            inp["text"], inp["other"] = literal(quotes[sub.quotes[0]]), literal(quotes[sub.quotes[1]])
        elif len(blocks := _blocks(raw)) >= 2:
            inp["text"], inp["candidates"] = literal(blocks[0]), [literal(b) for b in blocks[1:]]
        else:
            inp["text"] = body
            need.append("other")
    elif agent in ("compressor", "decompressor", "glyph-encoder", "codec-inspector"):
        key = "data" if agent == "compressor" else "frame"
        value = raw if agent != "compressor" else _b64(raw)
        if value is None and text is not None and text.endswith(".frame}"):
            inp[key] = text  # the frame an earlier compressor step made
        elif value is None:
            need.append(key)
        else:
            inp[key] = literal(value.strip())
    elif agent == "deduplicator":
        blocks = _blocks(raw)
        if blocks:
            inp["messages"] = [_b64(b) for b in blocks]
        else:
            need.append("messages")
    elif agent == "dictionary-trainer":
        blocks = _blocks(raw)
        if blocks:
            inp["texts"] = [literal(b) for b in blocks]
        else:
            need.append("texts")
    elif agent == "rsu-manager":
        low = s.lower()
        inp["action"] = next(
            (a for w, a in (("unpin", "unpin"), ("pin", "pin"), ("release", "release"), ("garbage", "gc"),
                            ("collect", "gc"), ("gc", "gc")) if re.search(rf"\b{w}", low)),
            "stats",
        )  # fmt: skip
    elif agent == "archivist":
        inp["records"] = [{"text": body}]
    elif agent == "retriever":
        inp["query"] = request
        if (n := _first_int(_K, s)) is not None:
            inp["k"] = max(1, min(n, 100))
    elif agent in ("fetcher", "eraser"):
        m = _ID.search(s)
        ident = (
            quotes[sub.quotes[0]] if sub.quotes else (m.group(1) or m.group(2)).rstrip(".:") if m else None
        )
        if agent == "eraser" and re.search(r"\b(tenant|shred|everything|all data)\b", s, re.IGNORECASE):
            pass  # the caller's own tenant: the agent shreds it when no id is given
        elif ident is None:
            need.append("id")
        else:
            inp["id"] = ident
    elif agent == "key-warden":
        inp["scope"] = (
            "data_key" if re.search(r"\bdata[\s-]*(?:encryption\s+)?key", s, re.IGNORECASE) else "kek"
        )
    elif agent == "indexer":
        low = s.lower()
        inp["op"] = "status" if re.search(r"\b(status|statistics|stats|how many|count)\b", low) else "compact"
    elif agent == "snapshotter":
        low = s.lower()
        op = "restore" if re.search(r"\b(restore|roll\w*\s+back|revert)\b", low) else (
            "list" if re.search(r"\b(list|which|show|available)\b", low) else "snapshot")  # fmt: skip
        inp["op"] = op
        m = _NAME.search(s)
        if m:
            inp["name"] = m.group(1)
        elif op == "restore":
            need.append("name")
    elif agent == "rag-answerer":
        inp["question"] = request
        inp["max_tokens"] = ANSWER_TOKENS
        if (n := _first_int(_K, s)) is not None:
            inp["k"] = max(1, min(n, 50))
    elif agent == "consensus":
        if len(sub.quotes) >= 2:
            inp["candidates"] = [literal(quotes[i]) for i in sub.quotes]
        elif len(blocks := _blocks(raw)) >= 2:
            inp["candidates"] = [literal(b) for b in blocks]
        else:
            inp["prompt"] = body
    elif agent == "aggregator":
        blocks = _blocks(raw)
        low = s.lower()
        mode = next((m for w, m in (("merge", "merge"), ("average", "mean"), ("mean", "mean"),
                                    ("union", "union"), ("vote", "vote"), ("plurality", "vote")) if w in low),
                    "concat")  # fmt: skip
        inp["mode"] = mode
        if len(blocks) >= 2:
            inp["items"] = [literal(b) for b in blocks]
        else:
            need.append("items")
    elif agent == "reporter":
        m = re.search(r"\btitled\s+['\"]?([^'\".,;]{1,200})", s, re.IGNORECASE)
        inp["title"] = m.group(1).strip() if m else "Report"
        inp["sections"] = {"Content": body}
    elif agent == "formatter":
        inp["data"] = body
        m = _FORMAT.search(s)
        if m is None:
            need.append("to")
        else:
            to = m.group(1).lower()
            inp["to"] = {"md": "markdown", "plain text": "text"}.get(to, to)
        f = _FROM_FORMAT.search(s)
        if f is not None:
            inp["from"] = (f.group(1) or f.group(2)).lower()
    elif agent == "verifier":
        if len(sub.quotes) >= 2:
            inp["answer"], inp["context"] = literal(quotes[sub.quotes[0]]), literal(quotes[sub.quotes[1]])
        elif len(blocks := _blocks(raw)) >= 2:
            inp["answer"], inp["context"] = literal(blocks[0]), literal("\n\n".join(blocks[1:]))
        else:
            need.append("context")
            inp["answer"] = body
    elif agent == "workflow-runner":
        if raw is None:
            need.append("plan")
        else:
            inp["plan"] = literal(raw)
    elif agent == "planner":
        inp["goal"] = body
    elif agent == "vault-stats":
        pass
    else:  # an agent this module does not know: hand it the text on its usual field
        inp["text"] = body
    return inp, need
