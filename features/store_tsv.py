"""The R2R / EnvDrop / CLIP-ViL feature TSV: one line per viewpoint, no header line.

Fields, tab separated (as EnvDrop's ``read_img_features`` reads them with ``csv.DictReader``):
``scanId``, ``viewpointId``, ``image_w``, ``image_h``, ``vfov`` (degrees), ``features`` (base64
of the float32 bytes of a (36, D) array, view-major). The released files are large (about 4 GB
for ResNet-152), so the reader streams the file once to index byte offsets and decodes a record
only when asked for it. Our own metadata (the encoder's provenance record of
:mod:`features.provenance`, spec, weights, ``random_weights``), which the format has no field for,
lives in a sidecar ``<file>.meta.json``; a TSV without one has unknown provenance.
"""
from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from vln.errors import DataFormatError
from vln.io_utils import atomic_path, atomic_write_json

from .store import NUM_VIEWS, FeatureStore, check_features

logger = logging.getLogger(__name__)

TSV_FIELDNAMES = ["scanId", "viewpointId", "image_w", "image_h", "vfov", "features"]

# A features field is hundreds of kilobytes, above csv's 128 kB default limit.
csv.field_size_limit(sys.maxsize)


def meta_path(path: str | os.PathLike) -> Path:
    """The sidecar metadata file of a TSV store: ``<file>.meta.json``."""
    return Path(str(path) + ".meta.json")


def _parse_line(path, line: bytes, lineno: int) -> list[str]:
    rows = list(csv.reader(io.StringIO(line.decode("ascii", errors="replace")), delimiter="\t"))
    if len(rows) != 1 or len(rows[0]) != len(TSV_FIELDNAMES):
        got = len(rows[0]) if len(rows) == 1 else "unparsable"
        raise DataFormatError(path, f"line {lineno}", None, f"must have {len(TSV_FIELDNAMES)} tab-separated fields "
                              f"({', '.join(TSV_FIELDNAMES)}), got {got}")
    return rows[0]


class TsvFeatureStore(FeatureStore):
    """Reader of an R2R feature TSV with a byte-offset index (records decoded on demand).

    Raises:
        DataFormatError: a line with the wrong number of fields, a duplicate (scan, viewpoint),
            a features field whose length differs from the first record's; on :meth:`get`, bad
            base64, a size that is not 36 x D float32, or NaN / infinity.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.index: dict[tuple[str, str], int] = {}
        self._spans: list[tuple[int, int, int]] = []  # (offset, length, line number)
        self._b64_len = None
        self._decoded = None  # as_array's result, kept
        self.decodes = 0  #: times the whole file was decoded (as_array)
        header = None
        with open(self.path, "rb") as f:
            offset, lineno = 0, 0
            for line in f:
                lineno += 1
                start, offset = offset, offset + len(line)
                body = line.rstrip(b"\r\n")
                if not body:
                    continue
                if lineno == 1 and body.startswith(b"scanId\t"):
                    continue  # tolerate a header line written by DictWriter.writeheader()
                fields = body.split(b"\t")
                if len(fields) != len(TSV_FIELDNAMES):
                    raise DataFormatError(self.path, f"line {lineno}", None,
                                          f"must have {len(TSV_FIELDNAMES)} tab-separated fields, got {len(fields)}")
                key = (fields[0].decode(), fields[1].decode())
                rec = f"{key[0]}_{key[1]} (line {lineno})"
                if key in self.index:
                    first = self._spans[self.index[key]][2]
                    raise DataFormatError(self.path, rec, "viewpointId", f"duplicate record (first on line {first})")
                if self._b64_len is None:
                    self._b64_len = len(fields[5])
                    header = fields
                elif len(fields[5]) != self._b64_len:
                    raise DataFormatError(self.path, rec, "features",
                                          f"has {len(fields[5])} base64 characters, other records {self._b64_len} "
                                          f"(wrong size)")
                self.index[key] = len(self._spans)
                self._spans.append((start, len(body), lineno))
        if header is None:
            raise DataFormatError(self.path, None, None, "holds no records")
        self._fd = os.open(self.path, os.O_RDONLY)
        nbytes = len(self._decode_b64(header[5], self._first_rec()))
        if nbytes % (NUM_VIEWS * 4):
            raise DataFormatError(self.path, self._first_rec(), "features",
                                  f"decodes to {nbytes} bytes, not a multiple of 36 float32 values")
        self.dim = nbytes // (NUM_VIEWS * 4)
        self.metadata = {"random_weights": None}
        if meta_path(self.path).exists():
            self.metadata.update(json.loads(meta_path(self.path).read_text()))
        try:
            self.metadata.setdefault("image_w", int(header[2]))
            self.metadata.setdefault("image_h", int(header[3]))
            self.metadata.setdefault("vfov", float(header[4]))
        except ValueError:
            raise DataFormatError(self.path, self._first_rec(), "image_w/image_h/vfov", "must be numbers") from None
        self.metadata.setdefault("dtype", "float32")

    def _first_rec(self):
        (scan, vp), = list(self.index)[:1]
        return f"{scan}_{vp}"

    def _decode_b64(self, field, rec):
        try:
            return base64.b64decode(field, validate=True)
        except (binascii.Error, ValueError) as e:
            raise DataFormatError(self.path, rec, "features", f"is not valid base64 ({e})") from None

    def get(self, scan: str, viewpoint: str) -> np.ndarray:
        row = self.index.get((scan, viewpoint))
        if row is None:
            raise self._missing(scan, viewpoint)
        offset, length, lineno = self._spans[row]
        fields = _parse_line(self.path, os.pread(self._fd, length, offset), lineno)
        rec = f"{scan}_{viewpoint} (line {lineno})"
        raw = self._decode_b64(fields[5].encode("ascii", errors="replace"), rec)
        if len(raw) != NUM_VIEWS * self.dim * 4:
            raise DataFormatError(self.path, rec, "features",
                                  f"decodes to {len(raw)} bytes, expected 36 x {self.dim} float32 = "
                                  f"{NUM_VIEWS * self.dim * 4} (wrong size)")
        arr = np.frombuffer(raw, dtype=np.float32).reshape(NUM_VIEWS, self.dim)
        return check_features(arr.copy(), self.path, scan, viewpoint, self.dim)

    def as_array(self, dtype=np.float32) -> np.ndarray:
        """(N, 36, D) decoded features of every record, read-only.

        The first call reads and decodes the whole file (a 1.2 GB TSV takes tens of seconds); the
        array is kept, so the worlds of every split and the trainer share one decoding
        (``decodes`` counts them). Convert a TSV to ``.feats`` once
        (``scripts/convert_features.py``) to start in seconds.
        """
        if self._decoded is None:
            out = np.empty((len(self.index), NUM_VIEWS, self.dim), dtype=np.float32)
            for (scan, vp), row in self.index.items():
                out[row] = self.get(scan, vp)
            out.flags.writeable = False
            self._decoded = out
            self.decodes += 1
        return self._decoded if dtype is None or np.dtype(dtype) == np.float32 else self._decoded.astype(dtype)

    def close(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()


def write_tsv(path: str | os.PathLike, items, metadata: dict) -> Path:
    """Write ``(scan, viewpoint, (36, D) array)`` items as an R2R feature TSV, atomically.

    ``image_w``, ``image_h`` and ``vfov`` (degrees) come from ``metadata``; the whole metadata
    is also written to the ``<file>.meta.json`` sidecar.
    """
    path = Path(path)
    seen = set()
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, delimiter="\t", fieldnames=TSV_FIELDNAMES)
            for scan, vp, arr in items:
                if (scan, vp) in seen:
                    raise DataFormatError(path, f"{scan}_{vp}", None, "duplicate viewpoint")
                seen.add((scan, vp))
                arr = check_features(np.asarray(arr, dtype=np.float32), path, scan, vp)
                writer.writerow({
                    "scanId": scan, "viewpointId": vp,
                    "image_w": metadata.get("image_w", 640), "image_h": metadata.get("image_h", 480),
                    "vfov": metadata.get("vfov", 60),
                    "features": base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii"),
                })
            f.flush()
            os.fsync(f.fileno())
    atomic_write_json(meta_path(path), {**metadata, "dtype": "float32"}, indent=1)
    return path
