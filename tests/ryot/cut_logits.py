"""Last-token logits of prompts prefilled whole against the same prompts cut in two (``N - k``, then ``k``).

Run as a script in a fresh interpreter (llama.cpp reads its kernel switches once per process) with one
JSON argument ``{"prompts": [text, ...], "cuts": [k, ...]}``; prints one JSON object: ``prompts``
compared, and per cut ``k`` (as a string) the ``differing`` prompts (last-token logits not bit for bit
those of the whole prefill) and their ``max_abs_diff``. The second piece is what the engine evaluates
of a prompt whose first ``N - k`` tokens come from a slot or the prefix cache
(``tests/ryot/test_batch_invariance.py``). Imports ``ryot`` before any decode, as the service does.
"""

from __future__ import annotations

import json
import sys

import llama_cpp
import numpy as np

import ryot  # noqa: F401 - ryot's environment defaults, set before the first llama.cpp matmul
from ryot._llama import Batch, Context, Model
from ryot.models import default_model_path


def main(prompts: list[str], cuts: list[int]) -> None:
    """Compare each prompt's last-token logits, whole against each cut; print the counts as JSON."""
    model = Model(default_model_path(), repack=False)
    ctx = Context(model, n_ctx_seq=512, n_seq=1, n_batch=512, n_threads=2, swa_full=True)
    batch = Batch(512)

    def last_logits(tokens: list[int], cut: int) -> np.ndarray:
        """Logits of the last token after evaluating ``tokens[:cut]``, then the rest (cut 0: whole)."""
        ctx.seq_rm(0, 0, -1)
        for start, end in ((0, cut), (cut, len(tokens))):
            if start == end:
                continue
            batch.clear()
            for pos in range(start, end):
                batch.add(tokens[pos], pos, 0, pos == len(tokens) - 1)
            if ctx.decode(batch) != 0:
                raise RuntimeError("llama_decode failed")
        ptr = llama_cpp.llama_get_logits_ith(ctx.ptr, len(tokens) - 1 - cut)
        return np.ctypeslib.as_array(ptr, shape=(model.n_vocab,)).copy()

    differing = dict.fromkeys(map(str, cuts), 0)
    worst = dict.fromkeys(map(str, cuts), 0.0)
    for text in prompts:
        tokens = model.tokenize(text.encode(), add_special=True, parse_special=False)
        whole = last_logits(tokens, 0)
        for k in cuts:
            diff = float(np.abs(last_logits(tokens, len(tokens) - k) - whole).max())
            differing[str(k)] += diff != 0.0
            worst[str(k)] = max(worst[str(k)], diff)
    print(json.dumps({"prompts": len(prompts), "differing": differing, "max_abs_diff": worst}))


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    main(list(spec["prompts"]), [int(k) for k in spec["cuts"]])
