"""Agents working on single messages and frames: compressor, decompressor, glyph-encoder, codec-inspector."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from agents.actor import Call
from agents.compression._base import CompressionAgent, compression_report, sigma_error
from agents.compression._wire import MAX_DATA_BYTES, CompressInput, DecompressInput, FrameInput, check_size
from bridges.errors import BridgeTimeoutError
from sigmalang import FrameFlags, FrameInfo, SigmaError

__all__ = ("MAX_LISTED", "CodecInspectorAgent", "CompressorAgent", "DecompressorAgent", "GlyphEncoderAgent")

MAX_LISTED = 10_000
"""Most recipe steps or RSU ids an answer lists (a 6 MB frame may hold millions of 1-byte glyphs);
the rest are counted, not listed, so the reply fits in one NATS message."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _timeout(call: Call) -> float:
    return max(call.remaining_s(), 0.001)


def _flags(flags: FrameFlags) -> list[str]:
    return [f.name for f in FrameFlags if f.value and f in flags and f.name]


def frame_header(info: FrameInfo) -> dict[str, Any]:
    """The header fields of a frame as JSON."""
    return {
        "version": info.version,
        "flags": _flags(info.flags),
        "content_size": info.content_size,
        "frame_size": info.frame_size,
        "payload_size": info.payload_size,
        "dict_id": info.dict_id,
        "rsus": len(info.rsu_ids),
        "glyphs": info.glyph_count,
        "literal_bytes": info.literal_size,
        "referenced_bytes": info.content_size - info.literal_size,
    }


class CompressorAgent(CompressionAgent):
    """Compresses one message into a ΣLANG frame, referencing RSUs the shared store holds."""

    name = "compressor"
    description = "Compresses a message losslessly into a ΣLANG frame (RSU dedup + zstd) with a full report."
    capabilities = ("compress", "dedup", "report")
    input_model: ClassVar[type[BaseModel]] = CompressInput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Compress ``data``; return the frame (base64) and its report."""
        inp: CompressInput = call.input
        check_size("data", len(inp.data))
        try:
            outcome = await self.bridge.compress(
                inp.data, dedup=inp.dedup, level=inp.level, stream=inp.stream, timeout_s=_timeout(call)
            )
        except (SigmaError, BridgeTimeoutError) as exc:
            raise sigma_error(exc, field="data") from exc
        return {
            "frame": _b64(outcome.result.frame),
            "report": compression_report(outcome.result.report, outcome.token_counter),
        }


class DecompressorAgent(CompressionAgent):
    """Decodes a ΣLANG frame back to exactly the bytes that were compressed."""

    name = "decompressor"
    description = "Decodes a ΣLANG frame byte-exactly, resolving its glyphs from the shared RSU store."
    capabilities = ("decompress", "verify")
    input_model: ClassVar[type[BaseModel]] = DecompressInput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Decode ``frame``; return the data (base64) and what the frame held."""
        inp: DecompressInput = call.input
        check_size("frame", len(inp.frame))
        try:
            info, _, _ = await self.bridge.inspect(inp.frame)
            data = await self.bridge.decompress(
                inp.frame, max_output_bytes=MAX_DATA_BYTES, timeout_s=_timeout(call)
            )
            tokens, counter = await self.bridge.tokens_of(data)
        except (SigmaError, BridgeTimeoutError) as exc:
            raise sigma_error(exc, field="frame") from exc
        return {
            "data": _b64(data),
            "report": {
                "bytes_in": len(inp.frame),
                "bytes_out": len(data),
                "ratio": len(data) / len(inp.frame),
                "tokens_out": tokens,
                "token_counter": counter,
                "glyphs": info.glyph_count,
                "referenced_bytes": info.content_size - info.literal_size,
                "literal_bytes": info.literal_size,
                "dict_id": info.dict_id,
            },
        }


class GlyphEncoderAgent(CompressionAgent):
    """Lists a frame's recipe: which glyphs (RSU references) and literal runs make up the message."""

    name = "glyph-encoder"
    description = "Turns a ΣLANG frame into its sequence of glyphs (RSU references) and literal runs."
    capabilities = ("glyphs", "rsu-references")
    input_model: ClassVar[type[BaseModel]] = FrameInput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Return the recipe of ``frame`` with each glyph's RSU id, offset, size and presence."""
        inp: FrameInput = call.input
        check_size("frame", len(inp.frame))
        try:
            info, items = await self.bridge.recipe(inp.frame)
        except (SigmaError, BridgeTimeoutError) as exc:
            raise sigma_error(exc, field="frame") from exc
        glyphs = [i for i in items if i.kind == "glyph"]
        return {
            "content_size": info.content_size,
            "glyphs": len(glyphs),
            "distinct_rsus": len(info.rsu_ids),
            "rsu_ids": [cid.hex() for cid in info.rsu_ids[:MAX_LISTED]],
            "missing_rsus": sorted({i.rsu_id for i in glyphs if not i.in_store and i.rsu_id})[:MAX_LISTED],
            "recipe": [
                {
                    "kind": i.kind,
                    "offset": i.offset,
                    "size": i.size,
                    "rsu_id": i.rsu_id,
                    "in_store": i.in_store,
                }
                for i in items[:MAX_LISTED]
            ],
            "recipe_steps": len(items),
            "truncated": len(items) > MAX_LISTED or len(info.rsu_ids) > MAX_LISTED,
        }


class CodecInspectorAgent(CompressionAgent):
    """Verifies a frame and reports its header, without decompressing it."""

    name = "codec-inspector"
    description = "Verifies a ΣLANG frame (magic, version, checksum, fields) and reports its header."
    capabilities = ("inspect", "verify")
    input_model: ClassVar[type[BaseModel]] = FrameInput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Return the header of ``frame`` and whether this service can decode it."""
        inp: FrameInput = call.input
        check_size("frame", len(inp.frame))
        try:
            info, missing, has_dict = await self.bridge.inspect(inp.frame)
        except (SigmaError, BridgeTimeoutError) as exc:
            raise sigma_error(exc, field="frame") from exc
        return {
            **frame_header(info),
            "missing_rsus": [cid.hex() for cid in missing[:MAX_LISTED]],
            "dictionary_available": has_dict,
            "decodable": not missing and has_dict,
        }
