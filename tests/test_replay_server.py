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
from vln.skybox import skybox_filename

A, B = vp_id("A"), vp_id("B")


def payload(body: bytes, kind: str):
    """The JSON inside a ``replayReceive(kind, key, {...});`` data script."""
    text = body.decode("ascii")
    head = f'replayReceive("{kind}", '
    assert text.startswith(head) and text.endswith(");\n")
    key, _, obj = text[len(head):-3].partition(", ")
    return json.loads(key), json.loads(obj)


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


def get(srv, path: str, method: str = "GET"):
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
    conn.request(method, path)  # sent as written: no client-side normalisation of '..'
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
    status, _, body = get(server, "/data/index.js")
    assert status == 200
    _, rows = payload(body, "index")
    assert [r["instr_id"] for r in rows] == list(server.data.episodes)
    status, _, body = get(server, "/data/episodes/1_0.js")
    key, ep = payload(body, "episode")
    assert key == "1_0" and ep["instr_id"] == "1_0" and len(ep["steps"]) == 3
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
    "/data/episodes/nope.js", "/data/episodes/%2e%2e%2fdata.js", "/images/../../etc/passwd",
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
