"""ΣLANG over HTTP: ``/v1/sigma`` (compress, decompress, optimize, train, stats).

The routes are in ``api.sigma.routes`` (wired by ``api.app``); the package exports the wire models, so the
SDK can import them without Litestar.
"""

from api.sigma.schemas import (
    REPORT_HEADER,
    SigmaCompressionReport,
    SigmaCompressRequest,
    SigmaCompressResponse,
    SigmaDecompressReport,
    SigmaDecompressRequest,
    SigmaDecompressResponse,
    SigmaOptimizeRequest,
    SigmaOptimizeResponse,
    SigmaShares,
    SigmaStats,
    SigmaTrainRequest,
    SigmaTrainResponse,
    base64_decoded_size,
)

__all__ = (
    "REPORT_HEADER",
    "SigmaCompressRequest",
    "SigmaCompressResponse",
    "SigmaCompressionReport",
    "SigmaDecompressReport",
    "SigmaDecompressRequest",
    "SigmaDecompressResponse",
    "SigmaOptimizeRequest",
    "SigmaOptimizeResponse",
    "SigmaShares",
    "SigmaStats",
    "SigmaTrainRequest",
    "SigmaTrainResponse",
    "base64_decoded_size",
)
