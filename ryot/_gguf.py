"""What a GGUF file says about its model, read from its header without loading the model.

:func:`read_gguf_header` parses the header with ggml's own GGUF reader (``gguf_init_from_file`` with
``no_alloc``, the C library llama-cpp-python ships), so it reads the key/value metadata and the tensor
descriptions but no tensor data: ~40 ms for Gemma 3 270M (262,144 vocabulary strings), where loading the
model takes ~0.4 s even with ``vocab_only`` and the ``gguf`` Python package's reader ~11 s (measured
here). The parameter count is the sum of the tensors' element counts, as llama.cpp's
``llama_model_n_params`` and Ollama's ``general.parameter_count`` count them.

Reference: the GGUF specification (``ggml/docs/gguf.md``) and ``ggml/include/gguf.h``.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import llama_cpp
import numpy as np

from ryot.errors import ModelLoadError

__all__ = ("FILE_TYPE_NAMES", "GGUFHeader", "GGUFTensor", "read_gguf_header", "read_gguf_tensors")

FILE_TYPE_NAMES: Final[Mapping[int, str]] = {
    value: name.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_")
    for name, value in vars(llama_cpp).items()
    if name.startswith("LLAMA_FTYPE_") and isinstance(value, int) and name != "LLAMA_FTYPE_GUESSED"
}
"""``general.file_type`` (llama.cpp's ``llama_ftype``) → its name as llama.cpp and Ollama write it
(``15`` → ``Q4_K_M``, ``0`` → ``F32``, ``36`` → ``TQ1_0``), from llama-cpp-python's ``LLAMA_FTYPE_*``."""

SHORT_ARRAY_MAX: Final = 5
"""Arrays of more elements (the vocabulary, merges, scores) are reported empty, as Ollama's
``/api/show`` does without ``verbose`` (``server/routes.go``, ``getModelData``)."""

_U8, _I8, _U16, _I16, _U32, _I32, _F32, _BOOL, _STR, _ARR, _U64, _I64, _F64 = range(13)
"""``enum gguf_type`` (gguf.h)."""
_SCALARS: Final[dict[int, tuple[str, type[ctypes._SimpleCData[Any]]]]] = {
    _U8: ("u8", ctypes.c_uint8),
    _I8: ("i8", ctypes.c_int8),
    _U16: ("u16", ctypes.c_uint16),
    _I16: ("i16", ctypes.c_int16),
    _U32: ("u32", ctypes.c_uint32),
    _I32: ("i32", ctypes.c_int32),
    _F32: ("f32", ctypes.c_float),
    _BOOL: ("bool", ctypes.c_bool),
    _U64: ("u64", ctypes.c_uint64),
    _I64: ("i64", ctypes.c_int64),
    _F64: ("f64", ctypes.c_double),
}


class _InitParams(ctypes.Structure):
    _fields_ = (("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p))


class _TensorHead(ctypes.Structure):
    """The first fields of ggml's ``struct ggml_tensor`` (ggml.h): its type, buffer and ``ne``."""

    _fields_ = (("type", ctypes.c_int), ("buffer", ctypes.c_void_p), ("ne", ctypes.c_int64 * 4))


def _bind() -> ctypes.CDLL:
    """The handle of libllama (linked to libggml-base, which has the GGUF functions), those typed."""
    lib: ctypes.CDLL = llama_cpp.llama_cpp._lib
    ctx, i64 = ctypes.c_void_p, ctypes.c_int64
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "gguf_init_from_file": (ctx, [ctypes.c_char_p, _InitParams]),
        "gguf_free": (None, [ctx]),
        "gguf_get_n_kv": (i64, [ctx]),
        "gguf_get_key": (ctypes.c_char_p, [ctx, i64]),
        "gguf_get_kv_type": (ctypes.c_int, [ctx, i64]),
        "gguf_get_val_str": (ctypes.c_char_p, [ctx, i64]),
        "gguf_get_arr_type": (ctypes.c_int, [ctx, i64]),
        "gguf_get_arr_n": (ctypes.c_size_t, [ctx, i64]),
        "gguf_get_arr_data": (ctypes.c_void_p, [ctx, i64]),
        "gguf_get_arr_str": (ctypes.c_char_p, [ctx, i64, ctypes.c_size_t]),
        "gguf_get_n_tensors": (i64, [ctx]),
        "gguf_get_tensor_type": (ctypes.c_int, [ctx, i64]),
        "gguf_get_tensor_size": (ctypes.c_size_t, [ctx, i64]),
        "ggml_blck_size": (i64, [ctypes.c_int]),
        "ggml_type_size": (ctypes.c_size_t, [ctypes.c_int]),
        "gguf_get_tensor_name": (ctypes.c_char_p, [ctx, i64]),
        "ggml_get_tensor": (ctx, [ctx, ctypes.c_char_p]),
        "ggml_n_dims": (ctypes.c_int, [ctx]),
        "ggml_type_name": (ctypes.c_char_p, [ctypes.c_int]),
        "ggml_free": (None, [ctx]),
    }
    signatures.update({f"gguf_get_val_{n}": (c, [ctx, i64]) for n, c in _SCALARS.values()})
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


_lib = _bind()


def _plain(value: Any, kind: int) -> Any:
    """A C value as JSON-ready Python; float32 as its shortest decimal (``1e-06``, not ``9.99e-07``)."""
    return float(str(np.float32(value))) if kind == _F32 else value


def _value(ctx: int, key_id: int, kind: int) -> Any:
    if kind == _STR:
        return (_lib.gguf_get_val_str(ctx, key_id) or b"").decode("utf-8", errors="replace")
    if kind != _ARR:
        return _plain(getattr(_lib, f"gguf_get_val_{_SCALARS[kind][0]}")(ctx, key_id), kind)
    n = int(_lib.gguf_get_arr_n(ctx, key_id))
    item = int(_lib.gguf_get_arr_type(ctx, key_id))
    if n > SHORT_ARRAY_MAX or (item != _STR and item not in _SCALARS):
        return []
    if item == _STR:
        return [(_lib.gguf_get_arr_str(ctx, key_id, i) or b"").decode("utf-8", "replace") for i in range(n)]
    data = ctypes.cast(_lib.gguf_get_arr_data(ctx, key_id), ctypes.POINTER(_SCALARS[item][1]))
    return [_plain(data[i], item) for i in range(n)]


@dataclass(frozen=True, slots=True)
class GGUFHeader:
    """The facts a GGUF file states about its model (see :func:`read_gguf_header`).

    Attributes:
        path: The file.
        size_bytes: The file's size, in bytes.
        mtime: The file's modification time (Unix time, seconds).
        parameter_count: Elements in all tensors (the model's parameters).
        metadata: The key/value pairs, typed (int, float, bool, str, or a list of at most
            :data:`SHORT_ARRAY_MAX` items; a longer array is ``[]``), in file order.
    """

    path: Path
    size_bytes: int
    mtime: float
    parameter_count: int
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> str | None:
        """``general.architecture`` (``gemma3``, ``llama``, ``bitnet``, ...)."""
        arch = self.metadata.get("general.architecture")
        return arch if isinstance(arch, str) and arch else None

    def _arch_int(self, key: str) -> int | None:
        value = self.metadata.get(f"{self.architecture}.{key}")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def context_length(self) -> int | None:
        """``<arch>.context_length``: the context the model was trained with, in tokens."""
        return self._arch_int("context_length")

    @property
    def embedding_length(self) -> int | None:
        """``<arch>.embedding_length``: the width of the model's hidden state."""
        return self._arch_int("embedding_length")

    @property
    def file_type(self) -> int | None:
        """``general.file_type`` (llama.cpp's ``llama_ftype``: the quantisation of most tensors)."""
        value = self.metadata.get("general.file_type")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def quantization(self) -> str | None:
        """The name of :attr:`file_type` (``Q4_K_M``, ``F16``, ``TQ1_0``; see :data:`FILE_TYPE_NAMES`)."""
        return FILE_TYPE_NAMES.get(self.file_type) if self.file_type is not None else None


def _open(path: Path, tensors: int | None) -> tuple[os.stat_result, int]:
    """The file's ``stat`` and its GGUF context (``tensors``: where ggml puts a context of tensor headers).

    Raises:
        ModelLoadError: The file does not exist or is not a GGUF file ggml can parse.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ModelLoadError(str(path), f"cannot read the file: {exc.strerror}") from exc
    ctx = _lib.gguf_init_from_file(os.fsencode(path), _InitParams(True, tensors))
    if not ctx:
        raise ModelLoadError(str(path), "not a GGUF file (ggml could not parse its header)")
    return st, int(ctx)


def read_gguf_header(path: Path) -> GGUFHeader:
    """Read a GGUF file's metadata and tensor descriptions (no tensor data; ~40 ms for Gemma 3 270M).

    Raises:
        ModelLoadError: The file does not exist or is not a GGUF file ggml can parse.
    """
    st, ctx = _open(path, None)
    try:
        metadata: dict[str, Any] = {}
        for i in range(int(_lib.gguf_get_n_kv(ctx))):
            key = (_lib.gguf_get_key(ctx, i) or b"").decode("utf-8", errors="replace")
            metadata[key] = _value(ctx, i, int(_lib.gguf_get_kv_type(ctx, i)))
        params = 0
        for i in range(int(_lib.gguf_get_n_tensors(ctx))):
            kind = int(_lib.gguf_get_tensor_type(ctx, i))
            size = int(_lib.gguf_get_tensor_size(ctx, i))
            params += size * int(_lib.ggml_blck_size(kind)) // int(_lib.ggml_type_size(kind))
    finally:
        _lib.gguf_free(ctx)
    return GGUFHeader(
        path=Path(path), size_bytes=st.st_size, mtime=st.st_mtime, parameter_count=params, metadata=metadata
    )


@dataclass(frozen=True, slots=True)
class GGUFTensor:
    """One tensor as a GGUF file describes it (what Ollama's ``/api/show`` lists under ``tensors``).

    Attributes:
        name: The tensor's name (``token_embd.weight``, ``blk.0.attn_q.weight``, ...).
        type: Its ggml type in capitals, as Ollama writes it (``Q4_K``, ``Q6_K``, ``F32``, ``BF16``).
        shape: Its dimensions in the file's order (ggml's ``ne``, innermost first:
            ``[640, 262144]`` for Gemma 3 270M's token embedding).
    """

    name: str
    type: str
    shape: tuple[int, ...]


def read_gguf_tensors(path: Path) -> tuple[GGUFTensor, ...]:
    """The descriptions of a GGUF file's tensors, in file order (no tensor data is read).

    ggml's GGUF reader builds a ggml context of tensor headers (``no_alloc``); the shape is each
    header's ``ne`` up to ``ggml_n_dims``.

    Raises:
        ModelLoadError: The file does not exist or is not a GGUF file ggml can parse.
    """
    tensors = ctypes.c_void_p()
    _, ctx = _open(path, ctypes.addressof(tensors))
    try:
        out: list[GGUFTensor] = []
        for i in range(int(_lib.gguf_get_n_tensors(ctx))):
            name = _lib.gguf_get_tensor_name(ctx, i) or b""
            head = ctypes.cast(_lib.ggml_get_tensor(tensors, name), ctypes.POINTER(_TensorHead)).contents
            dims = int(_lib.ggml_n_dims(ctypes.addressof(head)))
            kind = (_lib.ggml_type_name(head.type) or b"").decode().upper()
            out.append(GGUFTensor(name.decode("utf-8", "replace"), kind, tuple(head.ne[:dims])))
    finally:
        _lib.gguf_free(ctx)
        if tensors:
            _lib.ggml_free(tensors)
    return tuple(out)
