"""The built-in web dashboard: a static single page (vendored Leaflet, no CDN) and its live stream.

It reads only the public ``/api/v1`` endpoints with the user's API key, so it shows exactly what
the key may see. The page is mounted at ``/dashboard``; the live event stream is
``/api/v1/stream`` (Server-Sent Events).
"""

from api.web.app import DashboardSettings, create_dashboard, dashboard_settings
from api.web.stream import event_stream, sse_event

__all__ = ["DashboardSettings", "create_dashboard", "dashboard_settings", "event_stream", "sse_event"]
