"""The COCO caption metrics through pycocoevalcap: PTB tokenizer, BLEU-1..4, METEOR, ROUGE-L,
CIDEr, and SPICE when Stanford CoreNLP 3.6.0's jars are given.

pycocoevalcap's tokenizer, METEOR and SPICE run Java: :func:`require_java` checks for it first
and says how to install it. SPICE's jar expects ``lib/stanford-corenlp-3.6.0.jar`` and
``lib/stanford-corenlp-3.6.0-models.jar`` beside it, which pycocoevalcap downloads on first use;
here nothing is downloaded: with ``spice_jars=DIR`` the two jars are taken from DIR (linked into a
temporary copy of SPICE's folder, so site-packages is never written), otherwise ``SPICE`` is
reported as a string saying why it is unavailable, never as 0.

Results are COCO format ``[{"image_id": int, "caption": str}]``; scores are keyed by
pycocoevalcap's names (``Bleu_1`` .. ``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr``, ``SPICE``).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from vln.errors import DataFormatError, VLNError

CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
METRIC_NAMES = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")


class JavaMissingError(VLNError, RuntimeError):
    """pycocoevalcap needs a Java runtime and none is on PATH."""


def require_java() -> str:
    """The path of ``java``, or :class:`JavaMissingError` saying how to get it."""
    java = shutil.which("java")
    if java is None:
        raise JavaMissingError("the caption metrics (pycocoevalcap's PTB tokenizer, METEOR, SPICE) need Java, and "
                               "`java` is not on PATH: install a headless JRE, e.g. "
                               "`sudo apt-get install -y default-jre-headless`")
    return java


def check_results(results, path="results") -> list[dict]:
    """COCO-format results validated: a list of ``{"image_id", "caption"}``, one per image."""
    if not isinstance(results, list):
        raise DataFormatError(path, None, None, "must be a JSON list of {image_id, caption}")
    seen = set()
    for k, r in enumerate(results):
        rec = f"{k} (image_id {r.get('image_id') if isinstance(r, dict) else None})"
        if not isinstance(r, dict):
            raise DataFormatError(path, k, None, "must be an object {image_id, caption}")
        for field, kind in (("image_id", int), ("caption", str)):
            if field not in r:
                raise DataFormatError(path, rec, field, "is missing")
            if not isinstance(r[field], kind) or isinstance(r[field], bool):
                raise DataFormatError(path, rec, field, f"must be a {kind.__name__}, got {type(r[field]).__name__}")
        if r["image_id"] in seen:
            raise DataFormatError(path, rec, "image_id", "appears twice")
        seen.add(r["image_id"])
    return results


def spice_unavailable_reason(spice_jars) -> str | None:
    """Why SPICE cannot run (None when it can)."""
    if spice_jars is None:
        return ("unavailable: SPICE needs Stanford CoreNLP 3.6.0 (" + ", ".join(CORENLP_JARS) +
                "), which cannot be downloaded here; pass --spice-jars DIR holding them")
    missing = [j for j in CORENLP_JARS if not (Path(spice_jars) / j).is_file()]
    if missing:
        return f"unavailable: {spice_jars} lacks {', '.join(missing)}"
    return None


def run_spice(gts: dict, res: dict, spice_jars) -> float:
    """Mean SPICE F-score (pycocoevalcap's ``Spice.compute_score``) with CoreNLP jars from a folder.

    Raises:
        RuntimeError: SPICE's Java process failed (its last output lines in the message).
    """
    import pycocoevalcap.spice.spice as spice_mod

    src = Path(spice_mod.__file__).parent
    with tempfile.TemporaryDirectory(prefix="spice_") as tmp:
        tmp = Path(tmp)
        (tmp / "lib").mkdir()
        os.symlink(src / spice_mod.SPICE_JAR, tmp / spice_mod.SPICE_JAR)
        for jar in (src / "lib").glob("*.jar"):
            os.symlink(jar, tmp / "lib" / jar.name)
        for jar in CORENLP_JARS:
            os.symlink(Path(spice_jars).resolve() / jar, tmp / "lib" / jar)
        data = [{"image_id": i, "test": res[i][0], "refs": gts[i]} for i in sorted(gts)]
        (tmp / "in.json").write_text(json.dumps(data))
        cmd = ["java", "-jar", "-Xmx8G", spice_mod.SPICE_JAR, "in.json", "-cache", str(tmp / "cache"),
               "-out", "out.json", "-subset", "-silent"]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise RuntimeError(f"SPICE failed (exit {proc.returncode}): {tail}")
        out = json.loads((tmp / "out.json").read_text())
    f = []
    for item in out:
        try:
            f.append(float(item["scores"]["All"]["f"]))
        except (TypeError, ValueError):
            f.append(np.nan)
    return float(np.mean(f))


def score_captions(results: list[dict], references: dict[int, list[str]], spice_jars=None,
                   results_path="results") -> dict:
    """pycocoevalcap's corpus scores of ``results`` against ``references``.

    Args:
        results: COCO-format results (validated by :func:`check_results`); every image id must be
            in ``references``.
        references: image id -> raw reference captions (as in a COCO captions file).
        spice_jars: folder with Stanford CoreNLP 3.6.0's two jars, or None.
    Returns:
        ``{"Bleu_1": float, ..., "CIDEr": float, "SPICE": float or "unavailable: <reason>",
        "n_images": int}`` with pycocoevalcap's scales (CIDEr x1, as pycocoevalcap reports it).
    """
    require_java()
    check_results(results, results_path)
    for k, r in enumerate(results):
        if r["image_id"] not in references:
            raise DataFormatError(results_path, f"{k} (image_id {r['image_id']})", "image_id",
                                  "is not an image of the annotations")
    if not results:
        raise DataFormatError(results_path, None, None, "holds no results")
    ids = [r["image_id"] for r in results]
    with contextlib.redirect_stdout(sys.stderr):  # pycocoevalcap prints progress on stdout
        return _score(ids, results, references, spice_jars)


def _score(ids, results, references, spice_jars) -> dict:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": c} for c in references[i]] for i in ids})
    res = tok.tokenize({r["image_id"]: [{"caption": r["caption"]}] for r in results})
    out: dict = {}
    bleu, _ = Bleu(4).compute_score(gts, res)
    out.update({f"Bleu_{n + 1}": float(b) for n, b in enumerate(bleu)})
    meteor = Meteor()
    try:
        out["METEOR"] = float(meteor.compute_score(gts, res)[0])
    finally:
        _close_meteor(meteor)
    out["ROUGE_L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    reason = spice_unavailable_reason(spice_jars)
    if reason is None:
        try:
            out["SPICE"] = run_spice(gts, res, spice_jars)
        except RuntimeError as e:
            out["SPICE"] = f"unavailable: {e}"
    else:
        out["SPICE"] = reason
    out["n_images"] = len(ids)
    return out


def _close_meteor(meteor) -> None:
    """Stop METEOR's Java process now (pycocoevalcap's ``__del__`` does it at garbage collection;
    running it twice is harmless)."""
    meteor.__del__()
