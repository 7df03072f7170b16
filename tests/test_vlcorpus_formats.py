"""The synthetic V&L corpus on disk: every file in its official format, read back by the readers the
sibling packages use, house-disjoint splits, determinism, and the build-on-first-use entry point."""
from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from vlcorpus import (SPLITS, ensure_vl_corpus, make_vl_corpus, read_coco_captions, read_corpus_meta, read_gqa,
                      read_karpathy, read_label_map, read_lxmert, read_scene_graphs, read_snli_ve, read_vqa)
from vln.errors import DataFormatError

from vl_helpers import small_corpus, small_world  # noqa: F401 - fixtures

# Field lists of the public datasets (shared/reference/siblings.md and the datasets' own files).
OFFICIAL = {
    "vqa_question": {"image_id", "question", "question_id"},
    "vqa_annotation": {"question_id", "image_id", "question_type", "answer_type", "multiple_choice_answer", "answers"},
    "vqa_answer": {"answer", "answer_confidence", "answer_id"},
    "gqa": {"semantic", "entailed", "equivalent", "question", "imageId", "isBalanced", "groups", "answer",
            "semanticStr", "annotations", "types", "fullAnswer"},
    "karpathy_image": {"filepath", "sentids", "filename", "imgid", "split", "sentences", "cocoid"},
    "karpathy_sentence": {"tokens", "raw", "imgid", "sentid"},
    "coco_image": {"id", "file_name", "height", "width"},
    "coco_annotation": {"image_id", "id", "caption"},
    "lxmert": {"img_id", "sentf", "labelf"},
    "snli_ve": {"Flikr30kID", "pairID", "captionID", "sentence1", "sentence2", "gold_label", "annotator_labels"},
}


def tree_digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_vqa_files_have_the_official_fields_and_ten_answers(small_corpus):
    _, out, summary = small_corpus
    for split, names in SPLITS.items():
        folder = names["folder"]
        raw_q = json.loads((out / "vqa" / f"v2_OpenEnded_mscoco_{folder}_questions.json").read_text())
        raw_a = json.loads((out / "vqa" / f"v2_mscoco_{folder}_annotations.json").read_text())
        assert raw_q["data_subtype"] == raw_a["data_subtype"] == folder
        assert all(set(q) == OFFICIAL["vqa_question"] for q in raw_q["questions"])
        assert all(set(a) == OFFICIAL["vqa_annotation"] for a in raw_a["annotations"])
        questions, annotations = read_vqa(out / "vqa", folder)
        assert len(questions) == len(annotations) == summary["counts"][split]["questions"] > 0
        for q in questions:
            a = annotations[q["question_id"]]
            assert a["image_id"] == q["image_id"] and q["question_id"] // 1000 == q["image_id"]
            assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
            assert all(set(x) == OFFICIAL["vqa_answer"] for x in a["answers"])
            top, n = Counter(x["answer"] for x in a["answers"]).most_common(1)[0]
            assert top == a["multiple_choice_answer"] and n >= 5
    types = Counter(a["answer_type"] for a in read_vqa(out / "vqa", "train2014")[1].values())
    assert set(types) == {"yes/no", "number", "other"}


def test_annotator_disagreement_makes_the_official_rule_matter(small_corpus):
    """Some wrong answers are given by 1-3 annotators: min(#humans / 3, 1) gives them 0 < credit < 1."""
    _, out, _ = small_corpus
    partial = agreed = 0
    for folder in ("train2014", "val2014", "test2015"):
        for a in read_vqa(out / "vqa", folder)[1].values():
            counts = Counter(x["answer"] for x in a["answers"])
            partial += any(1 <= n <= 3 for ans, n in counts.items() if ans != a["multiple_choice_answer"])
            agreed += len(counts) == 1
    assert partial > 0 and agreed > 0


def test_gqa_captions_lxmert_snli_ve_read_back(small_corpus):
    _, out, summary = small_corpus
    karpathy = read_karpathy(out / "captions" / "dataset_coco.json")
    assert all(set(im) == OFFICIAL["karpathy_image"] for im in karpathy)
    assert {im["split"] for im in karpathy} == {"train", "val", "test"}
    for im in karpathy:
        assert len(im["sentences"]) == 5 and all(set(s) == OFFICIAL["karpathy_sentence"] for s in im["sentences"])
        assert im["sentids"] == [s["sentid"] for s in im["sentences"]]
        path = out / "images" / im["filepath"] / im["filename"]
        with Image.open(path) as pic:
            assert pic.format == "JPEG" and pic.size == (128, 96)
    for split, names in SPLITS.items():
        gqa = read_gqa(out / "gqa", names["gqa"])
        assert len(gqa) == summary["counts"][split]["gqa_questions"] > 0
        assert all(set(q) == OFFICIAL["gqa"] for q in gqa.values())
        raw = json.loads((out / "captions" / f"captions_{names['folder']}.json").read_text())
        assert raw["type"] == "captions" and all(set(a) == OFFICIAL["coco_annotation"] for a in raw["annotations"])
        assert all(set(i) == OFFICIAL["coco_image"] for i in raw["images"])
        images, refs = read_coco_captions(out / "captions" / f"captions_{names['folder']}.json")
        assert len(images) == summary["counts"][split]["images"] and all(len(r) == 5 for r in refs.values())
        lx = read_lxmert(out / "lxmert" / f"{names['lxmert']}.json")
        assert len(lx) == len(images) and all(set(d) == OFFICIAL["lxmert"] for d in lx)
        for d in lx:
            assert len(d["sentf"]["mscoco"]) == 5 and max(max(lab.values()) for lab in d["labelf"]["vqa"]) == 1.0
        pairs = read_snli_ve(out / "snli_ve" / f"snli_ve_{names['snli_ve']}.jsonl")
        assert all(set(p) == OFFICIAL["snli_ve"] for p in pairs)
        assert {p["gold_label"] for p in pairs} == {"entailment", "neutral", "contradiction"}
        assert len({p["pairID"] for p in pairs}) == len(pairs)
    lines = (out / "image_list.txt").read_text().splitlines()
    assert len(lines) == len(karpathy) and all((out / line.split()[1]).is_file() for line in lines)


def test_splits_are_the_worlds_disjoint_houses(small_corpus):
    world, out, _ = small_corpus
    world_splits = json.loads((world / "world.json").read_text())["splits"]
    meta = read_corpus_meta(out)
    for split, names in SPLITS.items():
        graphs = read_scene_graphs(out, names["folder"])
        assert {g["scan"] for g in graphs.values()} == set(meta["splits"][split]) == set(world_splits[names["world"]])
        for image_id, g in list(graphs.items())[:3]:
            labels = read_label_map(out, names["folder"], g["file_name"])
            assert labels.shape == (g["height"], g["width"])
            assert {s["label"] for s in g["segments"]} == set(np.unique(labels)) - {0}
    train, val, test = (set(meta["splits"][s]) for s in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)


def test_same_seed_same_bytes_other_seed_other_questions(small_corpus, tmp_path):
    world, out, _ = small_corpus
    again = tmp_path / "again"
    make_vl_corpus(world, again, seed=3, image_size="tiny")
    assert tree_digest(again) == tree_digest(out)
    other = tmp_path / "other"
    make_vl_corpus(world, other, seed=4, image_size="tiny", viewpoints_per_house=1)
    name = "vqa/v2_OpenEnded_mscoco_train2014_questions.json"
    assert (other / name).read_bytes() != (out / name).read_bytes()


def test_ensure_builds_once_and_refuses_another_seed(small_world, tmp_path):  # noqa: F811
    world, _ = small_world
    out = tmp_path / "vl"
    assert ensure_vl_corpus(out, world, seed=1, image_size="tiny", viewpoints_per_house=1, headings=2) == out
    stamp = (out / "corpus.json").stat().st_mtime_ns
    ensure_vl_corpus(out, world, seed=1, image_size="tiny", viewpoints_per_house=1, headings=2)
    assert (out / "corpus.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="seed 1"):
        ensure_vl_corpus(out, world, seed=2, image_size="tiny")
    with pytest.raises(FileNotFoundError, match="make_world"):
        ensure_vl_corpus(tmp_path / "x", tmp_path / "no_world", build_world=False)


def test_script_writes_a_corpus_and_rejects_a_bad_size(small_world, tmp_path, capsys):  # noqa: F811
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from make_vl_corpus import main

    world, _ = small_world
    summary = main(["--world", str(world), "--out", str(tmp_path / "vl"), "--image-size", "48x64",
                    "--viewpoints-per-house", "1", "--headings", "2", "--quiet"])
    assert summary["counts"]["train"]["images"] == 2 and summary["image_size"] == [48, 64]
    with pytest.raises(SystemExit):
        main(["--world", str(world), "--out", str(tmp_path / "vl2"), "--image-size", "big"])
    assert "HxW" in capsys.readouterr().err
    with pytest.raises(FileExistsError, match="--overwrite"):
        main(["--world", str(world), "--out", str(tmp_path / "vl"), "--image-size", "48x64", "--quiet"])


def test_malformed_files_name_the_file_record_and_field(small_corpus, tmp_path):
    _, out, _ = small_corpus
    vqa = tmp_path / "vqa"
    vqa.mkdir()
    for name in ("v2_OpenEnded_mscoco_val2014_questions.json", "v2_mscoco_val2014_annotations.json"):
        (vqa / name).write_bytes((out / "vqa" / name).read_bytes())
    data = json.loads((vqa / "v2_mscoco_val2014_annotations.json").read_text())
    qid = data["annotations"][1]["question_id"]
    data["annotations"][1]["answers"] = data["annotations"][1]["answers"][:9]
    (vqa / "v2_mscoco_val2014_annotations.json").write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=rf"v2_mscoco_val2014_annotations.json.*question_id {qid}.*answers"):
        read_vqa(vqa, "val2014")
    bad = tmp_path / "snli_ve_dev.jsonl"
    lines = (out / "snli_ve" / "snli_ve_dev.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    del rec["Flikr30kID"]
    bad.write_text("\n".join([lines[1], json.dumps(rec)]) + "\n")
    with pytest.raises(DataFormatError, match=r"snli_ve_dev.jsonl.*line 2.*Flikr30kID"):
        read_snli_ve(bad)


def test_two_processes_asking_at_once_build_the_corpus_once(small_world, tmp_path):  # noqa: F811
    import subprocess
    import sys

    world, _ = small_world
    out = tmp_path / "vl"
    code = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout); from vlcorpus import "
            f"ensure_vl_corpus; print(ensure_vl_corpus({str(out)!r}, {str(world)!r}, image_size='48x64', "
            "viewpoints_per_house=1, headings=2))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    assert sum(log.count("building the synthetic V&L corpus") for log in logs) == 1, logs
    assert all(log.strip().endswith(str(out)) for log in logs)
    assert read_corpus_meta(out)["counts"]["train"]["images"] == 2


def test_reading_the_corpus_needs_no_torch():
    import subprocess
    import sys

    code = "import sys, vlcorpus, features.semantic_grid; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_stale_world_or_a_bad_layout_is_named(small_world, tmp_path):  # noqa: F811
    import shutil

    from vlcorpus.scene import house_from_layout
    from vln.synthetic import read_layout

    world, summary = small_world
    old = tmp_path / "old_world"
    shutil.copytree(world, old)
    meta = json.loads((old / "world.json").read_text())
    (old / "world.json").write_text(json.dumps(dict(meta, format_version=1)))
    with pytest.raises(DataFormatError, match=r"world.json.*format_version.*make_world.py"):
        make_vl_corpus(old, tmp_path / "vl")
    scan = summary["splits"]["train"][0]
    rec = read_layout(world)[scan]
    rec["doors"][0]["xy"] = [-5.0, -5.0]
    with pytest.raises(DataFormatError, match=rf"layout.json.*{scan} door 0.*xy"):
        house_from_layout(world / "semantics" / "layout.json", scan, rec)
    del rec["rooms"][0]["box"]
    with pytest.raises(DataFormatError, match=rf"layout.json.*{scan}.*box"):
        house_from_layout(world / "semantics" / "layout.json", scan, rec)
