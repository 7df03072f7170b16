"""``synthetic_semantic_grid``: corpus grids from ground truth, through the image grid store, with the
same ids and cells as a (random-weight) CLIP run on the corpus's rendered pixels."""
from __future__ import annotations

import numpy as np
import pytest

from features.grid_presets import make_preset
from features.image_store import ImageGridStore
from features.registry import get_spec
from features.semantic_grid import coverage_grid, instance_code, write_semantic_grid_store
from vlcorpus import read_label_map, read_scene_graphs
from vln.synthetic.vocab import CLASS_INDEX, CLASSES

from vl_helpers import small_corpus, small_world  # noqa: F401 - fixtures

N_CLASSES = len(CLASSES)


@pytest.fixture(scope="module")
def stores(small_corpus, tmp_path_factory):
    _, corpus, _ = small_corpus
    out = tmp_path_factory.mktemp("grids")
    return {p: ImageGridStore(write_semantic_grid_store(corpus, p, out / f"{p}.grids"), encoder="synthetic_semantic_grid")
            for p in ("vqa", "caption", "pretrain")}


def test_stores_hold_every_image_at_the_presets_cells(small_corpus, stores):
    _, corpus, summary = small_corpus
    n_images = sum(c["images"] for c in summary["counts"].values())
    spec = get_spec("synthetic_semantic_grid")
    assert spec.family == "annotation" and not spec.needs_pixels and spec.grid_dim == N_CLASSES + 16
    # 96 x 128 images: vqa 600 x 800 -> 18 x 25; caption 448 x 448 -> 14 x 14; pretrain 384 x 512 on 384 x 640
    shapes = {"vqa": (18, 25), "caption": (14, 14), "pretrain": (12, 20)}
    for p, store in stores.items():
        assert len(store) == n_images and store.meta["preset"] == make_preset(p).to_dict()
        rec = store.get_record("1")
        assert rec.grid.shape == (*shapes[p], spec.grid_dim)
        assert (rec.pooled is not None) == (p == "caption")
    mask = stores["pretrain"].get_record("1").mask
    assert mask[:, :16].all() and not mask[:, 16:].any()
    assert not stores["pretrain"].get("1")[:, 16:].any()


def test_cells_hold_the_classes_colours_and_instances_covering_them(small_corpus):
    _, corpus, _ = small_corpus
    graphs = read_scene_graphs(corpus, "train2014")
    from features.semantic_grid import segment_table

    preset = make_preset("caption")
    checked = 0
    for image_id, g in graphs.items():
        labels = read_label_map(corpus, "train2014", g["file_name"])
        grid, mask = coverage_grid(labels, segment_table(g, 0, 16), preset)
        assert mask.all()
        structure = grid[..., :CLASS_INDEX["colour:red"]].sum(-1)  # room and object classes: one per pixel
        hit = (labels > 0).mean()
        assert np.isclose(structure.mean(), hit, atol=1e-4) and structure.max() <= 1 + 1e-5
        for s in g["segments"]:
            if s["kind"] != "object" or s["pixels"] < 200:
                continue
            # the cell at the object's centre of mass: its class, its colour, its instance code
            ys, xs = np.nonzero(labels == s["label"])
            r, c = int(ys.mean() * 14 / labels.shape[0]), int(xs.mean() * 14 / labels.shape[1])
            cell = grid[r, c]
            share = cell[CLASS_INDEX[s["class"]]]
            assert share > 0 and np.isclose(cell[CLASS_INDEX[f"colour:{s['colour']}"]], share, atol=1e-5)
            code = instance_code(g["scan"], s["instance"], 16)
            assert cell[N_CLASSES:] @ code > 0
            checked += 1
    assert checked > 3
    assert not np.allclose(instance_code("a", 1, 16), instance_code("a", 2, 16))


def test_pixel_clip_on_the_rendered_images_gives_the_same_ids_and_cells(small_corpus, stores, tmp_path):
    torch = pytest.importorskip("torch")
    from features.grid_extract import extract_grids, list_images

    from grid_helpers import tiny_encoder

    _, corpus, _ = small_corpus
    torch.manual_seed(0)
    items = list_images(image_list=corpus / "image_list.txt")[:3]
    assert [i for i, _ in items] == ["1", "10", "11"]
    pixel = ImageGridStore(extract_grids(tiny_encoder("clip_r50x4"), items, tmp_path / "clip.grids",
                                         make_preset("pretrain"), workers=0, progress=False)["path"])
    for image_id, _ in items:
        ours, theirs = stores["pretrain"].get_record(image_id), pixel.get_record(image_id)
        assert ours.grid.shape[:2] == theirs.grid.shape[:2] and np.isfinite(theirs.grid).all()
        assert (ours.mask == theirs.mask).all()


def test_the_encoder_points_panorama_extraction_elsewhere():
    from features.semantic_grid import build_semantic_grid_encoder

    enc = build_semantic_grid_encoder(get_spec("synthetic_semantic_grid"), weights="seeded:5")
    assert enc.seed == 5 and enc.record()["weights"] == "seeded:5"
    with pytest.raises(ValueError, match="make_vl_corpus.py --grids"):
        enc.open("anywhere")


def test_ensure_writes_the_store_once_per_preset(small_world, tmp_path):  # noqa: F811
    from features.semantic_grid import default_grid_store_path, ensure_semantic_grid_store
    from vlcorpus import make_vl_corpus

    world, _ = small_world
    corpus = tmp_path / "vl"
    make_vl_corpus(world, corpus, image_size="48x64", viewpoints_per_house=1, headings=2)
    path = ensure_semantic_grid_store(corpus, "caption")
    assert path == default_grid_store_path(corpus, "caption") and len(ImageGridStore(path)) == 6
    stamp = (path / "index.json").stat().st_mtime_ns
    assert ensure_semantic_grid_store(corpus, "caption") == path
    assert (path / "index.json").stat().st_mtime_ns == stamp
    ensure_semantic_grid_store(corpus, "caption", seed=1)
    assert ImageGridStore(path).meta["encoder"]["weights"] == "seeded:1"
