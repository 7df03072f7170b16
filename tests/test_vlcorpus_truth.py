"""Truth by construction: every answer, caption and hypothesis of the corpus holds for the image.

The views are re-cast here with the reference ray caster (``vln.synthetic.render.cast``, one ray
per image pixel, not the skybox sampling the corpus renders with), and the text is parsed back
to types through the corpus vocabulary; colours are checked on the JPEG pixels themselves.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from vlcorpus import SPLITS, read_karpathy, read_scene_graphs, read_snli_ve, read_vqa
from vlcorpus.facts import MIN_AREA
from vlcorpus.scene import load_houses
from vlcorpus.views import VFOV
from vlcorpus.words import COLOUR_SYNONYMS, NUMBER_WORDS, OBJECT_SYNONYMS, ROOM_SYNONYMS, plural
from vln.skybox import skybox_filename, view_directions
from vln.synthetic.render import cast, encode_jpeg, render_skybox
from vln.synthetic.vocab import COLOURS, OBJECT_TYPES, ROOM_TYPES

from vl_helpers import small_corpus, small_world  # noqa: F401 - fixtures

SEEN = MIN_AREA / 2  #: an object "visible" in the corpus covers at least MIN_AREA of its label map
PHRASE_TYPE = {}
for t in OBJECT_TYPES:
    for w in OBJECT_SYNONYMS.get(t, (t,)):
        PHRASE_TYPE[w] = PHRASE_TYPE[plural(w)] = t
ROOM_PHRASE = {w: t for t in ROOM_TYPES for w in ROOM_SYNONYMS.get(t, (t,))}
COLOUR_PHRASE = {w: c for c in COLOURS for w in COLOUR_SYNONYMS.get(c, (c,))}
_ALT = lambda d: "|".join(sorted(map(re.escape, d), key=len, reverse=True))  # noqa: E731
MENTION = re.compile(rf"\b(?:(?P<num>{'|'.join(NUMBER_WORDS)}) )?(?:(?P<col>{_ALT(COLOUR_PHRASE)}) )?"
                     rf"(?P<obj>{_ALT(PHRASE_TYPE)})\b")
ROOM_MENTION = re.compile(rf"\b({_ALT(ROOM_PHRASE)})\b")


class View:
    """A corpus image re-cast with the reference ray caster: which instance and room each pixel shows."""

    def __init__(self, hs, graph, jpeg):
        h, w = graph["height"], graph["width"]
        i = hs.viewpoints.index(graph["viewpoint"])
        dirs = view_directions(graph["heading"], graph["elevation"], VFOV, w, h).reshape(-1, 3)
        _, box = cast(hs.scene, hs.positions[i], dirs)
        sc = hs.scene
        self.instance = np.where(box >= 0, sc.instance[box], -1).reshape(h, w)
        room_of = np.full(len(sc.cls), -1)
        for r, ids in enumerate(sc.room_boxes):
            room_of[ids] = r
        structure = (box >= 0) & (sc.instance[box] < 0)
        self.room_pixels = np.bincount(room_of[box[structure]], minlength=len(hs.house.rooms))
        self.objects = hs.house.objects
        self.area = np.bincount(self.instance[self.instance >= 0], minlength=len(self.objects)) / (h * w)
        self.camera_room = int(hs.rooms[graph["viewpoint"]]["room"])
        self.room_type = hs.house.rooms[self.camera_room].type
        self.rgb = np.asarray(Image.open(jpeg).convert("RGB"), dtype=np.float64)
        self.width = w

    def seen(self, t):
        return [o for o in self.objects if o.type == t and self.area[o.id] >= SEEN]

    def xs(self, o):
        return np.nonzero(self.instance == o.id)[1]

    def colour_matches(self, o, colour):
        """The object has that colour, and its pixels in the JPEG have the palette colour's hue (shading only
        scales RGB) where it is big enough for its inside (2 px in from its edge) to escape blur with its surroundings."""
        inner = self.instance == o.id
        for _ in range(2):
            inner = inner & np.roll(inner, 1, 0) & np.roll(inner, -1, 0) & np.roll(inner, 1, 1) & np.roll(inner, -1, 1)
        if o.colour != colour:
            return False
        if inner.sum() < 16:
            return True
        mean = self.rgb[inner].mean(axis=0)
        ref = np.array(COLOURS[colour], dtype=np.float64)
        return mean @ ref / (np.linalg.norm(mean) * np.linalg.norm(ref)) > 0.97

    def mention_true(self, m) -> bool:
        """A parsed ``[number] [colour] object`` mention holds of the view."""
        t = PHRASE_TYPE[m["obj"]]
        objs = self.seen(t)
        if m["num"] is not None and len(objs) != NUMBER_WORDS.index(m["num"]):
            return False
        if m["col"] is not None:
            objs = [o for o in objs if self.colour_matches(o, COLOUR_PHRASE[m["col"]])]
        return bool(objs)


@pytest.fixture(scope="module")
def views(small_corpus):
    world, out, _ = small_corpus
    graphs = {}
    for names in SPLITS.values():
        for image_id, g in read_scene_graphs(out, names["folder"]).items():
            graphs[image_id] = (names["folder"], g)
    houses = load_houses(world, sorted({g["scan"] for _, g in graphs.values()}))
    return {i: View(houses[g["scan"]], g, out / "images" / folder / g["file_name"]) for i, (folder, g) in graphs.items()}


def test_rebuilt_houses_render_the_worlds_own_skyboxes(small_world):  # noqa: F811
    world, summary = small_world
    scan = summary["splits"]["test"][0]
    hs = load_houses(world, [scan])[scan]
    for i in (0, len(hs.viewpoints) - 1):
        rgb, _ = render_skybox(hs.scene, hs.positions[i], summary["face_size"])
        for k in range(6):
            path = world / "scans" / scan / "matterport_skybox_images" / skybox_filename(hs.viewpoints[i], k)
            assert encode_jpeg(rgb[k]) == path.read_bytes()


def check_answer(v: View, q: str, a: str):
    """Assert the answer ``a`` to question ``q`` holds in view ``v``."""
    if m := re.fullmatch(r"(?:is there|do you see) an? (.+?)(?: in the picture)?\?", q):
        mention = MENTION.fullmatch(m[1])
        if a == "yes":
            assert v.mention_true(mention), q
        elif mention["col"] is None:
            assert all(v.area[o.id] < SEEN for o in v.objects if o.type == PHRASE_TYPE[mention["obj"]]), q
        else:
            assert not any(o.colour == COLOUR_PHRASE[mention["col"]] for o in v.seen(PHRASE_TYPE[mention["obj"]])), q
    elif re.fullmatch(r"how many objects (?:are in the picture|can you see)\?", q):
        assert sum(x >= SEEN for x in v.area) == int(a), q
    elif m := re.fullmatch(r"how many (.+) (?:are there|are in the picture|can you see)\?", q):
        assert len(v.seen(PHRASE_TYPE[m[1]])) == int(a), q
    elif re.fullmatch(r"what (?:room is this|kind of room is this|type of room is shown)\?", q):
        assert a == v.room_type and v.room_pixels.argmax() == v.camera_room, q
    elif m := re.fullmatch(r"what color is the (.+)\?", q):
        objs = v.seen(PHRASE_TYPE[m[1]])
        assert objs and all(v.colour_matches(o, a) for o in objs), q
    elif m := re.fullmatch(r"which side of the picture is the (.+) on\?", q):
        (o,) = v.seen(PHRASE_TYPE[m[1]])
        xs = v.xs(o)
        assert (xs.max() < v.width / 2) if a == "left" else (xs.min() >= v.width / 2), q
    elif m := re.fullmatch(r"is the (.+) to the left of the (.+)\?", q):
        (oa,), (ob,) = v.seen(PHRASE_TYPE[m[1]]), v.seen(PHRASE_TYPE[m[2]])
        left = v.xs(oa).max() <= v.xs(ob).min() + 1
        right = v.xs(oa).min() >= v.xs(ob).max() - 1
        assert left if a == "yes" else right, q
    elif m := re.fullmatch(r"what is to the left of the (.+)\?", q):
        (ob,), (oa,) = v.seen(PHRASE_TYPE[m[1]]), v.seen(a)
        assert v.xs(oa).max() <= v.xs(ob).min() + 1, q
    else:
        raise AssertionError(f"unparsed question {q!r}")


def test_every_vqa_answer_is_true_of_its_image(small_corpus, views):
    _, out, _ = small_corpus
    n = 0
    for names in SPLITS.values():
        questions, annotations = read_vqa(out / "vqa", names["folder"])
        for q in questions:
            check_answer(views[q["image_id"]], q["question"], annotations[q["question_id"]]["multiple_choice_answer"])
            n += 1
    assert n > 100


def check_statement(v: View, s: str) -> bool:
    """Whether a caption / hypothesis (lower case, no period) holds of the view."""
    s = s.lower().rstrip(".")
    if m := re.fullmatch(r"the (.+) is (\w+)", s):
        objs = v.seen(PHRASE_TYPE[m[1]])
        return bool(objs) and all(v.colour_matches(o, COLOUR_PHRASE[m[2]]) for o in objs)
    if m := re.fullmatch(r"this is an? (.+)", s):
        return ROOM_PHRASE[m[1]] == v.room_type
    if m := re.fullmatch(r"there are exactly (\w+) (.+)", s):
        return len(v.seen(PHRASE_TYPE[m[2]])) == NUMBER_WORDS.index(m[1])
    if "empty" in s or "nothing in it" in s:
        return all(a < SEEN for a in v.area)
    rooms = [ROOM_PHRASE[r] for r in ROOM_MENTION.findall(s)]
    if any(r != v.room_type for r in rooms):
        return False
    mentions = list(MENTION.finditer(s))
    if not all(v.mention_true(m) for m in mentions):
        return False
    if side := re.search(r"on the (left|right) of the picture", s):
        (o,) = v.seen(PHRASE_TYPE[mentions[0]["obj"]])
        xs = v.xs(o)
        return (xs.max() < v.width / 2) if side[1] == "left" else (xs.min() >= v.width / 2)
    return True


def test_every_caption_is_true_of_its_image(small_corpus, views):
    _, out, _ = small_corpus
    for im in read_karpathy(out / "captions" / "dataset_coco.json"):
        for s in im["sentences"]:
            assert check_statement(views[im["cocoid"]], s["raw"]), (im["filename"], s["raw"])


def test_snli_ve_labels_hold(small_corpus, views):
    _, out, _ = small_corpus
    by_name = {}
    for names in SPLITS.values():
        for image_id, g in read_scene_graphs(out, names["folder"]).items():
            by_name[g["file_name"]] = image_id
        for p in read_snli_ve(out / "snli_ve" / f"snli_ve_{names['snli_ve']}.jsonl"):
            v, hyp = views[by_name[p["Flikr30kID"]]], p["sentence2"]
            if p["gold_label"] == "neutral":
                m = re.fullmatch(r"Another room of this house has an? (\w+) (.+)\.", hyp)
                t = PHRASE_TYPE[m[2]]
                assert any(o.type == t and o.colour == m[1] and o.room != v.camera_room for o in v.objects), hyp
                assert not v.seen(t), hyp
            else:
                assert check_statement(v, hyp) == (p["gold_label"] == "entailment"), (p["Flikr30kID"], hyp)


def test_label_maps_agree_with_the_reference_caster(small_corpus, views):
    """The corpus's segment maps (skybox sampled) and a direct cast agree on the object of most pixels."""
    from vlcorpus import read_label_map

    _, out, _ = small_corpus
    agree = []
    for names in SPLITS.values():
        for image_id, g in read_scene_graphs(out, names["folder"]).items():
            labels = read_label_map(out, names["folder"], g["file_name"])
            inst = {s["label"]: s["instance"] for s in g["segments"]}
            ours = np.vectorize(lambda x: inst.get(int(x), -1))(labels)
            agree.append(np.mean(ours == views[image_id].instance))
    assert np.mean(agree) > 0.95 and min(agree) > 0.85
