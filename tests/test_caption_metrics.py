"""The pycocoevalcap wrapper and scripts/eval_caption.py (needs Java, as CI has)."""
import json
import shutil

import pytest

from captioning import metrics
from captioning.metrics import JavaMissingError, check_results, require_java, spice_unavailable_reason
from vln.errors import DataFormatError

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap needs java (.ci/run installs it)")

REFS = {1: ["A red chair next to a table.", "There is a red chair in the room.", "A chair that is red."],
        2: ["A blue sofa under a lamp.", "The sofa is blue.", "A lamp over a blue sofa."],
        3: ["Two tables in a small room.", "A small room with two tables.", "Tables in a room."]}


def write_coco(path, refs):
    images = [{"id": i, "file_name": f"{i}.jpg", "height": 1, "width": 1} for i in refs]
    anns = [{"id": 10 * i + k, "image_id": i, "caption": c} for i in refs for k, c in enumerate(refs[i])]
    path.write_text(json.dumps({"info": {}, "licenses": [], "type": "captions", "images": images, "annotations": anns}))
    return path


@needs_java
def test_eval_script_prints_pycocoevalcap_names_and_spice_reason(tmp_path, capsys):
    from pycocoevalcap.cider.cider import Cider
    from scripts.eval_caption import main

    ann = write_coco(tmp_path / "captions_test.json", REFS)
    results = [{"image_id": 1, "caption": "a red chair next to a table"},
               {"image_id": 2, "caption": "a blue sofa"}, {"image_id": 3, "caption": "a lamp"}]
    (tmp_path / "r.json").write_text(json.dumps(results))
    scores = main(["--results", str(tmp_path / "r.json"), "--annotations", str(ann)])
    printed = json.loads(capsys.readouterr().out)
    assert printed == scores
    assert set(metrics.METRIC_NAMES) <= set(scores)
    for name in metrics.METRIC_NAMES[:-1]:
        assert 0.0 <= scores[name] <= 10.0
    assert scores["Bleu_1"] > 0 and scores["CIDEr"] > 0
    assert scores["SPICE"].startswith("unavailable") and "--spice-jars" in scores["SPICE"]
    # our CIDEr-D with the scored references as df equals pycocoevalcap's CIDEr (tokenised alike)
    from captioning.cider import cider_d_text
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": c} for c in REFS[i]] for i in REFS})
    res = tok.tokenize({r["image_id"]: [{"caption": r["caption"]}] for r in results})
    ours = cider_d_text(gts, {i: res[i][0] for i in res})
    assert sum(ours.values()) / 3 == pytest.approx(Cider().compute_score(gts, res)[0], rel=1e-12)
    assert sum(ours.values()) / 3 == pytest.approx(scores["CIDEr"], rel=1e-12)


def test_spice_jars_are_checked_and_never_scored_zero(tmp_path):
    assert "cannot be downloaded" in spice_unavailable_reason(None)
    (tmp_path / metrics.CORENLP_JARS[0]).write_bytes(b"")
    assert metrics.CORENLP_JARS[1] in spice_unavailable_reason(tmp_path)
    (tmp_path / metrics.CORENLP_JARS[1]).write_bytes(b"")
    assert spice_unavailable_reason(tmp_path) is None


@needs_java
def test_spice_with_unusable_jars_is_reported_unavailable(tmp_path):
    for jar in metrics.CORENLP_JARS:
        (tmp_path / jar).write_bytes(b"not a jar")
    with pytest.raises(RuntimeError, match="SPICE failed"):
        metrics.run_spice({1: ["a red chair"]}, {1: ["a chair"]}, tmp_path)


def test_missing_java_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(metrics.shutil, "which", lambda name: None)
    with pytest.raises(JavaMissingError, match="default-jre-headless"):
        require_java()


@pytest.mark.parametrize("bad, field", [([{"caption": "x"}], "image_id"), ([{"image_id": 1}], "caption"),
                                        ([{"image_id": "1", "caption": "x"}], "image_id"),
                                        ([{"image_id": 1, "caption": "x"}, {"image_id": 1, "caption": "y"}], "image_id")])
def test_malformed_results_name_record_and_field(bad, field):
    with pytest.raises(DataFormatError) as e:
        check_results(bad, "r.json")
    assert e.value.field == field and "r.json" in str(e.value)


@needs_java
def test_results_for_unknown_images_are_refused():
    with pytest.raises(DataFormatError, match="not an image of the annotations"):
        metrics.score_captions([{"image_id": 9, "caption": "a"}], REFS)


@needs_java
def test_scores_with_unusable_spice_jars_say_why_and_keep_the_other_metrics(tmp_path):
    for jar in metrics.CORENLP_JARS:
        (tmp_path / jar).write_bytes(b"not a jar")
    results = [{"image_id": 1, "caption": "a red chair next to a table"}, {"image_id": 2, "caption": "a blue sofa"}]
    refs = {i: REFS[i] for i in (1, 2)}
    scores = metrics.score_captions(results, refs, spice_jars=tmp_path)
    assert isinstance(scores["SPICE"], str) and scores["SPICE"].startswith("unavailable: SPICE failed")
    assert scores["CIDEr"] > 0 and scores["Bleu_1"] > 0
