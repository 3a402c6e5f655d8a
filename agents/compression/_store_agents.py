"""Agents of the shared state and of text: deduplicator, rsu-manager, dictionary-trainer, optimizer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from agents.actor import Call
from agents.compression._base import CompressionAgent, sigma_error
from agents.compression._wire import (
    MAX_DATA_BYTES,
    MAX_TEXT_CHARS,
    DedupInput,
    OptimizeInput,
    RSUInput,
    TrainInput,
    check_size,
)
from agents.errors import BadInputError
from agents.scopes import OperationScopes
from bridges.errors import BridgeTimeoutError
from sigmalang import SigmaError

__all__ = (
    "ContextOptimizerAgent",
    "DeduplicatorAgent",
    "DictionaryTrainerAgent",
    "RSUManagerAgent",
    "store_summary",
)


async def store_summary(agent: CompressionAgent) -> dict[str, Any]:
    """Store statistics, dictionaries, the token counter and the bridge counters (for ``stats``)."""
    stats = await agent.bridge.store_stats()
    registry = agent.bridge.codec.dictionaries
    active = registry.active
    return {
        "rsus": stats.rsus,
        "bytes": stats.bytes,
        "referenced": stats.referenced,
        "pinned": stats.pinned,
        "dictionaries": len(registry),
        "active_dict_id": active.dict_id if active is not None else None,
        "token_counter": agent.bridge.token_counter,
        "metrics": agent.bridge.metrics.as_dict(),
    }


class DeduplicatorAgent(CompressionAgent):
    """Measures how much of a batch of messages the shared RSU store (or the batch itself) already holds."""

    name = "deduplicator"
    description = "Reports per-message and total dedup statistics of a batch against the shared RSU store."
    capabilities = ("dedup", "analyse")
    input_model: ClassVar[type[BaseModel]] = DedupInput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Chunk each message as the codec does; count known, repeated and new bytes."""
        inp: DedupInput = call.input
        check_size("messages", sum(len(m) for m in inp.messages))
        try:
            stats = await self.bridge.dedup_stats(inp.messages, commit=inp.commit)
        except (SigmaError, BridgeTimeoutError) as exc:
            raise sigma_error(exc, field="messages") from exc
        total = sum(s.bytes for s in stats)
        new = sum(s.new_bytes for s in stats)
        return {
            "messages": [
                {
                    "bytes": s.bytes,
                    "chunks": s.chunks,
                    "known_chunks": s.known_chunks,
                    "known_bytes": s.known_bytes,
                    "repeated_chunks": s.repeated_chunks,
                    "repeated_bytes": s.repeated_bytes,
                    "new_bytes": s.new_bytes,
                }
                for s in stats
            ],
            "total_bytes": total,
            "known_bytes": sum(s.known_bytes for s in stats),
            "repeated_bytes": sum(s.repeated_bytes for s in stats),
            "new_bytes": new,
            "dedup_ratio": total / new if new else None,
            "committed": inp.commit,
        }


class RSUManagerAgent(CompressionAgent):
    """Administers the shared RSU store: statistics, pinning, releasing frames, garbage collection."""

    name = "rsu-manager"
    description = "Reports RSU store statistics, pins and unpins RSUs, releases frames and collects garbage."
    capabilities = ("stats", "pin", "unpin", "release", "gc")
    input_model: ClassVar[type[BaseModel]] = RSUInput
    scopes = OperationScopes(
        default="admin",
        op_field="action",
        by_value={"stats": "read", "pin": "admin", "unpin": "admin", "release": "admin", "gc": "admin"},
    )

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Run ``action``; return its result and the store statistics after it."""
        inp: RSUInput = call.input
        result: dict[str, Any] = {"action": inp.action}
        field = "rsu_ids"
        try:
            if inp.action == "pin" and inp.data is not None:
                field = "data"
                check_size("data", len(inp.data))
                result["rsu_ids"] = [cid.hex() for cid in await self.bridge.pin_data(inp.data)]
            elif inp.action in ("pin", "unpin"):
                if not inp.rsu_ids:
                    raise BadInputError(
                        f"{inp.action} needs rsu_ids (or data, to pin content)", field="rsu_ids"
                    )
                ids = [bytes.fromhex(h) for h in inp.rsu_ids]
                await self.bridge.pin_ids(ids, pinned=inp.action == "pin")
                result["rsu_ids"] = [cid.hex() for cid in ids]
            elif inp.action == "release":
                field = "frame"
                if inp.frame is None:
                    raise BadInputError("release needs the frame whose references to drop", field="frame")
                check_size("frame", len(inp.frame))
                result["released_rsus"] = await self.bridge.release(inp.frame)
            elif inp.action == "gc":
                gc = await self.bridge.collect_garbage()
                result["removed"], result["bytes_freed"] = gc.removed, gc.bytes_freed
            result["store"] = await store_summary(self)
        except (SigmaError, BridgeTimeoutError) as exc:
            raise sigma_error(exc, field=field) from exc
        return result


class DictionaryTrainerAgent(CompressionAgent):
    """Trains a zstd dictionary on sample messages and makes the codec use it for new frames."""

    name = "dictionary-trainer"
    description = "Trains, registers and activates a zstd dictionary from sample messages (COVER)."
    capabilities = ("train", "dictionary")
    input_model: ClassVar[type[BaseModel]] = TrainInput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Train on ``samples`` and ``texts``; report the dictionary, or why none was trained."""
        inp: TrainInput = call.input
        samples = [*inp.samples, *(t.encode("utf-8") for t in inp.texts)]
        if not samples:
            raise BadInputError("give at least one sample (samples or texts)", field="samples")
        check_size("samples", sum(len(s) for s in samples), MAX_DATA_BYTES)
        minimum = self.bridge.codec.config.dictionary_min_samples
        try:
            dictionary = await self.bridge.train_dictionary(samples, activate=inp.activate)
        except (SigmaError, BridgeTimeoutError) as exc:
            raise sigma_error(exc, field="samples") from exc
        usable = sum(1 for s in samples if s)
        reason = None
        if dictionary is None:
            reason = (
                f"{usable} non-empty samples; at least {minimum} are needed"
                if usable < minimum
                else "zstd could not build a dictionary from these samples"
            )
        active = self.bridge.codec.dictionaries.active
        return {
            "trained": dictionary is not None,
            "dict_id": dictionary.dict_id if dictionary is not None else None,
            "size_bytes": len(dictionary) if dictionary is not None else 0,
            "samples": usable,
            "sample_bytes": sum(len(s) for s in samples),
            "min_samples": minimum,
            "active": dictionary is not None and active is not None and active.dict_id == dictionary.dict_id,
            "reason": reason,
        }


class ContextOptimizerAgent(CompressionAgent):
    """Fits a context into a token budget by keeping the units most relevant to a query (lossy)."""

    name = "context-optimizer"
    text_input = "text"
    text_output = "text"
    description = (
        "Fits text into a token budget (the LLM's tokenizer) by extractive selection; "
        "code, JSON and numbers are kept verbatim or dropped whole."
    )
    capabilities = ("optimize", "token-budget")
    input_model: ClassVar[type[BaseModel]] = OptimizeInput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Optimise ``text`` for ``query`` within ``budget_tokens``."""
        inp: OptimizeInput = call.input
        check_size("text", len(inp.text), MAX_TEXT_CHARS, unit="characters")
        for i, (start, end) in enumerate(inp.protected):
            if not 0 <= start <= end <= len(inp.text):
                raise BadInputError(
                    f"span [{start}, {end}) is not within the text's {len(inp.text)} characters",
                    field=f"protected.{i}",
                )
        try:
            outcome = await self.bridge.optimize(
                inp.text,
                budget_tokens=inp.budget_tokens,
                query=inp.query,
                protected=inp.protected,
                by_paragraph=inp.by_paragraph,
                timeout_s=max(call.remaining_s(), 0.001),
            )
        except (SigmaError, BridgeTimeoutError) as exc:
            raise sigma_error(exc, field="text") from exc
        ctx = outcome.context
        return {
            "text": ctx.text,
            "tokens_in": ctx.tokens_in,
            "tokens_out": ctx.tokens_out,
            "budget_tokens": ctx.budget_tokens,
            "token_ratio": ctx.tokens_in / ctx.tokens_out if ctx.tokens_out else None,
            "token_counter": outcome.token_counter,
            "units_total": ctx.units_total,
            "units_kept": ctx.units_kept,
            "code_blocks_dropped": ctx.code_blocks_dropped,
            "json_values_dropped": ctx.json_values_dropped,
        }
