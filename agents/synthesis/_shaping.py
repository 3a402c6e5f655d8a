"""Shaping a split goal before it is planned: which sub-goals are requests, which are context or payload.

A goal split into sentences and steps (:func:`agents.intent.parse_goal`) is not yet a list of requests:

* a **request clause** inside a long sentence ("I'm short on time, so could you summarize this") is the
  part the router should read, when it routes more confidently than the whole sentence;
* a **main clause** before a relative or complement clause ("write a regex | that matches e-mail
  addresses") names what a request makes or acts on: it is read alone when it routes more confidently;
* **leading context** ("Good morning.", "Hi! I'm new here.") — sentences before the first confident
  request that match nothing, only small talk, or only weakly — is dropped when no sequence word
  ("then", "next", a list) marks what follows as a further step;
* **trailing payload** — sentences after the last request with no sequence word, that match nothing or
  only weakly, or that are statements (no instruction verb, no question) after a request that points at
  a text ("this", "these", "the following", "here") or that works on a text the goal has not given
  yet — is the text the goal applies to, except a sentence that constrains the request's output ("It
  should be under 50 words."), whose parameters are read with the request;
* **one request in halves** — adjacent sub-goals asking for the same class, the later unmarked or either
  a statement — and a
  goal whose steps are the *subject* of one request ("plan the steps to …") are one sub-goal;

Close classes are then told apart by the request's form (:mod:`agents.synthesis._forms`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from agents.intent import NONE, IntentRouter, ParsedGoal, Route, SubGoal
from agents.intent._inputs import INSTRUCTION_AGENTS

__all__ = (
    "BUILTIN",
    "DEICTIC",
    "WEAK",
    "agent_of",
    "composite",
    "head_clauses",
    "least",
    "leading_context",
    "repeats",
    "request_clauses",
    "trailing_payload",
)

BUILTIN = "plan:"
"""Prefix of the routing classes that are built-in plans."""
WEAK = 0.5
"""Below this confidence a sentence may be context or payload rather than a request."""
_COMPOSITE = frozenset({"planner", f"{BUILTIN}consensus", f"{BUILTIN}report"})
"""Classes whose request may name steps as its subject (see :func:`composite`)."""
_COMPOSITE_CONFIDENCE = 0.75
_CONTEXT_CLASSES = frozenset({NONE, "chat"})
"""Classes of a leading sentence that is context, not a step (a greeting, a remark)."""
_REQUEST = re.compile(
    r"(?:^|,\s*|\s)(?:and\s+|but\s+)?(?:so\s+)?(?:(?:could|would|can|will)\s+(?:you|u)(?:\s+please)?|please|"
    r"kindly|if\s+you\s+could|i\s+(?:would|'d)\s+like\s+you\s+to|i\s+(?:want|need)\s+you\s+to|help\s+me)\b"
    r"(?:\s+(?:first|then|now)\b)?,?\s*",
    re.IGNORECASE,
)
"""A politeness marker that opens a request clause, at the start or after some context."""
_MIN_CONTEXT_WORDS = 3
_MIN_CLAUSE_WORDS = 4
DEICTIC = re.compile(r"\b(?:this|these|following|below|here|it)\b", re.IGNORECASE)
"""A request that points at a text the goal gives."""
_SUBORDINATE = re.compile(
    r"\s(?:that|which|who|whose|where|announcing|saying|explaining|describing)\s", re.IGNORECASE
)
"""Where a relative or complement clause starts (it describes what the main clause names)."""
_MIN_HEAD_WORDS = 3
_COPULA = re.compile(r"\b(?:is|are|was|were|has\s+been|have\s+been|seems?|looks?|keeps?)\b", re.IGNORECASE)
_CONSTRAINT = re.compile(
    r"\s*(?:(?:it|this|that|the\s+(?:summary|answer|result|output|reply|response|text|translation|"
    r"story|poem|code|function|list))\s+(?:should|must|shall|has\s+to|needs?\s+to|may|can)(?:\s+not)?\s+"
    r"|keep\s+(?:it|them|the\s+\w+)\s+|(?:use\s+)?(?:at\s+most|no\s+more\s+than|not\s+more\s+than|"
    r"under|below|max(?:imum)?)\s+\d)",
    re.IGNORECASE,
)
"""A trailing sentence that constrains the request's output ("It should be under 50 words.", "Keep it
to two sentences."): its parameters belong to the request, not to the payload."""
_QUESTION = frozenset(
    "what which how is are was were does do did can could would will who whom whose when where why "
    "should please kindly".split()
)
_FIRST_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def agent_of(name: str) -> str:
    """The agent of a routing class (``plan:report`` as one step is the ``reporter``)."""
    if name.startswith(BUILTIN):
        name = name.removeprefix(BUILTIN)
        return {"report": "reporter"}.get(name, name)
    return name


def least(routes: Sequence[Route]) -> float:
    """The least confidence of ``routes`` (0 when one of them matches nothing)."""
    return min((0.0 if r.best == NONE else r.confidence for r in routes), default=0.0)


def repeats(routes: Sequence[Route]) -> bool:
    """Whether two adjacent routes name the same class (a request split in two halves)."""
    return any(
        a.best != NONE and agent_of(a.best) == agent_of(b.best)
        for a, b in zip(routes, routes[1:], strict=False)
    )  # a built-in plan and its agent (plan:consensus, consensus) are one intent


def _confident(route: Route) -> bool:
    return route.best != NONE and route.confidence >= WEAK


def request_clauses(
    router: IntentRouter, parsed: ParsedGoal, routes: list[Route]
) -> tuple[ParsedGoal, list[Route]]:
    """``parsed`` with each sub-goal routed by its request clause where that is more confident.

    The sub-goal's instruction becomes the clause ("…, so please write a function that …" → "write a
    function that …"); its text (read for parameters) stays whole.
    """
    subs, out = list(parsed.subgoals), list(routes)
    for i, sub in enumerate(subs):
        for m in _REQUEST.finditer(sub.instruction):
            if 0 < len(sub.instruction[: m.start()].split()) < _MIN_CONTEXT_WORDS:
                continue
            clause = sub.instruction[m.end() :]
            if len(clause.split()) < _MIN_CLAUSE_WORDS:
                break  # a closing "please": no clause follows
            route = router.route(clause)
            if route.best != NONE and route.confidence >= max(out[i].confidence, WEAK):
                out[i], subs[i] = route, replace(sub, instruction=clause)
            break  # the first marker after the context starts the request
    return replace(parsed, subgoals=tuple(subs)), out


def head_clauses(
    router: IntentRouter, parsed: ParsedGoal, routes: list[Route]
) -> tuple[ParsedGoal, list[Route]]:
    """``parsed`` with each sub-goal routed by its main clause where that is more confident.

    What a request makes or acts on is named before a relative or complement clause; the clause
    describes it ("write a regex in Python | that matches email addresses" asks for code, not for the
    e-mail addresses of a text). The sub-goal's text (read for parameters) stays whole.
    """
    subs, out = list(parsed.subgoals), list(routes)
    for i, sub in enumerate(subs):
        m = _SUBORDINATE.search(sub.instruction)
        if m is None or len(sub.instruction[: m.start()].split()) < _MIN_HEAD_WORDS:
            continue
        route = router.route(sub.instruction[: m.start()])
        if route.best != NONE and route.confidence >= max(out[i].confidence, WEAK):
            out[i], subs[i] = route, replace(sub, instruction=sub.instruction[: m.start()])
    return replace(parsed, subgoals=tuple(subs)), out


def leading_context(
    parsed: ParsedGoal, routes: list[Route], verbs: frozenset[str]
) -> tuple[ParsedGoal, list[Route]]:
    """``parsed`` without the sentences before its first confident request that are context.

    A leading sentence is context when the next one carries no sequence word (or it says how something
    is, no step of its own: "This doc is too long; cut it to 40 tokens") and the sentence matches
    nothing, only small talk or only weakly — or is a statement ("I got this review from a customer.")
    about something else than the more confident request after it.
    """

    def context(i: int) -> bool:
        here, after = routes[i], routes[i + 1]
        if here.best in _CONTEXT_CLASSES or here.confidence < WEAK:
            return True
        return (
            _statement(parsed.subgoals[i], verbs)
            and agent_of(here.best) != agent_of(after.best)
            and after.confidence > here.confidence
        )

    cut = 0
    while (
        cut + 1 < len(routes)
        and (not parsed.subgoals[cut + 1].marked or _describes(parsed.subgoals[cut], verbs))
        and context(cut)
    ):
        cut += 1
    if cut == 0 or not _confident(routes[cut]) or routes[cut].best in _CONTEXT_CLASSES:
        return parsed, routes
    return replace(parsed, subgoals=parsed.subgoals[cut:]), routes[cut:]


def _statement(sub: SubGoal, verbs: frozenset[str]) -> bool:
    """Whether ``sub`` reads as text rather than a request: no instruction verb or question word first."""
    m = _FIRST_WORD.search(sub.instruction)
    word = m.group(0).lower() if m else ""
    return word not in verbs and word not in _QUESTION


def _describes(sub: SubGoal, verbs: frozenset[str]) -> bool:
    """Whether ``sub`` states how something is ("Our key is a year old"): a statement with a copula."""
    return _statement(sub, verbs) and _COPULA.search(sub.instruction) is not None


def trailing_payload(
    parsed: ParsedGoal, routes: list[Route], verbs: frozenset[str]
) -> tuple[ParsedGoal, list[Route]]:
    """The trailing sentences that ask for nothing, moved to the payload (see the module docstring)."""
    cut = len(routes)
    while cut > 1 and not parsed.subgoals[cut - 1].marked:
        sub, route = parsed.subgoals[cut - 1], routes[cut - 1]
        if route.best == NONE or route.confidence < WEAK or _CONSTRAINT.match(sub.text):
            cut -= 1
            continue
        before = parsed.subgoals[: cut - 1]
        wants_text = (
            parsed.payload is None
            and not any(s.quotes for s in before)
            and agent_of(routes[cut - 2].best) not in INSTRUCTION_AGENTS
        )
        same = agent_of(route.best) == agent_of(routes[cut - 2].best)  # "… It should be short.": one request
        if (
            _statement(sub, verbs)
            and not same
            and (wants_text or any(DEICTIC.search(s.instruction) for s in before))
        ):
            cut -= 1
            continue
        break
    if cut == len(routes) or all(r.best == NONE for r in routes[:cut]):
        return parsed, routes  # (the threshold still refuses a request that is itself weak)
    subs = list(parsed.subgoals[:cut])
    rest = parsed.subgoals[cut:]
    constraints = tuple(sg for sg in rest if _CONSTRAINT.match(sg.text))
    if constraints:  # read with the request for its parameters ("under 50 words"), routed as before
        last = subs[-1]
        stop = "" if last.text.rstrip()[-1:] in (".", "!", "?") else "."
        text = " ".join((last.text.rstrip() + stop, *(sg.text for sg in constraints)))
        subs[-1] = replace(last, text=text)
    tail = " ".join(sg.text for sg in rest if sg not in constraints)
    payload = (
        parsed.payload if not tail else tail if parsed.payload is None else f"{tail}\n\n{parsed.payload}"
    )
    return replace(parsed, subgoals=tuple(subs), payload=payload), routes[:cut]


def _joined(subs: Sequence[SubGoal]) -> SubGoal:
    """``subs`` as one sub-goal."""
    return SubGoal(
        " ".join(sg.instruction for sg in subs),
        " ".join(sg.text for sg in subs),
        tuple(q for sg in subs for q in sg.quotes),
        subs[0].marked,
    )


def composite(
    router: IntentRouter, parsed: ParsedGoal, routes: list[Route], verbs: frozenset[str] = frozenset()
) -> tuple[ParsedGoal, list[Route]]:
    """One sub-goal for a goal whose steps are the *subject* of one request, not its steps.

    "Plan the steps to summarize a document and then translate it" asks the ``planner`` (the summary
    and translation are what to plan); "ask several times and return the answer most agree on" asks for
    the ``consensus`` plan. When the sub-goals' instructions read together route to the planner or a
    built-in plan with confidence at least :data:`_COMPOSITE_CONFIDENCE`, they are one sub-goal.
    Adjacent sub-goals that route to the same class, the later one a sentence with no step marker
    ("Hello! How are you today?") or either one a statement rather than a request ("Our key is a year
    old; rotate it.": a statement is no step of its own, ``verbs`` tell requests from statements), are
    one request too.
    """
    if len(parsed.subgoals) < 2:
        return parsed, routes
    subs, kept = list(parsed.subgoals), list(routes)
    i = 1
    while i < len(subs):
        halves = not subs[i].marked or _statement(subs[i - 1], verbs) or _statement(subs[i], verbs)
        if halves and repeats(kept[i - 1 : i + 1]):
            subs[i - 1] = _joined(subs[i - 1 : i + 1])
            route = router.route(subs[i - 1].instruction)
            if agent_of(route.best) != agent_of(kept[i].best):  # the join reads worse than its halves
                route = max(kept[i - 1 : i + 1], key=lambda r: r.confidence)
            kept[i - 1] = route
            del subs[i], kept[i]
        else:
            i += 1
    if len(subs) > 1:
        one = _joined(subs)
        route = router.route(one.instruction)
        if route.best in _COMPOSITE and route.confidence >= _COMPOSITE_CONFIDENCE:
            subs, kept = [one], [route]
    return replace(parsed, subgoals=tuple(subs)), kept
