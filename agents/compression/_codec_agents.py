"""Agents working on messages and frames: compressor, decompressor, glyph-encoder, codec-inspector."""

from __future__ import annotations

import base64
from typing import ClassVar

from pydantic import BaseModel, TypeAdapter

from agents.actor import Call
from agents.compression._base import CompressionAgent
from agents.compression._outputs import (
    CodecInspectOutput,
    CompressOutput,
    DecompressOutput,
    DecompressReportOut,
    FrameOut,
    GlyphOut,
    GlyphOutput,
    report_out,
)
from agents.compression._wire import MAX_DATA_BYTES, CompressInput, DecompressInput, FrameInput
from agents.compression.wire import MAX_BATCH_ITEMS, SigmaCompressionReport, pack_parts, unpack_parts
from agents.errors import BadInputError
from sigmalang import FrameFlags, FrameInfo

__all__ = ("MAX_LISTED", "CodecInspectorAgent", "CompressorAgent", "DecompressorAgent", "GlyphEncoderAgent")

ACCEPT_GRACE_S = 0.05
"""How long the compressor's and decompressor's accepts wait (`agents.actor.Agent.accept_grace_s`),
seconds: a request of a few ~10 KB messages is done well within it, so it costs two NATS messages (the
request, then the End as the reply) instead of three."""
MAX_LISTED = 10_000
"""Most recipe steps or RSUs an answer lists (the rest are counted, not listed), so the reply fits in
one NATS message."""

_DATA_LIMITS = (("data", MAX_DATA_BYTES, "bytes"), ("messages", MAX_DATA_BYTES, "bytes"))
_FRAME_LIMITS = (("frame", MAX_DATA_BYTES, "bytes"), ("frames", MAX_DATA_BYTES, "bytes"))


_REPORTS: TypeAdapter[list[SigmaCompressionReport]] = TypeAdapter(list[SigmaCompressionReport])


def _attached_parts(call: Call, field: str, noun: str) -> list[bytes] | None:
    """The parts of the call's binary attachment (`agents.compression.wire.pack_parts`), or None.

    Raises:
        BadInputError: A malformed or empty layout, or more than `MAX_BATCH_ITEMS` parts (``field``).
    """
    if call.attachment is None:
        return None
    try:
        parts = unpack_parts(call.attachment, MAX_BATCH_ITEMS)
    except ValueError as exc:
        raise BadInputError(str(exc), field=field) from None
    if not parts:
        raise BadInputError(f"an empty batch: give at least one {noun}", field=field)
    return parts


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _timeout(call: Call) -> float:
    return max(call.remaining_s(), 0.001)


def _flags(flags: FrameFlags, version: int) -> list[str]:
    """Names of the set flag bits; bit 2 is REF_PREFIX in version 1 frames, TABLES in version 2."""
    names = [f.name for f in FrameFlags if f.value and f in flags and f.name]
    return ["TABLES" if n == "REF_PREFIX" and version >= 2 else n for n in names]


class CompressorAgent(CompressionAgent):
    """Compresses messages of the caller's tenant into ΣLANG frames against what the tenant's store holds."""

    name = "compressor"
    description = (
        "Compresses a message (or a batch of one stream's turns) losslessly into ΣLANG frames: zstd "
        "against the tenant's stored context (previous turn, repeated chunks, documents), with reports."
    )
    capabilities = ("compress", "dedup", "report", "batch")
    input_model: ClassVar[type[BaseModel]] = CompressInput
    output_model: ClassVar[type[BaseModel]] = CompressOutput
    size_limits = _DATA_LIMITS
    error_field = "data"
    takes_attachment = True
    attachment_field = "messages"
    accept_grace_s = ACCEPT_GRACE_S

    async def work(self, call: Call) -> CompressOutput:
        """Compress ``data`` (or each of ``messages``); return the frame(s) (base64) and report(s).

        With a binary attachment (the messages, `agents.compression.wire.pack_parts`; neither ``data``
        nor ``messages`` given), the answer is ``count`` and an attachment in the same layout: the
        reports as one JSON array, then the frames, raw.
        """
        inp: CompressInput = call.input
        attached = _attached_parts(call, "messages", "message")
        if (inp.data is None) + (inp.messages is None) + (attached is None) != 2:
            raise BadInputError(
                "give exactly one of data (a message), messages (a batch) and a binary attachment",
                field="data",
            )
        batch = attached or inp.messages or [inp.data or b""]
        if inp.streams is not None and (inp.stream is not None or len(inp.streams) != len(batch)):
            raise BadInputError(
                f"streams: give one per message ({len(batch)}, got {len(inp.streams)}), "
                "with messages and without stream",
                field="streams",
            )
        outcomes = await self.bridge.compress_many(
            batch,
            tenant=call.tenant,
            dedup=inp.dedup,
            level=inp.level,
            stream=inp.stream,
            streams=inp.streams,
            timeout_s=_timeout(call),
        )
        if attached is not None:
            reports = _REPORTS.dump_json([report_out(o.result.report, o.token_counter) for o in outcomes])
            call.reply_attachment = pack_parts([reports, *(o.result.frame for o in outcomes)])
            return CompressOutput(count=len(outcomes))
        frames = [
            FrameOut(frame=_b64(o.result.frame), report=report_out(o.result.report, o.token_counter))
            for o in outcomes
        ]
        if inp.messages is not None:
            return CompressOutput(results=frames)
        return CompressOutput(frame=frames[0].frame, report=frames[0].report)


class DecompressorAgent(CompressionAgent):
    """Decodes ΣLANG frames of the caller's tenant back to exactly the bytes that were compressed."""

    name = "decompressor"
    description = "Decodes ΣLANG frames byte-exactly, with the caller's tenant's store, key and dictionaries."
    capabilities = ("decompress", "verify", "batch")
    input_model: ClassVar[type[BaseModel]] = DecompressInput
    output_model: ClassVar[type[BaseModel]] = DecompressOutput
    size_limits = _FRAME_LIMITS
    error_field = "frame"
    takes_attachment = True
    attachment_field = "frames"
    accept_grace_s = ACCEPT_GRACE_S

    def field_for(self, call: Call) -> str | None:
        """``frames`` for a batch (or an attachment), else ``frame``."""
        return "frames" if call.input.frames is not None or call.attachment is not None else "frame"

    async def work(self, call: Call) -> DecompressOutput:
        """Decode ``frame`` (or each of ``frames``); return the data (base64) and what a frame held.

        With a binary attachment (the frames, `agents.compression.wire.pack_parts`; neither ``frame``
        nor ``frames`` given), the answer is ``count`` and an attachment in the same layout: the
        original bytes of each frame, raw. A batch is decoded in one thread hop.
        """
        inp: DecompressInput = call.input
        attached = _attached_parts(call, "frames", "frame")
        if (inp.frame is None) + (inp.frames is None) + (attached is None) != 2:
            raise BadInputError(
                "give exactly one of frame, frames (a batch) and a binary attachment", field="frame"
            )
        frames = attached or inp.frames
        if frames is not None:
            datas = await self.bridge.decompress_many(
                frames, tenant=call.tenant, max_output_bytes=MAX_DATA_BYTES, timeout_s=_timeout(call)
            )
            if attached is not None:
                call.reply_attachment = pack_parts(datas)
                return DecompressOutput(count=len(datas))
            return DecompressOutput(datas=[_b64(d) for d in datas])
        frame = inp.frame or b""
        info, _, _ = await self.bridge.inspect(frame, tenant=call.tenant)
        data = await self.bridge.decompress(
            frame, tenant=call.tenant, max_output_bytes=MAX_DATA_BYTES, timeout_s=_timeout(call)
        )
        tokens, counter = await self.bridge.tokens_of(data)
        report = DecompressReportOut(
            bytes_in=len(frame),
            bytes_out=len(data),
            ratio=len(data) / len(frame),
            tokens_out=tokens,
            token_counter=counter,
            glyphs=info.glyph_count,
            referenced_bytes=info.content_size - info.literal_size,
            literal_bytes=info.literal_size,
            dict_id=info.dict_id,
        )
        return DecompressOutput(data=_b64(data), report=report)


class GlyphEncoderAgent(CompressionAgent):
    """Lists the glyphs of a frame: the stored RSUs (by sequence number) its context is made of."""

    name = "glyph-encoder"
    description = "Lists the glyphs of a ΣLANG frame: the tenant's RSUs its zstd context is made of."
    capabilities = ("glyphs", "rsu-references")
    input_model: ClassVar[type[BaseModel]] = FrameInput
    output_model: ClassVar[type[BaseModel]] = GlyphOutput
    size_limits = (("frame", MAX_DATA_BYTES, "bytes"),)
    error_field = "frame"

    async def work(self, call: Call) -> GlyphOutput:
        """Return each context RSU of ``frame`` with its size and presence, then the payload."""
        inp: FrameInput = call.input
        info, items = await self.bridge.recipe(inp.frame, tenant=call.tenant)
        glyphs = [i for i in items if i.kind == "glyph"]
        return GlyphOutput(
            content_size=info.content_size,
            glyphs=len(glyphs),
            distinct_rsus=len(set(info.context)),
            missing_rsus=sorted({i.seq for i in glyphs if not i.in_store and i.seq is not None})[:MAX_LISTED],
            recipe=[
                GlyphOut(kind=i.kind, seq=i.seq, size=i.size, in_store=i.in_store) for i in items[:MAX_LISTED]
            ],
            recipe_steps=len(items),
            truncated=len(items) > MAX_LISTED,
        )


def frame_header(info: FrameInfo) -> dict[str, object]:
    """The header fields of a frame."""
    return {
        "version": info.version,
        "flags": _flags(info.flags, info.version),
        "content_size": info.content_size,
        "frame_size": info.frame_size,
        "payload_size": info.payload_size,
        "dict_id": info.dict_id,
        "rsus": len(info.rsu_ids) or len(set(info.context)),
        "glyphs": info.glyph_count,
        "literal_bytes": info.literal_size,
        "referenced_bytes": info.content_size - info.literal_size,
    }


class CodecInspectorAgent(CompressionAgent):
    """Verifies a frame for the caller's tenant and reports its header, without decompressing it."""

    name = "codec-inspector"
    description = (
        "Verifies a ΣLANG frame (magic, version, tenant MAC or checksum, fields) and reports its header."
    )
    capabilities = ("inspect", "verify")
    input_model: ClassVar[type[BaseModel]] = FrameInput
    output_model: ClassVar[type[BaseModel]] = CodecInspectOutput
    size_limits = (("frame", MAX_DATA_BYTES, "bytes"),)
    error_field = "frame"

    async def work(self, call: Call) -> CodecInspectOutput:
        """Return the header of ``frame`` and whether this service can decode it for the tenant."""
        inp: FrameInput = call.input
        info, missing, has_dict = await self.bridge.inspect(inp.frame, tenant=call.tenant)
        return CodecInspectOutput.model_validate(
            {
                **frame_header(info),
                "missing_rsus": list(missing[:MAX_LISTED]),
                "dictionary_available": has_dict,
                "decodable": not missing and has_dict,
            }
        )
