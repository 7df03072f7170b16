"""Questions about one view, each answered by its :class:`~vlcorpus.facts.ViewFacts`, and ten annotators' answers.

Kinds (VQA ``answer_type``): ``yes/no`` ("is there a ...", "is the A to the left of the B?"),
``number`` ("how many ..."), ``other`` (room type, colour of an object, which side an object is
on, what is left of an object). Each question carries its GQA view too (structural / semantic
type and a functional program), so one generator feeds both formats.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vln.synthetic.vocab import COLOUR_NAMES, OBJECT_TYPES, ROOM_TYPES

from .facts import ViewFacts
from .words import article, colour_words, number_word, object_words, plural

#: Types that are structure, never asked about.
_STRUCTURE = ("door", "stairs")
ASKABLE_TYPES = tuple(t for t in OBJECT_TYPES if t not in _STRUCTURE)


@dataclass(frozen=True)
class Question:
    """One question with its true answer.

    Attributes:
        text: the question (lower case, ends in ``?``).
        answer: the canonical answer (``yes``, ``2``, ``red``, ``living room``...).
        answer_type: ``yes/no`` / ``number`` / ``other`` (VQA).
        question_type: the VQA question type (its leading words, e.g. ``how many``).
        structural, semantic, detailed: GQA's ``types``.
        program: GQA ``semantic`` operations ``[(operation, argument, dependencies)]``.
        full_answer: GQA ``fullAnswer``.
        about: object types the question names (for the truth checks).
    """

    text: str
    answer: str
    answer_type: str
    question_type: str
    structural: str
    semantic: str
    detailed: str
    program: tuple
    full_answer: str
    about: tuple = ()


def _pick(rng: np.random.Generator, seq):
    seq = list(seq)
    return seq[int(rng.integers(len(seq)))]


def _exists(rng, facts: ViewFacts, house_types: set) -> list[Question]:
    out = []
    visible = facts.types()
    absent = sorted(t for t in (house_types or set(ASKABLE_TYPES)) if t not in facts.present_types and t in ASKABLE_TYPES)
    if not absent:
        absent = sorted(t for t in ASKABLE_TYPES if t not in facts.present_types)
    for t, yes in ((_pick(rng, visible), True) if visible else (None, None), (_pick(rng, absent), False)):
        if t is None:
            continue
        w = _pick(rng, object_words(t))
        lead = _pick(rng, ("is there", "do you see"))
        text = f"{lead} {article(w)} {w}{' in the picture' if rng.random() < 0.5 else ''}?"
        ans = "yes" if yes else "no"
        full = f"{'Yes' if yes else 'No'}, there is {'a' if yes else 'no'} {t}."
        out.append(Question(text, ans, "yes/no", f"{lead} a", "verify", "obj", "existC", (("select", t, ()), ("exist", "", (0,))),
                            full, (t,)))
    coloured = [t for t in visible if facts.count(t) is not None]
    if coloured:
        t = _pick(rng, coloured)
        have = {o.colour for o in facts.of_type(t)}
        yes = rng.random() < 0.5
        c = _pick(rng, sorted(have)) if yes else _pick(rng, [c for c in COLOUR_NAMES if c not in have])
        w = _pick(rng, object_words(t))
        cw = _pick(rng, colour_words(c))
        text = f"is there {article(cw)} {cw} {w}?"
        out.append(Question(text, "yes" if yes else "no", "yes/no", "is there a", "verify", "attr", "existAttrC",
                            (("select", t, ()), ("filter color", c, (0,)), ("exist", "", (1,))),
                            f"{'Yes' if yes else 'No'}, there is {'a' if yes else 'no'} {c} {t}.", (t,)))
    return out


def _count(rng, facts: ViewFacts, house_types: set) -> list[Question]:
    """"how many <type>" (a visible type, preferring one seen more than once, or an absent one: 0) and
    "how many objects" (when no object in view is too small to decide)."""
    out = []
    known = [t for t in facts.types() if facts.count(t) is not None]
    several = [t for t in known if facts.count(t) >= 2]
    absent = sorted(t for t in house_types if t not in facts.present_types and t in ASKABLE_TYPES)
    t = None
    if several:
        t = _pick(rng, several)
    elif absent and (not known or rng.random() < 0.3):
        t = _pick(rng, absent)
    elif known:
        t = _pick(rng, known)
    if t is not None:
        n = len(facts.of_type(t))
        w = plural(_pick(rng, object_words(t)))
        text = _pick(rng, (f"how many {w} are there?", f"how many {w} are in the picture?", f"how many {w} can you see?"))
        out.append(Question(text, str(n), "number", "how many", "query", "obj", "count",
                            (("select", t, ()), ("count", "", (0,))),
                            f"There {'is' if n == 1 else 'are'} {n} {t if n == 1 else plural(t)}.", (t,)))
    if not facts.ambiguous:
        n = len(facts.objects)
        text = _pick(rng, ("how many objects are in the picture?", "how many objects can you see?"))
        out.append(Question(text, str(n), "number", "how many", "query", "obj", "count",
                            (("select", "object", ()), ("count", "", (0,))), f"There are {n} objects."))
    return out


def _room(rng, facts: ViewFacts) -> list[Question]:
    if facts.room_type is None:
        return []
    text = _pick(rng, ("what room is this?", "what kind of room is this?", "what type of room is shown?"))
    qtype = "what room is" if text.startswith("what room") else "what kind of" if "kind" in text else "what type of"
    return [Question(text, facts.room_type, "other", qtype, "query", "global", "place", (("query", "place", ()),),
                     f"It is a {facts.room_type}.")]


def _colour(rng, facts: ViewFacts) -> list[Question]:
    ts = [t for t in facts.types() if facts.colour_of(t) is not None]
    if not ts:
        return []
    t = _pick(rng, ts)
    c = facts.colour_of(t)
    w = _pick(rng, object_words(t))
    return [Question(f"what color is the {w}?", c, "other", "what color is the", "query", "attr", "color",
                     (("select", t, ()), ("query", "color", (0,))), f"The {t} is {c}.", (t,))]


def _spatial(rng, facts: ViewFacts) -> list[Question]:
    """Side of a unique object; "is A left of B" and "what is left of B" over unique, x-disjoint objects."""
    out = []
    unique = [o for o in facts.objects if facts.count(o.type) == 1]
    sided = [o for o in unique if o.side is not None]
    if sided:
        o = _pick(rng, sided)
        w = _pick(rng, object_words(o.type))
        out.append(Question(f"which side of the picture is the {w} on?", o.side, "other", "which", "choose", "rel",
                            "positionChoose", (("select", o.type, ()), ("choose hposition", "left|right", (0,))),
                            f"The {o.type} is on the {o.side} of the image.", (o.type,)))
    pairs = [(a, b) for a in unique for b in unique if a.type != b.type and a.box[2] <= b.box[0]]
    if pairs:
        a, b = _pick(rng, pairs)
        if rng.random() < 0.5:
            a, b, ans = b, a, "no"
        else:
            ans = "yes"
        wa, wb = _pick(rng, object_words(a.type)), _pick(rng, object_words(b.type))
        out.append(Question(f"is the {wa} to the left of the {wb}?", ans, "yes/no", "is the", "verify", "rel", "relVerify",
                            (("select", b.type, ()), ("verify rel", f"{a.type},to the left of,s", (0,))),
                            f"{'Yes' if ans == 'yes' else 'No'}, the {a.type} is {'' if ans == 'yes' else 'not '}to the left of the {b.type}.",
                            (a.type, b.type)))
    if not facts.ambiguous:
        for b in unique:
            left = [o for o in facts.objects if o.box[2] <= b.box[0]]
            if len(left) == 1 and facts.count(left[0].type) == 1:
                wb = _pick(rng, object_words(b.type))
                a = left[0]
                out.append(Question(f"what is to the left of the {wb}?", a.type, "other", "what is", "query", "rel",
                                    "relS", (("select", b.type, ()), ("relate", "_,to the left of,s", (0,)),
                                             ("query", "name", (1,))),
                                    f"The {a.type} is to the left of the {b.type}.", (a.type, b.type)))
                break
    return out


def make_questions(rng: np.random.Generator, facts: ViewFacts, house_types: set, max_questions: int = 6) -> list[Question]:
    """Up to ``max_questions`` distinct questions about one view, every answer true of its segment map."""
    qs = _exists(rng, facts, house_types) + _count(rng, facts, house_types) + _room(rng, facts) + _colour(rng, facts) + _spatial(rng, facts)
    seen, out = set(), []
    for q in qs:
        if q.text not in seen:
            seen.add(q.text)
            out.append(q)
    if len(out) > max_questions:
        keep = sorted(rng.choice(len(out), size=max_questions, replace=False))
        out = [out[i] for i in keep]
    return out


# --- the ten annotators -------------------------------------------------------------------------

_VARIANTS = {"grey": "gray", "tv": "television", "sofa": "couch", "fridge": "refrigerator", "yes": "Yes", "no": "No"}
#: How many of the ten annotators give a wrong answer (0..3) and its probability.
WRONG_ANSWERS_P = (0.45, 0.25, 0.18, 0.12)


def _wrong(rng, q: Question) -> str:
    if q.answer_type == "yes/no":
        return "no" if q.answer == "yes" else "yes"
    if q.answer_type == "number":
        n = int(q.answer)
        return str(max(0, n + (1 if n == 0 or rng.random() < 0.6 else -1)))
    if q.answer in ROOM_TYPES:
        return _pick(rng, [r for r in ROOM_TYPES if r != q.answer])
    if q.answer in COLOUR_NAMES:
        return _pick(rng, [c for c in COLOUR_NAMES if c != q.answer])
    if q.answer in ("left", "right"):
        return "middle"
    return _pick(rng, [t for t in ASKABLE_TYPES if t != q.answer])


def annotate(rng: np.random.Generator, q: Question) -> list[dict]:
    """Ten VQA answers ``[{answer, answer_confidence, answer_id}]`` with seeded disagreement.

    0-3 annotators answer wrongly (a flipped yes/no, a count off by one, another colour / room /
    object) and up to two of the others write the true answer differently (``two`` for ``2``,
    ``gray``, ``couch``, ``Yes``), so the true answer is always the most common one and the
    official ``min(#humans / 3, 1)`` rule gives partial credit to the wrong ones.
    """
    n_wrong = int(rng.choice(len(WRONG_ANSWERS_P), p=WRONG_ANSWERS_P))
    answers = [(_wrong(rng, q), str(_pick(rng, ("maybe", "no", "yes")))) for _ in range(n_wrong)]
    variant = number_word(int(q.answer)) if q.answer_type == "number" else _VARIANTS.get(q.answer)
    n_variant = 0 if variant is None else int(rng.choice(3, p=(0.7, 0.2, 0.1)))
    answers += [(variant, "yes")] * n_variant
    answers += [(q.answer, "yes")] * (10 - len(answers))
    order = rng.permutation(10)
    return [{"answer": answers[i][0], "answer_confidence": answers[i][1], "answer_id": k + 1} for k, i in enumerate(order)]
