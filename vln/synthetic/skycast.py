"""Fast ray casting of whole skyboxes: separable slab tests on face tiles, a vectorised room walk.

Every synthetic pose has the same rotation, so the six skybox faces look along the world axes
and the ray of face pixel ``(row i, col j)`` is, up to its length, ``sign * e_A + b[j] * e_B +
c[i] * e_C`` (``A`` the face's axis, ``B``/``C`` the axes that vary along columns/rows). Scaled
that way (``t'`` = travel along ``A``, metres), the slab test of an axis-aligned box splits into
one number per box for ``A``, one per column for ``B`` and one per row for ``C``: the entry of
pixel ``(i, j)`` is ``max(nA, nB[j], nC[i])``, one broadcast operation per box instead of the
twenty-odd of a per-ray test (:func:`vln.synthetic.render.cast`).

Faces are cut into ``tile x tile`` pixel tiles. A tile's rays span a narrow pyramid, and a box
is tested only on the tiles whose pyramid it may meet (a conservative interval test), so a
pixel meets ~1-3 boxes instead of the ~13 of its room. The room walk is the one ``cast`` does
(the boxes of the room the ray is in; a ray that hits none of them left the room through an
opening and goes on in the room behind it), vectorised over every (tile, room) pair of a batch of
cameras. The opening a ray left through is found among the scene's portals (doorways, the
stairwell) that the tile's pyramid meets, so no ray needs its exit point located (a ray that
left through no known opening is handed to ``cast``). ``cast`` and this give the same boxes
except where a ray grazes a box edge or meets two boxes at the same distance (float32 ties).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .render import Scene, cast, locate, skybox_rays

_MAX_TILE = 8  #: largest tile side (px)
_EPS = 1e-4  #: nearest accepted hit, in units of travel along the face axis (metres)


@dataclass(frozen=True, eq=False)
class FaceGeometry:
    """The rays of a skybox of ``size`` px faces, cut into tiles of ``tile`` px.

    Attributes:
        major, col_axis, row_axis: (6,) int64 world axis of face k's view direction, of its
            columns and of its rows.
        sign: (6,) float64 +1 or -1, the direction along ``major``.
        dirs: (6, S, S, 3) float64 ray of each pixel scaled to unit travel along ``major``.
        scale: (6, S, S) float32 metres per unit of ``t'`` (the length of ``dirs``).
        tile_inv_b, tile_inv_c: (6 * n * n, tile) float32 reciprocal column / row slopes of each
            tile g = (k * n + ti) * n + tj (n = S // tile; 1e-12 stands in for a zero slope).
        tile_brange, tile_crange: (6 * n * n, 2) float64 slope interval of each tile.
    """

    size: int
    tile: int
    major: np.ndarray
    sign: np.ndarray
    col_axis: np.ndarray
    row_axis: np.ndarray
    dirs: np.ndarray
    scale: np.ndarray
    tile_inv_b: np.ndarray
    tile_inv_c: np.ndarray
    tile_brange: np.ndarray
    tile_crange: np.ndarray

    @property
    def n(self) -> int:
        """Tiles along a face side."""
        return self.size // self.tile


def _tile_size(size: int) -> int:
    """The largest divisor of ``size`` that is at most ``_MAX_TILE``."""
    return max(t for t in range(1, _MAX_TILE + 1) if size % t == 0)


@lru_cache(maxsize=8)
def face_geometry(size: int) -> FaceGeometry:
    """Per-face axes, slopes and tiles of the rays of :func:`~vln.synthetic.render.skybox_rays`."""
    if size < 1:
        raise ValueError(f"face size must be >= 1, got {size}")
    d = skybox_rays(size).reshape(6, size, size, 3)
    mid = size // 2
    major = np.argmax(np.abs(d[:, mid, mid]), axis=1)
    sign = np.sign(d[np.arange(6), mid, mid, major])
    dirs = d / np.abs(np.take_along_axis(d, major[:, None, None, None], axis=3))
    col_axis, row_axis = np.empty(6, np.int64), np.empty(6, np.int64)
    for k in range(6):
        others = [a for a in range(3) if a != major[k]]
        col_axis[k] = next(a for a in others if np.allclose(dirs[k, :, :, a], dirs[k, :1, :, a]))
        row_axis[k] = next(a for a in others if a != col_axis[k])
        if not np.allclose(dirs[k, :, :, row_axis[k]], dirs[k, :, :1, row_axis[k]]):
            raise AssertionError("skybox face rays are not separable into column and row slopes")
    tile = _tile_size(size)
    n = size // tile
    b = np.stack([dirs[k, 0, :, col_axis[k]] for k in range(6)])  # (6, S) slope per column
    c = np.stack([dirs[k, :, 0, row_axis[k]] for k in range(6)])  # (6, S) slope per row
    kk, ti, tj = (x.ravel() for x in np.meshgrid(np.arange(6), np.arange(n), np.arange(n), indexing="ij"))
    tile_b = b.reshape(6, n, tile)[kk, tj]
    tile_c = c.reshape(6, n, tile)[kk, ti]

    def inv(s):
        return (1.0 / np.where(np.abs(s) < 1e-12, 1e-12, s)).astype(np.float32)

    return FaceGeometry(
        size=size, tile=tile, major=major, sign=sign, col_axis=col_axis, row_axis=row_axis, dirs=dirs,
        scale=np.linalg.norm(dirs, axis=3).astype(np.float32), tile_inv_b=inv(tile_b), tile_inv_c=inv(tile_c),
        tile_brange=np.stack([tile_b.min(1), tile_b.max(1)], 1),
        tile_crange=np.stack([tile_c.min(1), tile_c.max(1)], 1),
    )


def _oriented(geo: FaceGeometry, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(N, 6, 6) boxes as each face sees them: ``(a0, a1, lo_B, hi_B, lo_C, hi_C)``.

    ``a = sign * coordinate`` along the face's axis (so a0 <= a1 is the travel range), ``B`` and
    ``C`` its column and row axes. Cameras are mapped the same way (lo = hi = position).
    """
    out = np.empty((len(lo), 6, 6))
    for k in range(6):
        a, b, c = geo.major[k], geo.col_axis[k], geo.row_axis[k]
        out[:, k, 0], out[:, k, 1] = (lo[:, a], hi[:, a]) if geo.sign[k] > 0 else (-hi[:, a], -lo[:, a])
        out[:, k, 2], out[:, k, 3] = lo[:, b], hi[:, b]
        out[:, k, 4], out[:, k, 5] = lo[:, c], hi[:, c]
    return out


@dataclass(frozen=True, eq=False)
class _Tables:
    """Per (room, face) padded tables of a scene's boxes and of the openings out of each room.

    boxes: (R * 6, M, 6) float64 oriented boxes of room r for face k at row ``r * 6 + k``
        (padding: an empty box, a0 > a1); box_ids: (R, M) int64 (padding -1).
    portals: (R * 6, P, 6) float64 oriented openings of each room; portal_to: (R, P) int64 the
        room behind each opening (padding -1).
    """

    boxes: np.ndarray
    box_ids: np.ndarray
    portals: np.ndarray
    portal_to: np.ndarray


def _padded(geo: FaceGeometry, lo: np.ndarray, hi: np.ndarray, groups: list, values: list):
    n_rooms = len(groups)
    width = max([len(g) for g in groups] + [1])
    table = np.zeros((n_rooms, 6, width, 6))
    table[..., 0], table[..., 1] = 1e9, -1e9  # empty
    ids = np.full((n_rooms, width), -1, dtype=np.int64)
    oriented = _oriented(geo, lo, hi)
    for r, (g, v) in enumerate(zip(groups, values)):
        table[r, :, : len(g)] = oriented[g].transpose(1, 0, 2)
        ids[r, : len(g)] = v
    return table.reshape(n_rooms * 6, width, 6), ids


def _tables(scene: Scene, geo: FaceGeometry) -> _Tables:
    key = ("skycast", geo.size)
    if key not in scene.cache:
        n_rooms = len(scene.room_lo)
        boxes, box_ids = _padded(geo, scene.lo, scene.hi, [np.asarray(g) for g in scene.room_boxes],
                                 [np.asarray(g) for g in scene.room_boxes])
        pr = scene.portal_rooms
        groups = [np.flatnonzero((pr[:, 0] == r) | (pr[:, 1] == r)) for r in range(n_rooms)]
        targets = [np.where(pr[g, 0] == r, pr[g, 1], pr[g, 0]) for r, g in enumerate(groups)]
        portals, portal_to = _padded(geo, scene.portal_lo, scene.portal_hi, groups, targets)
        scene.cache[key] = _Tables(boxes, box_ids, portals, portal_to)
    return scene.cache[key]


def _candidates(geo: FaceGeometry, table: np.ndarray, oo: np.ndarray, ftile: np.ndarray, row: np.ndarray):
    """Which boxes of each item's table row may meet the pyramid of the item's tile.

    Args:
        table: (N, M, 6) oriented boxes; row: (W,) the table row of each item.
        oo: (W, 6) each item's camera in the oriented frame of its face.

    Returns:
        rel: (W, M, 6) the boxes relative to the camera; keep: (W, M) bool.
    """
    rel = np.take(table, row, axis=0) - oo[:, None, :]
    a0, a1, lo_b, hi_b, lo_c, hi_c = (rel[:, :, i] for i in range(6))
    a0c = np.maximum(a0, 0.0)
    br, cr = np.take(geo.tile_brange, ftile, axis=0), np.take(geo.tile_crange, ftile, axis=0)
    b_lo, b_hi, c_lo, c_hi = br[:, 0, None], br[:, 1, None], cr[:, 0, None], cr[:, 1, None]
    # over travel a in [a0c, a1], the tile's rays cover B in [b_lo * a, b_hi * a] (a >= 0)
    keep = a1 > _EPS
    keep &= lo_b <= np.maximum(b_hi * a0c, b_hi * a1)
    keep &= hi_b >= np.minimum(b_lo * a0c, b_lo * a1)
    keep &= lo_c <= np.maximum(c_hi * a0c, c_hi * a1)
    keep &= hi_c >= np.minimum(c_lo * a0c, c_lo * a1)
    return rel, keep


def _nearest_in_tiles(geo: FaceGeometry, rel: np.ndarray, keep: np.ndarray, ftile: np.ndarray,
                      ids: np.ndarray, axes: np.ndarray | None = None, farthest: bool = False):
    """Nearest (or farthest) kept box of every pixel of each item's tile.

    Args:
        rel: (W, M, 6) oriented boxes relative to the camera; keep: (W, M) bool candidates.
        ftile: (W,) tile index in the face geometry.
        ids: (W, M) int32 what to report for each box (a box or room index).
        axes: (W, 3) world axes of each item's face (view, column, row): report the axis of the
            normal of the face each ray entered its box through; None: do not.
        farthest: the box whose entry is farthest instead (used for openings: a ray that walks
            on from another room enters through one opening and leaves through another).

    Returns:
        order: (W,) item of each output column (items are reordered by number of candidates);
        t: (T * T, W) float32 travel ``t'`` to the hit (+inf where no kept box is hit, -inf with
            ``farthest``), pixel q = row * T + column of the tile;
        hit_ids: (T * T, W) int32 ``ids`` of the box hit (-1 where none);
        axis: (T * T, W) int8 world axis of the hit face's normal, or None.
    """
    w_n, tsz = len(ftile), geo.tile
    count = keep.sum(axis=1)
    # Items by decreasing number of candidates: those still testing their j-th candidate are a
    # prefix. Items run along the last axis so that numpy's inner loops are long.
    perm = np.argsort(-count, kind="stable")
    count = count[perm]
    m = int(count[0]) if w_n else 0
    if m == 0:
        t = np.full((tsz * tsz, w_n), -np.inf if farthest else np.inf, dtype=np.float32)
        none = np.full((tsz * tsz, w_n), -1, dtype=np.int32)
        return perm, t, none, (np.zeros((tsz * tsz, w_n), dtype=np.int8) if axes is not None else None)
    wi, mi = np.nonzero(keep[perm])
    rank = np.arange(len(wi)) - np.repeat(np.cumsum(count) - count, count)
    table = np.zeros((m, 6, w_n), dtype=np.float32)
    table[rank, :, wi] = rel[perm[wi], mi]
    cand_ids = np.full((m, w_n), -1, dtype=np.int32)
    cand_ids[rank, wi] = ids[perm[wi], mi]
    ib = np.ascontiguousarray(np.take(geo.tile_inv_b, ftile[perm], axis=0).T)  # (T columns, W)
    ic = np.ascontiguousarray(np.take(geo.tile_inv_c, ftile[perm], axis=0).T)  # (T rows, W)
    n_active = np.searchsorted(-count, -np.arange(m), side="right")  # items with count > j
    # The search keeps one int32 key per pixel: the float32 bits of the entry distance (t' > 0,
    # so the bits sort like the floats) with the candidate number j in the low bits, so
    # minimum() tracks the distance and the box at once (no masked writes, which are slow).
    # Boxes within 2**-(23 - bits) (relative) of each other count as a tie won by the lower j;
    # ``bits`` depends only on the table's width, so results do not depend on the batch.
    bits = max(1, (rel.shape[1] - 1).bit_length())
    low = np.int32((1 << bits) - 1)
    shape = (tsz, tsz, w_n)  # (rows, columns, items)
    best = np.full(shape, -1 if farthest else np.iinfo(np.int32).max, dtype=np.int32)
    tn_buf, tf_buf = np.empty(shape, dtype=np.float32), np.empty(shape, dtype=np.float32)
    if axes is not None:  # entries along C (per row) and along A-or-B (per column), to tell faces apart
        nc_all = np.zeros((m, tsz, w_n), dtype=np.float32)
        nb_all = np.zeros((m, tsz, w_n), dtype=np.float32)
        from_a = np.zeros((m, tsz, w_n), dtype=bool)
    inf = np.float32(np.inf)
    mask_miss, keep_best = (np.fmin, np.maximum) if farthest else (np.fmax, np.minimum)
    with np.errstate(over="ignore", invalid="ignore"):
        for j in range(m):
            wj = int(n_active[j])
            tj = table[j, :, :wj]
            ibj, icj = ib[:, :wj], ic[:, :wj]
            b0, b1 = ibj * tj[2], ibj * tj[3]
            c0, c1 = icj * tj[4], icj * tj[5]
            nb, nc = np.minimum(b0, b1), np.minimum(c0, c1)
            na = np.maximum(tj[0], np.float32(_EPS))  # no box holds a camera: t' > _EPS for free
            if axes is not None:
                from_a[j, :, :wj] = na >= nb
            np.maximum(nb, na, out=nb)
            fb = np.maximum(b0, b1)
            np.minimum(fb, tj[1], out=fb)
            if axes is not None:
                nb_all[j, :, :wj], nc_all[j, :, :wj] = nb, nc
            tn, tf = tn_buf[:, :, :wj], tf_buf[:, :, :wj]
            np.maximum(nc[:, None, :], nb[None, :, :], out=tn)  # entry of every (row, column, item)
            np.minimum(np.maximum(c0, c1)[:, None, :], fb[None, :, :], out=tf)  # exit
            # (exit - entry) * inf is +inf for a hit, -inf for a miss, nan for a grazing hit
            # (fmin/fmax skip nan). Farthest: a miss becomes -inf (negative as int32 bits) and the
            # largest key wins; nearest: (entry - exit) * inf, a miss becomes +inf, the smallest wins.
            first, second = (tf, tn) if farthest else (tn, tf)
            np.subtract(first, second, out=tf)
            np.multiply(tf, inf, out=tf)
            mask_miss(tn, tf, out=tn)
            key = tn.view(np.int32)
            key &= ~low
            key |= np.int32(j)
            keep_best(best[:, :, :wj], key, out=best[:, :, :wj])
    best = best.reshape(tsz * tsz, w_n)
    t = (best & ~low).view(np.float32)  # the distance with its low bits cleared
    found = best >= 0 if farthest else np.isfinite(t)
    if farthest:
        t[~found] = -np.inf
    flat = np.where(found, best & low, 0) * w_n + np.arange(w_n, dtype=np.int32)  # index into (m, W) tables
    hit_ids = np.where(found, np.take(cand_ids, flat), -1).astype(np.int32)
    axis = None
    if axes is not None:
        flat = flat.reshape(tsz, tsz, w_n)
        j_part = flat - np.arange(w_n, dtype=np.int32)  # j * W
        rows = (j_part * tsz + np.arange(tsz, dtype=np.int32)[:, None, None] * w_n) + np.arange(w_n, dtype=np.int32)
        cols = (j_part * tsz + np.arange(tsz, dtype=np.int32)[None, :, None] * w_n) + np.arange(w_n, dtype=np.int32)
        entry_row, entry_col = np.take(nc_all, rows), np.take(nb_all, cols)
        by_row = entry_row >= entry_col
        which = np.where(by_row, 2, np.where(np.take(from_a, cols), 0, 1)).reshape(tsz * tsz, w_n)
        ax = np.ascontiguousarray(axes[perm].T.astype(np.int8))  # (3, W)
        axis = ax[which, np.arange(w_n)]
        # the exact entry distance of the box found
        t = np.where(found, np.maximum(entry_row, entry_col).reshape(tsz * tsz, w_n), t)
    return perm, t, hit_ids, axis


def cast_skyboxes(scene: Scene, origins: np.ndarray, size: int, max_rooms: int = 12):
    """Cast the skybox rays of several cameras (the rays of ``skybox_rays(size)``, face k = 0..5).

    Args:
        scene: the house.
        origins: (V, 3) camera positions in metres.
        size: face size S in pixels.
        max_rooms: the most rooms a ray may cross before it is reported as a miss.

    Returns:
        t: (V, 6, S, S) float32 distance in metres to the first hit (inf for a miss).
        box: (V, 6, S, S) int32 index of the box hit, -1 for a miss.
        axis: (V, 6, S, S) int8 world axis (0 x, 1 y, 2 z) of the normal of the face hit.
    """
    origins = np.asarray(origins, dtype=np.float64).reshape(-1, 3)
    geo = face_geometry(int(size))
    tb = _tables(scene, geo)
    v_n, tsz, n = len(origins), geo.tile, geo.n
    per_vp = 6 * n * n
    px = tsz * tsz
    n_tiles = v_n * per_vp
    # Per-pixel results, pixel-in-tile major: [q, tile] with tile = v * per_vp + ftile.
    t_best = np.full((px, n_tiles), np.inf, dtype=np.float32)
    box = np.full((px, n_tiles), -1, dtype=np.int32)
    axis = np.zeros((px, n_tiles), dtype=np.int8)
    oo_all = _oriented(geo, origins, origins).reshape(v_n * 6, 6)  # row v * 6 + k
    world_axes = np.stack([geo.major, geo.col_axis, geo.row_axis], axis=1)  # (6, 3) view, column, row
    box_ids = tb.box_ids.astype(np.int32)
    portal_to = tb.portal_to.astype(np.int32)
    room0 = locate(scene, origins)
    items = np.flatnonzero(np.repeat(room0 >= 0, per_vp))  # tile ids
    item_room = np.repeat(room0, per_vp)[items]
    pix_room = None  # [q, tile] room each pixel's ray is walking; None: the first room of all
    for _ in range(max_rooms):
        if not len(items):
            break
        vp, ftile = items // per_vp, items % per_vp
        face = ftile // (n * n)
        oo = oo_all[vp * 6 + face]
        rel, keep = _candidates(geo, tb.boxes, oo, ftile, item_room * 6 + face)
        order, t, b, a = _nearest_in_tiles(geo, rel, keep, ftile, box_ids[item_room], world_axes[face])
        cols = items[order]
        hit = np.isfinite(t)
        if pix_room is None:  # every pixel of these tiles walks this room
            t_best[:, cols], box[:, cols], axis[:, cols] = t, b, a
            out = ~hit
        else:
            mine = pix_room[:, cols] == item_room[order]
            hit &= mine
            q, c = np.nonzero(hit)
            t_best[q, cols[c]], box[q, cols[c]], axis[q, cols[c]] = t[q, c], b[q, c], a[q, c]
            out = mine & ~hit
        leaving = np.flatnonzero(out.any(axis=0))  # columns with rays that left the room
        if not len(leaving):
            break
        # Rays that met nothing left the room through one of its openings: find which.
        w = order[leaving]
        rel, keep = _candidates(geo, tb.portals, oo[w], ftile[w], item_room[w] * 6 + face[w])
        n_open = keep.sum(axis=1)
        target = np.full((px, len(w)), -1, dtype=np.int32)
        one = np.flatnonzero(n_open == 1)
        target[:, one] = portal_to[item_room[w[one]], np.argmax(keep[one], axis=1)]
        several = np.flatnonzero(n_open > 1)
        if len(several):
            o2, _, through, _ = _nearest_in_tiles(geo, rel[several], keep[several], ftile[w[several]],
                                                  portal_to[item_room[w[several]]], farthest=True)
            target[:, several[o2]] = through
        out = out[:, leaving]
        lost = out & (target < 0)
        if lost.any():  # not expected in a closed house; the reference caster decides
            q, c = np.nonzero(lost)
            _finish_with_cast(scene, geo, origins, cols[leaving][c], q, t_best, box, axis, per_vp)
            out &= ~lost
        if pix_room is None:
            pix_room = np.full((px, n_tiles), -1, dtype=np.int32)
        else:
            pix_room[:, cols] = -1  # settled, or moved on below
        q, c = np.nonzero(out)
        nxt = target[q, c]
        tiles = cols[leaving][c]
        pix_room[q, tiles] = nxt
        n_rooms = len(scene.room_lo)
        codes = np.unique(tiles.astype(np.int64) * n_rooms + nxt)
        items, item_room = codes // n_rooms, codes % n_rooms
    shape = (tsz, tsz, v_n, 6, n, n)

    def image(x):  # [row in tile, col in tile, v, k, tile row, tile col] -> [v, k, row, col]
        return x.reshape(shape).transpose(2, 3, 4, 0, 5, 1).reshape(v_n, 6, geo.size, geo.size)

    return image(t_best) * geo.scale[None], image(box), image(axis)


def _finish_with_cast(scene, geo, origins, tiles, q, t_best, box, axis, per_vp) -> None:
    """Cast pixels (tile ids, pixel in tile) with :func:`~vln.synthetic.render.cast` instead."""
    n, tsz = geo.n, geo.tile
    ftile = tiles % per_vp
    k, g = ftile // (n * n), ftile % (n * n)
    row, col = (g // n) * tsz + q // tsz, (g % n) * tsz + q % tsz
    dirs = geo.dirs[k, row, col]
    unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    vp = tiles // per_vp
    for v in np.unique(vp):
        s = vp == v
        t, b = cast(scene, origins[v], unit[s])
        t_best[q[s], tiles[s]] = t / geo.scale[k[s], row[s], col[s]]
        box[q[s], tiles[s]] = b
        hit = b >= 0
        p = origins[v] + t[:, None] * unit[s]  # the face the hit point lies on
        gap = np.minimum(np.abs(p - scene.lo[np.where(hit, b, 0)]), np.abs(p - scene.hi[np.where(hit, b, 0)]))
        axis[q[s], tiles[s]] = np.argmin(gap, axis=1)


__all__ = ["cast_skyboxes", "face_geometry", "FaceGeometry"]
