"""Ollama's model routes: the catalogue, the version, the liveness probes, the unserved management.

============================================  =========================================================
``GET|HEAD /api/tags``                        the served models (generation and embedding)
``GET /api/ps``                               the loaded ones
``POST /api/show``                            one model's details and capabilities (404 for another)
``GET|HEAD /api/version``                     the Ollama API version these routes follow
``HEAD /``                                    200, no body: the probe of Ollama's CLI and clients
                                              (``GET /`` is the operator's dashboard, also 200)
``POST /api/pull|push|create|copy``,          501 with ``{"error": ...}``: models are configured on the
``DELETE /api/delete``, ``/api/blobs/{d}``    server, not pulled or created through the API
============================================  =========================================================

Routes and methods from Ollama's ``server/routes.go`` (``r.HEAD("/", ...)``, ``r.HEAD("/api/version",
...)``, ``r.HEAD("/api/tags", s.ListHandler)``); shapes from its ``docs/api.md``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from litestar import Request, Response, get, head, post, route
from litestar.datastructures import State
from litestar.params import JSONBody

from agents.errors import NotFoundError
from api.ollama.schemas import OllamaModelRequest
from orchestrator import ModelInfo, Orchestrator

__all__ = ("MODEL_ROUTES", "OLLAMA_VERSION", "ROOT_ROUTES")

OLLAMA_VERSION = "0.12.0"
"""The Ollama release whose API these routes follow (``GET /api/version``)."""


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _family(info: ModelInfo) -> str:
    return "bert" if info.kind == "embedding" else info.id.split("-")[0].split(":")[0].lower()


def _details(info: ModelInfo) -> dict[str, Any]:
    family = _family(info)
    return {
        "parent_model": "",
        "format": "sentence-transformers" if info.kind == "embedding" else "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "",
        "quantization_level": "",
    }


def _iso(ts: float | None) -> str:
    when = dt.datetime.fromtimestamp(ts, dt.UTC) if ts else dt.datetime.now(dt.UTC)
    return when.isoformat().replace("+00:00", "Z")


def _tag(info: ModelInfo) -> dict[str, Any]:
    return {
        "name": info.id,
        "model": info.id,
        "modified_at": _iso(info.loaded_at),
        "size": info.memory_bytes or 0,
        "digest": _digest(info.id),
        "details": _details(info),
    }


@get("/tags", summary="Ollama-compatible list of the served models")
async def tags(state: State) -> dict[str, Any]:
    """Every generation model and the embedding model (``size``: bytes in memory when loaded, else 0)."""
    orchestrator: Orchestrator = state.orchestrator
    return {"models": [_tag(m) for m in await orchestrator.models()]}


@head("/tags", summary="Ollama's HEAD /api/tags (200, no body)")
async def tags_head() -> None:
    """200 without a body, as Ollama answers ``HEAD /api/tags``."""


@get("/ps", summary="Ollama-compatible list of the loaded models")
async def ps(state: State) -> dict[str, Any]:
    """The loaded models (``size``: bytes in memory; ``context_length``: tokens per request)."""
    orchestrator: Orchestrator = state.orchestrator
    loaded = [m for m in await orchestrator.models() if m.status == "loaded"]
    return {
        "models": [
            {
                **_tag(m),
                "expires_at": _iso(m.last_used_at + m.idle_unload_s)
                if m.last_used_at and m.idle_unload_s
                else "0001-01-01T00:00:00Z",
                "size_vram": 0,
                "context_length": m.n_ctx or 0,
            }
            for m in loaded
        ]
    }


@post("/show", status_code=200, summary="Ollama-compatible details of one model")
async def show(data: JSONBody[OllamaModelRequest], state: State) -> dict[str, Any]:
    """Details, ``model_info`` and ``capabilities`` of a served model; 404 for another name."""
    orchestrator: Orchestrator = state.orchestrator
    name = data.model_name
    for m in await orchestrator.models():
        if m.id == name:
            family = _family(m)
            info: dict[str, Any] = {"general.architecture": family, "general.basename": m.id}
            if m.n_ctx:
                info[f"{family}.context_length"] = m.n_ctx
            capabilities = ["embedding"] if m.kind == "embedding" else ["completion", "tools"]
            return {
                "modelfile": f"FROM {m.id}\n",
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": _details(m),
                "model_info": info,
                "capabilities": capabilities,
                "modified_at": _iso(m.loaded_at),
            }
    raise NotFoundError(f"model '{name}' not found", field="model")


@get("/version", summary="The Ollama API version these routes follow")
async def version() -> dict[str, str]:
    """``{"version": "0.12.0"}``."""
    return {"version": OLLAMA_VERSION}


@head("/version", summary="Ollama's HEAD /api/version (200, no body)")
async def version_head() -> None:
    """200 without a body, as Ollama answers ``HEAD /api/version``."""


_UNSERVED = {
    "pull": "pulling models",
    "push": "pushing models",
    "create": "creating models",
    "copy": "copying models",
    "delete": "deleting models",
    "blobs": "uploading model blobs",
}


@route(
    ["/pull", "/push", "/create", "/copy", "/delete", "/blobs/{digest:str}"],
    http_method=["POST", "DELETE"],
    status_code=501,
    include_in_schema=False,  # not served: documented in the module docstring, not in the API's schema
)
async def unserved(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    """501 with Ollama's error shape: models are configured on the server, not managed through the API."""
    what = _UNSERVED[request.url.path.split("/")[2]]
    message = (
        f"{what} is not supported by this server: its models are configured where it runs "
        "(ryot.model_path, ryot.models); GET /api/tags lists them"
    )
    return Response({"error": message}, status_code=501)


@head("/", include_in_schema=False, opt={"exclude_from_auth": True})
async def heartbeat() -> None:
    """200 without a body: the liveness probe of Ollama's CLI (``HEAD /``); ``GET /`` is the dashboard."""


MODEL_ROUTES = (tags, tags_head, ps, show, version, version_head, unserved)
"""Handlers mounted under ``/api`` (by :mod:`api.ollama.routes`)."""
ROOT_ROUTES = (heartbeat,)
"""Handlers mounted at the root."""
