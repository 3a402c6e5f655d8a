"""Which CPU matmul kernels llama.cpp runs: the same for a sequence alone and in a batch of any size.

A greedy request must get the same text whether it is decoded alone or beside seven others. llama.cpp
0.3.36's CPU backend picks the matmul kernel by the number of rows (tokens) in a micro-batch: for
K-quant weights (``Q2_K`` … ``Q6_K``, ``IQ*``) it takes its *tiled* kernel
(``ggml/src/ggml-cpu/tiled/tiled.cpp``, ``ggml_tiled_min_batch``: "profitable at rows >= 8") once a
micro-batch has 8 rows or more, and the ``vec_dot`` kernel below that. The two sum the per-block products
in a different order, so a row's float result differs in its last bits, data-dependently, and after 18
layers a greedy token can flip. Gemma 3 270M Q4_K_M has K-quant ``attn_output`` (Q4_K) and ``ffn_down``
(Q4_K/Q6_K) weights, so a decode step of 8 sequences gave other logits than the same sequence alone (up to
0.8 apart; 18 of 48 rows differed in 6 steps), while steps of 2–7 sequences were bit for bit equal. The
other weights (``Q5_0``, ``Q8_0``) go through llamafile's tinyBLAS from 2 rows on and ``vec_dot`` for 1,
which gave bit-identical rows here; so did attention over KV views padded to different lengths.

llama.cpp reads ``GGML_CPU_TILED_MM`` once, at the first matmul of the process
(``ggml_tiled_matmul_enabled``); ``0`` turns the tiled kernel off, so every micro-batch shape computes
a row with the same kernels.
:func:`configure` puts :data:`KERNEL_DEFAULTS` into the environment unless the operator set the variable
(``GGML_CPU_TILED_MM=1`` buys the tiled kernel's speed on long prompts at the price of batch invariance).
Importing ``ryot`` calls it, before any model can run; a process that ran a llama.cpp matmul before
importing ``ryot`` keeps what llama.cpp read then. What it costs is measured in ``docs/ryot.md``
(Batch invariance), with ``benchmarks/llm_path.py`` and ``tests/ryot/test_batch_invariance.py``.
"""

from __future__ import annotations

import os

__all__ = ("KERNEL_DEFAULTS", "configure")

KERNEL_DEFAULTS: dict[str, str] = {"GGML_CPU_TILED_MM": "0"}
"""Environment defaults for llama.cpp's CPU backend: no tiled K-quant matmul, so the kernel that computes
a row does not depend on how many rows share its micro-batch."""


def configure() -> dict[str, str]:
    """Put :data:`KERNEL_DEFAULTS` into ``os.environ`` where the operator has not set them.

    Returns:
        The variables this call set (empty when the operator's values were kept).
    """
    missing = {name: value for name, value in KERNEL_DEFAULTS.items() if name not in os.environ}
    os.environ.update(missing)
    return missing


configure()
