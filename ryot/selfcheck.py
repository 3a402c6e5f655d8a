"""``python -m ryot.selfcheck``: load the default model and decode a few tokens.

Run by ``make setup`` after installing, so a broken llama.cpp build (e.g. the AMX crash at the first
decode) or a missing model is found at set-up time, with a clear message, rather than at first request.
"""

from __future__ import annotations

import sys
import time

from ryot import RyotConfig, RyotEngine, RyotError, SamplingParams


def main() -> int:
    """Load the model, greedily decode 4 tokens, print what happened; 0 on success."""
    started = time.perf_counter()
    try:
        with RyotEngine(RyotConfig(n_ctx=256)) as engine:
            completion = engine.generate(
                "The capital of France is", SamplingParams(max_tokens=4, temperature=0)
            )
    except RyotError as exc:
        print(f"ryot self-check failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"ryot self-check: {engine.model_name} loaded and decoded "
        f"{completion.usage.completion_tokens} tokens "
        f"({completion.text.strip()!r}) in {time.perf_counter() - started:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
