"""The ΣLANG bridge's operations on frames' headers and the RSU store: inspect, dedup, pin, release, GC.

Part of `bridges.sigma`: a base of :class:`bridges.sigma.SigmaBridge`.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridges._sigma_offload import _CodecOffload
from bridges._sigma_results import DedupStats, RecipeItem
from sigmalang import FrameInfo, GCResult, MissingRSUError, StoreStats
from sigmalang.chunking import chunk_spans, rsu_id


class _StoreOperations(_CodecOffload):
    """Frame inspection and RSU store upkeep on the shared codec (see :class:`bridges.sigma.SigmaBridge`)."""

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
