"""The operator's dashboard: the page at ``/``, its live feed, and the recent-traces views.

See ``docs/operations.md``. Routes: ``GET /`` (page), ``/dashboard/static/*`` (its files),
``GET /v1/dashboard/snapshot``, ``GET /v1/dashboard/events`` (SSE), ``GET /v1/traces``,
``GET /v1/traces/{trace_id}``.
"""

from api.dashboard import _feed, _page
from api.dashboard._feed import Snapshotter
from api.dashboard._live import LiveStats
from api.dashboard._page import STATIC_DIR

__all__ = ("ROUTES", "STATIC_DIR", "LiveStats", "Snapshotter")

ROUTES = (*_page.ROUTES, *_feed.ROUTES)
"""Every route of the dashboard, for ``create_app``."""
