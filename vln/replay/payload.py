"""The files the replay page loads, shared by the server and the static export.

Data files are JavaScript calls (``replayReceive("episode", key, {...});``) rather than bare
JSON: a page opened from ``file://`` may not ``fetch`` local files, but it may load scripts, so
one loader serves both modes. The JSON inside is ASCII-only (``ensure_ascii``), which keeps
U+2028 and similar characters out of the script source, and it is passed as data, never
evaluated as markup.
"""
from __future__ import annotations

import json
from pathlib import Path

#: The page's own files (the only files the server reads from disk besides skybox faces).
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = ("index.html", "app.js", "style.css")


def _call(kind: str, key: str | None, obj) -> str:
    body = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return f"replayReceive({json.dumps(kind)}, {json.dumps(key, ensure_ascii=True)}, {body});\n"


def index_script(rows: list[dict]) -> str:
    """``data/index.js``: the episode list of :meth:`vln.replay.data.ReplayData.index`."""
    return _call("index", None, rows)


def episode_script(episode: dict) -> str:
    """``data/episodes/<key>.js``: one episode of :meth:`vln.replay.data.ReplayData.episode`."""
    return _call("episode", episode["key"], episode)
