"""The orchestrator's async generators: a call's events (:func:`call_events`) and a routed stream's.

Kept apart from :mod:`orchestrator._dispatch` and :mod:`orchestrator._route`, which mypyc compiles
(:mod:`agents._compiled`) and which cannot hold async generators; those modules' functions
(:func:`orchestrator._dispatch.call_agent`, :meth:`orchestrator._route.Router.stream`) return these.
A stream pays for one more Python frame per event here, a call (the hop) nothing.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

from agents.protocol import Chunk, End

if TYPE_CHECKING:
    from orchestrator._call_context import CallContext
    from orchestrator._dispatch import AgentCall
    from orchestrator._route import Router

__all__ = ("call_events", "routed_events")


async def call_events(
    call: AgentCall, team: str, subject: str, payload: Mapping[str, Any], accept_timeout_s: float
) -> AsyncGenerator[Chunk | End, None]:
    """Start ``call`` (to ``subject``) on the first step, then yield its chunks and its :class:`End`.

    Leaving early (break, exception, cancellation) finishes the call with the failure, which tells the
    agent to cancel. Raises what :func:`orchestrator._dispatch.call_agent` documents.
    """
    await call.start(team, subject, payload, accept_timeout_s)
    failure: BaseException | None = None
    try:
        while True:
            event = await call.next()
            yield event
            if isinstance(event, End):
                return
    except BaseException as exc:
        failure = exc
        raise
    finally:  # a consumer that stops right after the End closes a finished call
        await call.finish(None if call.done and isinstance(failure, GeneratorExit) else failure)


async def routed_events(
    router: Router, agent: str, payload: Mapping[str, Any], ctx: CallContext, team: str | None
) -> AsyncGenerator[Chunk | End, None]:
    """``router.open_stream(...)`` on the first step, then its events (:meth:`Router.stream`)."""
    stream = await router.open_stream(agent, payload, ctx, team=team)
    failure: BaseException | None = None
    try:
        yield stream.first
        while not stream.done:
            yield await stream.next()
    except BaseException as exc:
        failure = exc
        raise
    finally:
        await stream.aclose(failure)
