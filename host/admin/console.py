"""The browser console at ``/_admin/ui/``: static files shipped in the package (host/admin/ui/).

The page itself needs no token (it holds no data); every call it makes to the admin API
sends the operator's bearer token from ``sessionStorage``. The files are served from a fixed
list read once at start (no path from the request ever reaches the file system), with a
strict Content-Security-Policy: scripts and styles from this origin only, nothing inline,
never framed.
"""

from __future__ import annotations

import pathlib

import falcon

from ..errors import AdminNotFound

UI_PATH = "/_admin/ui"
UI_FOLDER = pathlib.Path(__file__).resolve().parent / "ui"
#: the console's files and their media types; nothing else is served
UI_FILES = {
    "index.html": "text/html; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    **{f"{module}.js": "text/javascript; charset=utf-8"
       for module in ("app", "api", "dom", "charts", "metrics", "pipeline", "stage", "rollouts", "workers")},
}
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class ConsoleResource:
    """``GET /_admin/ui/`` (index.html) and ``GET /_admin/ui/{asset}``; no token needed.

    NOTE: no ``admin`` attribute on purpose: the DefaultResponderGuard then lets falcon's
    OPTIONS through without a token too, like the page itself.
    """

    def __init__(self, folder: pathlib.Path = UI_FOLDER) -> None:
        # NOTE: read once: the files are part of the installed package and never change
        # while the host runs; a missing one is a broken install, said on each request
        self._files = {name: _read(folder / name) for name in UI_FILES}

    def on_get(self, req: falcon.Request, resp: falcon.Response, asset: str = "index.html") -> None:
        body = self._files.get(asset)
        if body is None:
            raise AdminNotFound(f"the console has no file {asset!r}; open {UI_PATH}/")
        resp.data = body
        resp.content_type = UI_FILES[asset]
        resp.set_headers(SECURITY_HEADERS)
        # NOTE: the page is never cached (a proxy or the back button must not keep it
        # after logout); the assets are revalidated so an upgrade shows at once
        resp.cache_control = ["no-store"] if asset == "index.html" else ["no-cache"]

    def on_head(self, req: falcon.Request, resp: falcon.Response, asset: str = "index.html") -> None:
        self.on_get(req, resp, asset)


class ConsoleRedirect:
    """``GET /_admin/ui``: to ``/_admin/ui/``, where the page's relative links resolve."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPMovedPermanently(f"{UI_PATH}/")


def _read(path: pathlib.Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def mount_console(app: falcon.App) -> None:
    console = ConsoleResource()
    app.add_route(f"{UI_PATH}/", console)
    app.add_route(f"{UI_PATH}/{{asset}}", console)
    app.add_route(UI_PATH, ConsoleRedirect())
