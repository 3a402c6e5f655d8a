"""What a ``client.vault`` call sends: bodies checked like the server, record paths, the tenant header.

Part of :mod:`neurectomy.sdk._vault`: the request helpers and the base of both vault resources, which
holds the resource's tenant and the read-your-writes sequence shared with its ``with_tenant`` copies
(see :mod:`neurectomy.sdk._vault`). An invalid body raises the same 400 the server would answer, its
``field`` named, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from api.vault.schemas import RecordIn, SearchRequest, UpsertRequest
from neurectomy.sdk._wire import _validated
from neurectomy.sdk.errors import BadRequestError

TENANT_HEADER = "X-Neurectomy-Tenant"
RecordLike = RecordIn | Mapping[str, Any]


def _upsert_body(records: Iterable[RecordLike]) -> dict[str, Any]:
    items = [r.model_dump() if isinstance(r, RecordIn) else dict(r) for r in records]
    return _validated(UpsertRequest, {"records": items}).model_dump(mode="json")


def _search_body(
    query: str | None,
    vector: Sequence[float] | None,
    k: int,
    filters: Mapping[str, Any] | None,
    min_score: float | None,
    after_sequence: int | None,
) -> dict[str, Any]:
    body = {
        "query": query,
        "vector": None if vector is None else [float(x) for x in vector],
        "k": k,
        "filters": dict(filters or {}),
        "min_score": min_score,
        "after_sequence": after_sequence,
    }
    request = _validated(SearchRequest, body)
    if (request.query is None) == (request.vector is None):
        message = "query: give exactly one of query (text) and vector"
        raise BadRequestError(400, "bad_request", message, field="query")
    return request.model_dump(mode="json")


def _record_path(record_id: str) -> str:
    return f"/v1/vault/records/{quote(record_id, safe='')}"


class _Session:
    """The highest record-log sequence a client's writes returned (shared by ``with_tenant`` copies)."""

    def __init__(self) -> None:
        self.sequence: int | None = None


class _Base:
    def __init__(self, tenant: str | None, session: _Session | None = None) -> None:
        self.tenant = tenant
        """Tenant sent with every call (``None``: the header is left out, the server uses ``default``)."""
        self._session = session or _Session()

    @property
    def last_sequence(self) -> int | None:
        """The highest ``sequence`` this client's vault writes returned; reads send it as ``after_sequence``.

        ``None``: no write yet, or the server logs to a file WAL.
        """
        return self._session.sequence

    def _seen(self, sequence: int | None) -> None:
        if sequence is not None and (self._session.sequence is None or sequence > self._session.sequence):
            self._session.sequence = sequence

    def _after(self, after_sequence: int | None) -> int | None:
        return after_sequence if after_sequence is not None else self._session.sequence

    def _get_params(self, with_vector: bool, after_sequence: int | None) -> dict[str, str] | None:
        params = {"with_vector": "true"} if with_vector else {}
        if (after := self._after(after_sequence)) is not None:
            params["after_sequence"] = str(after)
        return params or None

    def _headers(self, tenant: str | None) -> dict[str, str]:
        chosen = tenant if tenant is not None else self.tenant
        return {TENANT_HEADER: chosen} if chosen is not None else {}
