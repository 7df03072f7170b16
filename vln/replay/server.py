"""A local HTTP server for the replay page (standard library only).

Routes (GET and HEAD; everything else is 404, or 405 for other methods):

* ``/``, ``/index.html``, ``/app.js``, ``/style.css``: the page, from ``vln/replay/static``;
* ``/data/index.json``: the episode list; ``/data/episodes/<key>.json``: one episode. JSON
  (``application/json``, ``nosniff``), answered only to requests carrying the page's
  :data:`~vln.replay.payload.REQUEST_HEADER` and not marked cross-site by the browser
  (``Sec-Fetch-Site``), so another site cannot include it with a ``<script>`` tag (403);
* ``/images/<scan>/<viewpoint>/pano.png`` and ``.../view_<deg>.png``: rendered from the skybox
  faces under ``--scans-dir``.

The server stays local: it binds ``127.0.0.1`` by default and refuses a non-loopback address
unless ``allow_remote`` is set (the CLI's ``--allow-remote``), and every request must name this
server in its ``Host`` header (``localhost``, ``127.0.0.1``, ``[::1]`` or the bound address, with
the bound port), else 421: a page on another site whose DNS name is rebound to 127.0.0.1 sends its
own name there and gets nothing.

The URL path never becomes a file path by concatenation: static files come from a fixed list,
data and images are looked up by id in the loaded split, and skybox faces that resolve outside
``scans_dir`` (symlinks out) count as missing. Any ``..`` segment, absolute or backslashed path
is 404. The page puts instructions into the DOM as text, never as HTML.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from ..errors import VLNError
from .data import ReplayData
from .images import ViewRenderer
from .payload import REQUEST_HEADER, STATIC_DIR, STATIC_FILES, episode_json, index_json

logger = logging.getLogger(__name__)

_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                  ".css": "text/css; charset=utf-8", ".png": "image/png",
                  ".json": "application/json"}
#: Defence in depth: no inline script, no foreign origins.
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'"
_EPISODE = re.compile(r"/data/episodes/([^/]+)\.json")
_IMAGE = re.compile(r"/images/([^/]+)/([^/]+)/(pano|view_(\d{3}))\.png")
#: Host names that always mean this machine.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class RemoteBindRefused(VLNError):
    """The server was asked to listen on an address other machines can reach, without consent."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (``127.0.0.0/8``, ``::1``)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_bind(host: str, allow_remote: bool) -> None:
    """Raise :class:`RemoteBindRefused` when ``host`` is not loopback and ``allow_remote`` is false."""
    if not is_loopback(host) and not allow_remote:
        raise RemoteBindRefused(
            f"--host {host} would serve the episodes, trajectories and images to every machine that can reach "
            f"this one; the viewer binds 127.0.0.1 unless --allow-remote is given (or use an SSH tunnel: "
            f"ssh -L 8000:127.0.0.1:8000 this-machine)")


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class ReplayServer(ThreadingHTTPServer):
    """Serves one :class:`ReplayData` (and its images) on ``host:port``.

    Args:
        data: the episodes and trajectories.
        renderer: image renderer (``ViewRenderer(None, ...)`` when there are no skyboxes).
        host: address to bind; ``127.0.0.1`` keeps the page local.
        port: TCP port; 0 picks a free one (see :attr:`url`).
        allow_remote: allow a ``host`` other machines can reach (``0.0.0.0``, a LAN address);
            a warning is logged. Requests must then name the bound address, an IP address of
            this machine, its host name, or one of ``allowed_hosts`` in their ``Host`` header.
        allowed_hosts: further host names the ``Host`` header may carry (a name this machine is
            reached by, e.g. through an SSH tunnel or a proxy).

    Raises:
        RemoteBindRefused: ``host`` is not a loopback address and ``allow_remote`` is false.
    """

    daemon_threads = True

    def __init__(self, data: ReplayData, renderer: ViewRenderer, host: str = "127.0.0.1", port: int = 8000,
                 allow_remote: bool = False, allowed_hosts=()):
        check_bind(host, allow_remote)
        self.data = data
        self.renderer = renderer
        self.allow_remote = not is_loopback(host)
        names = set(LOOPBACK_NAMES) | {host.strip("[]").lower()} | {h.strip("[]").lower() for h in allowed_hosts}
        if self.allow_remote and host in ("0.0.0.0", "::", ""):
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        self.allowed_host_names = frozenset(names)
        super().__init__((host, port), ReplayHandler)
        if self.allow_remote:
            logger.warning("the replay server listens on %s: every machine that can reach it can read the episodes, "
                           "trajectories and images (no authentication)", self.url)

    def host_allowed(self, header: str | None) -> bool:
        """Whether a request's ``Host`` header names this server (defends against DNS rebinding).

        Accepted: a name of :attr:`allowed_host_names` with the bound port (no port only when the
        port is 80); when remote access is allowed, also any IP literal with the bound port (a
        rebinding attack needs a DNS name, so an IP address in ``Host`` is the browser's own).
        """
        if not header:
            return False
        try:
            parts = urlsplit("//" + header.strip())
            name, port = (parts.hostname or ""), parts.port
        except ValueError:  # a malformed port
            return False
        if parts.path or parts.query or parts.fragment or parts.username or parts.password is not None:
            return False
        if (port if port is not None else 80) != self.server_address[1]:
            return False
        return name in self.allowed_host_names or (self.allow_remote and _is_ip_literal(name))

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
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
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

    def _refuse(self, status: int, why: str, head: bool) -> None:
        logger.warning("refused %s %s from %s: %s", self.command, self.path, self.address_string(), why)
        self._send(status, why.encode("ascii", "replace") + b"\n", "text/plain; charset=utf-8", head)

    def _data_request_refused(self) -> str | None:
        """Why a data request may not be answered (``None``: it may)."""
        name, value = REQUEST_HEADER
        if self.headers.get(name) != value:
            return f"data requests need the header {name}: {value} (sent by the viewer's fetch)"
        if self.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return "data requests from another site are refused"
        return None

    def _serve(self, head: bool) -> None:
        if not self.server.host_allowed(self.headers.get("Host")):
            self._refuse(HTTPStatus.MISDIRECTED_REQUEST,
                         f"Host {self.headers.get('Host')!r} does not name this server; open {self.server.url}", head)
            return
        path = unquote(urlsplit(self.path).path)
        if path.startswith("/data/"):
            why = self._data_request_refused()
            if why is not None:
                self._refuse(HTTPStatus.FORBIDDEN, why, head)
                return
        try:
            found = self._route(path)
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
        if path == "/data/index.json":
            return index_json(data.index()).encode("utf-8"), _CONTENT_TYPES[".json"]
        m = _EPISODE.fullmatch(path)
        if m:
            iid = data.keys.get(m.group(1))
            if iid is None:
                return None
            ep = data.episode(iid, images=self.server.renderer.available)
            return episode_json(ep).encode("utf-8"), _CONTENT_TYPES[".json"]
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
