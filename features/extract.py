"""Extract 36 x D panoramic features for every viewpoint of a connectivity directory.

Pipeline per batch of viewpoints: a thread pool decodes skybox JPEGs ahead of time (PIL
releases the GIL) -> pinned host memory -> non-blocking copy to the device -> one batched
``grid_sample`` renders all 36 views at the encoder's input size (:mod:`features.panorama`) ->
the encoder runs under bf16/fp16 autocast in channels_last on CUDA -> rows are appended to a
resumable :class:`features.store_npy.FeatsWriter`. Interrupted runs resume: viewpoints already
committed are skipped. A ``.tsv`` output is produced from a finished ``.feats`` work directory
and written atomically. Annotation encoders (``family == "annotation"``) skip the pixels and
read the annotations under ``scans_dir`` instead.
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vln.connectivity import connectivity_path, read_connectivity, read_scans_txt
from vln.locks import build_lock
from vln.render import load_skybox_faces

from .panorama import NUM_VIEWS, PanoramaRenderer
from .provenance import RECORD_KEY, record_of_encoder, stamp, store_record
from .store import store_kind
from .store_npy import FeatsWriter
from .store_tsv import write_tsv

logger = logging.getLogger(__name__)


def list_viewpoints(connectivity_dir, scans=None) -> list[tuple[str, str, np.ndarray]]:
    """Every viewpoint (excluded ones too, as in the released feature files) of the scans.

    Returns:
        (scan, viewpoint, (3, 3) float64 pose rotation) in scans.txt / file order.
    """
    scans = list(scans) if scans else read_scans_txt(connectivity_dir)
    if not scans:
        raise FileNotFoundError(f"{connectivity_dir} holds neither scans.txt nor any <scan>_connectivity.json")
    out = []
    for scan in scans:
        rec = read_connectivity(connectivity_path(connectivity_dir, scan), scan)
        for vp, pose in zip(rec.viewpoint_ids, rec.poses):
            out.append((scan, vp, pose.reshape(4, 4)[:3, :3].copy()))
    return out


def pick_amp_dtype(device: torch.device, amp: str = "auto"):
    """Autocast dtype: ``auto`` = bf16 on CUDA when supported, else fp16 on CUDA, none on CPU."""
    if amp == "none" or device.type != "cuda":
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def feature_metadata(encoder, render_size=None, face_max_size=None) -> dict:
    """What every store written by ``encoder`` records about it (see :class:`FeatureStore`), its
    provenance record (:mod:`features.provenance`) included."""
    spec = encoder.spec
    h, w = render_size or spec.render_size
    return stamp({
        "encoder": spec.to_dict(),
        "weights": encoder.weights,
        "image_w": int(w),
        "image_h": int(h),
        "vfov": round(math.degrees(spec.render_vfov), 6),
        "face_max_size": face_max_size,
        "views": "36 = 12 headings (30 deg steps from 0) x 3 elevations (-30, 0, +30 deg), viewIndex order",
    }, record_of_encoder(encoder))


def _prefetch(pool, fn, items, depth):
    """Yield ``fn(item)`` results in order while keeping ``depth`` calls in flight."""
    queue = deque()
    it = iter(items)
    for item in it:
        queue.append((item, pool.submit(fn, item)))
        if len(queue) >= depth:
            break
    while queue:
        item, fut = queue.popleft()
        nxt = next(it, None)
        if nxt is not None:
            queue.append((nxt, pool.submit(fn, nxt)))
        yield item, fut.result()


def extract_features(encoder, viewpoints, scans_dir, out, **kwargs) -> dict:
    """Extract and store features of ``viewpoints`` under the build lock of ``out`` (:mod:`vln.locks`).

    A second process asking for the same store meanwhile waits, then finds it complete and does
    nothing; arguments and return value as :func:`extract_features_unlocked`.
    """
    with build_lock(out, f"the feature store {out}") as waited:
        return extract_features_unlocked(encoder, viewpoints, scans_dir, out, reuse_complete=waited, **kwargs)


def extract_features_unlocked(encoder, viewpoints, scans_dir, out, *, batch_viewpoints: int = 8, workers: int = 4,
                              amp: str = "auto", dtype=np.float32, face_max_size: int | None = 512,
                              resume: bool = True, progress: bool = True, commit_every: int = 64,
                              render_size=None, reuse_complete: bool = False) -> dict:
    """Extract and store features of ``viewpoints``; returns timing statistics.

    Args:
        encoder: from :func:`features.encoders.get_encoder`.
        viewpoints: ``(scan, viewpoint, (3, 3) rotation)`` triples (:func:`list_viewpoints`).
        scans_dir: skybox root (``<scan>/matterport_skybox_images``), or the world directory for
            annotation encoders.
        out: ``<name>.feats`` directory or ``<name>.tsv`` file.
        batch_viewpoints: viewpoints per forward pass (x 36 images).
        workers: JPEG decoding threads.
        amp: ``auto`` / ``bf16`` / ``fp16`` / ``none`` (CPU always runs float32).
        dtype: storage dtype of a ``.feats`` output.
        face_max_size: downscale larger skybox faces to this size before rendering (None: keep).
        resume: skip viewpoints committed by an interrupted run with the same encoder.
        render_size: (H, W) override of the spec's render size (tests, benchmarks).
        reuse_complete: keep a complete store at ``out`` made by the same encoder even when
            ``resume`` is False (another process built it while this one waited for the lock).

    Returns:
        dict with ``views``, ``seconds``, ``views_per_s``, ``skipped`` and ``path``.
    """
    out = Path(out)
    kind = store_kind(out)
    work = out if kind == "feats" else out.with_name(out.name + ".work.feats")
    meta = feature_metadata(encoder, render_size, face_max_size)
    if (resume or reuse_complete) and out.exists() and _already_complete(out, meta, viewpoints):
        logger.info("%s already holds all %d viewpoints; nothing to do", out, len(viewpoints))
        return {"views": 0, "seconds": 0.0, "views_per_s": float("nan"), "skipped": len(viewpoints), "path": str(out)}
    writer = FeatsWriter(work, encoder.spec.pooled_dim, meta, dtype=dtype if kind == "feats" else np.float32,
                         resume=resume, commit_every=commit_every)
    pending = [v for v in viewpoints if (v[0], v[1]) not in writer]
    skipped = len(viewpoints) - len(pending)
    if skipped:
        logger.info("skipping %d viewpoints already extracted", skipped)
    bar = tqdm(total=len(pending) * NUM_VIEWS, unit="view", unit_scale=True, disable=not progress,
               desc=f"extract {encoder.spec.name}")
    t0 = time.perf_counter()
    try:
        if encoder.spec.needs_pixels:
            _extract_pixels(encoder, pending, scans_dir, writer, bar, batch_viewpoints, workers, amp,
                            face_max_size, render_size)
        else:
            encoder.open(scans_dir)
            for scan, vp, _ in pending:
                writer.add(scan, vp, encoder.encode_viewpoint(scan, vp))
                bar.update(NUM_VIEWS)
    except BaseException:
        writer.close()  # keep what was committed for --resume
        bar.close()
        raise
    bar.close()
    seconds = time.perf_counter() - t0
    writer.finish()
    if kind == "tsv":
        from .store_npy import NpyFeatureStore

        with NpyFeatureStore(work) as store:
            write_tsv(out, ((s, v, store.get(s, v)) for s, v in store.keys()), store.metadata)
        shutil.rmtree(work)
    views = len(pending) * NUM_VIEWS
    return {"views": views, "seconds": seconds, "views_per_s": views / seconds if seconds > 0 else float("nan"),
            "skipped": skipped, "path": str(out)}


def _already_complete(out: Path, meta: dict, viewpoints) -> bool:
    """True when a published store at ``out`` was made by the same encoder and weights and holds
    every requested viewpoint (a finished run repeated with ``--resume`` does nothing)."""
    from .store import open_feature_store

    try:
        with open_feature_store(out) as store:
            same = store_record(store.metadata) == meta[RECORD_KEY]
            return same and all((s, v) in store for s, v, _ in viewpoints)
    except (OSError, ValueError):
        return False


def _extract_pixels(encoder, pending, scans_dir, writer, bar, batch_viewpoints, workers, amp, face_max_size,
                    render_size):
    device = encoder.device
    h, w = render_size or encoder.spec.render_size
    renderer = PanoramaRenderer(h, w, encoder.spec.render_vfov, device=device)
    amp_dtype = pick_amp_dtype(device, amp)
    pin = device.type == "cuda"
    batches = [pending[i:i + batch_viewpoints] for i in range(0, len(pending), batch_viewpoints)]

    def load(batch):
        faces = np.stack([load_skybox_faces(scans_dir, s, v, max_size=face_max_size) for s, v, _ in batch])
        rots = np.stack([r for _, _, r in batch]).astype(np.float32)
        faces_t, rots_t = torch.from_numpy(faces), torch.from_numpy(rots)
        if pin:
            faces_t, rots_t = faces_t.pin_memory(), rots_t.pin_memory()
        return faces_t, rots_t

    # Each batch is decoded by one thread; ``workers`` batches are in flight ahead of the GPU.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for batch, (faces_t, rots_t) in _prefetch(pool, load, batches, depth=max(1, workers)):
            views = renderer.render(faces_t.to(device, non_blocking=pin), rots_t.to(device, non_blocking=pin),
                                    out_dtype=torch.float16 if amp_dtype is not None else torch.float32)
            pooled = encoder(views.reshape(-1, 3, h, w), amp_dtype=amp_dtype)
            feats = pooled.view(len(batch), NUM_VIEWS, -1).cpu().numpy()
            for (scan, vp, _), f in zip(batch, feats):
                writer.add(scan, vp, f)
            bar.update(len(batch) * NUM_VIEWS)


def run_extraction(encoder_name: str, scans_dir, connectivity_dir, out, weights=None, device=None, scans=None,
                   limit: int | None = None, **kwargs) -> dict:
    """Build the encoder, list the viewpoints and extract (what ``scripts/extract_features.py`` runs)."""
    from .encoders import get_encoder

    encoder = get_encoder(encoder_name, weights=weights, device=device)
    vps = list_viewpoints(connectivity_dir, scans)
    if limit is not None:
        vps = vps[:limit]
    if getattr(encoder, "random_weights", False):
        logger.warning("extracting with RANDOM weights: %s records random_weights=true", out)
    return extract_features(encoder, vps, scans_dir, out, **kwargs)

