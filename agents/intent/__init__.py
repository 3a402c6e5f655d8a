"""Intent: what a goal asks for — sub-goals, payloads, parameters, and the agents that serve them."""

from agents.intent._router import NONE, IntentRouter, Route
from agents.intent._split import ParsedGoal, SubGoal, parse_goal

__all__ = ("NONE", "IntentRouter", "ParsedGoal", "Route", "SubGoal", "parse_goal")
