"""Captions (five per view) and SNLI-VE hypotheses, each a statement its facts make true (or false, or unknowable).

Captions name only visible, unambiguous object types, their true colours and counts, and the
room only when it dominates the view. Hypotheses:

* entailment: a visible fact (an object and its colour, a count, the room),
* contradiction: the same fact with a wrong colour, count or room,
* neutral: an object of another room of the same house that covers no pixel of the view.
"""
from __future__ import annotations

import numpy as np

from vln.synthetic.vocab import COLOUR_NAMES, ROOM_TYPES

from .facts import ViewFacts
from .questions import _pick
from .words import article, colour_words, number_word, object_words, plural, room_words

N_CAPTIONS = 5


def _obj(rng, o, colour: bool = True) -> str:
    w = _pick(rng, object_words(o.type))
    if colour:
        w = f"{_pick(rng, colour_words(o.colour))} {w}"
    return f"{article(w)} {w}"


def _room(rng, facts: ViewFacts) -> str:
    if facts.room_type is None:
        return "room"
    return _pick(rng, room_words(facts.room_type))


def make_captions(rng: np.random.Generator, facts: ViewFacts) -> list[str]:
    """Five captions (lower case, no final period; distinct when the view offers enough), true of the view.

    The room is named together with objects of the camera's own room only; an object seen through
    a doorway is "in the next room". "Empty" is said only when no object covers a single pixel.
    """
    firsts, seen = [], set()
    for o in facts.objects:  # one instance per type, largest first
        if o.type not in seen and o.type not in facts.ambiguous:
            seen.add(o.type)
            firsts.append(o)
    own = [o for o in firsts if o.room == facts.room]
    other = [o for o in firsts if o.room != facts.room]
    room = lambda: _room(rng, facts)  # noqa: E731 - a fresh synonym per use
    templates = []
    if not facts.present_types:
        templates = [lambda: f"an empty {room()} with bare walls", lambda: f"a view of an empty {room()}",
                     lambda: f"{article(r := room())} {r} with nothing in it", lambda: f"the bare walls of a {room()}",
                     lambda: f"an empty corner of a {room()}"]
    elif not firsts:
        templates = [lambda: f"a view of {article(r := room())} {r}", lambda: f"the walls of a {room()}",
                     lambda: f"a corner of a {room()}", lambda: f"inside a {room()}"]
    if own:
        a = own[0]
        b = own[1] if len(own) > 1 else None
        templates.append(lambda: f"{article(r := room())} {r} with {_obj(rng, a)}"
                         + (f" and {_obj(rng, b, rng.random() < 0.5)}" if b else ""))
        templates.append(lambda: f"there is {_obj(rng, a)} in this {room()}")
        templates.append(lambda: f"a view of {article(r := room())} {r} showing {_obj(rng, a, False)}")
        templates.append(lambda: f"{_obj(rng, a)} in {article(r := room())} {r}")
        counted = [o for o in own if (facts.count(o.type) or 0) >= 2 and all(x.room == facts.room for x in facts.of_type(o.type))]
        if counted:
            c = counted[0]
            templates.append(lambda: f"{number_word(facts.count(c.type))} {plural(_pick(rng, object_words(c.type)))} "
                             f"in {article(r := room())} {r}")
    if other:
        o = other[0]
        templates.append(lambda: f"{_obj(rng, o)} in the next room")
        templates.append(lambda: f"a doorway with {_obj(rng, o, rng.random() < 0.5)} in the room beyond")
    if firsts:
        a = firsts[0]
        templates.append(lambda: f"a picture showing {_obj(rng, a)}")
        sided = [o for o in firsts if o.side is not None and facts.count(o.type) == 1]
        if sided:
            s = sided[0]
            templates.append(lambda: f"{_obj(rng, s)} on the {s.side} of the picture")
        if len(firsts) > 1:
            b = firsts[1]
            templates.append(lambda: f"{_obj(rng, b)} and {_obj(rng, a, False)}")
        if len(firsts) > 2:
            templates.append(lambda: f"{_obj(rng, firsts[2])}, {_obj(rng, a, False)} and {_obj(rng, firsts[1], False)}")
    out = []
    order = list(rng.permutation(len(templates)))
    for k in range(N_CAPTIONS * 3):
        text = templates[order[k % len(templates)]]()
        if text not in out or k >= N_CAPTIONS * 2:
            out.append(text)
        if len(out) == N_CAPTIONS:
            break
    return out


def make_hypotheses(rng: np.random.Generator, facts: ViewFacts, room_types: dict) -> list[tuple[str, str]]:
    """``[(hypothesis, gold_label)]``: up to two entailments, two contradictions and one neutral."""
    ent, con, neu = [], [], []
    for t in facts.types():
        o = facts.of_type(t)[0]
        if facts.colour_of(t) is not None:
            w = _pick(rng, object_words(t))
            ent.append(f"there is {article(o.colour)} {o.colour} {w}")
            wrong = _pick(rng, [c for c in COLOUR_NAMES if c != o.colour])
            if facts.count(t) == 1:
                con.append(f"the {w} is {wrong}")
        n = facts.count(t)
        if n is not None and n >= 2:
            w = plural(_pick(rng, object_words(t)))
            ent.append(f"there are {number_word(n)} {w}")
            con.append(f"there are exactly {number_word(n + 1)} {w}")
    if facts.room_type is not None:
        ent.append(f"this is {article(facts.room_type)} {facts.room_type}")
        wrong = _pick(rng, [r for r in ROOM_TYPES if r != facts.room_type])
        con.append(f"this is {article(wrong)} {wrong}")
    elsewhere = [o for o in facts.hidden if o.room != facts.room and o.type not in facts.present_types
                 and o.type not in ("door", "stairs")]
    if elsewhere:
        o = _pick(rng, elsewhere)
        neu.append(f"another room of this house has {article(o.colour)} {o.colour} {o.type}")
    out = []
    for items, label, k in ((ent, "entailment", 2), (con, "contradiction", 2), (neu, "neutral", 1)):
        if items:
            pick = rng.choice(len(items), size=min(k, len(items)), replace=False)
            out += [(items[i], label) for i in sorted(pick)]
    return out
