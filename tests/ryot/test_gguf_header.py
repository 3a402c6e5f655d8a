"""``ryot._gguf.read_gguf_header`` against the ``gguf`` package's reader, and the pool's model facts.

The tiny BitNet GGUFs (``bitnet_gguf.py``) are written by the ``gguf`` package, which then reads them
back independently: the parameter count (elements of every tensor), the file type's name and every
scalar key must agree.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import gguf
import pytest

from ryot import ModelEntry, ModelLoadError, ModelPool, read_gguf_tensors
from ryot._file_digest import CHUNK_BYTES, FileDigests
from ryot._gguf import FILE_TYPE_NAMES, SHORT_ARRAY_MAX, read_gguf_header


def _expected(path: Path) -> tuple[int, dict[str, object]]:
    reader = gguf.GGUFReader(path)
    params = sum(int(t.n_elements) for t in reader.tensors)
    scalars: dict[str, object] = {}
    for name, f in reader.fields.items():
        if name.startswith("GGUF."):
            continue  # the reader's own header fields (version, counts)
        if f.types[0] != gguf.GGUFValueType.ARRAY:
            scalars[name] = f.contents()
        elif len(f.data) > SHORT_ARRAY_MAX:
            scalars[name] = []
    return params, scalars


@pytest.mark.parametrize("weight_type", [gguf.GGMLQuantizationType.TQ1_0, gguf.GGMLQuantizationType.TQ2_0])
def test_the_header_says_what_the_gguf_package_reads(
    bitnet_gguf: ModuleType, tmp_path: Path, weight_type: gguf.GGMLQuantizationType
) -> None:
    path = bitnet_gguf.write_tiny_bitnet_gguf(tmp_path / "tiny.gguf", weight_type=weight_type)
    header = read_gguf_header(path)
    params, scalars = _expected(path)
    assert header.parameter_count == params > 0
    for key, value in scalars.items():
        got = header.metadata[key]
        if isinstance(value, float):
            assert math.isclose(float(got), value, rel_tol=1e-6), key  # type: ignore[arg-type]
        else:
            assert got == value, key
    assert header.architecture == "bitnet"
    assert header.size_bytes == path.stat().st_size and header.mtime == path.stat().st_mtime
    file_type = scalars.get("general.file_type")
    if isinstance(file_type, int):
        assert header.quantization == gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_")


def test_file_type_names_follow_llama_cpp_and_ollama() -> None:
    assert FILE_TYPE_NAMES[15] == "Q4_K_M" and FILE_TYPE_NAMES[0] == "F32" and FILE_TYPE_NAMES[1] == "F16"
    known = {t.value: t.name for t in gguf.LlamaFileType}  # gguf 0.19 lacks llama.cpp's newest (41: Q2_0)
    for value, name in FILE_TYPE_NAMES.items():
        if value in known:
            assert name == known[value].removeprefix("MOSTLY_").removeprefix("ALL_")


@pytest.mark.parametrize("read", [read_gguf_header, read_gguf_tensors])
def test_a_file_that_is_not_a_gguf_is_refused_naming_it(
    tmp_path: Path, read: Callable[[Path], object]
) -> None:
    path = tmp_path / "not.gguf"
    path.write_bytes(b"GGML but not really" * 10)
    with pytest.raises(ModelLoadError, match="not a GGUF file") as info:
        read(path)
    assert info.value.path == str(path)
    with pytest.raises(ModelLoadError, match="cannot read"):
        read(tmp_path / "missing.gguf")


def test_a_pool_reports_a_configured_models_facts_before_loading_it(
    bitnet_gguf: ModuleType, tmp_path: Path
) -> None:
    path = bitnet_gguf.write_tiny_bitnet_gguf(tmp_path / "tiny.gguf")
    params, scalars = _expected(path)
    with ModelPool({"tiny": ModelEntry(path=path, n_ctx=64)}) as pool:
        (status,) = pool.status()
        assert status.state == "unloaded"
        assert status.parameter_count == params
        assert status.architecture == "bitnet"
        assert status.context_length_trained == scalars["bitnet.context_length"]
        assert status.embedding_length == scalars["bitnet.embedding_length"]
        assert status.file_size == path.stat().st_size and status.file_mtime == path.stat().st_mtime
        assert status.metadata["general.architecture"] == "bitnet"
        assert status.as_dict()["parameter_count"] == params


@pytest.mark.parametrize("weight_type", [gguf.GGMLQuantizationType.TQ1_0, gguf.GGMLQuantizationType.TQ2_0])
def test_the_tensors_are_what_the_gguf_package_reads(
    bitnet_gguf: ModuleType, tmp_path: Path, weight_type: gguf.GGMLQuantizationType
) -> None:
    path = bitnet_gguf.write_tiny_bitnet_gguf(tmp_path / "tiny.gguf", weight_type=weight_type)
    expected = [
        (t.name, t.tensor_type.name, tuple(int(d) for d in t.shape)) for t in gguf.GGUFReader(path).tensors
    ]
    got = [(t.name, t.type, t.shape) for t in read_gguf_tensors(path)]
    assert got == expected
    assert weight_type.name in {t.type for t in read_gguf_tensors(path)}
    assert any(len(t.shape) == 2 for t in read_gguf_tensors(path))


def test_a_pool_reports_the_files_sha256_once_hashed(bitnet_gguf: ModuleType, tmp_path: Path) -> None:
    path = bitnet_gguf.write_tiny_bitnet_gguf(tmp_path / "tiny.gguf")
    with ModelPool({"tiny": ModelEntry(path=path, n_ctx=64)}) as pool:
        pool.status()  # starts the hash in the background; status never waits for it
        assert pool._digests.wait(path, timeout_s=60) == hashlib.sha256(path.read_bytes()).hexdigest()
        (status,) = pool.status()
        assert status.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert status.as_dict()["file_sha256"] == status.file_sha256


def test_file_digests_hash_each_version_once_and_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"a" * (3 * CHUNK_BYTES + 17))
    digests = FileDigests()
    try:
        assert digests.wait(path, timeout_s=60) == hashlib.sha256(path.read_bytes()).hexdigest()
        assert digests.get(path) == hashlib.sha256(path.read_bytes()).hexdigest()  # known: no new hash
        path.write_bytes(b"b" * 10)  # a new version (size and mtime change)
        assert digests.wait(path, timeout_s=60) == hashlib.sha256(b"b" * 10).hexdigest()
        assert digests.get(tmp_path / "missing.bin") is None
    finally:
        digests.close()
    closed = FileDigests()
    closed.close()
    assert closed.get(path) is None  # closed: nothing is started
