"""Options every client command shares: where the service is and the API key to send."""

from __future__ import annotations

from typing import Annotated

import typer

from neurectomy.sdk._transport import ENV_API_KEY, ENV_BASE_URL

__all__ = ("ApiKeyOption", "UrlOption")

UrlOption = Annotated[
    str,
    typer.Option(
        "--base-url",
        "--url",
        envvar=[ENV_BASE_URL, "NEURECTOMY_URL"],
        help="Base URL of the service.",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar=ENV_API_KEY,
        help="API key, sent as a bearer token (when the service has auth on).",
        show_default=False,
    ),
]
