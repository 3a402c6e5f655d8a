"""Shaping a split goal before it is planned: which sub-goals are requests, which are context or payload.

A goal split into sentences and steps (:func:`agents.intent.parse_goal`) is not yet a list of requests:

* a **request clause** inside a long sentence ("I'm short on time, so could you summarize this") is the
  part the router should read, when it routes more confidently than the whole sentence;
* **leading context** ("Good morning.", "Hi! I'm new here.") — sentences before the first confident
  request that match nothing, only small talk, or only weakly — is dropped when no sequence word
  ("then", "next", a list) marks what follows as a further step;
* **trailing payload** — sentences after the last request with no sequence word, that match nothing or
  only weakly, or that are statements (no instruction verb, no question) after a request that points at
  a text ("this", "these", "the following", "here") or that works on a text the goal has not given
  yet — is the text the goal applies to;
* **one request in halves** — adjacent sub-goals asking for the same class, the later unmarked — and a
  goal whose steps are the *subject* of one request ("plan the steps to …") are one sub-goal;
* a sub-goal that matches nothing but names the parameter of a close runner-up that takes one ("how to
  say '…' in Portuguese": a target language) asks for that runner-up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from agents.intent import NONE, IntentRouter, ParsedGoal, Route, SubGoal
from agents.intent._inputs import INSTRUCTION_AGENTS

__all__ = (
    "BUILTIN",
    "STATED",
    "agent_of",
    "analysis_report",
    "answer_or_search",
    "composite",
    "least",
    "leading_context",
    "recall",
    "recall_after_store",
    "repeats",
    "request_clauses",
    "stated_runner_up",
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
_DEICTIC = re.compile(r"\b(?:this|these|following|below|here|it)\b", re.IGNORECASE)
"""A request that points at a text the goal gives."""
_QUESTION = frozenset(
    "what which how is are was were does do did can could would will who whom whose when where why "
    "should please kindly".split()
)
_FIRST_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
STATED = frozenset({"translator", "context-optimizer"})
"""Agents whose required parameter, when a goal states it (a target language "into Spanish", a token
budget "in 64 tokens"), is evidence for them: "put '…' into Spanish" is a translation, not a language
check, and "how to say '…' in Portuguese" is no request outside the collective."""
_NEAR_STATED = 0.1
"""How close to the best class a runner-up of :data:`STATED` whose parameter the goal states must be."""
_ANALYSIS = re.compile(r"\b(?:analy[sz]e|analysis|assess|examine|profile|evaluate)\b", re.IGNORECASE)
"""A request for analysis (the ``report`` plan runs the analyses; the reporter only lays out)."""
_NEAR_REPORT = 0.05
"""How close a runner-up must be for the form of a request to choose between it and the best."""
_ANSWER = re.compile(r"\banswer\b", re.IGNORECASE)
_RECALL = re.compile(
    r"\?|^(?:what|who|when|where|which|how|is|are|was|were|did|does|do)\b|\b(?:tell|remind|recall|ask)\b",
    re.IGNORECASE,
)
"""A sub-goal that asks something (a question, "tell me", "remind me")."""


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


def leading_context(
    parsed: ParsedGoal, routes: list[Route], verbs: frozenset[str]
) -> tuple[ParsedGoal, list[Route]]:
    """``parsed`` without the sentences before its first confident request that are context.

    A leading sentence is context when the next one carries no sequence word and the sentence matches
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
    while cut + 1 < len(routes) and not parsed.subgoals[cut + 1].marked and context(cut):
        cut += 1
    if cut == 0 or not _confident(routes[cut]) or routes[cut].best in _CONTEXT_CLASSES:
        return parsed, routes
    return replace(parsed, subgoals=parsed.subgoals[cut:]), routes[cut:]


def _statement(sub: SubGoal, verbs: frozenset[str]) -> bool:
    """Whether ``sub`` reads as text rather than a request: no instruction verb or question word first."""
    m = _FIRST_WORD.search(sub.instruction)
    word = m.group(0).lower() if m else ""
    return word not in verbs and word not in _QUESTION


def trailing_payload(
    parsed: ParsedGoal, routes: list[Route], verbs: frozenset[str]
) -> tuple[ParsedGoal, list[Route]]:
    """The trailing sentences that ask for nothing, moved to the payload (see the module docstring)."""
    cut = len(routes)
    while cut > 1 and not parsed.subgoals[cut - 1].marked:
        sub, route = parsed.subgoals[cut - 1], routes[cut - 1]
        if route.best == NONE or route.confidence < WEAK:
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
            and (wants_text or any(_DEICTIC.search(s.instruction) for s in before))
        ):
            cut -= 1
            continue
        break
    if cut == len(routes) or all(r.best == NONE for r in routes[:cut]):
        return parsed, routes  # (the threshold still refuses a request that is itself weak)
    tail = " ".join(sg.text for sg in parsed.subgoals[cut:])
    payload = tail if parsed.payload is None else f"{tail}\n\n{parsed.payload}"
    return replace(parsed, subgoals=parsed.subgoals[:cut], payload=payload), routes[:cut]


def _joined(subs: Sequence[SubGoal]) -> SubGoal:
    """``subs`` as one sub-goal."""
    return SubGoal(
        " ".join(sg.instruction for sg in subs),
        " ".join(sg.text for sg in subs),
        tuple(q for sg in subs for q in sg.quotes),
        subs[0].marked,
    )


def composite(
    router: IntentRouter, parsed: ParsedGoal, routes: list[Route]
) -> tuple[ParsedGoal, list[Route]]:
    """One sub-goal for a goal whose steps are the *subject* of one request, not its steps.

    "Plan the steps to summarize a document and then translate it" asks the ``planner`` (the summary
    and translation are what to plan); "ask several times and return the answer most agree on" asks for
    the ``consensus`` plan. When the sub-goals' instructions read together route to the planner or a
    built-in plan with confidence at least :data:`_COMPOSITE_CONFIDENCE`, they are one sub-goal.
    Adjacent sub-goals that route to the same class, the later one a sentence with no step marker
    ("Hello! How are you today?"), are one request too.
    """
    if len(parsed.subgoals) < 2:
        return parsed, routes
    subs, kept = list(parsed.subgoals), list(routes)
    i = 1
    while i < len(subs):
        if not subs[i].marked and repeats(kept[i - 1 : i + 1]):
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


def stated_runner_up(router: IntentRouter, route: Route, stated: Callable[[str], bool]) -> Route:
    """``route`` with a close runner-up of :data:`STATED` first when the goal states its parameter.

    Args:
        router: The router (its calibration gives the new confidence).
        route: The sub-goal's route.
        stated: Whether the sub-goal states every required parameter of an agent.
    """
    if route.best in STATED:
        return route
    top = route.ranked[0][1]
    for j, (name, score) in enumerate(route.ranked[1:3], start=1):
        if name in STATED and score >= top - _NEAR_STATED and stated(name):
            rest = [r for k, r in enumerate(route.ranked) if k != j and r[0] != NONE]
            margin = score - rest[0][1] if rest else score
            ranked = ((name, score), *rest)
            return Route(ranked, router.calibrated(score, max(margin, 0.0)))
    return route


def analysis_report(route: Route, instruction: str) -> Route:
    """``route`` with the ``report`` plan first when it is close behind ``reporter`` and analysis is asked.

    The ``reporter`` lays out findings it is given; the ``report`` plan analyses a text and reports
    (its last step is the reporter). "Analyse this text and write a report" asks for the analysis too.
    """
    if route.best != "reporter" or not _ANALYSIS.search(instruction):
        return route
    for name, score in route.ranked[1:3]:
        if name == f"{BUILTIN}report" and score >= route.ranked[0][1] - _NEAR_REPORT:
            ranked = ((name, score), *(r for r in route.ranked if r[0] != name))
            return Route(ranked, route.confidence)
    return route


def answer_or_search(route: Route, text: str) -> Route:
    """Of ``retriever`` and ``rag-answerer`` close at the top, the one the sub-goal's form asks for.

    Both read the store; a question ("when …?", "tell me", "answer") wants an answer, anything else
    (find, look up, list) wants the passages.
    """
    pair = ("retriever", "rag-answerer")
    if route.best not in pair:
        return route
    wanted = "rag-answerer" if _RECALL.search(text) or _ANSWER.search(text) else "retriever"
    for name, score in route.ranked[1:3]:
        if name == wanted and score >= route.ranked[0][1] - _NEAR_REPORT:
            return Route(((name, score), *(r for r in route.ranked if r[0] != name)), route.confidence)
    return route


def recall(route: Route) -> Route:
    """``route`` with ``rag-answerer`` first: after a store step, a question is answered from the store."""
    ranked = [("rag-answerer", max(route.ranked[0][1], 0.0))]
    ranked += [r for r in route.ranked if r[0] != "rag-answerer"]
    return Route(tuple(ranked), max(route.confidence, 0.9))


def recall_after_store(parsed: ParsedGoal, routes: list[Route]) -> list[Route]:
    """``routes`` with every question after a store step answered from the store (``rag-answerer``)."""
    out = list(routes)
    for i in range(1, len(out)):
        if any(r.best == "archivist" for r in out[:i]) and _RECALL.search(parsed.subgoals[i].text):
            out[i] = recall(out[i])
    return out
