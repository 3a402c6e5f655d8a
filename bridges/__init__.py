"""Bridges: async adapters from the agents to the engines (thread offload, timeouts, metrics)."""

from bridges._ryot_delivery import DEFAULT_CHUNK_INTERVAL_S
from bridges.errors import BridgeError, BridgeTimeoutError
from bridges.ryot import RyotBridge, RyotBridgeMetrics

__all__ = ("DEFAULT_CHUNK_INTERVAL_S", "BridgeError", "BridgeTimeoutError", "RyotBridge", "RyotBridgeMetrics")
