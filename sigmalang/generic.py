"""The generic ΣLANG dictionary: entropy tables and chat-request boilerplate for every tenant.

A store-backed frame is compressed against its tenant's context, but the *new* bytes of a turn (a
fresh question, newly retrieved passages) still need Huffman and FSE tables, which zstd otherwise
writes into every frame; on agent traffic that was about a tenth of a frame. A dictionary trained
once on general text gives zstd those tables (and the JSON envelope of chat requests) for free.

It is trained at build time, never on benchmark or tenant data: from the descriptions (README text)
that installed Python distributions ship in their ``METADATA`` files, wrapped in OpenAI-style chat
requests (system, user, assistant and tool messages, tool schemas). The result is committed as
``sigmalang/data/generic.zdict`` so that every installation decodes the same frames (the training
input depends on what is installed). Rebuild with ``python -m sigmalang.generic [--out PATH]``; a
rebuilt dictionary has a new id, and frames naming the old one then need the old file registered.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import random
import re
from pathlib import Path

from sigmalang.dictionary import Dictionary, train_dictionary

__all__ = ("GENERIC_PATH", "generic_dictionary", "training_samples")

GENERIC_PATH = Path(__file__).with_name("data") / "generic.zdict"
"""The shipped generic dictionary (zstd format, 32 KiB)."""

_SEED = 0
_SAMPLES = 2000
_SIZE_BYTES = 32 * 1024
_EXCLUDE = frozenset({"neurectomy"})  # never train on the project's own text


@functools.cache
def generic_dictionary() -> Dictionary:
    """The shipped generic dictionary (read once per process)."""
    return Dictionary(GENERIC_PATH.read_bytes())


def _paragraphs() -> list[str]:
    out: list[str] = []
    dists = sorted(importlib.metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower())
    for dist in dists:
        name = (dist.metadata["Name"] or "").lower()
        body = dist.metadata.get_payload()  # type: ignore[attr-defined]  # an email Message: the description
        if name in _EXCLUDE or not isinstance(body, str):
            continue
        out.extend(p.strip() for p in re.split(r"\n\s*\n", body) if len(p.strip()) > 80)
    return out


def training_samples(*, seed: int = _SEED, count: int = _SAMPLES) -> list[bytes]:
    """Chat requests (JSON) made of installed distributions' descriptions, deterministic per install.

    Raises:
        RuntimeError: The installed distributions hold too little text to train on.
    """
    rng = random.Random(seed)  # noqa: S311 - deterministic training text, not a secret
    paras = _paragraphs()
    if len(paras) < 100:
        raise RuntimeError(f"only {len(paras)} paragraphs of package descriptions installed")
    samples: list[bytes] = []
    for _ in range(count):
        messages: list[dict[str, object]] = [{"role": "system", "content": rng.choice(paras)}]
        for _ in range(rng.randint(1, 3)):
            messages.append({"role": "user", "content": rng.choice(paras)})
            if rng.random() < 0.3:
                call: dict[str, object] = {"id": f"call_{rng.getrandbits(40):x}", "type": "function"}
                call["function"] = {
                    "name": "search",
                    "arguments": json.dumps({"query": rng.choice(paras)[:80]}),
                }
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": rng.choice(paras)})
            messages.append({"role": "assistant", "content": rng.choice(paras)})
        request: dict[str, object] = {
            "model": rng.choice(["gpt-4o", "llama-3", "gemma-3"]),
            "messages": messages,
        }
        if rng.random() < 0.5:
            request["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": rng.choice(["search", "fetch", "run_query", "read_file"]),
                        "description": rng.choice(paras)[:200],
                        "parameters": {
                            "type": "object",
                            "properties": {"query": {"type": "string", "description": "What to look for."}},
                            "required": ["query"],
                        },
                    },
                }
            ]
        samples.append(json.dumps(request, ensure_ascii=rng.random() < 0.7).encode())
    return samples


def build(out: Path = GENERIC_PATH) -> Dictionary:
    """Train the generic dictionary from the installed distributions and write it to `out`.

    Raises:
        RuntimeError: Too little text installed, or zstd could not train a dictionary.
    """
    dictionary = train_dictionary(training_samples(), size_bytes=_SIZE_BYTES, min_samples=100, level=3)
    if dictionary is None:
        raise RuntimeError("zstd could not train the generic dictionary")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(dictionary.data)
    return dictionary


def main() -> None:  # pragma: no cover - build-time tool
    """``python -m sigmalang.generic [--out PATH]``: rebuild the generic dictionary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=GENERIC_PATH)
    dictionary = build(parser.parse_args().out)
    print(f"{parser.parse_args().out}: {len(dictionary)} bytes, id {dictionary.dict_id:08x}")


if __name__ == "__main__":  # pragma: no cover
    main()
