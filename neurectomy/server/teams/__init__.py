"""The five teams' starters: each starts its agents' runners on a bus with the engines they need."""

from neurectomy.server.teams._analysis import start_analysis
from neurectomy.server.teams._compression import start_compression
from neurectomy.server.teams._inference import start_inference
from neurectomy.server.teams._storage import open_storage_vault, start_storage
from neurectomy.server.teams._synthesis import start_synthesis

__all__ = (
    "open_storage_vault",
    "start_analysis",
    "start_compression",
    "start_inference",
    "start_storage",
    "start_synthesis",
)
