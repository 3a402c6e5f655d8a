"""Agents of the tenant's stored state and of text: deduplicator, rsu-manager, trainer, optimizer."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from agents.actor import Call
from agents.compression._base import CompressionAgent
from agents.compression._outputs import (
    ContextOptimizeOutput,
    DedupMessageOut,
    DedupOutput,
    RSUManagerOutput,
    StoreSummaryOut,
    TrainOutput,
)
from agents.compression._wire import (
    MAX_DATA_BYTES,
    MAX_QUERY_CHARS,
    MAX_TEXT_CHARS,
    DedupInput,
    OptimizeInput,
    RSUInput,
    TrainInput,
)
from agents.errors import BadInputError
from agents.limits import text_input_bytes
from agents.scopes import OperationScopes

__all__ = (
    "ContextOptimizerAgent",
    "DeduplicatorAgent",
    "DictionaryTrainerAgent",
    "RSUManagerAgent",
    "store_summary",
)


async def store_summary(agent: CompressionAgent, tenant: str) -> StoreSummaryOut:
    """The tenant's store statistics, the dictionaries, the token counter and the bridge counters."""
    stats = await agent.bridge.store_stats(tenant=tenant)
    registry = agent.bridge.codec.dictionaries
    active = registry.active_for(tenant)
    return StoreSummaryOut(
        rsus=stats.rsus,
        bytes=stats.bytes,
        referenced=stats.referenced,
        pinned=stats.pinned,
        evicted=stats.evicted,
        dictionaries=len(registry),
        active_dict_id=active.dict_id if active is not None else None,
        token_counter=agent.bridge.token_counter,
        metrics=agent.bridge.metrics.as_dict(),
    )


class DeduplicatorAgent(CompressionAgent):
    """Measures how much of a batch the caller's tenant's store (or the batch itself) already holds."""

    name = "deduplicator"
    description = "Reports per-message and total dedup statistics of a batch against the tenant's RSU store."
    capabilities = ("dedup", "analyse", "duplicate", "deduplicate", "redundancy")
    input_model: ClassVar[type[BaseModel]] = DedupInput
    output_model: ClassVar[type[BaseModel]] = DedupOutput
    size_limits = (("messages", MAX_DATA_BYTES, "bytes"),)
    error_field = "messages"

    async def work(self, call: Call) -> DedupOutput:
        """Chunk each message as the codec does; count known, repeated and new bytes (this tenant only)."""
        inp: DedupInput = call.input
        stats = await self.bridge.dedup_stats(inp.messages, tenant=call.tenant, commit=inp.commit)
        total = sum(s.bytes for s in stats)
        new = sum(s.new_bytes for s in stats)
        return DedupOutput(
            messages=[
                DedupMessageOut(
                    bytes=s.bytes,
                    chunks=s.chunks,
                    known_chunks=s.known_chunks,
                    known_bytes=s.known_bytes,
                    repeated_chunks=s.repeated_chunks,
                    repeated_bytes=s.repeated_bytes,
                    new_bytes=s.new_bytes,
                )
                for s in stats
            ],
            total_bytes=total,
            known_bytes=sum(s.known_bytes for s in stats),
            repeated_bytes=sum(s.repeated_bytes for s in stats),
            new_bytes=new,
            dedup_ratio=total / new if new else None,
            committed=inp.commit,
        )


class RSUManagerAgent(CompressionAgent):
    """Administers the caller's tenant's RSUs: statistics, pinning, releasing frames, garbage collection."""

    name = "rsu-manager"
    description = (
        "Reports the tenant's RSU store statistics, pins and unpins RSUs, releases frames, collects garbage."
    )
    capabilities = ("stats", "pin", "unpin", "release", "gc")
    input_model: ClassVar[type[BaseModel]] = RSUInput
    scopes = OperationScopes(
        default="admin",
        op_field="action",
        by_value={"stats": "read", "pin": "admin", "unpin": "admin", "release": "admin", "gc": "admin"},
    )
    output_model: ClassVar[type[BaseModel]] = RSUManagerOutput
    size_limits = (("data", MAX_DATA_BYTES, "bytes"), ("frame", MAX_DATA_BYTES, "bytes"))

    def field_for(self, call: Call) -> str | None:
        """The field the action works on."""
        inp: RSUInput = call.input
        if inp.action == "pin" and inp.data is not None:
            return "data"
        return "frame" if inp.action == "release" else "rsu_ids"

    async def work(self, call: Call) -> RSUManagerOutput:
        """Run ``action`` on the caller's tenant; return its result and the statistics after it."""
        inp: RSUInput = call.input
        tenant = call.tenant
        out: dict[str, object] = {"action": inp.action}
        if inp.action == "pin" and inp.data is not None:
            out["rsu_ids"] = [cid.hex() for cid in await self.bridge.pin_data(inp.data, tenant=tenant)]
        elif inp.action in ("pin", "unpin"):
            if not inp.rsu_ids:
                raise BadInputError(f"{inp.action} needs rsu_ids (or data, to pin content)", field="rsu_ids")
            ids = [bytes.fromhex(h) for h in inp.rsu_ids]
            await self.bridge.pin_ids(ids, tenant=tenant, pinned=inp.action == "pin")
            out["rsu_ids"] = [cid.hex() for cid in ids]
        elif inp.action == "release":
            if inp.frame is None:
                raise BadInputError("release needs the frame whose references to drop", field="frame")
            out["released_rsus"] = await self.bridge.release(inp.frame, tenant=tenant)
        elif inp.action == "gc":
            gc = await self.bridge.collect_garbage(tenant=tenant)
            out["removed"], out["bytes_freed"] = gc.removed, gc.bytes_freed
        out["store"] = await store_summary(self, tenant)
        return RSUManagerOutput.model_validate(out)


class DictionaryTrainerAgent(CompressionAgent):
    """Trains a zstd dictionary on sample messages and makes the codec use it for new frames."""

    name = "dictionary-trainer"
    description = "Trains, registers and activates a zstd dictionary from sample messages (COVER)."
    capabilities = ("train", "dictionary")
    input_model: ClassVar[type[BaseModel]] = TrainInput
    output_model: ClassVar[type[BaseModel]] = TrainOutput
    size_limits = (("samples", MAX_DATA_BYTES, "bytes"), ("texts", MAX_DATA_BYTES, "bytes"))
    error_field = "samples"

    async def work(self, call: Call) -> TrainOutput:
        """Train on ``samples`` and ``texts``; report the dictionary, or why none was trained."""
        inp: TrainInput = call.input
        samples = [*inp.samples, *(t.encode("utf-8") for t in inp.texts)]
        if not samples:
            raise BadInputError("give at least one sample (samples or texts)", field="samples")
        minimum = self.bridge.codec.config.dictionary_min_samples
        dictionary = await self.bridge.train_dictionary(samples, activate=inp.activate, tenant=call.tenant)
        usable = sum(1 for s in samples if s)
        reason = None
        if dictionary is None:
            reason = (
                f"{usable} non-empty samples; at least {minimum} are needed"
                if usable < minimum
                else "zstd could not build a dictionary from these samples"
            )
        active = self.bridge.codec.dictionaries.active_for(call.tenant)
        return TrainOutput(
            trained=dictionary is not None,
            dict_id=dictionary.dict_id if dictionary is not None else None,
            size_bytes=len(dictionary) if dictionary is not None else 0,
            samples=usable,
            sample_bytes=sum(len(s) for s in samples),
            min_samples=minimum,
            active=dictionary is not None and active is not None and active.dict_id == dictionary.dict_id,
            reason=reason,
        )


class ContextOptimizerAgent(CompressionAgent):
    """Fits a context into a token budget by keeping the units most relevant to a query (lossy)."""

    name = "context-optimizer"
    text_input = "text"
    text_output = "text"
    description = (
        "Fits text into a token budget (the LLM's tokenizer) by extractive selection (lossy); "
        "code, JSON and numbers are kept verbatim or dropped whole."
    )
    capabilities = ("optimize", "token-budget")
    input_model: ClassVar[type[BaseModel]] = OptimizeInput
    output_model: ClassVar[type[BaseModel]] = ContextOptimizeOutput
    size_limits = (("text", MAX_TEXT_CHARS, "characters"),)
    max_input_bytes = text_input_bytes(MAX_TEXT_CHARS, MAX_QUERY_CHARS)
    error_field = "text"

    async def work(self, call: Call) -> ContextOptimizeOutput:
        """Optimise ``text`` for ``query`` within ``budget_tokens``; report the saving in tokens."""
        inp: OptimizeInput = call.input
        for i, (start, end) in enumerate(inp.protected):
            if not 0 <= start <= end <= len(inp.text):
                raise BadInputError(
                    f"span [{start}, {end}) is not within the text's {len(inp.text)} characters",
                    field=f"protected.{i}",
                )
        outcome = await self.bridge.optimize(
            inp.text,
            budget_tokens=inp.budget_tokens,
            query=inp.query,
            protected=inp.protected,
            by_paragraph=inp.by_paragraph,
            timeout_s=max(call.remaining_s(), 0.001),
        )
        ctx = outcome.context
        return ContextOptimizeOutput(
            text=ctx.text,
            tokens_in=ctx.tokens_in,
            tokens_out=ctx.tokens_out,
            budget_tokens=ctx.budget_tokens,
            token_ratio=ctx.tokens_in / ctx.tokens_out if ctx.tokens_out else None,
            token_counter=outcome.token_counter,
            tokens_saved=ctx.tokens_in - ctx.tokens_out,
            lossless=False,
            units_total=ctx.units_total,
            units_kept=ctx.units_kept,
            code_blocks_dropped=ctx.code_blocks_dropped,
            json_values_dropped=ctx.json_values_dropped,
        )
