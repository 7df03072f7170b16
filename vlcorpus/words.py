"""English wording of the corpus: synonyms, plurals, articles and number words.

Every phrase a question, caption or hypothesis uses for a room, object or colour comes from
these tables, so a reader (the truth tests) can map text back to the world's types.
"""
from __future__ import annotations

#: Object type -> ways to say it (the first is the type itself, used in answers).
OBJECT_SYNONYMS = {
    "sofa": ("sofa", "couch"), "tv": ("tv", "television"), "fridge": ("fridge", "refrigerator"),
    "painting": ("painting", "framed painting"), "bicycle": ("bicycle", "bike"), "washer": ("washer", "washing machine"),
    "plant": ("plant", "potted plant"), "nightstand": ("nightstand", "bedside table"), "bookshelf": ("bookshelf", "bookcase"),
    "stove": ("stove", "cooker"),
}
#: Room type -> ways to say it.
ROOM_SYNONYMS = {
    "living room": ("living room", "lounge", "sitting room"), "bathroom": ("bathroom", "washroom"),
    "hallway": ("hallway", "corridor"), "office": ("office", "home office"), "laundry": ("laundry", "laundry room"),
    "study": ("study", "reading room"), "playroom": ("playroom", "games room"), "garage": ("garage",),
    "bedroom": ("bedroom",), "kitchen": ("kitchen",), "dining room": ("dining room",), "closet": ("closet", "storage room"),
}
COLOUR_SYNONYMS = {"grey": ("grey", "gray")}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def object_words(t: str) -> tuple[str, ...]:
    return OBJECT_SYNONYMS.get(t, (t,))


def room_words(t: str) -> tuple[str, ...]:
    return ROOM_SYNONYMS.get(t, (t,))


def colour_words(c: str) -> tuple[str, ...]:
    return COLOUR_SYNONYMS.get(c, (c,))


def plural(word: str) -> str:
    """English plural of an object phrase (``bookshelf`` -> ``bookshelves``, ``bench`` -> ``benches``)."""
    if word.endswith("shelf"):
        return word[:-1] + "ves"
    if word.endswith(("ch", "sh", "x", "s")):
        return word + "es"
    return word + "s"


def article(phrase: str) -> str:
    """``a`` or ``an`` for the phrase that follows."""
    return "an" if phrase[:1] in "aeiou" else "a"


def number_word(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)
