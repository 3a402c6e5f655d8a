"""What a Hugging Face model directory says about its model, read without loading it.

The weights file's safetensors header (an 8-byte little-endian length, then a JSON object giving each
tensor's ``dtype`` and ``shape``; format: huggingface/safetensors ``README.md``) gives the parameter
count and the weights' type; ``config.json`` gives the architecture, trained context and hidden size.
For all-MiniLM-L6-v2 the count is 22,713,216: its floating-point tensors, as torch's
``sum(p.numel() for p in model.parameters())`` counts them once loaded (the integer
``embeddings.position_ids`` buffer is not a parameter).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

__all__ = ("model_facts",)

_FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})
_HEADER_MAX_BYTES = 100 * 1024 * 1024
"""safetensors' own limit on the header's size."""


def _safetensors_facts(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > _HEADER_MAX_BYTES:
            raise ValueError(f"{path}: safetensors header of {length} bytes")
        header: dict[str, Any] = json.loads(f.read(length))
    tensors = [t for name, t in header.items() if name != "__metadata__" and t["dtype"] in _FLOAT_DTYPES]
    dtypes = {t["dtype"] for t in tensors}
    st = path.stat()
    return {
        "parameter_count": sum(math.prod(t["shape"]) for t in tensors),
        "quantization": dtypes.pop() if len(dtypes) == 1 else None,
        "file_size": st.st_size,
        "file_mtime": st.st_mtime,
    }


def model_facts(model_dir: Path) -> dict[str, Any]:
    """Facts about the model in ``model_dir`` (``config.json`` and ``model.safetensors``).

    Returns:
        ``architecture`` (config ``model_type``, e.g. ``bert``), ``context_length_trained`` (config
        ``max_position_embeddings``, tokens), ``embedding_length`` (config ``hidden_size``),
        ``parameter_count``, ``quantization`` (the weights' dtype, e.g. ``F32``), ``file_size`` (bytes)
        and ``file_mtime`` (Unix seconds) of the weights file; keys whose source is missing or
        unreadable are left out.
    """
    facts: dict[str, Any] = {}
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    for key, source in (
        ("architecture", "model_type"),
        ("context_length_trained", "max_position_embeddings"),
        ("embedding_length", "hidden_size"),
    ):
        if config.get(source) is not None:
            facts[key] = config[source]
    try:
        facts.update(_safetensors_facts(model_dir / "model.safetensors"))
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        pass  # no (readable) safetensors weights: their facts are not known
    return {k: v for k, v in facts.items() if v is not None}
