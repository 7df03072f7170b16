"""features.weights through the registry: every weights format a researcher holds, where they are
looked for, the offline error, and the provenance each encoder reports."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from clip_archives import write_tiny_clip
from features.encoders import WeightsUnavailableError, get_encoder
from features.registry import get_spec
from features.weights import is_torchscript_archive, read_state_dict


@pytest.fixture
def tiny_rn(tiny_clip_rn):
    return tiny_clip_rn


def encode(files, weights, images):
    enc = get_encoder(str(files["spec"]), weights=str(weights), device="cpu")
    return enc, enc(images, grid=True)


def test_openai_torchscript_archive_gives_the_features_of_the_same_state_dict(tiny_rn):
    """The archive (OpenAI's layout, float16 weights) and the open_clip .bin / .safetensors of the
    same values give identical pooled and grid features through the registry."""
    assert is_torchscript_archive(tiny_rn["openai"]) and not is_torchscript_archive(tiny_rn["bin"])
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
    enc, (pooled, grid) = encode(tiny_rn, tiny_rn["openai"], images)
    assert pooled.shape == (3, 64) and grid.shape == (3, 512, 2, 2)
    assert not enc.random_weights and enc.weights == "tiny_clip_rn.pt" and len(enc.weights_sha256) == 64
    for fmt in ("bin", "safetensors"):
        _, (p2, g2) = encode(tiny_rn, tiny_rn[fmt], images)
        assert torch.equal(p2, pooled) and torch.equal(g2, grid), fmt
    # random weights would differ: the file really was read
    rnd = get_encoder(str(tiny_rn["spec"]), weights="random", device="cpu")
    assert not torch.allclose(rnd(images), pooled, atol=1e-3)


def test_archive_is_what_open_clips_openai_loader_reads(tiny_rn):
    import open_clip

    model = open_clip.load_openai_model(str(tiny_rn["openai"]), device="cpu")
    ours = read_state_dict(tiny_rn["openai"])
    theirs = model.state_dict()
    assert set(ours) == set(theirs) and "input_resolution" not in ours
    assert ours["visual.conv1.weight"].dtype == torch.float16  # as OpenAI's files hold it
    assert all(torch.equal(ours[k].float(), theirs[k].float()) for k in ours)


def test_vit_archive_loads_too(tmp_path):
    files = write_tiny_clip(tmp_path, kind="vit")
    images = torch.rand(2, 3, 64, 64) * 255
    _, (pooled, grid) = encode(files, files["openai"], images)
    _, (p2, g2) = encode(files, files["safetensors"], images)
    assert grid.shape == (2, 64, 2, 2) and torch.equal(p2, pooled) and torch.equal(g2, grid)


def test_weights_dir_finds_each_accepted_layout(tiny_rn, tmp_path, monkeypatch):
    """$CLIPVIL_WEIGHTS_DIR holding <file>.pt, a <stem>/ snapshot folder, or a Hugging Face hub cache."""
    spec_path = str(tiny_rn["spec"])
    monkeypatch.setenv("CLIPVIL_WEIGHTS_DIR", str(tiny_rn["openai"].parent))
    assert get_encoder(spec_path, device="cpu").weights == "tiny_clip_rn.pt"
    snap = tmp_path / "snap"
    (snap / "tiny_clip_rn").mkdir(parents=True)
    os.symlink(tiny_rn["safetensors"], snap / "tiny_clip_rn" / "open_clip_model.safetensors")
    monkeypatch.setenv("CLIPVIL_WEIGHTS_DIR", str(snap))
    assert get_encoder(spec_path, device="cpu").weights == "open_clip_model.safetensors"
    # a folder passed as --weights: the snapshot itself
    assert get_encoder(spec_path, weights=str(snap / "tiny_clip_rn"), device="cpu").weights_sha256 == \
        get_encoder(spec_path, weights=str(tiny_rn["safetensors"]), device="cpu").weights_sha256
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("CLIPVIL_WEIGHTS_DIR", str(empty))
    with pytest.raises(WeightsUnavailableError) as err:
        get_encoder(spec_path, device="cpu")
    assert f"no weights in CLIPVIL_WEIGHTS_DIR={empty}: expected 'tiny_clip_rn.pt'" in str(err.value)
    assert "--weights PATH" in str(err.value)


def test_hub_cache_is_read_without_network(tiny_rn, tmp_path, monkeypatch):
    """A pre-filled Hugging Face cache (the layout huggingface_hub writes) serves the default tag
    with no network, as with HF_HUB_OFFLINE=1: here RN50's ``openai`` entry holds the tiny weights."""
    from features.encoders import build_open_clip, open_clip_sources

    monkeypatch.delenv("CLIPVIL_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "hub" / "models--timm--resnet50_clip.openai"
    (repo / "snapshots" / ("a" * 40)).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    os.symlink(tiny_rn["safetensors"], repo / "snapshots" / ("a" * 40) / "open_clip_model.safetensors")
    assert open_clip_sources(get_spec("clip_r50"))("openai").hf_files == (
        ("timm/resnet50_clip.openai", "open_clip_model.safetensors"),
        ("timm/resnet50_clip.openai", "open_clip_pytorch_model.bin"))
    spec = dataclasses.replace(tiny_rn["spec_obj"], weights_tag="openai")  # RN50-quickgelu's tag
    enc = build_open_clip(spec, None, cache_dir=tmp_path / "hub")
    assert enc.weights == "openai" and enc.weights_path.endswith("open_clip_model.safetensors")
    images = torch.rand(2, 3, 64, 64) * 255
    torch.testing.assert_close(enc(images), build_open_clip(tiny_rn["spec_obj"], tiny_rn["openai"])(images))
    # the cache folder as CLIPVIL_WEIGHTS_DIR works too
    monkeypatch.setenv("CLIPVIL_WEIGHTS_DIR", str(tmp_path / "hub"))
    assert build_open_clip(dataclasses.replace(spec, weights_file="RN50.pt"), None).weights_sha256 == enc.weights_sha256


def test_a_file_of_another_architecture_is_one_clear_error(tiny_rn, tmp_path):
    from clip_archives import tiny_clip_spec
    from features.encoders import build_open_clip

    with pytest.raises(WeightsUnavailableError, match=r"tiny_clip_rn\.pt does not hold ViT-B-32-quickgelu weights: "
                                                      r"\d+ missing \(first visual\.class_embedding\)"):
        build_open_clip(tiny_clip_spec("vit"), str(tiny_rn["openai"]))
    junk = tmp_path / "RN50.pt"
    junk.write_bytes(b"not weights")
    with pytest.raises(ValueError, match="RN50.pt: is not a weights file"):
        get_encoder("clip_r50", weights=str(junk), device="cpu")
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        get_encoder("clip_r50", weights=str(tmp_path / "nope.pt"), device="cpu")


def test_torchvision_resnet_reads_its_imagenet_file(tmp_path, monkeypatch):
    import torchvision

    spec = dataclasses.replace(get_spec("imagenet_r152"), name="tiny_r18", architecture="resnet18",
                               weights_file="resnet18-f37072fd.pth", pooled_dim=512, grid_dim=512)
    net = torchvision.models.resnet18(weights=None).eval()
    torch.save(net.state_dict(), tmp_path / "resnet18-f37072fd.pth")
    monkeypatch.setenv("CLIPVIL_WEIGHTS_DIR", str(tmp_path))
    from features.encoders import build_torchvision_resnet

    enc = build_torchvision_resnet(spec, None)
    assert enc.weights == "resnet18-f37072fd.pth" and not enc.random_weights
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = torch.nn.Sequential(*list(net.children())[:-2])(enc.normalize(x * 255))
    torch.testing.assert_close(enc(x * 255, grid=True)[1], ref)


@pytest.mark.slow
def test_offline_without_weights_fails_at_once_with_one_message(tmp_path):
    """No network and no local file: one error line, in seconds, naming the file expected, the
    folders searched and the flag / variable; no hub retries, no warning printed.
    (A subprocess: huggingface_hub reads HF_HOME and HF_ENDPOINT at import time.)"""
    code = ("import logging, os, time; logging.basicConfig(level=logging.INFO)\n"
            "import open_clip, torchvision  # imports are not what is timed\n"
            "from features.encoders import get_encoder, WeightsUnavailableError\n"
            "for offline in ('1', ''):  # HF_HUB_OFFLINE=1, then a hub host that does not resolve\n"
            "    os.environ['HF_HUB_OFFLINE'] = offline\n"
            "    t = time.perf_counter()\n"
            "    try:\n"
            "        get_encoder('clip_r50x4', device='cpu')\n"
            "    except WeightsUnavailableError as e:\n"
            "        print('ERROR:', e); print('SECONDS', time.perf_counter() - t)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CLIPVIL_WEIGHTS_DIR", "HF_HUB_OFFLINE")}
    env.update(HF_HOME=str(tmp_path / "hf"), HOME=str(tmp_path), HF_ENDPOINT="https://no-such-host.invalid")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    lines = run.stdout.splitlines()
    assert len(lines) == 4, run.stdout + run.stderr
    for error, seconds in (lines[:2], lines[2:]):
        assert error.startswith("ERROR:"), run.stdout + run.stderr
        assert "'RN50x4.pt'" in error and "CLIPVIL_WEIGHTS_DIR" in error and "--weights PATH" in error
        assert str(tmp_path / "hf" / "hub") in error  # the folder searched
        assert float(seconds.split()[1]) < 5.0  # was 59 s of hub retries
    assert "WARNING" not in run.stderr and "Retrying" not in run.stderr, run.stderr


def test_extraction_from_the_archive_records_the_file_and_equals_the_state_dict_store(tiny_rn, tmp_path):
    """scripts/extract_features.py with a spec file and OpenAI's format: the store records the
    archive's name and SHA-256, and holds the features the .safetensors of the same weights gives."""
    from env_fixtures import write_data_root
    from features.provenance import sha256_file
    from features.store import open_feature_store
    from scripts.extract_features import main

    root = write_data_root(tmp_path / "data", with_features=False)
    common = ["--encoder", str(tiny_rn["spec"]), "--scans-dir", str(root / "scans"), "--connectivity",
              str(root / "connectivity"), "--device", "cpu", "--no-progress", "--limit", "3"]
    main(common + ["--weights", str(tiny_rn["openai"]), "--out", str(tmp_path / "a.feats")])
    main(common + ["--weights", str(tiny_rn["safetensors"]), "--out", str(tmp_path / "b.feats")])
    a, b = open_feature_store(tmp_path / "a.feats"), open_feature_store(tmp_path / "b.feats")
    assert a.provenance == {"name": "tiny_clip_rn", "architecture": "RN50-quickgelu", "weights": "tiny_clip_rn.pt",
                            "weights_sha256": sha256_file(tiny_rn["openai"]), "random": False}
    assert len(a) == 3 and a.dim == 64
    np.testing.assert_array_equal(a.as_array(), b.as_array())


def test_a_released_file_is_recorded_as_its_tag(tiny_rn):
    """OpenAI publishes each file's SHA-256 (torchvision the first 8 digits): such a file, under
    any name, is recorded as the ``openai`` tag, so stores from RN50x4.pt and from the tag agree."""
    from features.encoders import open_clip_sources
    from features.provenance import sha256_file
    from features.weights import CacheSources, locate_weights

    digest = sha256_file(tiny_rn["openai"])
    spec = dataclasses.replace(tiny_rn["spec_obj"], weights_tag="openai")
    known = locate_weights(spec, tiny_rn["openai"], lambda tag: CacheSources(known={digest[:8]: "openai"}))
    assert (known.label, known.sha256) == ("openai", digest)
    assert locate_weights(spec, tiny_rn["openai"], lambda tag: CacheSources()).label == "tiny_clip_rn.pt"
    official = open_clip_sources(get_spec("clip_r50x4"))("openai").known
    assert official == {"7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd": "openai"}
