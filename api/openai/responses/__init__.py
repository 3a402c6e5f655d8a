"""OpenAI's Responses API (``POST /v1/responses``), served by translating it into a chat completion.

The route is in ``api.openai.responses.routes`` (wired with the other OpenAI-compatible routes); the
request body in ``api.openai.responses.schemas``.
"""

from api.openai.responses.schemas import ResponsesRequest

__all__ = ("ResponsesRequest",)
