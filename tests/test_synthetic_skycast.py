"""The fast skybox caster and the batched rendering, JPEG and annotation paths of the generator.

Each fast path is checked against the straightforward implementation it replaces: the per-ray
room walk :func:`vln.synthetic.render.cast`, one ``PIL`` call per JPEG, one annotation per
viewpoint.
"""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from vln.synthetic.render import (_slabs, cast, encode_jpeg, encode_jpegs, render_skyboxes, segment_blocked,
                                  segments_blocked, shade, skybox_rays)
from vln.synthetic.semantics import (N_VIEWS, VIEW_H, VIEW_W, instance_fractions, view_box_counts, view_fractions,
                                     view_pixel_index, view_semantics)
from vln.synthetic.skycast import cast_skyboxes, face_geometry
from vln.synthetic.vocab import CLASSES
from vln.synthetic.world import build_house, render_house


@pytest.fixture(scope="module")
def houses():
    """Two one-floor houses and a two-floor house (stairs, a stairwell between the floors)."""
    rng = np.random.default_rng(21)
    out = [build_house(rng, f"house{i:06d}") for i in range(2)]
    rng = np.random.default_rng(0)
    for i in range(40):
        b = build_house(rng, f"stairs{i:05d}")
        if b.house.stairs is not None:
            return out + [b]
    pytest.fail("no two-floor house in 40 draws")


def _grazing(scene, origin, direction, box) -> bool:
    """Whether a ray only touches ``box`` along an edge (entry and exit within 0.1 mm)."""
    tn, tf = _slabs(origin, direction[None], scene.lo[box:box + 1], scene.hi[box:box + 1])
    return abs(float(tf[0, 0] - tn[0, 0])) < 1e-4


@pytest.mark.parametrize("size", [16, 30])
def test_cast_skyboxes_finds_the_boxes_cast_finds(houses, size):
    dirs = skybox_rays(size)
    checked = differ = 0
    for b in houses:
        origins = np.array([v.pos for v in b.vps])
        t, box, _ = cast_skyboxes(b.scene, origins, size)
        assert t.shape == box.shape == (len(origins), 6, size, size) and t.dtype == np.float32
        for i, o in enumerate(origins):
            tr, br = cast(b.scene, o, dirs)
            got, tt = box[i].reshape(-1), t[i].reshape(-1)
            assert (got >= 0).all(), "houses are closed: every ray hits something"
            same = got == br
            # Only rays grazing a box edge, or meeting two boxes at the same distance, may differ
            # (float32 ties); elsewhere the same box at the same distance.
            for p in np.flatnonzero(~same):
                tie = abs(float(tt[p]) - tr[p]) <= 1e-4 * tr[p]
                assert tie or _grazing(b.scene, o, dirs[p], got[p]) or _grazing(b.scene, o, dirs[p], br[p]), (
                    f"{b.house.scan_id} viewpoint {i} pixel {p}: box {got[p]} at {tt[p]} m, "
                    f"cast finds {br[p]} at {tr[p]} m")
            np.testing.assert_allclose(tt[same], tr[same], rtol=1e-5, atol=1e-5)
            checked += len(got)
            differ += int((~same).sum())
    assert checked > 50 * 6 * size * size and differ < 0.002 * checked


def test_rays_leaving_through_unknown_openings_are_cast_the_slow_way(houses):
    """Without its portal list the caster cannot follow a ray into the next room: ``cast`` does."""
    b = houses[2]
    blind = dataclasses.replace(b.scene, portal_lo=np.zeros((0, 3)), portal_hi=np.zeros((0, 3)),
                                portal_rooms=np.zeros((0, 2), dtype=np.int64), cache={})
    origins = np.array([v.pos for v in b.vps[:6]] + [[-50.0, -50.0, 1.5]])  # the last outside the house
    t, box, _ = cast_skyboxes(blind, origins, 16)
    t_ref, box_ref, _ = cast_skyboxes(b.scene, origins[:-1], 16)
    assert (box[:-1] == box_ref).mean() > 0.998
    np.testing.assert_allclose(t[:-1][box[:-1] == box_ref], t_ref[box[:-1] == box_ref], rtol=1e-5)
    assert (box[-1] == -1).all() and np.isinf(t[-1]).all()


def test_axis_is_the_face_the_ray_hits(houses):
    """The reported normal axis is the one of the box face the hit point lies on."""
    size = 16
    dirs = skybox_rays(size)
    for b in houses:
        origins = np.array([v.pos for v in b.vps[:8]])
        t, box, axis = cast_skyboxes(b.scene, origins, size)
        for i, o in enumerate(origins):
            bx, ax = box[i].reshape(-1), axis[i].reshape(-1)
            p = o + t[i].reshape(-1, 1).astype(np.float64) * dirs
            gap = np.minimum(np.abs(p - b.scene.lo[bx]), np.abs(p - b.scene.hi[bx]))
            assert (gap[np.arange(len(bx)), ax] < 1e-4).mean() > 0.999
            assert set(np.unique(ax)) == {0, 1, 2}


def test_batches_of_cameras_equal_one_camera_at_a_time(houses):
    b = houses[2]
    origins = np.array([v.pos for v in b.vps])
    t, box, axis = cast_skyboxes(b.scene, origins, 32)
    for i in (0, len(origins) // 2, len(origins) - 1):
        t1, box1, axis1 = cast_skyboxes(b.scene, origins[i], 32)
        np.testing.assert_array_equal(box1[0], box[i])
        np.testing.assert_array_equal(t1[0], t[i])
        np.testing.assert_array_equal(axis1[0], axis[i])


def test_face_geometry_tiles_and_bad_sizes():
    assert face_geometry(32).tile == 8 and face_geometry(30).tile == 6 and face_geometry(11).tile == 1
    g = face_geometry(12)
    d = skybox_rays(12).reshape(6, 12, 12, 3)
    np.testing.assert_allclose(g.dirs / np.linalg.norm(g.dirs, axis=3, keepdims=True), d, atol=1e-12)
    with pytest.raises(ValueError, match="face size"):
        face_geometry(0)


def test_render_skyboxes_shades_like_the_reference(houses):
    b = houses[0]
    origins = np.array([v.pos for v in b.vps[:4]])
    rgb, box = render_skyboxes(b.scene, origins, 32)
    assert rgb.shape == (4, 6, 32, 32, 3) and rgb.dtype == np.uint8
    dirs = skybox_rays(32)
    for i, o in enumerate(origins):
        t, bx = cast(b.scene, o, dirs)
        ref = shade(b.scene, o, dirs, t, bx).reshape(6, 32, 32, 3).astype(int)
        close = np.abs(rgb[i].astype(int) - ref).max(axis=-1) <= 1
        assert close.mean() > 0.998
    # images depend on where the camera stands
    assert not np.array_equal(rgb[0], rgb[1])


@pytest.mark.parametrize("size", [16, 32, 24])
def test_encode_jpegs_gives_the_bytes_of_one_call_per_image(size):
    rng = np.random.default_rng(size)
    base = rng.integers(0, 256, (7, size // 4, size // 4, 3), dtype=np.uint8)
    images = np.stack([np.asarray(Image.fromarray(x).resize((size, size), Image.BILINEAR)) for x in base])
    got = encode_jpegs(images)
    assert len(got) == 7
    for img, data in zip(images, got):
        assert data == encode_jpeg(img)
        decoded = np.asarray(Image.open(io.BytesIO(data)))
        assert decoded.shape == (size, size, 3) and np.abs(decoded.astype(int) - img).mean() < 12
    assert encode_jpegs(images[:0]) == []


def test_segments_blocked_agrees_with_cast(houses):
    rng = np.random.default_rng(1)
    for b in houses:
        pos = np.array([v.pos for v in b.vps])
        a = pos[rng.integers(len(pos), size=300)]
        e = pos[rng.integers(len(pos), size=300)] + rng.normal(0, 0.5, (300, 3))
        blocked = segments_blocked(b.scene, a, e)
        for i in range(len(a)):
            v = e[i] - a[i]
            length = np.linalg.norm(v)
            if length < 1e-6:
                continue
            t, _ = cast(b.scene, a[i], (v / length)[None])
            assert blocked[i] == (t[0] < length - 1e-4)
        assert 0.1 < blocked.mean() < 0.95
        np.testing.assert_array_equal(segment_blocked(b.scene, a[0], e[:20]),
                                      segments_blocked(b.scene, a[:1].repeat(20, 0), e[:20]))
    with pytest.raises(ValueError, match="same shape"):
        segments_blocked(houses[0].scene, np.zeros((2, 3)), np.zeros((3, 3)))


def test_batched_annotations_equal_one_viewpoint_at_a_time(houses):
    b = houses[2]
    sc = b.scene
    origins = np.array([v.pos for v in b.vps])
    _, box, _ = cast_skyboxes(sc, origins, 32)
    n_obj = len(b.house.objects)
    fractions, visibility = view_semantics(box, sc.cls, sc.colour_cls, sc.instance, n_obj)
    assert fractions.shape == (len(origins), N_VIEWS, len(CLASSES)) and fractions.dtype == np.float32
    assert visibility.shape == (len(origins), n_obj) and visibility.max() > 0
    np.testing.assert_array_equal(fractions, view_fractions(box, sc.cls, sc.colour_cls))
    np.testing.assert_allclose(visibility, instance_fractions(box, sc.instance, n_obj))
    counts = view_box_counts(box, len(sc.lo))
    assert (counts.sum(-1) == VIEW_W * VIEW_H).all()
    for i in (0, len(origins) - 1):
        # one viewpoint: count the view rays by hand
        rays = box[i].reshape(-1)[view_pixel_index(32)]  # (36, H * W)
        for ix in (0, 13, 35):
            ref = np.bincount(rays[ix] + 1, minlength=len(sc.lo) + 1)
            np.testing.assert_array_equal(counts[i, ix], ref)
        np.testing.assert_array_equal(view_fractions(box[i], sc.cls, sc.colour_cls), fractions[i])
    with pytest.raises(ValueError, match="semantic skyboxes"):
        view_box_counts(box[0, 0], len(sc.lo))


def test_annotations_do_not_depend_on_the_image_size(houses, tmp_path):
    """Annotations are always read from 32 px faces, whatever size the JPEGs are."""
    b = houses[0]
    f16, v16 = render_house(tmp_path / "a", b, 16)
    f32, v32 = render_house(tmp_path / "b", b, 32)
    np.testing.assert_array_equal(f16, f32)
    np.testing.assert_array_equal(v16, v32)
    img = Image.open(tmp_path / "a" / "scans" / b.house.scan_id / "matterport_skybox_images"
                     / f"{b.vps[0].id}_skybox0_sami.jpg")
    assert img.size == (16, 16)
