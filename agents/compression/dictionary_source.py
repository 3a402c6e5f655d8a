"""`JetStreamDictionarySource`: trained ΣLANG dictionaries in JetStream KV, shared by every replica.

Implements `sigmalang.DictionarySource`: a `sigmalang.DictionaryRegistry` given this source publishes
each dictionary it adds and, when a frame names an id it lacks, fetches it (then keeps it locally), so a
frame compressed with a dictionary trained on one Compression replica decodes on any other. One KV
bucket, :data:`BUCKET` (replicas ``nats.stream_replicas``), keys:

=========================  =========================================================================
``t.<tenant hex>.<id>``    a tenant's dictionary (``<id>``: 8 hex digits); found only for that tenant
``s.<id>``                 a shared dictionary (trained without a tenant)
=========================  =========================================================================

Each value is ``BLAKE2b-256(dictionary) (32 bytes) | dictionary``, written once (``create``: the same id
always names the same bytes). A fetched value whose digest does not match its bytes is refused here
(`sigmalang.MissingDictionaryError` naming the id and the reason), and the registry checks the id
again, so a damaged or substituted dictionary is never used to decode.

Dictionaries are stored as they are (not sealed with the tenant's key): NATS permissions guard the
bucket, as they guard an unsealed RSU bucket.

The methods are synchronous (the codec calls them from worker threads); each runs its KV call on the
event loop that owns the NATS connection through an anyio `BlockingPortal` and must not be called from
that loop's own thread.
"""

from __future__ import annotations

import hashlib

from anyio.from_thread import BlockingPortal

from agents.jetstream import JetStream, KeyValueBucket, kv_get_or_none
from sigmalang import Dictionary, MissingDictionaryError

__all__ = ("BUCKET", "JetStreamDictionarySource")

BUCKET = "neurectomy_sigma_dictionaries"
"""The KV bucket of every tenant's trained dictionaries."""
_DIGEST_BYTES = 32


def _key(tenant: str | None, dict_id: int) -> str:
    if tenant is None:
        return f"s.{dict_id:08x}"
    return f"t.{tenant.encode().hex() or '-'}.{dict_id:08x}"


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=_DIGEST_BYTES).digest()


class JetStreamDictionarySource:
    """Trained dictionaries per tenant in a JetStream KV bucket (see the module docstring).

    Create with :meth:`open` on the event loop of ``js``'s connection.

    Args:
        bucket: The open KV bucket.
        portal: A portal into the event loop that owns the bucket's connection.
    """

    def __init__(self, bucket: KeyValueBucket, portal: BlockingPortal) -> None:
        self._bucket = bucket
        self._portal = portal

    @classmethod
    async def open(
        cls, js: JetStream, portal: BlockingPortal, *, bucket: str = BUCKET
    ) -> JetStreamDictionarySource:
        """Open (create if missing) ``bucket`` with ``js``'s replicas.

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer.
        """
        return cls(await js.ensure_key_value(bucket, history=1), portal)

    def publish(self, tenant: str | None, dictionary: Dictionary) -> None:
        """Store ``tenant``'s (None: shared) dictionary once; a copy already there is kept.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        value = _digest(dictionary.data) + dictionary.data
        self._portal.call(self._bucket.create, _key(tenant, dictionary.dict_id), value)

    def fetch(self, tenant: str | None, dict_id: int) -> bytes | None:
        """The bytes of ``tenant``'s (None: shared) dictionary ``dict_id``, or None if it has none.

        Raises:
            MissingDictionaryError: The stored copy is damaged (its digest does not match).
            JetStreamUnavailableError: JetStream did not answer.
        """
        entry = self._portal.call(kv_get_or_none, self._bucket, _key(tenant, dict_id))
        if entry is None:
            return None
        digest, data = entry.value[:_DIGEST_BYTES], entry.value[_DIGEST_BYTES:]
        if _digest(data) != digest:
            raise MissingDictionaryError(dict_id, f"whose copy in {BUCKET} is damaged")
        return data
