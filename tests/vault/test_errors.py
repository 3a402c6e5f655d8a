"""Bad input gives typed errors naming the field or limit; the error tree; the public surface."""

from __future__ import annotations

import numpy as np
import pytest

import vault
from vault import (
    CacheConfig,
    DimensionMismatchError,
    EmptyTextError,
    NewRecord,
    RecordNotFoundError,
    RecordTooLargeError,
    TenantNotFoundError,
    Vault,
    VaultClosedError,
    VaultConfig,
    VaultError,
    VaultInputError,
    VaultLockedError,
)


def test_all_is_a_tuple_of_existing_names() -> None:
    assert isinstance(vault.__all__, tuple)
    assert len(set(vault.__all__)) == len(vault.__all__)
    for name in vault.__all__:
        assert hasattr(vault, name), name


def test_errors_subclass_the_matching_builtins() -> None:
    assert issubclass(VaultInputError, ValueError)
    assert issubclass(DimensionMismatchError, VaultInputError)
    assert issubclass(RecordNotFoundError, LookupError)
    assert issubclass(TenantNotFoundError, LookupError)
    assert issubclass(VaultLockedError, BlockingIOError)
    assert issubclass(VaultClosedError, RuntimeError)
    for name in vault.errors.__all__:
        assert issubclass(getattr(vault.errors, name), VaultError)


def test_wrong_dimension(make_vault) -> None:
    v = make_vault()
    with pytest.raises(DimensionMismatchError) as info:
        v.put("acme", "text", embedding=np.ones(128, dtype=np.float32))
    assert (info.value.expected, info.value.got, info.value.field) == (384, 128, "embedding")
    assert "384" in str(info.value) and "128" in str(info.value)
    v.put("acme", "text", id="x")
    with pytest.raises(DimensionMismatchError) as query_info:
        v.search("acme", np.ones((2, 384), dtype=np.float32))
    assert query_info.value.field == "query"


def test_empty_text(make_vault) -> None:
    v = make_vault()
    with pytest.raises(EmptyTextError) as info:
        v.put_many("acme", [NewRecord(text="fine"), NewRecord(text="   ")])
    assert info.value.field == "text" and info.value.position == 1
    assert v.count("acme") == 0  # the batch is all-or-nothing
    with pytest.raises(EmptyTextError):
        v.put("acme", "")
    v.put("acme", "exists", id="x")
    with pytest.raises(EmptyTextError):
        v.search("acme", "")


def test_oversized_record_names_the_limit(make_vault) -> None:
    v = make_vault(config=VaultConfig(max_record_bytes=1000))
    with pytest.raises(RecordTooLargeError) as info:
        v.put("acme", "x" * 2000)
    assert info.value.limit_bytes == 1000 and info.value.size_bytes > 2000
    assert "max_record_bytes" in str(info.value)
    with pytest.raises(RecordTooLargeError):
        v.put("acme", "short", metadata={"blob": "y" * 2000})


def test_unknown_id_and_tenant(make_vault) -> None:
    v = make_vault()
    v.put("acme", "exists", id="x")
    with pytest.raises(RecordNotFoundError) as info:
        v.get("acme", "nope")
    assert (info.value.tenant, info.value.record_id) == ("acme", "nope")
    with pytest.raises(RecordNotFoundError):
        v.delete("acme", "nope")
    with pytest.raises(TenantNotFoundError) as tenant_info:
        v.get("ghost", "x")
    assert tenant_info.value.tenant == "ghost"
    with pytest.raises(TenantNotFoundError):
        v.search("ghost", "anything")
    v.delete("acme", "x")
    with pytest.raises(RecordNotFoundError):
        v.get("acme", "x")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda v: v.put("", "text"), "tenant"),
        (lambda v: v.put("t" * 300, "text"), "tenant"),
        (lambda v: v.put("acme", "text", id=""), "id"),
        (lambda v: v.put("acme", "text", metadata={"when": object()}), "metadata"),
        (lambda v: v.put("acme", "text", metadata={"x": float("nan")}), "metadata"),
        (lambda v: v.put("acme", "text", metadata={1: "int key"}), "metadata"),
        (lambda v: v.put("acme", "text", embedding=np.zeros(384, dtype=np.float32)), "embedding"),
        (lambda v: v.put("acme", "text", embedding=np.full(384, np.nan, dtype=np.float32)), "embedding"),
        (lambda v: v.put_many("acme", []), "records"),
        (lambda v: v.put_many("acme", ["not a record"]), "records"),
        (lambda v: v.search("acme", "q", k=0), "k"),
        (lambda v: v.search("acme", "q", min_score=float("nan")), "min_score"),
        (lambda v: v.search("acme", "q", where={"a": [1, 2]}), "where"),
    ],
)
def test_bad_input_names_the_field(make_vault, call, field) -> None:
    v = make_vault()
    v.put("acme", "exists", id="x")
    with pytest.raises(VaultInputError) as info:
        call(v)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_batch_limit(make_vault) -> None:
    v = make_vault(config=VaultConfig(max_batch=2))
    with pytest.raises(VaultInputError, match="1-2 records"):
        v.put_many("acme", [NewRecord(text="a"), NewRecord(text="b"), NewRecord(text="c")])


def test_closed_vault_and_locked_directory(make_vault, data_dir, embedder) -> None:
    v = make_vault()
    with pytest.raises(VaultLockedError) as info:
        Vault(data_dir, embedder=embedder)
    assert info.value.path == data_dir / "LOCK"
    v.close()
    v.close()  # idempotent
    with pytest.raises(VaultClosedError):
        v.put("acme", "text")
    with pytest.raises(VaultClosedError):
        v.stats()
    make_vault().close()  # the lock was released


def test_embedder_of_another_dimension_is_refused(make_vault, unit_vectors) -> None:
    class Tiny:
        dim = 8

        def embed(self, texts):
            return np.ones((len(texts), 8), dtype=np.float32)

    v = make_vault()
    v.put("acme", "text", id="x")
    v.close()
    with pytest.raises(DimensionMismatchError, match="embedder.dim"):
        make_vault(embedder=Tiny())


def test_config_is_frozen_and_strict() -> None:
    config = VaultConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.max_record_bytes = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="Extra inputs"):
        CacheConfig(l1_bytes=3)  # type: ignore[call-arg]
