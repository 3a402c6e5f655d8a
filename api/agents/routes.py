"""Agents one by one: ``GET``/``POST /v1/agents/{name}``, ``POST /v1/select``, ``POST /v1/plan``.

``POST /v1/plan`` previews the planner's plan for a goal without running it: 200 with the plan, or 422
with the best candidates and their scores when the goal is not clear enough.

A direct call is routed like a plan step: the least-loaded healthy replica first, failover to another
replica or to another agent of the same capability when it is busy or down (unless ``fallback`` is
false), retries with backoff on timeouts and crashes. The agent's input errors come back as 400 naming
the field as ``input.<field>``; an input longer than the agent's ``max_input_bytes`` (``GET
/v1/agents/{name}`` shows it) as 413 on ``input``, refused by the agent before it decodes the JSON; an
unknown agent is 404. A body longer than ``api._bodies.agent_body_limit`` of the agent's
``max_input_bytes`` is 413 on ``input`` too, refused before the API reads or decodes it.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from agents.collective import AgentSpec
from agents.errors import AgentError, BadInputError, NotFoundError
from agents.synthesis._wire import PlannerInput, PlannerOutput
from api._bodies import AgentInputLimit
from api._request import call_context
from api.agents.schemas import (
    AgentCallRequest,
    AgentCallResponse,
    AgentSpecOut,
    CandidateOut,
    SelectRequest,
    SelectResponse,
)
from orchestrator import Orchestrator


def _spec(orchestrator: Orchestrator, name: str) -> AgentSpec:
    spec = orchestrator.selector.specs.get(name)
    if spec is None:
        raise NotFoundError(f"no agent named {name!r} (GET /v1/agents lists them)", field="name")
    return spec


def _payload(spec: AgentSpec, value: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if spec.text_input is None:
        required = ", ".join(spec.input_schema.get("required", [])) or "see its input_schema"
        raise BadInputError(
            f"{spec.name} takes an object, not text (required fields: {required}; "
            f"GET /v1/agents/{spec.name} shows its input schema)",
            field="input",
        )
    return {spec.text_input: value}


@get("/v1/agents/{name:str}", summary="One agent of the roster: description, capabilities, schemas")
async def describe_agent(state: State, name: FromPath[str]) -> AgentSpecOut:
    """The roster entry of ``name`` (404 if there is none)."""
    spec = _spec(state.orchestrator, name)
    return AgentSpecOut(
        name=spec.name,
        team=spec.team,
        description=spec.description,
        capabilities=list(spec.capabilities),
        bridges=list(spec.bridges),
        input_schema=spec.input_schema,
        output_schema=spec.output_schema,
        text_input=spec.text_input,
        text_output=spec.text_output,
        max_input_bytes=spec.max_input_bytes,
    )


@post(
    "/v1/agents/{name:str}",
    summary="Call one agent directly",
    status_code=200,
    middleware=[AgentInputLimit],  # a body longer than the agent can take: 413 before it is read
)
async def call_agent_route(
    state: State, request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[AgentCallRequest]
) -> AgentCallResponse:
    """Route ``data.input`` to ``name`` and return its output (see the module docstring for errors)."""
    orchestrator: Orchestrator = state.orchestrator
    spec = _spec(orchestrator, name)
    payload = _payload(spec, data.input)
    ctx = call_context(orchestrator, request, timeout_s=data.timeout_s)
    try:
        inv = await orchestrator.invoke(
            name, payload, ctx, timeout_s=data.timeout_s, retries=data.retries, fallback=data.fallback
        )
    except AgentError as exc:
        if exc.code == "bad_request" and exc.field and not exc.field.startswith("input"):
            exc.field = f"input.{exc.field}"
        raise
    return AgentCallResponse(
        agent=inv.agent, team=inv.team, output=inv.output, attempts=inv.attempts, failovers=inv.failovers
    )


@post("/v1/plan", summary="Preview the plan for a goal without running it", status_code=200)
async def plan_goal(
    state: State, request: Request[Any, Any, Any], data: JSONBody[PlannerInput]
) -> Response[PlannerOutput]:
    """The ``planner``'s plan for ``data.goal`` (200), or 422 when it needs clarification.

    The 422 body is the planner's output with ``status: needs_clarification``: the candidates of each
    sub-goal and their scores, and the reason.
    """
    orchestrator: Orchestrator = state.orchestrator
    ctx = call_context(orchestrator, request)
    inv = await orchestrator.invoke("planner", data.model_dump(), ctx)
    out = PlannerOutput.model_validate(inv.output)
    return Response(out, status_code=422 if out.status == "needs_clarification" else 200)


@post("/v1/select", summary="Which agent would handle a goal or capability, and why", status_code=200)
async def select_agent(state: State, data: JSONBody[SelectRequest]) -> SelectResponse:
    """Run agent selection (capability, then semantic match, then load) and explain the scores."""
    orchestrator: Orchestrator = state.orchestrator
    selection = await orchestrator.select(capability=data.capability, goal=data.goal, k=data.k)
    return SelectResponse(
        agent=selection.agent,
        team=selection.team,
        method=selection.method,
        candidates=[
            CandidateOut(
                agent=c.agent, score=c.score, capability=c.capability, semantic=c.semantic, load=c.load
            )
            for c in selection.candidates
        ],
    )


ROUTES = (describe_agent, call_agent_route, select_agent, plan_goal)
