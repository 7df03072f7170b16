"""A local HTTP server for the replay page (standard library only).

Routes (GET and HEAD; everything else is 404, or 405 for other methods):

* ``/``, ``/index.html``, ``/app.js``, ``/style.css``: the page, from ``vln/replay/static``;
* ``/data/index.js``: the episode list; ``/data/episodes/<key>.js``: one episode
  (:mod:`vln.replay.payload` wraps the JSON in a function call, so the page loads the same files
  from this server and from a static export opened as ``file://``);
* ``/images/<scan>/<viewpoint>/pano.png`` and ``.../view_<deg>.png``: rendered from the skybox
  faces under ``--scans-dir``.

The URL path never becomes a file path by concatenation: static files come from a fixed list,
data and images are looked up by id in the loaded split, and skybox faces that resolve outside
``scans_dir`` (symlinks out) count as missing. Any ``..`` segment, absolute or backslashed path
is 404. The page puts instructions into the DOM as text, never as HTML.
"""
from __future__ import annotations

import logging
import re
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from .data import ReplayData
from .images import ViewRenderer
from .payload import STATIC_DIR, STATIC_FILES, episode_script, index_script

logger = logging.getLogger(__name__)

_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                  ".css": "text/css; charset=utf-8", ".png": "image/png"}
#: Defence in depth: no inline script, no foreign origins.
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'"
_EPISODE = re.compile(r"/data/episodes/([^/]+)\.js")
_IMAGE = re.compile(r"/images/([^/]+)/([^/]+)/(pano|view_(\d{3}))\.png")


class ReplayServer(ThreadingHTTPServer):
    """Serves one :class:`ReplayData` (and its images) on ``host:port``.

    Args:
        data: the episodes and trajectories.
        renderer: image renderer (``ViewRenderer(None, ...)`` when there are no skyboxes).
        host: address to bind; ``127.0.0.1`` keeps the page local.
        port: TCP port; 0 picks a free one (see :attr:`url`).
    """

    daemon_threads = True

    def __init__(self, data: ReplayData, renderer: ViewRenderer, host: str = "127.0.0.1", port: int = 8000):
        self.data = data
        self.renderer = renderer
        super().__init__((host, port), ReplayHandler)

    @property
    def url(self) -> str:
        """``http://host:port/`` of the running server."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def handle_error(self, request, client_address):
        # A browser that cancels an image request (fast stepping, closing the tab) is normal.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            logger.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)

    def start_background(self) -> threading.Thread:
        """Serve in a daemon thread (for tests and notebooks); stop with :meth:`shutdown`."""
        t = threading.Thread(target=self.serve_forever, name="replay-server", daemon=True)
        t.start()
        return t


class ReplayHandler(BaseHTTPRequestHandler):
    """Request handler of :class:`ReplayServer`; see the module docstring for the routes."""

    server: ReplayServer
    server_version = "clipvil-replay"

    def log_message(self, fmt, *args):  # route http.server's stderr lines into logging
        logger.debug("%s - %s", self.address_string(), fmt % args)

    def _send(self, status: int, body: bytes, ctype: str, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _not_found(self, head: bool) -> None:
        self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8", head)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def _method_not_allowed(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"method not allowed\n", "text/plain; charset=utf-8", False)

    do_POST = do_PUT = do_DELETE = do_PATCH = _method_not_allowed  # noqa: N815

    def _serve(self, head: bool) -> None:
        try:
            found = self._route(unquote(urlsplit(self.path).path))
        except Exception:  # a bug or bad data must not kill the server; the log says what
            logger.exception("error serving %s", self.path)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n", "text/plain; charset=utf-8", head)
            return
        if found is None:
            self._not_found(head)
        else:
            self._send(HTTPStatus.OK, found[0], found[1], head)

    def _route(self, path: str):
        """(body, content type) for a decoded URL path, or ``None`` (404)."""
        if "\\" in path or "\x00" in path or any(seg in ("..", ".") for seg in path.split("/")) or path.startswith("//"):
            return None
        if path == "/":
            path = "/index.html"
        name = path[1:]
        if name in STATIC_FILES:
            return (STATIC_DIR / name).read_bytes(), _CONTENT_TYPES[name[name.rfind("."):]]
        data = self.server.data
        if path == "/data/index.js":
            return index_script(data.index()).encode("utf-8"), _CONTENT_TYPES[".js"]
        m = _EPISODE.fullmatch(path)
        if m:
            iid = data.keys.get(m.group(1))
            if iid is None:
                return None
            ep = data.episode(iid, images=self.server.renderer.available)
            return episode_script(ep).encode("utf-8"), _CONTENT_TYPES[".js"]
        m = _IMAGE.fullmatch(path)
        if m:
            return self._image(*m.groups())
        return None

    def _image(self, scan: str, vp: str, kind: str, deg: str | None):
        if scan not in self.server.data.scans():
            return None
        g = self.server.data.graphs[scan]
        if vp not in g.index or (deg is not None and int(deg) >= 360):
            return None
        r = self.server.renderer
        png = r.pano_png(scan, vp) if kind == "pano" else r.view_png(scan, vp, int(deg))
        return None if png is None else (png, _CONTENT_TYPES[".png"])
