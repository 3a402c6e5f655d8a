"""A small typed layer over NATS JetStream: work-queue streams, pull consumers and KV buckets.

Besides :mod:`agents.messaging` this is the only package that imports ``nats`` (an import-linter contract
holds it to that); its modules: ``_base`` (errors, entries), ``_kv`` (KV buckets and helpers), ``_streams``
(streams, pull consumers), ``_ordered`` (ordered reader) and ``_startup`` (set-up that waits for a cluster
still electing its leaders). It is built from a connected
:class:`~agents.messaging.Bus` and shares its connection. NATS errors are turned into ``agents.errors`` here:

* JetStream not enabled, not reachable, not answering in time, or the connection closed →
  :class:`JetStreamUnavailableError` (a :class:`~agents.errors.NoRespondersError`: the API answers 503);
  of these, a timeout, a cluster without a leader for the request (``503`` err_code 10008, ``500``
  err_code 10009) or with a peer still offline for its placement (err_code 10005 "peer offline") →
  :class:`JetStreamNotReadyError`, which the set-up calls (create a stream, a consumer, a KV bucket) wait
  out with backoff up to ``Bus.jetstream_startup_timeout_s`` (``_startup``);
* a stream refusing a message because of its limits (``discard: new``) →
  :class:`~agents.errors.AgentBusyError` (429);
* a missing key, stream or consumer → :class:`~agents.errors.NotFoundError`;
* a KV ``create`` of an existing key or an ``update`` with a stale revision → ``None`` (a typed result,
  not an exception: compare-and-set conflicts are expected);
* anything else JetStream refuses → :class:`~agents.errors.AgentFailedError`.

Pull consumers fetch with ``no_wait`` pull requests (the JetStream API
``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>``, ADR-13) on an inbox of their own: the server answers at
once with a message or a ``404 No Messages`` status, so a caller can poll several consumers in priority
order without leaving lingering pull requests behind that would grab messages it cannot run yet.
"""

from agents.jetstream._base import JetStreamNotReadyError, JetStreamUnavailableError, KvEntry, StoredMessage
from agents.jetstream._base import raw_client as raw_client
from agents.jetstream._kv import KeyValueBucket
from agents.jetstream._kv import kv_get_or_none as kv_get_or_none
from agents.jetstream._kv import kv_purge_all as kv_purge_all
from agents.jetstream._kv import kv_put as kv_put
from agents.jetstream._kv import kv_values as kv_values
from agents.jetstream._kv import kv_watch_all as kv_watch_all
from agents.jetstream._ordered import OrderedReader, last_sequence, ordered_reader
from agents.jetstream._streams import JetStream, JsMessage, PullConsumer

__all__ = (
    "JetStream",
    "JetStreamNotReadyError",
    "JetStreamUnavailableError",
    "JsMessage",
    "KeyValueBucket",
    "KvEntry",
    "OrderedReader",
    "PullConsumer",
    "StoredMessage",
    "last_sequence",
    "ordered_reader",
)
