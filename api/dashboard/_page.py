"""The dashboard page at ``/`` and its static files under ``/dashboard/static/``.

A static page with plain JavaScript modules (no build step) and uPlot for charts (vendored, MIT; see
``static/vendor/uplot/README.md``). Both are served without authentication: they hold no data. The page
asks for an API key when the server answers 401, keeps it in ``sessionStorage`` and sends it as a bearer
token; every request it makes goes through the same authentication and scopes as any client's.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.static_files import create_static_files_router

__all__ = ("ROUTES", "STATIC_DIR")

STATIC_DIR = Path(__file__).parent / "static"
"""Where the page, its modules, styles and the vendored chart library live."""

_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@get("/", include_in_schema=False, opt={"exclude_from_auth": True})
async def index() -> Response[bytes]:
    """The dashboard page (HTML; its data comes from the API with the operator's key)."""
    return Response(
        (STATIC_DIR / "index.html").read_bytes(),
        media_type="text/html; charset=utf-8",
        headers=_SECURITY_HEADERS,
    )


static_router = create_static_files_router(
    path="/dashboard/static",
    directories=[STATIC_DIR],
    include_in_schema=False,
    opt={"exclude_from_auth": True},
    name="dashboard-static",
)

ROUTES = (index, static_router)
