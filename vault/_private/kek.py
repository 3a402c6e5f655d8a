"""Where the key-encryption key (KEK) comes from, and why never from beside the data it protects.

Resolution order (:func:`resolve_kek`):

1. the environment variable ``KeyConfig.kek_env`` (``NEURECTOMY_VAULT_KEK``, 32 bytes base64);
2. ``KeyConfig.kek_file`` when configured: a key file of your choice, e.g. a mounted secret
   (``/run/secrets/neurectomy-vault-kek``); created with mode 0600 when missing and the vault is new;
3. by default a per-vault key file ``<kek_dir>/<vault id>.key``, where ``kek_dir`` defaults to
   ``$XDG_CONFIG_HOME/neurectomy/vault-keys`` (platformdirs' user config directory; created 0700, the file
   0600) and the vault id is a random name kept (in clear) in the vault's ``keyring.json``.

A KEK file inside the data directory is refused unless ``KeyConfig.allow_kek_in_data_dir`` is set: a copy
of the directory (a backup, a disk image) would carry the key that decrypts it. A vault created by an
earlier version with ``<data_dir>/kek.key`` is refused with the command that moves the key out.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from vault._private.files import fsync_dir, storage_error, write_all
from vault.config import KeyConfig
from vault.errors import KeyEncryptionKeyError

__all__ = ("KEY_BYTES", "KekSource", "decode_kek", "default_kek_dir", "resolve_kek", "write_key_file")

KEY_BYTES = 32
LEGACY_NAME = "kek.key"


@dataclass(frozen=True, slots=True)
class KekSource:
    """Where a KEK was read from.

    Attributes:
        name: For messages: the file path or ``env:NAME`` (never the key).
        file: The key file, or ``None`` for a KEK from the environment.
    """

    name: str
    file: Path | None


def default_kek_dir() -> Path:
    """``$XDG_CONFIG_HOME/neurectomy/vault-keys`` (``~/.config/neurectomy/vault-keys``), via platformdirs."""
    return platformdirs.user_config_path("neurectomy") / "vault-keys"


def decode_kek(text: str, source: str) -> bytes:
    """The 32 key bytes of a base64 KEK.

    Raises:
        KeyEncryptionKeyError: Not base64, or not 32 bytes.
    """
    try:
        kek = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyEncryptionKeyError(source, "not valid base64") from None
    if len(kek) != KEY_BYTES:
        raise KeyEncryptionKeyError(source, f"decodes to {len(kek)} bytes, expected {KEY_BYTES}")
    return kek


def write_key_file(path: Path, kek: bytes) -> None:
    """Create a key file (mode 0600, its directory 0700 if created here) holding ``kek`` in base64.

    Raises:
        VaultStorageError: The file cannot be written (it is removed again).
    """
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            write_all(fd, base64.b64encode(kek) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(path.parent)
    except FileExistsError:
        raise
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise storage_error(exc, path) from exc


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def resolve_kek(
    data_dir: Path, config: KeyConfig, vault_id: str, *, existing: bool
) -> tuple[bytes, KekSource]:
    """Find (or, for a new vault, create) the KEK, as the module docstring says.

    Args:
        data_dir: The vault's data directory.
        config: Key settings.
        vault_id: The vault's id (names the default key file).
        existing: Whether the vault already has a keyring (then a missing key file is an error, never a
            reason to make a new key).

    Raises:
        KeyEncryptionKeyError: Malformed, missing, or inside ``data_dir`` without
            ``allow_kek_in_data_dir``.
        VaultStorageError: A new key file cannot be written.
    """
    env_value = os.environ.get(config.kek_env)
    if env_value:
        name = f"env:{config.kek_env}"
        return decode_kek(env_value, name), KekSource(name, None)
    legacy = data_dir / LEGACY_NAME
    if config.kek_file is not None:
        file = config.kek_file
    elif legacy.exists():
        file = legacy
    else:
        file = (config.kek_dir or default_kek_dir()) / f"{vault_id}.key"
    if _inside(file, data_dir) and not config.allow_kek_in_data_dir:
        hint = (
            f"move it out, e.g. `mkdir -p -m 700 {default_kek_dir()} && mv {file} "
            f"{default_kek_dir() / (vault_id + '.key')}`"
            if file == legacy
            else "point keys.kek_file elsewhere"
        )
        raise KeyEncryptionKeyError(
            str(file),
            "the key-encryption key lies inside the vault's data directory, so any copy of the directory "
            f"decrypts everything; {hint} (or set keys.allow_kek_in_data_dir)",
        )
    if file.exists():
        return decode_kek(file.read_text(), str(file)), KekSource(str(file), file)
    if existing:
        raise KeyEncryptionKeyError(
            str(file),
            f"missing, and {data_dir / 'keyring.json'} needs it: restore the key file from your backup, "
            f"set keys.kek_file to it, or set ${config.kek_env}",
        )
    kek = os.urandom(KEY_BYTES)
    write_key_file(file, kek)
    return kek, KekSource(str(file), file)
