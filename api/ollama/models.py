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
import functools
import os
from pathlib import Path
from typing import Any

import anyio.to_thread
from litestar import Request, Response, get, head, post, route
from litestar.datastructures import State
from litestar.params import JSONBody

from agents.errors import NotFoundError
from api.ollama.schemas import OllamaModelRequest
from orchestrator import ModelInfo, Orchestrator

__all__ = ("MODEL_ROUTES", "OLLAMA_VERSION", "ROOT_ROUTES", "human_number")

OLLAMA_VERSION = "0.12.0"
"""The Ollama release whose API these routes follow (``GET /api/version``)."""


def human_number(n: int) -> str:
    """A parameter count as Ollama's ``details.parameter_size`` writes it: ``268.10M``, ``1.2B``, ``23K``.

    Ollama's ``format.HumanNumber`` (``format/format.go``): from a billion, ``B`` with one decimal; from a
    million, ``M`` with two; from a thousand, ``K`` with none; a whole number of B or M has no decimals.
    """
    for unit, suffix, places in ((1_000_000_000, "B", 1), (1_000_000, "M", 2)):
        if n >= unit:
            value = n / unit
            return f"{value:.0f}{suffix}" if value == int(value) else f"{value:.{places}f}{suffix}"
    return f"{n / 1000:.0f}K" if n >= 1000 else str(n)


_ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero ``time.Time`` as Ollama writes it: a time that is not known."""


def _family(info: ModelInfo) -> str:
    if info.architecture:
        return info.architecture
    return "bert" if info.kind == "embedding" else info.id.split("-")[0].split(":")[0].lower()


def _details(info: ModelInfo) -> dict[str, Any]:
    """Ollama's ``details``; ``parameter_size`` / ``quantization_level`` empty while not known."""
    family = _family(info)
    return {
        "parent_model": "",
        "format": "safetensors" if info.kind == "embedding" else "gguf",
        "family": family,
        "families": [family],
        "parameter_size": human_number(info.parameter_count) if info.parameter_count is not None else "",
        "quantization_level": info.quantization or "",
    }


def _iso(ts: float | None) -> str:
    if ts is None:
        return _ZERO_TIME
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def _tag(info: ModelInfo) -> dict[str, Any]:
    """One ``/api/tags`` entry: the model file's bytes, modification time and SHA-256.

    ``digest`` is the SHA-256 of the model file (what Ollama names its blob by), hashed in the background
    by the replica that has the file (``ryot.ModelStatus.file_sha256``); ``""`` until that is done (a
    fraction of a second after the file is known for Gemma 3 270M) and for the embedding model, whose
    files are not hashed.
    """
    return {
        "name": info.id,
        "model": info.id,
        "modified_at": _iso(info.file_mtime),
        "size": info.file_size or 0,
        "digest": info.file_sha256 or "",
        "details": _details(info),
    }


_NOT_IN_MODEL_INFO = ("general.name", "tokenizer.chat_template")
"""The GGUF keys Ollama deletes from ``model_info``."""


def _model_info(info: ModelInfo) -> dict[str, Any]:
    """``/api/show``'s ``model_info``: the GGUF metadata and ``general.parameter_count``, as Ollama gives.

    Ollama returns the GGUF's key/value pairs without ``general.name`` and ``tokenizer.chat_template``,
    arrays of more than 5 items empty, plus the parameter count (``server/routes.go``,
    ``GetModelInfo``). For a model without GGUF metadata (the embedding model) the known facts under the
    same keys.
    """
    family = _family(info)
    out: dict[str, Any] = {"general.architecture": family}
    out.update((k, v) for k, v in info.metadata.items() if k not in _NOT_IN_MODEL_INFO)
    out.setdefault("general.basename", info.id)
    if info.parameter_count is not None:
        out["general.parameter_count"] = info.parameter_count
    facts = {"context_length": info.context_length_trained, "embedding_length": info.embedding_length}
    for key, value in facts.items():
        if value is not None:
            out.setdefault(f"{family}.{key}", value)
    return out


@functools.lru_cache(maxsize=8)
def _read_tensors(path: str, size: int, mtime_ns: int) -> tuple[dict[str, Any], ...] | None:
    """The GGUF's tensors as Ollama lists them, for one version of the file (cached: ~35 ms to read).

    ``None`` if ggml cannot parse the file.
    """
    from ryot import ModelLoadError, read_gguf_tensors  # only here: the API reads a model file for /api/show

    try:
        tensors = read_gguf_tensors(Path(path))
    except ModelLoadError:
        return None
    return tuple({"name": t.name, "type": t.type, "shape": list(t.shape)} for t in tensors)


def _tensors(info: ModelInfo) -> list[dict[str, Any]] | None:
    """``/api/show``'s ``tensors`` (name, ggml type, shape) of a GGUF model whose file this host has.

    The file named by the replica that reported it (``info.path``) is read only when it is the same
    version (size and modification time) on this host: the embedded service, or a path shared by its
    hosts. ``None`` otherwise (and for the embedding model): the field is then left out, as Ollama
    leaves out an empty ``tensors``.
    """
    if info.kind != "generation" or not info.path or info.file_size is None or info.file_mtime is None:
        return None
    try:
        st = os.stat(info.path)
    except OSError:
        return None
    if st.st_size != info.file_size or st.st_mtime != info.file_mtime:
        return None
    tensors = _read_tensors(info.path, st.st_size, st.st_mtime_ns)
    return list(tensors) if tensors is not None else None


@get("/tags", summary="Ollama-compatible list of the served models")
async def tags(state: State) -> dict[str, Any]:
    """Every generation model and the embedding model (``size``: the model file's bytes; 0: not known)."""
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
                "size": m.memory_bytes or 0,
                "expires_at": _iso(m.last_used_at + m.idle_unload_s)
                if m.last_used_at and m.idle_unload_s
                else _ZERO_TIME,
                "size_vram": 0,
                "context_length": m.n_ctx or 0,
            }
            for m in loaded
        ]
    }


@post("/show", status_code=200, summary="Ollama-compatible details of one model")
async def show(data: JSONBody[OllamaModelRequest], state: State) -> dict[str, Any]:
    """Details, ``model_info``, ``capabilities`` and ``tensors`` of a served model; 404 for another name.

    ``tensors`` (``[{"name", "type", "shape"}, ...]``, every tensor of the GGUF in file order) is given
    whatever ``verbose`` says, as Ollama gives it for a GGUF model (``server/routes.go``,
    ``GetModelInfo``), when this host has the model's file (see `_tensors`).
    """
    orchestrator: Orchestrator = state.orchestrator
    name = data.model_name
    for m in await orchestrator.models():
        if m.id == name:
            capabilities = ["embedding"] if m.kind == "embedding" else ["completion", "tools"]
            shown: dict[str, Any] = {
                "modelfile": f"FROM {m.id}\n",
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": _details(m),
                "model_info": _model_info(m),
                "capabilities": capabilities,
                "modified_at": _iso(m.file_mtime),
            }
            tensors = await anyio.to_thread.run_sync(_tensors, m)
            if tensors is not None:
                shown["tensors"] = tensors
            return shown
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
