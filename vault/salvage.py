"""Salvage what is intact from a damaged ΣVAULT data directory into a new one.

A vault refuses to open when a file fails a check (the :class:`~vault.errors.IntegrityError` names the
file and offset). ``python -m vault.salvage DAMAGED NEW`` then copies every record that still
authenticates into a fresh vault in ``NEW``, and reports what it could not::

    python -m vault.salvage /var/lib/neurectomy/vault /var/lib/neurectomy/vault.salvaged
    # {"tenants": {"acme": 1041}, "records": 1041, "lost": [{"file": ".../wal.00000003.log",
    #   "offset": 5120, "reason": "WAL entry checksum mismatch"}]}

It reads, in order, and keeps going past damage:

1. ``keyring.json`` with the same KEK the vault uses (same ``NEURECTOMY_VAULT_KEK`` / ``--kek-file``): every
   wrapped data key that still unwraps (AES-GCM) is kept, even when the file's HMAC fails;
2. each tenant's newest readable snapshot (record map), then each record it names from the segment file
   (a record whose AES-GCM tag fails is reported by file and offset);
3. every WAL file, frame by frame, skipping damaged frames and resuming at the next intact one; puts,
   deletes and shreds are applied in order.

Records of shredded tenants stay unreadable. What a damaged region held is lost (a deleted record whose
delete sat in a damaged WAL frame comes back). ``NEW`` gets its own KEK (a new per-vault key file) unless
``--kek-file`` or the environment variable names one. The damaged directory is only read.
Exit status: 0 nothing lost, 1 some records or entries lost, 2 nothing could be salvaged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vault._private.kek import resolve_kek
from vault._private.keyring import KEYRING_NAME, kek_id, read_document, salvage_keys
from vault._private.sealing import InvalidTag, blob_key_version, decode_record, open_blob, record_aad
from vault._private.snapshot import Manifest, read_sealed_file, snap_path
from vault._private.tenant import tenant_dir_name
from vault._private.wal import OP_DELETE, OP_DROP_TENANT, OP_PUT, scan_wal, wal_generations, wal_path
from vault.config import KeyConfig, VaultConfig
from vault.errors import IntegrityError, VaultError
from vault.records import NewRecord
from vault.store import Vault

__all__ = ("SalvageReport", "main", "salvage")

_Rec = tuple[str, dict[str, Any], NDArray[np.float32]]


@dataclass(slots=True)
class SalvageReport:
    """What :func:`salvage` copied and what it lost.

    Attributes:
        tenants: Records copied per tenant.
        lost: One entry per damaged place: ``{"file", "offset", "reason"}`` (offset ``None`` if unknown).
    """

    tenants: dict[str, int] = field(default_factory=dict)
    lost: list[dict[str, Any]] = field(default_factory=list)

    @property
    def records(self) -> int:
        """Records copied in total."""
        return sum(self.tenants.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (what the command prints)."""
        return {"tenants": self.tenants, "records": self.records, "lost": self.lost}


class _Keys:
    """Salvaged data keys: version → (tenant, key)."""

    def __init__(self, keys: dict[int, tuple[str, bytes]]) -> None:
        self._keys = keys

    def key(self, tenant: str, version: int) -> bytes | None:
        found = self._keys.get(version)
        return found[1] if found is not None and found[0] == tenant else None

    def tenants(self) -> set[str]:
        return {tenant for tenant, _ in self._keys.values()}


class _NoEmbedder:
    """The new vault only receives stored vectors: it never embeds."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        raise RuntimeError("salvage stores recovered vectors only")


class _Salvager:
    def __init__(self, src: Path, keys: _Keys, report: SalvageReport) -> None:
        self.src = src
        self.keys = keys
        self.report = report
        self.records: dict[str, dict[str, _Rec]] = {}

    def lose(self, path: Path, offset: int | None, reason: str) -> None:
        self.report.lost.append({"file": str(path), "offset": offset, "reason": reason})

    def open_record(self, path: Path, offset: int | None, tenant: str, rid: str, blob: bytes) -> _Rec | None:
        try:
            version = blob_key_version(blob)
            key = self.keys.key(tenant, version)
            if key is None:
                self.lose(path, offset, f"record {rid!r} sealed with unknown data-key version {version}")
                return None
            return decode_record(open_blob(key, blob, record_aad(tenant, rid, version)))
        except (InvalidTag, ValueError):
            self.lose(path, offset, f"record {rid!r} fails AES-GCM authentication")
            return None

    def load_snapshot(self, tenant: str, generation: int) -> None:
        tdir = self.src / tenant_dir_name(tenant)
        gens = sorted(
            (int(p.name.split(".")[1]) for p in tdir.glob("state.*.snap") if p.name.split(".")[1].isdigit()),
            reverse=True,
        )
        for gen in [generation] + [g for g in gens if g != generation]:
            path = snap_path(tdir, "state", gen)
            if not path.exists():
                continue
            try:
                state = json.loads(read_sealed_file(path, self.keys, tenant, "state", gen))
            except (IntegrityError, ValueError) as exc:
                self.lose(path, getattr(exc, "offset", None), f"snapshot record map unreadable: {exc}")
                continue
            segment = tdir / f"records.{int(state['segment_no']):06d}.seg"
            found = self.records.setdefault(tenant, {})
            try:
                with open(segment, "rb") as fh:
                    for rid, _label, offset, length in state["slots"]:
                        fh.seek(offset)
                        record = self.open_record(segment, offset, tenant, str(rid), fh.read(length))
                        if record is not None:
                            found[str(rid)] = record
            except OSError as exc:
                self.lose(segment, None, f"segment unreadable: {exc}")
            return

    def replay(self, first_generation: int) -> None:
        for gen in wal_generations(self.src):
            if gen < first_generation:
                continue
            path = wal_path(self.src, gen)
            scan = scan_wal(path, salvage=True)
            for offset, reason in scan.damaged:
                self.lose(path, offset, reason)
            for entry in scan.entries:
                if entry.op == OP_PUT and entry.tenant in self.keys.tenants():
                    record = self.open_record(path, None, entry.tenant, entry.record_id, entry.blob)
                    if record is not None:
                        self.records.setdefault(entry.tenant, {})[entry.record_id] = record
                elif entry.op == OP_DELETE:
                    self.records.get(entry.tenant, {}).pop(entry.record_id, None)
                elif entry.op == OP_DROP_TENANT:
                    self.records.pop(entry.tenant, None)


def salvage(
    src: str | os.PathLike[str], dest: str | os.PathLike[str], *, keys: KeyConfig | None = None
) -> SalvageReport:
    """Copy every intact record of the vault in ``src`` into a new vault in ``dest`` (see the module doc).

    Args:
        src: The damaged data directory (only read).
        dest: A directory for the new vault (must not hold one yet).
        keys: Where the KEK comes from (as when opening ``src``); the new vault uses the same settings.

    Returns:
        What was copied and what was lost.

    Raises:
        IntegrityError: ``keyring.json`` is unreadable, so no record can be decrypted.
        KeyEncryptionKeyError: The KEK is missing or unwraps none of the data keys.
        VaultError: ``dest`` already holds a vault.
    """
    src_dir, dest_dir = Path(src), Path(dest)
    key_config = keys or KeyConfig()
    if (dest_dir / KEYRING_NAME).exists():
        raise VaultError(f"{dest_dir} already holds a vault; salvage into a new directory")
    report = SalvageReport()
    doc, raw = read_document(src_dir / KEYRING_NAME)
    src_keys = key_config.model_copy(update={"allow_kek_in_data_dir": True})  # read it; never write there
    kek, _ = resolve_kek(src_dir, src_keys, str(doc["body"].get("vault_id") or ""), existing=True)
    found, problems = salvage_keys(doc, raw, kek, src_dir / KEYRING_NAME)
    if doc["body"].get("kek_id") != kek_id(kek):
        problems.append((None, "keyring kek_id differs from the KEK's (rotated KEK file, or damage)"))
    for offset, reason in problems:
        report.lost.append({"file": str(src_dir / KEYRING_NAME), "offset": offset, "reason": reason})
    salvager = _Salvager(src_dir, _Keys(found), report)
    try:
        manifest = Manifest.load(src_dir)
        tenants, wal_from = set(manifest.tenants), manifest.wal_generation
    except IntegrityError as exc:
        salvager.lose(exc.path, exc.offset, f"{exc.reason}; reading every snapshot and WAL file")
        manifest, tenants, wal_from = Manifest(), salvager.keys.tenants(), 0
    for tenant in sorted(tenants & salvager.keys.tenants()):
        salvager.load_snapshot(tenant, manifest.generation)
    salvager.replay(wal_from)
    records = {t: r for t, r in salvager.records.items() if r}
    dim = manifest.dim or next((len(v) for r in records.values() for _, _, v in r.values()), 384)
    config = VaultConfig(keys=key_config)
    with Vault(dest_dir, config=config, embedder=_NoEmbedder(dim)) as new:
        for tenant, recs in sorted(records.items()):
            items = [NewRecord(text, meta, rid, vec) for rid, (text, meta, vec) in recs.items()]
            for start in range(0, len(items), config.max_batch):
                new.put_many(tenant, items[start : start + config.max_batch])
            report.tenants[tenant] = len(items)
        new.snapshot()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vault.salvage SRC DEST [--kek-file FILE]``: salvage, print the report as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m vault.salvage",
        description="Salvage what is intact from a damaged ΣVAULT data directory into a new one.",
    )
    parser.add_argument("src", type=Path, help="the damaged vault data directory (only read)")
    parser.add_argument("dest", type=Path, help="directory for the new vault")
    parser.add_argument("--kek-file", type=Path, help="KEK file of the damaged vault (default: as the vault)")
    args = parser.parse_args(argv)
    try:
        report = salvage(args.src, args.dest, keys=KeyConfig(kek_file=args.kek_file))
    except (VaultError, OSError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=1))
    return 1 if report.lost else 0


if __name__ == "__main__":
    sys.exit(main())
