"""Grad-CAM of CLIP ResNets and attention x gradient relevance of CLIP ViTs (``features/gradcam.py``,
``scripts/gradcam.py``) on small random CLIPs: the grid shape, non-negative maps that follow the
gradient (checked against finite differences of the similarity), PNG overlays."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clip_text_helpers import load, tiny_text_clips  # noqa: F401 - fixture
from vl_helpers import small_corpus, small_world  # noqa: F401 - fixtures


def _image(seed: int = 0, size: int = 128) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)


def test_gradcam_is_the_gradient_weighted_last_block_checked_by_finite_differences(tiny_text_clips):
    from features.gradcam import explain, gradcam

    clip = load(tiny_text_clips["rn"])
    pixels = _image()
    ex = explain(clip, pixels, "a red sofa")
    assert ex.method == "gradcam" and ex.map.shape == (4, 4) and ex.map.dtype == torch.float32
    assert (ex.map >= 0).all() and ex.map.max() > 0
    # the formula on the captured block in float64: alpha_k = (1 / HW) sum_ij ds/dA_kij is the
    # derivative of s along a uniform shift of channel k, measured here by central differences
    visual = copy.deepcopy(clip.clip.visual).double()
    text = clip.encode_texts(["a red sofa"])[0].double()
    x = clip.image.normalize(pixels[None]).double()
    with torch.no_grad():
        acts = visual.forward_intermediates(x, indices=1, intermediates_only=True)["image_intermediates"][-1]

        def sim(a):
            return float(F.normalize(visual.attnpool(a), dim=-1)[0] @ text)

        eps, (_, c, h, w) = 1e-4, acts.shape
        shifts = torch.eye(c, dtype=torch.float64)[:, :, None, None].expand(c, c, h, w) * eps  # one per channel
        plus = F.normalize(visual.attnpool(acts + shifts), dim=-1) @ text
        minus = F.normalize(visual.attnpool(acts - shifts), dim=-1) @ text
        alpha = (plus - minus) / (2 * eps * h * w)
    manual = F.relu((alpha[None, :, None, None] * acts).sum(dim=1))[0].float()
    torch.testing.assert_close(ex.map, manual, atol=1e-3 * float(manual.max()), rtol=1e-3)
    assert ex.similarity == pytest.approx(sim(acts), abs=1e-5)
    # the same function on the float64 tower gives the map of the float32 one
    cam64, _ = gradcam(visual, x, text)
    torch.testing.assert_close(cam64, ex.map, atol=1e-4 * float(ex.map.max()), rtol=1e-3)


def test_maps_follow_the_gradient_of_the_text(tiny_text_clips):
    """The opposite target (-s) flips every alpha: the ReLU keeps the complementary cells."""
    from features.gradcam import attention_relevance, explain, gradcam

    for kind, fn in (("rn", gradcam), ("vit", attention_relevance)):
        clip = load(tiny_text_clips[kind])
        pixels = _image(1)
        x = clip.image.normalize(pixels[None])
        t = clip.encode_texts(["a red sofa"])[0].clone()
        pos, s = fn(clip.clip.visual, x, t)
        neg, s_neg = fn(clip.clip.visual, x, -t)
        assert s_neg == pytest.approx(-s, abs=1e-6)
        assert not torch.allclose(pos, neg)
        other = explain(clip, pixels, "the kitchen window on the left").map
        assert not torch.allclose(pos, other), kind
        if kind == "rn":
            assert (pos * neg == 0).all() and ((pos > 0) | (neg > 0)).any()


def test_vit_relevance_rolls_attention_times_gradient_over_blocks(tiny_text_clips):
    from features.gradcam import _capture_attention, explain

    clip = load(tiny_text_clips["vit"])
    pixels = _image(2)
    ex = explain(clip, pixels, "a red sofa")
    assert ex.method == "relevance" and ex.map.shape == (4, 4) and (ex.map >= 0).all() and ex.map.max() > 0
    visual = clip.clip.visual
    blocks = list(visual.transformer.resblocks)
    assert all(not b.attn._forward_hooks and not b.attn._forward_pre_hooks for b in blocks)  # hooks removed
    # the similarity is the model's own (hooks change nothing), the captured maps are probabilities
    t = clip.encode_texts(["a red sofa"])[0].clone()
    assert ex.similarity == pytest.approx(float(clip.encode_images(pixels[None])[0] @ t), abs=1e-5)
    x = clip.image.normalize(pixels[None]).requires_grad_(True)
    captured, handles = _capture_attention(blocks)
    try:
        s = F.normalize(visual(x), dim=-1)[0] @ t
        grads = torch.autograd.grad(s, captured)
    finally:
        for h in handles:
            h.remove()
    n = 1 + 16
    assert len(captured) == 2 and all(a.shape == (1, n, n) for a in captured)  # (batch x heads, N, N)
    torch.testing.assert_close(captured[0].sum(-1), torch.ones(1, n))
    # the rollout by hand: R = I; R += mean_h ReLU(dA * A) R per block; class-token row over the patches
    r = torch.eye(n)
    for a, g in zip(captured, grads):
        r = r + (g * a).clamp(min=0).mean(0) @ r
    torch.testing.assert_close(ex.map, r[0, 1:].reshape(4, 4).detach())


def test_overlay_png_is_written_atomically_and_readable(tiny_text_clips, tmp_path):
    from PIL import Image

    from features.gradcam import overlay, save_png

    image = Image.fromarray(np.full((128, 128, 3), 128, np.uint8))
    cam = torch.zeros(4, 4)
    cam[0, 0] = 1.0
    save_png(overlay(image, cam), tmp_path / "a" / "cam.png")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["cam.png"]  # no temporary file left
    with Image.open(tmp_path / "a" / "cam.png") as im:
        assert im.format == "PNG" and im.size == (128, 128) and im.mode == "RGB"
        px = np.asarray(im).astype(int)
    # jet's dark red (the maximum) at the top-left corner, dark blue (zero) far from it, half-blended over grey
    assert px[0, 0].tolist() == [128, 64, 64] and px[127, 127].tolist() == [64, 64, 128]


def test_script_one_image_and_a_results_file(small_corpus, tiny_text_clips, tmp_path):  # noqa: F811
    from PIL import Image

    from scripts.gradcam import main
    from vln.errors import DataFormatError

    _, corpus, _ = small_corpus
    spec = str(tiny_text_clips["rn"]["spec"])
    image = sorted((corpus / "images" / "val2014").iterdir())[0]
    out = main(["--encoder", spec, "--weights", "random", "--image", str(image), "--text", "a sofa",
                "--out", str(tmp_path / "one.png")])
    with Image.open(tmp_path / "one.png") as im:
        assert im.size == (128, 128)
    assert out["entries"][0]["method"] == "gradcam" and np.array(out["entries"][0]["map"]).shape == (4, 4)
    questions = json.loads((corpus / "vqa" / "v2_OpenEnded_mscoco_val2014_questions.json").read_text())["questions"]
    results = [{"question_id": q["question_id"], "answer": "red"} for q in questions[:3]]
    (tmp_path / "r.json").write_text(json.dumps(results))
    out = main(["--encoder", str(tiny_text_clips["vit"]["spec"]), "--weights", "random", "--results",
                str(tmp_path / "r.json"), "--data-dir", str(corpus), "--out-dir", str(tmp_path / "cams")])
    assert sorted(p.name for p in (tmp_path / "cams").iterdir()) == sorted(
        [f"{r['question_id']}.png" for r in results] + ["gradcam.json"])
    assert out["entries"][0]["text"] == f"question: {questions[0]['question']} answer: red"
    assert json.loads((tmp_path / "cams" / "gradcam.json").read_text())["entries"][2]["method"] == "relevance"
    (tmp_path / "bad.json").write_text(json.dumps([{"question_id": -5, "answer": "red"}]))
    with pytest.raises(DataFormatError, match=r"bad\.json, record results\[0\], field 'question_id'"):
        main(["--encoder", spec, "--weights", "random", "--results", str(tmp_path / "bad.json"),
              "--data-dir", str(corpus), "--out-dir", str(tmp_path / "cams2")])
