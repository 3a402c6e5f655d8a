"""Async bridge from the agents to the ΣLANG codec.

The codec is synchronous (zstd, FastCDC, SQLite, tokenization). The bridge

* shares one :class:`sigmalang.SigmaCodec` (one RSU store, one dictionary registry) between all the
  compression agents of a process,
* offloads every blocking call to a thread through an :class:`anyio.CapacityLimiter`,
* bounds each call by a timeout (:class:`bridges.errors.BridgeTimeoutError`; the thread is abandoned,
  not stopped: a ΣLANG call on at most a few MiB finishes on its own within seconds),
* counts tokens with the serving LLM's tokenizer when it was given one (``count_tokens``, e.g.
  ``RyotEngine.tokenize``-based) and with :func:`approx_tokens` otherwise; every result says which
  (``token_counter``: ``"ryot"`` or ``"approx"``),
* keeps counters (:class:`SigmaBridgeMetrics`).

Ryot's tokenizer is slow next to the codec (measured here: 10 KB in 9-13 ms, where the codec takes
0.2 ms; 200 KB in 1 s; 2 MB in 125 s), so compression and decompression reports count inputs longer
than ``exact_tokens_max_bytes`` (4 KiB) with the approximation, and say so (``token_counter``). The
context optimiser always uses the exact counter when there is one: its budget guarantee depends on it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Literal, TypeVar

import anyio
import anyio.to_thread

from bridges.errors import BridgeTimeoutError
from sigmalang import (
    CompressionResult,
    Dictionary,
    FrameInfo,
    GCResult,
    MissingRSUError,
    OptimizedContext,
    SigmaCodec,
    StoreStats,
    optimize_context,
)
from sigmalang.chunking import chunk_spans, rsu_id

__all__ = (
    "APPROX_CHARS_PER_TOKEN",
    "CompressOutcome",
    "DedupStats",
    "OptimizeOutcome",
    "RecipeItem",
    "SigmaBridge",
    "SigmaBridgeMetrics",
    "TokenCounter",
    "approx_tokens",
)

T = TypeVar("T")
TokenCounter = Literal["ryot", "approx"]
"""Which counter produced a token count: the serving LLM's tokenizer, or :func:`approx_tokens`."""

APPROX_CHARS_PER_TOKEN = 4
"""Characters per token of the approximation (OpenAI's rule of thumb for English text, "What are
tokens and how to count them?", help.openai.com; measured here with Gemma 3's tokenizer: 4.0 on this
repo's Python, 3.7 on its Markdown)."""

_counter: ContextVar[Callable[[str], int]] = ContextVar("sigma_token_counter")


def approx_tokens(text: str) -> int:
    """Approximate token count: ``ceil(characters / APPROX_CHARS_PER_TOKEN)`` (0 for empty text)."""
    return math.ceil(len(text) / APPROX_CHARS_PER_TOKEN)


@dataclass(slots=True)
class SigmaBridgeMetrics:
    """Counters of one bridge since start.

    Attributes:
        compressions: Messages compressed.
        decompressions: Frames decoded.
        optimizations: Contexts optimised.
        dictionaries_trained: Dictionaries trained and registered.
        failures: Calls that raised (bad frames, missing RSUs, ...).
        timeouts: Calls abandoned after their timeout.
        bytes_in: Sum of compressed input sizes, bytes.
        bytes_out: Sum of produced frame sizes, bytes.
        busy_s_total: Time spent in codec calls, in seconds.
    """

    compressions: int = 0
    decompressions: int = 0
    optimizations: int = 0
    dictionaries_trained: int = 0
    failures: int = 0
    timeouts: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    busy_s_total: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a flat dict (for ``$SRV.STATS`` data)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class CompressOutcome:
    """A compression and how its tokens were counted."""

    result: CompressionResult
    token_counter: TokenCounter


@dataclass(frozen=True, slots=True)
class OptimizeOutcome:
    """An optimised context and how its tokens were counted."""

    context: OptimizedContext
    token_counter: TokenCounter


@dataclass(frozen=True, slots=True)
class DedupStats:
    """How much of one message the RSU store (or an earlier message of the batch) already holds.

    Attributes:
        bytes: Message length, bytes.
        chunks: Content-defined chunks long enough to be referenced (0 for short messages).
        known_chunks: Chunks already in the store.
        known_bytes: Their bytes.
        repeated_chunks: Chunks not in the store but seen earlier in the same batch.
        repeated_bytes: Their bytes.
        new_bytes: Bytes that would travel as literals (``bytes - known - repeated``).
    """

    bytes: int
    chunks: int
    known_chunks: int
    known_bytes: int
    repeated_chunks: int
    repeated_bytes: int
    new_bytes: int


@dataclass(frozen=True, slots=True)
class RecipeItem:
    """One part of a version-2 frame: a context RSU (a *glyph*) or the compressed payload.

    Attributes:
        kind: ``glyph`` (an RSU of the tenant's store used as zstd context) or ``payload``.
        seq: The RSU's sequence number in the tenant's store, for a glyph.
        size: The RSU's bytes (None when the store no longer holds it), or the payload's bytes.
        in_store: Whether the tenant's store holds the RSU, for a glyph.
    """

    kind: Literal["glyph", "payload"]
    seq: int | None
    size: int | None
    in_store: bool | None = None


class SigmaBridge:
    """Async access to one shared :class:`sigmalang.SigmaCodec`.

    The bridge installs its own token counter on the codec (``codec.count_tokens``), choosing per call
    between ``count_tokens`` and :func:`approx_tokens`.

    Args:
        codec: The codec (store and dictionaries); the bridge closes its store in :meth:`aclose`.
        count_tokens: The serving LLM's counter, ``text -> tokens`` (blocking, thread-safe); None uses
            :func:`approx_tokens` everywhere.
        timeout_s: Upper bound of one codec call, in seconds.
        max_offload_threads: Codec calls that may run at once.
        exact_tokens_max_bytes: Compression inputs up to this size, bytes, are counted with
            ``count_tokens``; longer ones with the approximation.
    """

    def __init__(
        self,
        codec: SigmaCodec,
        *,
        count_tokens: Callable[[str], int] | None = None,
        timeout_s: float = 60.0,
        max_offload_threads: int = 2,
        exact_tokens_max_bytes: int = 4096,
    ) -> None:
        self.codec = codec
        self.timeout_s = timeout_s
        self.exact_tokens_max_bytes = exact_tokens_max_bytes
        self.metrics = SigmaBridgeMetrics()
        self._exact = count_tokens
        self._limiter = anyio.CapacityLimiter(max_offload_threads)
        self._closed = False
        codec.count_tokens = self._count_in_context

    @property
    def token_counter(self) -> TokenCounter:
        """The counter used for short texts and for the context optimiser."""
        return "ryot" if self._exact is not None else "approx"

    def counter_for(self, size_bytes: int) -> TokenCounter:
        """The counter used for a compression input of ``size_bytes`` bytes."""
        if self._exact is not None and size_bytes <= self.exact_tokens_max_bytes:
            return "ryot"
        return "approx"

    def _fn(self, name: TokenCounter) -> Callable[[str], int]:
        return self._exact if name == "ryot" and self._exact is not None else approx_tokens

    @staticmethod
    def _count_in_context(text: str) -> int:
        return _counter.get(approx_tokens)(text)

    def _with_counter(self, name: TokenCounter, fn: Callable[[], T]) -> Callable[[], T]:
        counter = self._fn(name)

        def run() -> T:
            token = _counter.set(counter)  # set in the worker thread: the codec reads it there
            try:
                return fn()
            finally:
                _counter.reset(token)

        return run

    async def _run(self, operation: str, fn: Callable[[], T], timeout_s: float | None = None) -> T:
        limit = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        started = time.perf_counter()
        outcome: list[T] = []
        try:
            with anyio.move_on_after(limit):
                outcome.append(
                    await anyio.to_thread.run_sync(fn, limiter=self._limiter, abandon_on_cancel=True)
                )
        except Exception:
            self.metrics.failures += 1
            raise
        finally:
            self.metrics.busy_s_total += time.perf_counter() - started
        if not outcome:
            self.metrics.timeouts += 1
            raise BridgeTimeoutError(operation, limit)
        return outcome[0]

    async def count_tokens(self, text: str) -> tuple[int, TokenCounter]:
        """Tokens of ``text`` with the exact counter if there is one, and which counter it was."""
        name = self.token_counter
        return await self._run("count_tokens", lambda: self._fn(name)(text)), name

    async def compress(
        self,
        data: bytes,
        *,
        tenant: str,
        dedup: bool = True,
        level: int | None = None,
        stream: str | None = None,
        timeout_s: float | None = None,
    ) -> CompressOutcome:
        """Compress one message of ``tenant`` (see :meth:`sigmalang.SigmaCodec.compress`).

        Raises:
            sigmalang.RSUStoreError: The store is closed or broken.
            BridgeTimeoutError: The call exceeded its timeout.
        """
        return (
            await self.compress_many(
                [data], tenant=tenant, dedup=dedup, level=level, stream=stream, timeout_s=timeout_s
            )
        )[0]

    async def compress_many(
        self,
        messages: Sequence[bytes],
        *,
        tenant: str,
        dedup: bool = True,
        level: int | None = None,
        stream: str | None = None,
        streams: Sequence[str] | None = None,
        timeout_s: float | None = None,
    ) -> list[CompressOutcome]:
        """Compress messages of ``tenant`` in order, in one thread hop and one store transaction.

        ``stream`` is the conversation of every message; ``streams`` (as long as ``messages``) gives
        each message its own, for a batch gathering turns of many conversations.

        Raises:
            sigmalang.RSUStoreError: The store is closed or broken.
            BridgeTimeoutError: The call exceeded its timeout.
        """
        names = [self.counter_for(len(m)) for m in messages]
        per_message = list(streams) if streams is not None else [stream] * len(messages)

        def work() -> list[CompressionResult]:
            out = []
            with self.codec.store.transaction():  # one store commit for the batch
                for data, name, its in zip(messages, names, per_message, strict=True):
                    one = self._with_counter(
                        name,
                        lambda data=data, its=its: self.codec.compress(  # type: ignore[misc]
                            data, tenant=tenant, dedup=dedup, level=level, stream=its
                        ),
                    )
                    out.append(one())
            return out

        results = await self._run("compress", work, timeout_s)
        for result in results:
            self.metrics.compressions += 1
            self.metrics.bytes_in += result.report.bytes_in
            self.metrics.bytes_out += result.report.bytes_out
        return [CompressOutcome(r, n) for r, n in zip(results, names, strict=True)]

    async def decompress(
        self,
        frame: bytes,
        *,
        tenant: str,
        max_output_bytes: int | None = None,
        timeout_s: float | None = None,
    ) -> bytes:
        """Decode a frame of ``tenant`` with the shared store and dictionaries.

        Raises:
            sigmalang.FrameAuthenticationError: The frame is another tenant's, or was altered.
            sigmalang.FrameError: Malformed frame.
            sigmalang.OutputTooLargeError: It declares more than ``max_output_bytes``.
            sigmalang.MissingRSUError: A context RSU is no longer in the tenant's store.
            sigmalang.MissingDictionaryError: Its dictionary is not registered.
            BridgeTimeoutError: The call exceeded its timeout.
        """
        data = await self._run(
            "decompress",
            lambda: self.codec.decompress(frame, tenant=tenant, max_output_bytes=max_output_bytes),
            timeout_s,
        )
        self.metrics.decompressions += 1
        return data

    async def decompress_many(
        self,
        frames: Sequence[bytes],
        *,
        tenant: str,
        max_output_bytes: int | None = None,
        timeout_s: float | None = None,
    ) -> list[bytes]:
        """Decode frames of ``tenant`` in order, in one thread hop (see :meth:`decompress`).

        ``max_output_bytes`` bounds the decoded bytes of all frames together.

        Raises:
            sigmalang.FrameError, sigmalang.OutputTooLargeError, sigmalang.MissingRSUError,
                sigmalang.MissingDictionaryError: As :meth:`decompress`, for the first frame that fails.
            BridgeTimeoutError: The call exceeded its timeout.
        """

        def work() -> list[bytes]:
            out: list[bytes] = []
            left = max_output_bytes
            for frame in frames:
                data = self.codec.decompress(frame, tenant=tenant, max_output_bytes=left)
                if left is not None:
                    left -= len(data)
                out.append(data)
            return out

        datas = await self._run("decompress", work, timeout_s)
        self.metrics.decompressions += len(datas)
        return datas

    async def tokens_of(self, data: bytes) -> tuple[int, TokenCounter]:
        """Tokens of ``data`` decoded as UTF-8 (invalid bytes replaced), counted as for compression."""
        name = self.counter_for(len(data))
        fn = self._fn(name)
        return await self._run("count_tokens", lambda: fn(data.decode("utf-8", errors="replace"))), name

    def _sizes(self, tenant: str, seqs: Sequence[int]) -> dict[int, int]:
        sizes: dict[int, int] = {}
        for seq in dict.fromkeys(seqs):
            try:
                sizes[seq] = len(self.codec.store.get_many(tenant, [seq])[0])
            except MissingRSUError:
                continue
        return sizes

    async def inspect(self, frame: bytes, *, tenant: str) -> tuple[FrameInfo, tuple[int, ...], bool]:
        """Parse a frame's header (its MAC verified for ``tenant``) without decoding it.

        Returns:
            The header, the context RSUs (sequence numbers) the tenant's store lacks, and whether its
            dictionary (if any) is registered.

        Raises:
            sigmalang.FrameError: Malformed frame, or another tenant's (``FrameAuthenticationError``).
        """

        def work() -> tuple[FrameInfo, tuple[int, ...], bool]:
            info = self.codec.inspect(frame, tenant=tenant)
            sizes = self._sizes(tenant, info.context)
            missing = tuple(s for s in info.context if s not in sizes)
            has_dict = info.dict_id is None or self.codec.dictionaries.has(info.dict_id, tenant=tenant)
            return info, missing, has_dict

        return await self._run("inspect", work)

    async def recipe(self, frame: bytes, *, tenant: str) -> tuple[FrameInfo, list[RecipeItem]]:
        """The context RSUs (glyphs) a frame of ``tenant`` names, in order, with their sizes.

        Raises:
            sigmalang.FrameError: Malformed frame, or another tenant's (``FrameAuthenticationError``).
        """

        def work() -> tuple[FrameInfo, list[RecipeItem]]:
            info = self.codec.inspect(frame, tenant=tenant)
            sizes = self._sizes(tenant, info.context)
            items = [RecipeItem("glyph", seq, sizes.get(seq), seq in sizes) for seq in info.context]
            if info.content_size:
                items.append(RecipeItem("payload", None, info.payload_size, None))
            return info, items

        return await self._run("recipe", work)

    async def dedup_stats(
        self, messages: Sequence[bytes], *, tenant: str, commit: bool = False
    ) -> list[DedupStats]:
        """How much of each message ``tenant``'s store, or an earlier message of the batch, holds.

        Messages are chunked as the codec chunks them (FastCDC; messages under
        ``rsu_min_input_bytes`` are not chunked). Only the tenant's own store is consulted.

        Args:
            messages: The batch, in order.
            tenant: Whose store.
            commit: Add the new chunks to the tenant's store (reference count 0: retention and garbage
                collection may remove them), so later messages can use them.

        Raises:
            sigmalang.RSUStoreError: The store is closed or broken.
        """
        config = self.codec.config
        store = self.codec.store

        def work() -> list[DedupStats]:
            seen: dict[bytes, bytes] = {}
            out: list[DedupStats] = []
            for message in messages:
                known_n = known_b = rep_n = rep_b = chunks = 0
                if len(message) >= config.rsu_min_input_bytes:
                    view = memoryview(message)
                    spans = chunk_spans(view, config)
                    ids = [rsu_id(view[off : off + ln]) for off, ln in spans]
                    held = store.seqs(tenant, ids)
                    for (off, ln), cid in zip(spans, ids, strict=True):
                        chunks += 1
                        if cid in seen:
                            rep_n, rep_b = rep_n + 1, rep_b + ln
                        elif cid in held:
                            known_n, known_b = known_n + 1, known_b + ln
                            seen[cid] = b""
                        else:
                            seen[cid] = bytes(view[off : off + ln])
                new = len(message) - known_b - rep_b
                out.append(DedupStats(len(message), chunks, known_n, known_b, rep_n, rep_b, new))
            if commit:
                store.put_many(tenant, [(cid, data) for cid, data in seen.items() if data])
            return out

        return await self._run("dedup", work)

    async def optimize(
        self,
        text: str,
        *,
        budget_tokens: int,
        query: str = "",
        protected: Sequence[tuple[int, int]] = (),
        by_paragraph: bool = False,
        timeout_s: float | None = None,
    ) -> OptimizeOutcome:
        """Fit ``text`` into ``budget_tokens`` (see :func:`sigmalang.optimize_context`).

        Raises:
            sigmalang.BudgetUnreachableError: The protected spans alone exceed the budget.
            ValueError: A negative budget.
            BridgeTimeoutError: The call exceeded its timeout.
        """
        name = self.token_counter
        fn = self._fn(name)
        context = await self._run(
            "optimize",
            lambda: optimize_context(
                text,
                budget_tokens=budget_tokens,
                count_tokens=fn,
                query=query,
                protected=protected,
                by_paragraph=by_paragraph,
            ),
            timeout_s,
        )
        self.metrics.optimizations += 1
        return OptimizeOutcome(context, name)

    async def train_dictionary(
        self, samples: Sequence[bytes], *, activate: bool = True, tenant: str | None = None
    ) -> Dictionary | None:
        """Train, register (persisting and publishing it if the registry can) and activate a dictionary.

        The dictionary is ``tenant``'s (used for and decodable by its frames only); None makes it shared.

        Returns:
            The dictionary, or None with too few samples (``dictionary_min_samples``).
        """
        dictionary = await self._run(
            "train_dictionary", lambda: self.codec.train_dictionary(samples, activate=activate, tenant=tenant)
        )
        if dictionary is not None:
            self.metrics.dictionaries_trained += 1
        return dictionary

    async def store_stats(self, *, tenant: str) -> StoreStats:
        """Counts and bytes of ``tenant``'s part of the RSU store."""
        return await self._run("stats", lambda: self.codec.store.stats(tenant))

    async def pin_data(self, data: bytes, *, tenant: str) -> tuple[bytes, ...]:
        """Store ``data`` as RSUs of ``tenant`` and pin them; returns their ids (see `SigmaCodec.pin`)."""
        return await self._run("pin", lambda: self.codec.pin(data, tenant=tenant))

    async def pin_ids(self, rsu_ids: Sequence[bytes], *, tenant: str, pinned: bool = True) -> None:
        """Pin or unpin RSUs of ``tenant`` by id.

        Raises:
            sigmalang.MissingRSUError: The tenant does not hold an id (ids before it are changed).
        """

        def work() -> None:
            for cid in rsu_ids:
                self.codec.store.pin(tenant, cid, pinned)

        await self._run("pin", work)

    async def release(self, frame: bytes, *, tenant: str) -> int:
        """Drop the references a deleted frame of ``tenant`` holds; returns how many RSUs it named.

        Raises:
            sigmalang.FrameError: Malformed frame, or another tenant's.
            sigmalang.RSUStoreError: The frame was already released.
        """

        def work() -> int:
            self.codec.release(frame, tenant=tenant)
            return len(self.codec.inspect(frame, tenant=tenant).context)

        return await self._run("release", work)

    async def collect_garbage(self, *, tenant: str) -> GCResult:
        """Remove every unpinned RSU of ``tenant`` no frame references."""
        return await self._run("gc", lambda: self.codec.store.collect_garbage(tenant))

    async def forget_tenant(self, tenant: str) -> GCResult:
        """Remove every RSU, stream context and anchor of ``tenant`` (its frames stop decoding)."""
        return await self._run("forget", lambda: self.codec.forget_tenant(tenant))

    async def aclose(self) -> None:
        """Close the codec's store (in a thread). Idempotent."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.codec.store.close)

    async def __aenter__(self) -> SigmaBridge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
