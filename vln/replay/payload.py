"""The data files the replay page loads, shared by the server and the static export.

Each piece of data (the episode list, one episode) exists in two forms:

* JSON (``data/index.json``, ``data/episodes/<key>.json``), what the server answers with: served
  as ``application/json`` with ``X-Content-Type-Options: nosniff`` and only to requests that carry
  :data:`REQUEST_HEADER` (a ``fetch`` from the page sets it; a ``<script src>`` on another site
  cannot), so no other site can include the data with a ``<script>`` tag. The episode list is a
  JSON object, never a bare array.
* A script (``replayReceive("episode", key, {...});``), written only by the static export: a page
  opened from ``file://`` may not ``fetch`` local files, but it may load scripts. The JSON inside
  is ASCII-only (``ensure_ascii``), which keeps U+2028 and similar characters out of the script
  source, and it is passed as data, never evaluated as markup.
"""
from __future__ import annotations

import json
from pathlib import Path

#: The page's own files (the only files the server reads from disk besides skybox faces).
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = ("index.html", "app.js", "style.css")
#: Header (name, value) the page's ``fetch`` sends with every data request; the server refuses
#: data requests without it (a ``<script>`` or ``<img>`` tag cannot set headers).
REQUEST_HEADER = ("X-Clipvil-Replay", "1")


def _json(obj) -> str:
    return json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def index_payload(rows: list[dict]) -> dict:
    """The episode list as the page reads it: ``{"episodes": rows}`` (an object, not an array)."""
    return {"episodes": rows}


def index_json(rows: list[dict]) -> str:
    """``data/index.json``: the rows of :meth:`vln.replay.data.ReplayData.index`."""
    return _json(index_payload(rows))


def episode_json(episode: dict) -> str:
    """``data/episodes/<key>.json``: one episode of :meth:`vln.replay.data.ReplayData.episode`."""
    return _json(episode)


def _call(kind: str, key: str | None, obj) -> str:
    return f"replayReceive({json.dumps(kind)}, {json.dumps(key, ensure_ascii=True)}, {_json(obj)});\n"


def index_script(rows: list[dict]) -> str:
    """``data/index.js`` of a static export: :func:`index_payload` passed to ``replayReceive``."""
    return _call("index", None, index_payload(rows))


def episode_script(episode: dict) -> str:
    """``data/episodes/<key>.js`` of a static export: one episode passed to ``replayReceive``."""
    return _call("episode", episode["key"], episode)
