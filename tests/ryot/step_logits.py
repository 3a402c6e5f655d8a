"""Logits of a decode step of 8 sequences against each sequence's step alone (same KV, same positions).

Run as a script in a fresh interpreter (llama.cpp reads its kernel switches once per process); prints one
JSON object: ``rows`` compared, ``differing`` rows (not bit for bit equal), ``max_abs_diff`` and
``argmax_flips``. Imports ``ryot`` before any decode, as the service does, so ryot's kernel defaults apply
unless the environment sets them (``tests/ryot/test_batch_invariance.py``).
"""

from __future__ import annotations

import json

import llama_cpp
import numpy as np

import ryot  # noqa: F401 - ryot's environment defaults, set before the first llama.cpp matmul
from ryot._llama import Batch, Context, Model
from ryot.models import default_model_path

TOPICS = ("Lighthouses", "Volcanoes", "Penguins", "Railways", "Glaciers", "Bees", "Comets", "Deserts")
N_SEQ = 8
STEPS = 4


def main() -> None:
    """Prefill 8 prompts (each alone), then for each step compare every row of the batched step with the
    same token decoded alone; all sequences then advance by their greedy token."""
    model = Model(default_model_path(), repack=False)
    ctx = Context(model, n_ctx_seq=256, n_seq=N_SEQ, n_batch=256, n_threads=2, swa_full=True)
    batch = Batch(256)

    def logits(row: int) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(ctx.ptr, row)
        return np.ctypeslib.as_array(ptr, shape=(model.n_vocab,)).copy()

    def decode(items: list[tuple[int, int, int, bool]]) -> None:
        batch.clear()
        for token, pos, seq, wanted in items:
            batch.add(token, pos, seq, wanted)
        if ctx.decode(batch) != 0:
            raise RuntimeError("llama_decode failed")

    positions: list[int] = []
    tokens: list[int] = []
    for seq, topic in enumerate(TOPICS):
        text = f"{topic} {seq}: write a long essay about them."
        prompt = model.tokenize(text.encode(), add_special=True, parse_special=False)
        decode([(t, p, seq, p == len(prompt) - 1) for p, t in enumerate(prompt)])
        tokens.append(int(logits(len(prompt) - 1).argmax()))
        positions.append(len(prompt))
    rows = differing = flips = 0
    worst = 0.0
    for _ in range(STEPS):
        alone = []
        for seq in range(N_SEQ):
            decode([(tokens[seq], positions[seq], seq, True)])
            alone.append(logits(0))
            ctx.seq_rm(seq, positions[seq])
        decode([(tokens[seq], positions[seq], seq, True) for seq in range(N_SEQ)])
        for seq in range(N_SEQ):
            together = logits(seq)
            diff = float(np.abs(together - alone[seq]).max())
            rows += 1
            differing += diff != 0.0
            flips += int(together.argmax() != alone[seq].argmax())
            worst = max(worst, diff)
        tokens = [int(row.argmax()) for row in alone]
        positions = [p + 1 for p in positions]  # the batched step's KV cells stay
    print(json.dumps({"rows": rows, "differing": differing, "max_abs_diff": worst, "argmax_flips": flips}))


if __name__ == "__main__":
    main()
