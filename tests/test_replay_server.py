"""The replay HTTP server: routes, content, and the paths it must refuse."""
from __future__ import annotations

import http.client
import io
import json
import os

import pytest
from PIL import Image

from graph_builders import TINY_SCAN, vp_id
from test_replay_data import make_replay_root
from vln.replay import ReplayData, ReplayServer, ViewRenderer
from vln.replay.payload import REQUEST_HEADER
from vln.replay.server import RemoteBindRefused
from vln.skybox import skybox_filename

A, B = vp_id("A"), vp_id("B")


def payload(body: bytes, kind: str):
    """The JSON inside a ``replayReceive(kind, key, {...});`` data script."""
    text = body.decode("ascii")
    head = f'replayReceive("{kind}", '
    assert text.startswith(head) and text.endswith(");\n")
    key, _, obj = text[len(head):-3].partition(", ")
    return json.loads(key), json.loads(obj)


#: What the viewer's fetch sends with a data request.
PAGE_HEADERS = {REQUEST_HEADER[0]: REQUEST_HEADER[1], "Sec-Fetch-Site": "same-origin"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("replay_server")
    root, traj = make_replay_root(tmp_path)
    outside = tmp_path / "secret.jpg"
    Image.new("RGB", (16, 16), (1, 2, 3)).save(outside)
    face = root / "scans" / TINY_SCAN / "matterport_skybox_images" / skybox_filename(A, 0)
    face.unlink()
    os.symlink(outside, face)  # viewpoint A's faces now point out of scans_dir
    data = ReplayData(root / "R2R" / "R2R_train.json", root / "connectivity", traj)
    srv = ReplayServer(data, ViewRenderer(root / "scans", data.graphs), port=0)
    srv.start_background()
    yield srv
    srv.shutdown()
    srv.server_close()


def get(srv, path: str, method: str = "GET", headers=None, host: str | None = None):
    """(status, headers, body); ``host`` replaces the Host header http.client would send."""
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
    headers = dict(PAGE_HEADERS if headers is None else headers)
    conn.putrequest(method, path, skip_host=host is not None)  # sent as written: no normalisation of '..'
    if host is not None:
        conn.putheader("Host", host)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), body


def test_binds_localhost_and_serves_the_page(server):
    assert server.server_address[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    status, headers, body = get(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b'src="app.js"' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    for name, ctype in (("/app.js", "text/javascript"), ("/style.css", "text/css")):
        status, headers, body = get(server, name)
        assert status == 200 and headers["Content-Type"].startswith(ctype) and body


def test_data_routes(server):
    status, headers, body = get(server, "/data/index.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    index = json.loads(body)
    assert isinstance(index, dict)  # an object: a bare array was once executable JS
    assert [r["instr_id"] for r in index["episodes"]] == list(server.data.episodes)
    status, headers, body = get(server, "/data/episodes/1_0.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    ep = json.loads(body)
    assert ep["key"] == "1_0" and ep["instr_id"] == "1_0" and len(ep["steps"]) == 3
    assert ep["steps"][0]["view"] is None  # A's faces leave scans_dir
    assert ep["steps"][1]["view"] == f"images/{TINY_SCAN}/{B}/view_000.png"


def test_images(server):
    for path, size in ((f"/images/{TINY_SCAN}/{B}/view_000.png", (320, 240)), (f"/images/{TINY_SCAN}/{B}/pano.png", (768, 144))):
        status, headers, body = get(server, path)
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(body)).size == size
    status, headers, body = get(server, f"/images/{TINY_SCAN}/{B}/pano.png", "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


@pytest.mark.parametrize("path", [
    "/../setup.py", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd", "/static/../server.py", "/data.py",
    "/vln/replay/server.py", "/static/app.js", "/..%2fsetup.py", "/app.js/..", "/data/episodes/../index.js",
    "/data/episodes/nope.json", "/data/episodes/%2e%2e%2fdata.json", "/images/../../etc/passwd",
    "/data/index.js", "/data/episodes/1_0.js",      # data as script: only in a file:// export
    f"/images/{TINY_SCAN}/{A}/pano.png",            # faces symlinked out of scans_dir
    f"/images/{TINY_SCAN}/{A}/view_000.png",
    f"/images/{TINY_SCAN}/nosuchviewpoint/pano.png", f"/images/otherScan/{B}/pano.png",
    f"/images/{TINY_SCAN}/{B}/view_999.png", f"/images/{TINY_SCAN}/{B}/skybox0.jpg",
    f"/images/{TINY_SCAN}/{B}/..%2f..%2f..%2fconnectivity/pano.png", "/C:\\Windows\\win.ini",
])
def test_paths_outside_its_files_are_404(server, path):
    status, _, body = get(server, path)
    assert status == 404, path
    assert b"secret" not in body


def test_other_methods_are_refused(server):
    assert get(server, "/", "POST")[0] == 405
    assert get(server, "/", "DELETE")[0] == 405


def test_data_is_json_no_other_site_can_include_as_script(server):
    """A <script src> on another site sends neither the viewer's header nor Sec-Fetch-Site
    same-origin: it gets 403, and what the server does answer is JSON the browser will not run."""
    for path in ("/data/index.json", "/data/episodes/1_0.json"):
        as_script_tag = {"Sec-Fetch-Dest": "script", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}
        for headers in ({}, as_script_tag, {**as_script_tag, REQUEST_HEADER[0]: REQUEST_HEADER[1]},
                        {REQUEST_HEADER[0]: "0"}):
            status, _, body = get(server, path, headers=headers)
            assert status == 403, (path, headers)
            assert b"episodes" not in body and b"instruction" not in body
        status, h, body = get(server, path)
        assert status == 200 and h["Content-Type"] == "application/json" and h["X-Content-Type-Options"] == "nosniff"
        assert h["Cross-Origin-Resource-Policy"] == "same-origin"
        assert body.startswith(b"{") and b"replayReceive" not in body


@pytest.mark.parametrize("host,ok", [
    ("127.0.0.1:{port}", True), ("localhost:{port}", True), ("LOCALHOST:{port}", True), ("[::1]:{port}", True),
    ("evil.example:{port}", False),      # DNS rebinding: the attacker's name, resolved to 127.0.0.1
    ("evil.example", False), ("127.0.0.1", False), ("127.0.0.1:1", False), ("localhost:{port}@evil.example", False),
    ("127.0.0.1:{port}/x", False), ("127.0.0.1:notaport", False), ("", False), ("10.0.0.1:{port}", False),
])
def test_host_header_must_name_this_server(server, host, ok):
    port = server.server_address[1]
    status, _, body = get(server, "/data/index.json", host=host.format(port=port))
    assert (status == 200) is ok, (host, status)
    if not ok:
        assert status == 421 and b"does not name this server" in body
        assert get(server, "/", host=host.format(port=port))[0] == 421  # the page too


def test_non_loopback_host_is_refused_without_allow_remote(server):
    with pytest.raises(RemoteBindRefused, match="--allow-remote"):
        ReplayServer(server.data, server.renderer, host="0.0.0.0", port=0)
    with pytest.raises(RemoteBindRefused):
        ReplayServer(server.data, server.renderer, host="example.org", port=0)
    local = ReplayServer(server.data, server.renderer, host="localhost", port=0)  # loopback names are fine
    local.server_close()


def test_allow_remote_listens_everywhere_and_still_checks_host(server, caplog):
    srv = ReplayServer(server.data, server.renderer, host="0.0.0.0", port=0, allow_remote=True,
                       allowed_hosts=["viewer.lab"])
    assert "every machine that can reach it" in caplog.text
    srv.start_background()
    try:
        port = srv.server_address[1]
        conn_to = type("S", (), {"server_address": ("127.0.0.1", port)})()
        for host, status in ((f"127.0.0.1:{port}", 200), (f"192.168.1.20:{port}", 200), (f"viewer.lab:{port}", 200),
                             (f"evil.example:{port}", 421)):
            assert get(conn_to, "/data/index.json", host=host)[0] == status, host
    finally:
        srv.shutdown()
        srv.server_close()


def test_script_refuses_a_remote_host_in_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root, traj = make_replay_root(tmp_path)
    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(repo / "scripts" / "replay.py"), "--data", str(root / "R2R" / "R2R_train.json"),
                        "--connectivity", str(root / "connectivity"), "--host", "0.0.0.0", "--port", "0"],
                       capture_output=True, text=True, timeout=60, cwd=repo)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: --host 0.0.0.0 would serve") and "--allow-remote" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
