"""The block-wise flat index: exact results across blocks, no copy of stored rows as it grows, its serial
form (and the FAISS form of snapshots written before it) read back intact."""

from __future__ import annotations

import numpy as np
import pytest

from vault import IndexConfig
from vault._private.flat import BLOCK_ROWS, FlatIndex
from vault._private.index import VectorIndex, read_index

DIM = 16


def unit(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reader(data: bytes):
    at = 0

    def source(n: int) -> bytes:
        nonlocal at
        piece = data[at : at + min(n, 1000)]  # short reads, as a decrypting reader may return
        at += len(piece)
        return piece

    return source


def serialized(index) -> bytes:
    pieces: list[bytes] = []
    index.write_to(lambda piece: pieces.append(bytes(piece)))
    return b"".join(pieces)


def test_search_is_exact_across_blocks_and_matches_brute_force() -> None:
    n = 2 * BLOCK_ROWS + 123
    vectors = unit(n)
    labels = np.arange(1000, 1000 + n, dtype=np.int64)
    index = FlatIndex(DIM)
    for start in range(0, n, 3000):  # adds that straddle block boundaries
        index.add(labels[start : start + 3000], vectors[start : start + 3000])
    assert index.ntotal == n
    for q in unit(5, seed=1):
        scores, found = index.search(q, 10)
        truth = np.argsort(-(vectors @ q), kind="stable")[:10]
        assert found.tolist() == labels[truth].tolist()
        assert np.allclose(scores, (vectors @ q)[truth], atol=1e-5)
    wanted = labels[[0, BLOCK_ROWS - 1, BLOCK_ROWS, n - 1]]
    assert np.array_equal(index.reconstruct(wanted), vectors[[0, BLOCK_ROWS - 1, BLOCK_ROWS, n - 1]])
    with pytest.raises(KeyError):
        index.reconstruct(np.array([5], dtype=np.int64))


def test_growing_never_moves_the_rows_already_stored() -> None:
    vectors = unit(3 * BLOCK_ROWS)
    index = FlatIndex(DIM)
    index.add(np.arange(100, dtype=np.int64), vectors[:100])
    first = next(index.parts())[1]
    address = first.__array_interface__["data"][0]
    for start in range(100, len(vectors), 1000):
        index.add(
            np.arange(start, min(start + 1000, len(vectors)), dtype=np.int64), vectors[start : start + 1000]
        )
    assert next(index.parts())[1].__array_interface__["data"][0] == address  # FAISS's array reallocates
    assert np.array_equal(first[:100], vectors[:100])


def test_a_view_keeps_its_rows_while_the_index_grows() -> None:
    vectors = unit(300)
    index = FlatIndex(DIM)
    index.add(np.arange(200, dtype=np.int64), vectors[:200])
    view = index.view()
    index.add(np.arange(200, 300, dtype=np.int64), vectors[200:])
    assert view.ntotal == 200 and index.ntotal == 300
    assert view.search(vectors[250], 1)[1].tolist() != [250]
    loaded = read_index(reader(serialized(view)), DIM, IndexConfig(), "flat")
    assert isinstance(loaded, FlatIndex) and loaded.ntotal == 200
    assert np.array_equal(loaded.reconstruct(np.arange(200, dtype=np.int64)), vectors[:200])


def test_serial_form_round_trips_with_labels_out_of_order() -> None:
    vectors = unit(BLOCK_ROWS + 50)
    labels = np.random.default_rng(2).permutation(len(vectors)).astype(np.int64) * 3
    index = FlatIndex(DIM)
    index.add(labels, vectors)
    data = serialized(index)
    assert len(data) == index.serialized_size()
    loaded = read_index(reader(data), DIM, IndexConfig(), "flat")
    assert loaded.ntotal == len(vectors)
    pick = labels[[7, BLOCK_ROWS + 3]]
    assert np.array_equal(loaded.reconstruct(pick), vectors[[7, BLOCK_ROWS + 3]])
    assert loaded.search(vectors[7], 1)[1].tolist() == [labels[7]]
    with pytest.raises(ValueError, match="dimension"):
        read_index(reader(data), DIM + 1, IndexConfig(), "flat")
    with pytest.raises(ValueError, match="cut short"):
        read_index(reader(data[:-5]), DIM, IndexConfig(), "flat")


def test_a_faiss_flat_index_from_an_earlier_snapshot_loads_into_blocks() -> None:
    vectors = unit(500)
    old = VectorIndex(DIM, IndexConfig(use_gpu=False), "flat")
    old.add(np.arange(10, 510, dtype=np.int64), vectors)
    loaded = read_index(reader(old.serialize()), DIM, IndexConfig(use_gpu=False), "flat")
    assert isinstance(loaded, FlatIndex) and loaded.ntotal == 500
    assert np.array_equal(loaded.reconstruct(np.array([10, 509])), vectors[[0, 499]])
    assert loaded.search(vectors[42], 1)[1].tolist() == [52]
