"""Close classes told apart by the form of a request, after routing and shaping.

* a sub-goal that matches nothing, or a close other class, but states the parameter of a runner-up of
  :data:`STATED` ("how to say '…' in Portuguese": a target language) asks for that runner-up;
* ``reporter`` with the ``report`` plan close behind it is the plan when analysis is asked;
* of ``retriever`` and ``rag-answerer``, a question wants the answer and a search the passages; a
  sub-goal naming stored material asks one of them when either is close to the best;
* a definitional question that points at no text is the ``generator``'s when the router is unsure;
* of ``consensus`` and the ``consensus`` plan, given answers are voted on, a question is sampled;
* after a store step, a question is answered from the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from agents.intent import NONE, IntentRouter, ParsedGoal, Route, SubGoal
from agents.synthesis._shaping import BUILTIN, DEICTIC

__all__ = (
    "STATED",
    "analysis_report",
    "answer_or_search",
    "general_question",
    "vote_or_sample",
    "recall",
    "recall_after_store",
    "stated_runner_up",
)

STATED = frozenset({"translator", "context-optimizer", "fetcher"})
"""Agents whose required parameter, when a goal states it (a target language "into Spanish", a token
budget "in 64 tokens", a record id "record runbook-42"), is evidence for them: "put '…' into Spanish" is a
translation, not a language check, and "how to say '…' in Portuguese" is no request outside the
collective."""
_NEAR_STATED = 0.1
"""How close to the best class a runner-up of :data:`STATED` whose parameter the goal states must be."""
_ANALYSIS = re.compile(r"\b(?:analy[sz]e|analysis|assess|examine|profile|evaluate)\b", re.IGNORECASE)
"""A request for analysis (the ``report`` plan runs the analyses; the reporter only lays out)."""
_NEAR_REPORT = 0.05
"""How close a runner-up must be for the form of a request to choose between it and the best."""
_NEAR_STORED = 0.1
"""How close to the best class the store's agents must be when a sub-goal names stored material."""
_STORED = re.compile(
    r"\b(?:saved|stored|i\s+(?:kept|filed|archived)|(?:my|our)\s+(?:notes|records|archive))\b", re.IGNORECASE
)
"""A sub-goal that names stored material: the store's agents (``retriever``, ``rag-answerer``) read it."""
_FOR_ITEMS = re.compile(
    r"\b(?:which|what)\s+(?:of\s+)?(?:my|our|the)\s+(?:\w+\s+)?(?:notes|docs|documents|records|files|"
    r"passages|entries|runbooks)\b|\b(?:find|search|look\s+up|list|show|pull\s+up|dig\s+up)\b",
    re.IGNORECASE,
)
"""A question for stored items themselves ("which of my saved notes …") or a search verb ("can you find
my notes on …?"): a search, not an answer."""
_SURE = 0.6
_TOP_NONE = 3
"""Confidence above which the router's own choice for a general question stands."""
_DEFINITION = re.compile(
    r"\s*(?:(?:what|who)(?:'s|\s+(?:is|are|was|were))\s+|explain\s+(?:what|how|why|the)\s+|define\s+|"
    r"why\s+(?:is|are|do|does)\s+)",
    re.IGNORECASE,
)
"""A question about what something is, how it works or why (a definition or an explanation)."""
_OWN = re.compile(r"\b(?:my|our|mine|ours|i|we|us|me)\b", re.IGNORECASE)
_ANSWER = re.compile(r"\banswer\b", re.IGNORECASE)
_RECALL = re.compile(
    r"\?|^(?:what|who|when|where|which|how|is|are|was|were|did|does|do)\b|\b(?:tell|remind|recall|ask)\b",
    re.IGNORECASE,
)
"""A sub-goal that asks something (a question, "tell me", "remind me")."""


def stated_runner_up(
    router: IntentRouter, route: Route, stated: Callable[[str], bool], takes: Callable[[str], bool]
) -> Route:
    """``route`` with a close runner-up of :data:`STATED` first when the goal states its parameter.

    A stated parameter is evidence only against a best class that takes no parameter it states: "remove
    record old-42" names the id the ``eraser`` takes as much as the ``fetcher``'s.

    Args:
        router: The router (its calibration gives the new confidence).
        route: The sub-goal's route.
        stated: Whether the sub-goal states every required parameter of an agent.
        takes: Whether an agent requires a parameter (its payload aside).
    """
    if route.best in STATED or (takes(route.best) and stated(route.best)):
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
    (find, look up, list) and a question for the stored items themselves ("which of my notes …") want
    the passages. A sub-goal that names stored material ("from what I saved", "our stored runbooks")
    asks the two, when one of them is within :data:`_NEAR_STORED` of the best class.
    """
    pair = ("retriever", "rag-answerer")
    top = route.ranked[0][1]
    family = [s for n, s in route.ranked if n in pair]
    stored = bool(family) and max(family) >= top - _NEAR_STORED and _STORED.search(text) is not None
    if route.best not in pair and not stored:
        return route
    asks = (_RECALL.search(text) or _ANSWER.search(text)) and not _FOR_ITEMS.search(text)
    wanted = "rag-answerer" if asks else "retriever"
    if stored:
        if route.best == wanted:
            return route
        return Route(((wanted, max(family)), *(r for r in route.ranked if r[0] != wanted)), route.confidence)
    for name, score in route.ranked[1:3]:
        if name == wanted and score >= top - _NEAR_REPORT:
            return Route(((name, score), *(r for r in route.ranked if r[0] != name)), route.confidence)
    return route


def general_question(router: IntentRouter, route: Route, sub: SubGoal, payload: str | None) -> Route:
    """``route`` with the ``generator`` first for a question about the world that no agent's form fits.

    "What is a monad?", "Explain how a mutex works": a definitional question that points at no text
    (no "this", no quote, no payload) and names nothing of the user's ("my", "our") asks the model what
    it knows. When the router is not sure of another agent (below :data:`_SURE`), the question's frame
    ("what is") is all it matched on, so the ``generator`` answers — unless the refusal class is among
    the first :data:`_TOP_NONE` (questions about live facts: the weather, a price, a score).
    """
    text = sub.text
    if (
        route.best == "generator"
        or route.confidence >= _SURE
        or NONE in (name for name, _ in route.ranked[:_TOP_NONE])  # live facts: weather, prices, scores
        or sub.quotes
        or payload is not None
        or not _DEFINITION.match(text)
        or DEICTIC.search(text)
        or _OWN.search(text)
    ):
        return route
    score = dict(route.ranked).get("generator", route.ranked[0][1])
    ranked = (("generator", score), *(r for r in route.ranked if r[0] != "generator"))
    return Route(ranked, max(route.confidence, router.calibrated(score, 0.0)))


def vote_or_sample(route: Route, sub: SubGoal) -> Route:
    """Of the ``consensus`` agent and plan among the first three, the one the goal's form asks for.

    Both accept one answer by majority; answers the goal gives (two or more quotes) are voted on by the
    agent, a question alone is sampled several times by the plan.
    """
    pair = ("consensus", f"{BUILTIN}consensus")
    if route.best not in pair:
        return route
    wanted = pair[0] if len(sub.quotes) >= 2 else pair[1]
    for name, score in route.ranked[1:_TOP_NONE]:
        if name == wanted:
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
