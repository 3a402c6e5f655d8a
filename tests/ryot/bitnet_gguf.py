"""A tiny random-weight BitNet b1.58 GGUF for tests, and a NumPy reference forward pass to check it.

BitNet b1.58 (Ma et al., "The Era of 1-bit LLMs: All Large Language Models are in 1.58 Bits", 2024,
arXiv:2402.17764) constrains every linear weight of the transformer blocks to {-1, 0, +1} times one
per-tensor scale (absmean quantisation). llama.cpp runs such models as the ``bitnet`` architecture
(``src/models/bitnet.cpp`` in the llama.cpp vendored by llama-cpp-python 0.3.36): a LLaMA-like block
with two extra RMS norms, ``attn_sub_norm`` before the attention output projection and ``ffn_sub_norm``
before the FFN down projection, NeoX-style RoPE, a SiLU-gated FFN and the token embedding reused as the
output head. Ternary weights are stored as ``TQ2_0`` (2 bits per weight) or ``TQ1_0`` (1.6875 bits),
256 weights per block with one f16 scale, which is why every matrix row here is a multiple of 256.

The vocabulary is a small SentencePiece-style (``tokenizer.ggml.model = "llama"``) one: ``<unk>``,
``<s>``, ``</s>``, the 256 byte-fallback tokens ``<0x00>``…``<0xFF>``, the printable ASCII characters,
``▁`` + letter, and the prefixes of a few common words, so any text tokenizes.

:func:`reference_greedy` re-implements the ``bitnet`` graph in NumPy from the tensors read back from
the file, so a test can check that llama.cpp's output is the one these ternary weights determine.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import gguf
import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter, LlamaFileType, TokenType

TQ2_0, TQ1_0 = GGMLQuantizationType.TQ2_0, GGMLQuantizationType.TQ1_0
TERNARY_TYPES = (TQ2_0, TQ1_0)
"""The GGML tensor types llama.cpp offers for ternary weights."""

N_LAYER = 2
N_EMBD = 256
N_FF = 512
N_HEAD = 4
N_HEAD_KV = 2
HEAD_DIM = N_EMBD // N_HEAD
RMS_EPS = 1e-5
ROPE_FREQ_BASE = 10000.0
CONTEXT_LENGTH = 2048
EMBD_STD = 0.02

BOS_ID, EOS_ID, UNK_ID = 1, 2, 0
_WORDS = (
    "the", "and", "of", "to", "in", "is", "it", "that", "was", "for", "on", "are", "with", "as", "be",
    "at", "this", "have", "from", "or", "one", "by", "not", "but", "what", "all", "were", "when", "we",
    "there", "can", "an", "your", "which", "their", "said", "if", "do", "will", "each", "about", "how",
    "up", "out", "them", "then", "she", "many", "some", "so", "these", "would", "other", "into", "has",
    "more", "her", "two", "like", "him", "see", "time", "could", "no", "make", "than", "first", "been",
    "its", "who", "now", "people", "my", "made", "over", "did", "down", "only", "way", "find", "use",
    "may", "water", "long", "little", "very", "after", "words", "called", "just", "where", "most", "know",
    "river", "sea", "colour", "red", "blue", "green", "once", "upon", "a", "I",
)  # fmt: skip

# Weight tensors of one block: GGUF name -> (output rows, input columns); llama.cpp's ne = {cols, rows}.
_BLOCK_MATRICES = {
    "attn_q": (N_EMBD, N_EMBD),
    "attn_k": (N_HEAD_KV * HEAD_DIM, N_EMBD),
    "attn_v": (N_HEAD_KV * HEAD_DIM, N_EMBD),
    "attn_output": (N_EMBD, N_EMBD),
    "ffn_gate": (N_FF, N_EMBD),
    "ffn_up": (N_FF, N_EMBD),
    "ffn_down": (N_EMBD, N_FF),
}
_BLOCK_NORMS = {"attn_norm": N_EMBD, "attn_sub_norm": N_EMBD, "ffn_norm": N_EMBD, "ffn_sub_norm": N_FF}


def ternary_tensor_names() -> list[str]:
    """Names of the tensors that hold ternary weights (every linear layer of every block)."""
    return [f"blk.{i}.{name}.weight" for i in range(N_LAYER) for name in _BLOCK_MATRICES]


def _vocab() -> tuple[list[str], list[float], list[TokenType]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [TokenType.BYTE] * 256
    pieces: list[str] = ["▁"]
    pieces += [c for c in string.printable if c not in string.whitespace]
    pieces += [f"▁{c}" for c in string.ascii_letters + string.digits]
    for word in _WORDS:
        pieces += [f"▁{word[:k]}" for k in range(2, len(word) + 1)]
    seen: set[str] = set()
    for piece in pieces:
        if piece not in seen:
            seen.add(piece)
            tokens.append(piece)
            types.append(TokenType.NORMAL)
    # SentencePiece merges the adjacent pair whose merged piece scores highest: prefer longer pieces.
    scores = [0.0 if t != TokenType.NORMAL else float(len(tok)) for tok, t in zip(tokens, types, strict=True)]
    return tokens, scores, types


def _ternary(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """A ``(rows, cols)`` float32 matrix with entries in {-1, 0, +1} × one per-tensor scale."""
    signs = rng.integers(-1, 2, size=(rows, cols)).astype(np.float32)
    return signs * np.float32(1.0 / np.sqrt(cols))


def write_tiny_bitnet_gguf(path: Path, *, seed: int = 0, weight_type: GGMLQuantizationType = TQ2_0) -> Path:
    """Write a 2-layer, 256-wide BitNet b1.58 model with random ternary weights to ``path``.

    Args:
        path: Output ``.gguf`` file (overwritten).
        seed: Seed of the random weights; different seeds give different models.
        weight_type: ``TQ2_0`` or ``TQ1_0`` for the ternary linear weights. The token embedding is f16
            and the norms f32, as in llama.cpp's ``convert_hf_to_gguf.py --outtype tq2_0``.

    Returns:
        ``path``.

    Raises:
        ValueError: ``weight_type`` is not a ternary type.
    """
    if weight_type not in TERNARY_TYPES:
        raise ValueError(f"weight_type must be TQ2_0 or TQ1_0, not {weight_type.name}")
    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()

    writer = GGUFWriter(path, "bitnet")
    writer.add_name(f"tiny-bitnet-b1.58-{weight_type.name.lower()}-seed{seed}")
    file_type = {TQ2_0: LlamaFileType.MOSTLY_TQ2_0, TQ1_0: LlamaFileType.MOSTLY_TQ1_0}[weight_type]
    writer.add_file_type(file_type)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(N_EMBD)
    writer.add_feed_forward_length(N_FF)
    writer.add_block_count(N_LAYER)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_rope_freq_base(ROPE_FREQ_BASE)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_unk_token_id(UNK_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)

    # Small embeddings, so the blocks (not the token's own embedding) dominate the residual stream and
    # the completion depends on the ternary weights. The embedding is also the output head: <unk>, <s>
    # and the byte tokens are damped so greedy decoding picks text pieces (a random model would
    # otherwise emit stray bytes that decode to U+FFFD).
    embd = rng.standard_normal((len(tokens), N_EMBD)).astype(np.float32) * np.float32(EMBD_STD)
    embd[[UNK_ID, BOS_ID, *range(3, 3 + 256)]] *= np.float32(0.05)
    writer.add_tensor("token_embd.weight", embd.astype(np.float16))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    for i in range(N_LAYER):
        for name, size in _BLOCK_NORMS.items():
            writer.add_tensor(f"blk.{i}.{name}.weight", np.ones(size, dtype=np.float32))
        for name, (rows, cols) in _BLOCK_MATRICES.items():
            packed = gguf.quants.quantize(_ternary(rng, rows, cols), weight_type)
            writer.add_tensor(f"blk.{i}.{name}.weight", packed, raw_dtype=weight_type)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a GGUF, dequantized to float64 with NumPy (``gguf.quants.dequantize``).

    Shapes are NumPy's (rows, columns), the reverse of GGML's ``ne``.
    """
    reader = GGUFReader(path)
    return {
        t.name: gguf.quants.dequantize(t.data, t.tensor_type)
        .astype(np.float64)
        .reshape([int(n) for n in reversed(t.shape)])
        for t in reader.tensors
    }


def _q8_k(x: np.ndarray) -> np.ndarray:
    """``x`` rounded as llama.cpp's CPU backend quantizes activations for a ternary matmul (Q8_K).

    Per block of 256 values: int8 codes ``round(-127 / m * x)`` with ``m`` the value of largest
    magnitude, times the block scale ``-m / 127`` (``quantize_row_q8_K_ref`` in ``ggml-quants.c``).
    BitNet b1.58 likewise quantizes activations to 8 bits (absmax) before its ternary matmuls.
    """
    blocks = x.astype(np.float32).reshape(*x.shape[:-1], -1, 256)
    idx = np.abs(blocks).argmax(axis=-1)[..., None]
    peak = np.take_along_axis(blocks, idx, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        iscale = np.where(peak == 0, np.float32(0), np.float32(-127.0) / peak)
        codes = np.minimum(np.rint(blocks * iscale), 127)
        scale = np.where(peak == 0, np.float32(0), np.float32(1.0) / iscale)
    return (codes * scale).astype(np.float64).reshape(x.shape)


def _f16(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to float16, as llama.cpp stores the KV cache and feeds f16 weights."""
    return x.astype(np.float16).astype(np.float64)


def _rms_norm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + RMS_EPS) * weight


def _rope_neox(x: np.ndarray) -> np.ndarray:
    """NeoX-style rotary embedding of ``(n_tokens, n_heads, HEAD_DIM)`` at positions 0..n_tokens-1."""
    half = HEAD_DIM // 2
    theta = np.arange(x.shape[0])[:, None] * ROPE_FREQ_BASE ** (-np.arange(half) * 2.0 / HEAD_DIM)
    cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    x0, x1 = x[..., :half], x[..., half:]
    return np.concatenate([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)


def _linear(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``x @ weight.T`` for ``x`` ``(n, cols)`` and ``weight`` ``(rows, cols)``.

    ``einsum`` rather than ``@``: these matrices are tiny and BLAS's worker threads only add waiting.
    """
    return np.einsum("ij,kj->ik", x, weight)


def _bitlinear(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A ternary matmul as llama.cpp's CPU backend computes it: Q8_K activations × TQ weights."""
    return _linear(_q8_k(x), weight)


def reference_logits(weights: dict[str, np.ndarray], tokens: Sequence[int]) -> np.ndarray:
    """Logits ``(n_vocab,)`` after ``tokens`` by the ``bitnet`` graph of llama.cpp, in float64 NumPy.

    Mirrors ``llama_model_bitnet::graph`` (``src/models/bitnet.cpp``) and the roundings of llama.cpp's
    CPU backend (Q8_K activations for the ternary matmuls, f16 K/V cache, f16 attention weights, f16
    input to the f16 output head), without flash attention: on this machine its logits agree with
    llama.cpp's to ~1e-7.

    Args:
        weights: The model's tensors as returned by :func:`read_weights`.
        tokens: Token ids from the first position on (BOS included if the prompt has one).
    """
    w = weights
    n = len(tokens)
    x = w["token_embd.weight"][list(tokens)]
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    group = N_HEAD // N_HEAD_KV
    for i in range(N_LAYER):
        p = f"blk.{i}."
        h = _rms_norm(x, w[p + "attn_norm.weight"])
        q = _f16(_rope_neox(_bitlinear(h, w[p + "attn_q.weight"]).reshape(n, N_HEAD, HEAD_DIM)))
        k = _f16(_rope_neox(_bitlinear(h, w[p + "attn_k.weight"]).reshape(n, N_HEAD_KV, HEAD_DIM)))
        v = _f16(_bitlinear(h, w[p + "attn_v.weight"]).reshape(n, N_HEAD_KV, HEAD_DIM))
        heads = []
        for head in range(N_HEAD):
            scores = _linear(q[:, head], k[:, head // group]) / np.sqrt(HEAD_DIM) + mask
            probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = _f16(probs / probs.sum(axis=-1, keepdims=True))
            heads.append(_linear(probs, v[:, head // group].T))
        attn = _rms_norm(np.concatenate(heads, axis=-1), w[p + "attn_sub_norm.weight"])
        x = x + _bitlinear(attn, w[p + "attn_output.weight"])
        h = _rms_norm(x, w[p + "ffn_norm.weight"])
        gate = _bitlinear(h, w[p + "ffn_gate.weight"])
        ffn = gate / (1.0 + np.exp(-gate)) * _bitlinear(h, w[p + "ffn_up.weight"])
        x = x + _bitlinear(_rms_norm(ffn, w[p + "ffn_sub_norm.weight"]), w[p + "ffn_down.weight"])
    out = _rms_norm(x[-1:], w["output_norm.weight"])
    return _linear(_f16(out), w["token_embd.weight"])[0]


class ReferenceCompletion(NamedTuple):
    """A greedy completion computed by :func:`reference_greedy`.

    Attributes:
        tokens: Completion token ids; the last one is ``</s>`` if it was chosen.
        min_margin: Smallest gap, over the steps, between the chosen token's logit and the runner-up's:
            the numerical slack a faithful implementation has before its greedy choice could differ.
    """

    tokens: list[int]
    min_margin: float


def reference_greedy(path: Path, prompt_tokens: Sequence[int], max_tokens: int) -> ReferenceCompletion:
    """Greedy completion of the GGUF at ``path``, computed in NumPy from the tensors in the file.

    Args:
        path: A file written by :func:`write_tiny_bitnet_gguf`.
        prompt_tokens: The prompt's token ids as llama.cpp tokenized it (BOS included).
        max_tokens: Upper bound on completion tokens; stops early after ``</s>``.
    """
    weights = read_weights(path)
    tokens, out, margins = list(prompt_tokens), [], []
    for _ in range(max_tokens):
        logits = reference_logits(weights, tokens)
        runner_up, best = np.sort(logits)[-2:]
        token = int(np.argmax(logits))
        out.append(token)
        margins.append(float(best - runner_up))
        if token == EOS_ID:
            break
        tokens.append(token)
    return ReferenceCompletion(out, min(margins))


def token_bytes(path: Path, token_ids: Sequence[int]) -> bytes:
    """The bytes the tokens of the GGUF at ``path`` stand for (``▁`` is a space; control tokens: none)."""
    reader = GGUFReader(path)
    field = reader.fields["tokenizer.ggml.tokens"]
    types = reader.fields["tokenizer.ggml.token_type"]
    out = bytearray()
    for tid in token_ids:
        piece = bytes(field.parts[field.data[tid]]).decode("utf-8")
        kind = int(types.parts[types.data[tid]][0])
        if kind == TokenType.BYTE:
            out.append(int(piece[3:5], 16))
        elif kind == TokenType.NORMAL:
            out += piece.replace("▁", " ").encode("utf-8")
    return bytes(out)
