"""The web dashboard under ``/ui``: server-rendered pages (Jinja2) over the facade's typed
answers, charts drawn as inline SVG from those same answers (``charts``), one stylesheet, no
script needed and nothing fetched from elsewhere. Pages need the API's ``read`` scope, held in
an HttpOnly, SameSite=Strict session cookie; the cookie authorizes pages only, never an API
route, so a page cannot be made to write (no CSRF path)."""

from deploylearn.service.dashboard.routes import dashboard_routes

__all__ = ["dashboard_routes"]
