"""`JetStreamDictionarySource`: trained ΣLANG dictionaries in JetStream KV, shared by every replica.

Implements `sigmalang.DictionarySource`: a `sigmalang.DictionaryRegistry` given this source publishes
each dictionary it adds and, when a frame names an id it lacks, fetches it (then keeps it locally), so a
frame compressed with a dictionary trained on one Compression replica decodes on any other. One KV
bucket, :data:`BUCKET` (replicas ``nats.stream_replicas``), keys:

=========================  =========================================================================
``t.<tenant hex>.<id>``    a tenant's dictionary (``<id>``: 8 hex digits); found only for that tenant
``s.<id>``                 a shared dictionary (trained without a tenant)
=========================  =========================================================================

Each value is written once (``create``: the same id always names the same bytes) as ``P`` then
``BLAKE2b-256(dictionary) (32 bytes) | dictionary``, or, for a tenant's dictionary when a
`sigmalang.sealing.ChunkSealer` is given (the Storage team in process), ``S`` then that record sealed
with the tenant's key (associated data binding the key), so its training content never reaches
JetStream's files in clear and a deleted (crypto-shredded) tenant's dictionaries can no longer be
fetched. Shared dictionaries, and all of them without a sealer, are stored plain: NATS permissions
guard the bucket, as they guard an unsealed RSU bucket.

A fetched value that does not open, or whose digest does not match its bytes, is refused here
(`sigmalang.MissingDictionaryError` naming the id and the reason), and the registry checks the id
again, so a damaged, moved or substituted dictionary is never used to decode.

The methods are synchronous (the codec calls them from worker threads); each runs its KV call on the
event loop that owns the NATS connection through an anyio `BlockingPortal` and must not be called from
that loop's own thread.
"""

from __future__ import annotations

import hashlib

from anyio.from_thread import BlockingPortal

from agents.jetstream import JetStream, KeyValueBucket, kv_get_or_none
from sigmalang import Dictionary, MissingDictionaryError
from sigmalang.sealing import ChunkSealer

__all__ = ("BUCKET", "JetStreamDictionarySource")

BUCKET = "neurectomy_sigma_dictionaries"
"""The KV bucket of every tenant's trained dictionaries."""
_DIGEST_BYTES = 32
_PLAIN, _SEALED = b"P", b"S"
_AAD = b"sigma/dictionary/v1/"


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
        sealer: Seals tenants' dictionaries with their keys; None stores them plain.
    """

    def __init__(
        self, bucket: KeyValueBucket, portal: BlockingPortal, *, sealer: ChunkSealer | None = None
    ) -> None:
        self._bucket = bucket
        self._portal = portal
        self._sealer = sealer

    @classmethod
    async def open(
        cls, js: JetStream, portal: BlockingPortal, *, bucket: str = BUCKET, sealer: ChunkSealer | None = None
    ) -> JetStreamDictionarySource:
        """Open (create if missing) ``bucket`` with ``js``'s replicas.

        Raises:
            JetStreamUnavailableError: JetStream is not enabled or did not answer.
        """
        return cls(await js.ensure_key_value(bucket, history=1), portal, sealer=sealer)

    def publish(self, tenant: str | None, dictionary: Dictionary) -> None:
        """Store ``tenant``'s (None: shared) dictionary once; a copy already there is kept.

        Raises:
            JetStreamUnavailableError: JetStream did not answer.
        """
        key = _key(tenant, dictionary.dict_id)
        record = _digest(dictionary.data) + dictionary.data
        if tenant is not None and self._sealer is not None:
            value = _SEALED + self._sealer.seal(tenant, _AAD + key.encode(), record)
        else:
            value = _PLAIN + record
        self._portal.call(self._bucket.create, key, value)

    def fetch(self, tenant: str | None, dict_id: int) -> bytes | None:
        """The bytes of ``tenant``'s (None: shared) dictionary ``dict_id``, or None if it has none.

        A sealed dictionary of a deleted (crypto-shredded) tenant is None: it can never be opened.

        Raises:
            MissingDictionaryError: The stored copy is damaged (does not open, or its digest does not
                match), or sealed while this replica has no sealer.
            JetStreamUnavailableError: JetStream did not answer.
        """
        key = _key(tenant, dict_id)
        entry = self._portal.call(kv_get_or_none, self._bucket, key)
        if entry is None:
            return None
        kind, record = entry.value[:1], entry.value[1:]
        if kind == _SEALED and tenant is not None:
            if self._sealer is None:
                raise MissingDictionaryError(dict_id, f"sealed in {BUCKET}, and this replica has no vault")
            try:
                record = self._sealer.open(tenant, _AAD + key.encode(), record)
            except LookupError:
                return None
            except ValueError:
                raise MissingDictionaryError(dict_id, f"whose copy in {BUCKET} is damaged") from None
        elif kind != _PLAIN:
            raise MissingDictionaryError(dict_id, f"whose copy in {BUCKET} is damaged")
        digest, data = record[:_DIGEST_BYTES], record[_DIGEST_BYTES:]
        if _digest(data) != digest:
            raise MissingDictionaryError(dict_id, f"whose copy in {BUCKET} is damaged")
        return data
