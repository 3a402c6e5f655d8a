"""Flipped bytes in every kind of vault file: an error naming the file (and offset), never a silent loss.

One vault (two tenants, a snapshot, WAL entries after it, a delete) is built once per module; each case
flips one byte of a fresh copy, then opens the copy and reads every record. The case passes only if
that raises an error naming the damaged file. Then ``python -m vault.salvage`` copies what is intact.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vault import DurabilityConfig, IntegrityError, KeyEncryptionKeyError, NewRecord, Vault, VaultConfig
from vault._private.tenant import tenant_dir_name
from vault._private.wal import wal_generations, wal_path

CONFIG = VaultConfig(durability=DurabilityConfig(snapshot_on_close=False))
TENANTS = ("acme", "globex")


class _Vectors:
    dim = 384

    def embed(self, texts: list[str]) -> np.ndarray:
        raise AssertionError("the corruption suite stores precomputed vectors only")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[tuple[str, str], str]]:
    """A closed vault with snapshot + WAL tail, and the ``(tenant, id) → text`` it must return."""
    root = tmp_path_factory.mktemp("pristine")
    kek = root / "kek" / "vault.key"
    config = CONFIG.model_copy(update={"keys": CONFIG.keys.model_copy(update={"kek_file": kek})})
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((40, 384)).astype(np.float32)
    expected: dict[tuple[str, str], str] = {}
    with Vault(root / "vault", config=config, embedder=_Vectors()) as v:
        for t, tenant in enumerate(TENANTS):
            batch = [
                NewRecord(f"{tenant} snapshot record {i} " * 8, {"i": i}, f"s{i}", vectors[t * 20 + i])
                for i in range(10)
            ]
            v.put_many(tenant, batch)
        v.snapshot()
        for t, tenant in enumerate(TENANTS):
            for i in range(10, 16):
                v.put(tenant, f"{tenant} wal record {i} " * 8, id=f"w{i}", embedding=vectors[t * 20 + i])
        v.delete("acme", "s3")
    for tenant in TENANTS:
        for i in range(10):
            expected[(tenant, f"s{i}")] = f"{tenant} snapshot record {i} " * 8
        for i in range(10, 16):
            expected[(tenant, f"w{i}")] = f"{tenant} wal record {i} " * 8
    del expected[("acme", "s3")]
    return root, expected


def damaged_copy(
    pristine: Path, tmp_path: Path, pick: Callable[[Path], Path], offset: int
) -> tuple[Path, Path]:
    """A copy of the pristine vault with one byte of ``pick(copy)`` flipped at ``offset``."""
    copy = tmp_path / "copy"
    shutil.copytree(pristine, copy)
    target = pick(copy / "vault")
    data = bytearray(target.read_bytes())
    data[offset] ^= 0x01
    target.write_bytes(bytes(data))
    return copy, target


def open_and_read(copy: Path, expected: dict[tuple[str, str], str]) -> None:
    config = CONFIG.model_copy(
        update={"keys": CONFIG.keys.model_copy(update={"kek_file": copy / "kek" / "vault.key"})}
    )
    with Vault(copy / "vault", config=config, embedder=_Vectors()) as v:
        for (tenant, rid), text in expected.items():
            assert v.get(tenant, rid).text == text
        for tenant in TENANTS:
            assert v.count(tenant) == sum(t == tenant for t, _ in expected)


def wal_file(vault: Path) -> Path:
    return wal_path(vault, wal_generations(vault)[-1])


def wal_frames(path: Path) -> list[tuple[int, int]]:
    """``(offset, length)`` of every frame of a WAL file."""
    data, out, at = path.read_bytes(), [], 0
    while at < len(data):
        (length,) = struct.unpack_from(">I", data, at + 2)
        out.append((at, 14 + length))
        at += 14 + length
    return out


def snap(kind: str, tenant: str = "acme") -> Callable[[Path], Path]:
    return lambda vault: next((vault / tenant_dir_name(tenant)).glob(f"{kind}.*.snap"))


def segment(vault: Path) -> Path:
    return next((vault / tenant_dir_name("acme")).glob("records.*.seg"))


def keyring(vault: Path) -> Path:
    return vault / "keyring.json"


def manifest(vault: Path) -> Path:
    return vault / "MANIFEST.json"


def offsets(size: int, count: int) -> list[int]:
    """``count`` offsets spread over a file of ``size`` bytes, the first and the last included."""
    return sorted({0, size - 1, *np.linspace(0, size - 1, count).astype(int).tolist()})


def cases(pristine: Path) -> list[tuple[str, Callable[[Path], Path], int]]:
    vault = pristine / "vault"
    frames = wal_frames(wal_file(vault))
    mid, last = frames[len(frames) // 2], frames[-1]
    out: list[tuple[str, Callable[[Path], Path], int]] = [
        ("wal: first magic", wal_file, 0),
        ("wal: length field of a middle frame", wal_file, mid[0] + 4),
        ("wal: header checksum of the last frame", wal_file, last[0] + 11),
        ("wal: body of a middle frame", wal_file, mid[0] + mid[1] // 2),
        ("wal: last byte of the file", wal_file, last[0] + last[1] - 1),
    ]
    out += [(f"wal @{o}", wal_file, o) for o in offsets(wal_file(vault).stat().st_size, 9)]
    with Vault(vault, config=_config(pristine), embedder=_Vectors()) as v:
        # records in the snapshot (those after it are rewritten from the WAL on open)
        slots = [s for rid, s in v._storage.tenants["acme"].slots.items() if rid.startswith("s")]
    out += [(f"segment record @{offset}", segment, offset + length // 2) for _, offset, length in slots[::3]]
    for kind in ("state", "index"):
        size = snap(kind)(vault).stat().st_size
        out += [(f"{kind} snapshot @{o}", snap(kind), o) for o in offsets(size, 6)]
    out += [(f"keyring @{o}", keyring, o) for o in offsets(keyring(vault).stat().st_size, 12)]
    out += [(f"manifest @{o}", manifest, o) for o in offsets(manifest(vault).stat().st_size, 5)]
    return out


def _config(root: Path) -> VaultConfig:
    return CONFIG.model_copy(
        update={"keys": CONFIG.keys.model_copy(update={"kek_file": root / "kek" / "vault.key"})}
    )


def test_pristine_copy_reads_back_everything(pristine, tmp_path) -> None:
    root, expected = pristine
    shutil.copytree(root, tmp_path / "copy")
    open_and_read(tmp_path / "copy", expected)


def test_every_flipped_byte_is_an_error_naming_the_file(pristine, tmp_path) -> None:
    root, expected = pristine
    checked = 0
    for label, pick, offset in cases(root):
        case_dir = tmp_path / f"case{checked}"
        case_dir.mkdir()
        copy, target = damaged_copy(root, case_dir, pick, offset)
        with pytest.raises((IntegrityError, KeyEncryptionKeyError)) as info:
            open_and_read(copy, expected)
            pytest.fail(f"{label}: no error")
        assert str(target) in str(info.value), (label, str(info.value))
        if isinstance(info.value, IntegrityError) and target.suffix in (".log", ".seg", ".snap"):
            assert info.value.offset is not None and info.value.offset <= offset, (label, info.value)
        checked += 1
        shutil.rmtree(case_dir)
    assert checked > 40


def test_only_a_torn_last_frame_is_dropped(pristine, tmp_path) -> None:
    root, expected = pristine
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    wal = wal_file(copy / "vault")
    last = wal_frames(wal)[-1]
    with wal.open("r+b") as fh:  # a crash cut the last append (the delete of acme/s3) short
        fh.truncate(last[0] + last[1] - 5)
    torn = dict(expected)
    torn[("acme", "s3")] = "acme snapshot record 3 " * 8
    open_and_read(copy, torn)
    assert wal.stat().st_size == last[0]


def test_salvage_copies_what_is_intact_and_names_what_is_lost(pristine, tmp_path) -> None:
    root, expected = pristine
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    wal = wal_file(copy / "vault")
    frames = wal_frames(wal)
    bad_frame = frames[1]  # the put of acme/w11 (the WAL after the snapshot: w10, w11, ... of acme first)
    data = bytearray(wal.read_bytes())
    data[bad_frame[0] + bad_frame[1] - 3] ^= 0x40
    wal.write_bytes(bytes(data))
    seg = segment(copy / "vault")
    with Vault(root / "vault", config=_config(root), embedder=_Vectors()) as v:
        slot = v._storage.tenants["acme"].slots["s5"]
    seg_data = bytearray(seg.read_bytes())
    seg_data[slot[1] + 30] ^= 0x01  # (label, offset, length)
    seg.write_bytes(bytes(seg_data))
    with pytest.raises(IntegrityError, match=str(wal)):
        open_and_read(copy, expected)

    out = tmp_path / "salvaged"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vault.salvage",
            str(copy / "vault"),
            str(out),
            "--kek-file",
            str(copy / "kek" / "vault.key"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    lost_files = {(Path(x["file"]).name, x["offset"]) for x in report["lost"]}
    assert (wal.name, bad_frame[0]) in lost_files
    assert (seg.name, slot[1]) in lost_files  # (label, offset, length)
    with Vault(out, config=_config(copy), embedder=_Vectors()) as salvaged:
        kept = {(t, rid) for (t, rid) in expected if _has(salvaged, t, rid)}
        missing = set(expected) - kept
        assert missing == {("acme", "s5"), ("acme", "w11")}, missing
        for key in kept:
            assert salvaged.get(*key).text == expected[key]
    assert report["records"] == len(kept)


def _has(v: Vault, tenant: str, rid: str) -> bool:
    try:
        v.get(tenant, rid)
    except LookupError:
        return False
    return True
