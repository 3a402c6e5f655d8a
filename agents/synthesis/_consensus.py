"""The ``consensus`` agent: an N-way vote on answers that tolerates f faulty ones.

With n ≥ 3f + 1 voters of which at most f are faulty (arbitrary, "Byzantine", answers included), a value
backed by a quorum of 2f + 1 identical votes is backed by at least f + 1 correct voters, and no two
different values can both reach it — the bound and quorum of Lamport, Shostak & Pease, "The Byzantine
Generals Problem" (ACM TOPLAS 4(3), 1982) and of PBFT (Castro & Liskov, "Practical Byzantine Fault
Tolerance", OSDI 1999). When n is larger than 3f + 1 the quorum is raised to a strict majority
(⌊n/2⌋ + 1) if that is larger, so that it still admits at most one value.

Answers are compared after normalisation (Unicode NFKC, case, whitespace, punctuation; a numeric answer
in canonical form, so ``1,000.0`` and ``1000`` agree). A generation that fails counts as a faulty voter
that did not vote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio
from pydantic import BaseModel

from agents.actor import Call
from agents.errors import AgentError, BadInputError
from agents.synthesis._base import SynthesisAgent
from agents.synthesis._text import normalise_answer
from agents.synthesis._wire import ConsensusInput, ConsensusOutput

__all__ = ("ConsensusAgent", "Tally", "default_f", "quorum", "tally")

DEFAULT_N = 4
"""Generations asked for when only a prompt is given (3f + 1 with f = 1)."""


def default_f(n: int) -> int:
    """The largest f with n ≥ 3f + 1."""
    return max(0, (n - 1) // 3)


def quorum(n: int, f: int) -> int:
    """Identical votes needed to accept a value: max(2f + 1, ⌊n/2⌋ + 1).

    Raises:
        BadInputError: Naming ``f``, when n < 3f + 1 (too few voters to tolerate f faults).
    """
    if f < 0 or n < 3 * f + 1:
        raise BadInputError(
            f"{n} answers tolerate at most f={default_f(n)} faulty ones (n ≥ 3f + 1)", field="f"
        )
    return max(2 * f + 1, n // 2 + 1)


@dataclass(frozen=True, slots=True)
class Tally:
    """The outcome of a vote.

    Attributes:
        value: The accepted answer as first given, or None.
        key: The accepted answer normalised, or None.
        votes: Normalised answer → votes, most first (ties in first-seen order).
        quorum: Votes needed.
        n: Voters (failed ones included).
        f: Faulty voters tolerated.
    """

    value: str | None
    key: str | None
    votes: dict[str, int]
    quorum: int
    n: int
    f: int


def tally(answers: Sequence[str | None], *, f: int | None = None, numeric: bool = True) -> Tally:
    """Vote on ``answers`` (None: a voter that failed) tolerating ``f`` faulty ones.

    Raises:
        BadInputError: Naming ``f``, when ``len(answers) < 3f + 1``.
    """
    n = len(answers)
    f = default_f(n) if f is None else f
    needed = quorum(n, f)
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for answer in answers:
        if answer is None:
            continue
        key = normalise_answer(answer, numeric=numeric)
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, answer.strip())
    votes = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    top = next(iter(votes), None)
    if top is not None and votes[top] >= needed:
        return Tally(value=first[top], key=top, votes=votes, quorum=needed, n=n, f=f)
    return Tally(value=None, key=None, votes=votes, quorum=needed, n=n, f=f)


class ConsensusAgent(SynthesisAgent):
    """Accepts an answer only when a Byzantine quorum of the answers agrees on it."""

    name = "consensus"
    description = (
        "Votes on several answers to one question (given, or generated n times with different seeds) "
        "and accepts one only with a quorum that tolerates f faulty answers of 3f+1."
    )
    capabilities = ("consensus", "vote", "majority", "agreement", "quorum")
    input_model: ClassVar[type[BaseModel]] = ConsensusInput
    output_model: ClassVar[type[BaseModel]] = ConsensusOutput
    bridges = ("collective",)
    text_input = "prompt"
    text_output = "value"

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Vote on ``candidates``, or on ``n`` generations of ``prompt``."""
        inp: ConsensusInput = call.input
        if (inp.candidates is None) == (inp.prompt is None):
            raise BadInputError("give exactly one of candidates and prompt", field="candidates")
        if inp.candidates is not None:
            if inp.n is not None and inp.n != len(inp.candidates):
                raise BadInputError(f"n={inp.n} but {len(inp.candidates)} candidates were given", field="n")
            answers: list[str | None] = list(inp.candidates)
        else:
            n = inp.n or DEFAULT_N
            quorum(n, default_f(n) if inp.f is None else inp.f)  # refuse a bad f before generating
            answers = await self._generate(call, inp, n)
        result = tally(answers, f=inp.f, numeric=inp.numeric)
        return ConsensusOutput(
            value=result.value,
            key=result.key,
            votes=result.votes,
            quorum=result.quorum,
            agreed=result.value is not None,
            n=result.n,
            f=result.f,
            candidates=[a for a in answers if a is not None],
            failed=sum(a is None for a in answers),
        ).model_dump()

    async def _generate(self, call: Call, inp: ConsensusInput, n: int) -> list[str | None]:
        """Ask ``generator`` ``n`` times at once (seeds 0..n-1); a failed generation is None.

        Raises:
            AgentError: Every generation failed (the first failure).
        """
        answers: list[str | None] = [None] * n
        errors: list[AgentError] = []

        async def one(i: int) -> None:
            payload = {
                "prompt": inp.prompt,
                "seed": i,
                "temperature": inp.temperature,
                "max_tokens": inp.max_tokens,
            }
            try:
                out = await self.collective.call("generator", payload, parent=call)
            except AgentError as exc:
                errors.append(exc)
                return
            answers[i] = str(out.get("text", ""))

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
        if len(errors) == n:
            raise errors[0]
        return answers
