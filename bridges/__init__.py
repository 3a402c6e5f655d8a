"""Bridges: async adapters from the agents to the engines (thread offload, timeouts, metrics)."""

from bridges.errors import BridgeError, BridgeTimeoutError
from bridges.ryot import RyotBridge, RyotBridgeMetrics

__all__ = ("BridgeError", "BridgeTimeoutError", "RyotBridge", "RyotBridgeMetrics")
