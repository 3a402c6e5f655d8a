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

The bridge's parts live beside it: `bridges._sigma_results` (what it returns), `bridges._sigma_offload`
(threads, timeouts, token counters) and `bridges._sigma_store` (frame headers and RSU store upkeep).
"""

from __future__ import annotations

from collections.abc import Sequence

from bridges._sigma_results import (
    APPROX_CHARS_PER_TOKEN,
    CompressOutcome,
    DedupStats,
    OptimizeOutcome,
    RecipeItem,
    SigmaBridgeMetrics,
    TokenCounter,
    approx_tokens,
)
from bridges._sigma_store import _StoreOperations
from sigmalang import CompressionResult, Dictionary, optimize_context

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


class SigmaBridge(_StoreOperations):
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
        streams: Sequence[str | None] | None = None,
        timeout_s: float | None = None,
    ) -> list[CompressOutcome]:
        """Compress messages of ``tenant`` in order, in one thread hop and one store transaction.

        ``stream`` is the conversation of every message; ``streams`` (as long as ``messages``) gives
        each message its own (None: none), for a batch gathering turns of many conversations.

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
            for result in out:  # the reports' savings are read on the event loop: measure them here
                result.report.attribute()
            return out

        results = await self._run("compress", work, timeout_s)
        self.metrics.compress_calls += 1
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

    async def __aenter__(self) -> SigmaBridge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
