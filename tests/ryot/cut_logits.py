"""Last-token logits of prompts prefilled whole against the same prompts cut in two (``N - k``, then ``k``).

Run as a script in a fresh interpreter (llama.cpp reads its kernel switches once per process) with one
JSON argument ``{"prompts": [text, ...], "cuts": [k, ...]}``; prints one JSON object: ``prompts``
compared, and per cut ``k`` (as a string) the ``differing`` prompts (last-token logits not bit for bit
those of the whole prefill) and their ``max_abs_diff``. The second piece is what the engine evaluates
of a prompt whose first ``N - k`` tokens come from a slot or the prefix cache
(``tests/ryot/test_batch_invariance.py``). Imports ``ryot`` before any decode, as the service does.

Two more cuts after the BOS token, named by how its KV was computed before the rest of the prompt:
``"primed"``, as ``RyotEngine`` primes its slots (BOS twice in one ``llama_decode``, the second removed),
and ``"bos alone"`` (BOS as a row of its own).
"""

from __future__ import annotations

import json
import sys

import llama_cpp
import numpy as np

import ryot  # noqa: F401 - ryot's environment defaults, set before the first llama.cpp matmul
from ryot._llama import Batch, Context, Model
from ryot.models import default_model_path


def main(prompts: list[str], cuts: list[int | str]) -> None:
    """Compare each prompt's last-token logits, whole against each cut; print the counts as JSON."""
    model = Model(default_model_path(), repack=False)
    ctx = Context(model, n_ctx_seq=512, n_seq=1, n_batch=512, n_threads=2, swa_full=True)
    batch = Batch(512)

    def evaluate(tokens: list[int], start: int, want_last: bool) -> None:
        batch.clear()
        for pos in range(start, len(tokens)):
            batch.add(tokens[pos], pos, 0, want_last and pos == len(tokens) - 1)
        if ctx.decode(batch) != 0:
            raise RuntimeError("llama_decode failed")

    def last_logits(tokens: list[int], cut: int | str) -> np.ndarray:
        """Logits of the last token after evaluating ``tokens[:cut]``, then the rest (cut 0: whole)."""
        ctx.seq_rm(0, 0, -1)
        if isinstance(cut, str):  # BOS first, computed as named (see the module docstring), then the rest
            evaluate([model.bos, model.bos] if cut == "primed" else [model.bos], 0, False)
            ctx.seq_rm(0, 1, -1)
            cut = 1
        elif cut:
            evaluate(tokens[:cut], 0, False)
        evaluate(tokens, cut, True)
        ptr = llama_cpp.llama_get_logits_ith(ctx.ptr, len(tokens) - 1 - cut)
        return np.ctypeslib.as_array(ptr, shape=(model.n_vocab,)).copy()

    differing = dict.fromkeys(map(str, cuts), 0)
    worst = dict.fromkeys(map(str, cuts), 0.0)
    for text in prompts:
        tokens = model.tokenize(text.encode(), add_special=True, parse_special=False)
        whole = last_logits(tokens, 0)
        for k in cuts:
            if isinstance(k, str) and tokens[0] != model.bos:
                raise ValueError(f"{text!r} does not start with BOS")
            cut = k if isinstance(k, str) else len(tokens) - k
            diff = float(np.abs(last_logits(tokens, cut) - whole).max())
            differing[str(k)] += diff != 0.0
            worst[str(k)] = max(worst[str(k)], diff)
    print(json.dumps({"prompts": len(prompts), "differing": differing, "max_abs_diff": worst}))


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    main(list(spec["prompts"]), [k if isinstance(k, str) else int(k) for k in spec["cuts"]])
