"""Instruction templates and vocabulary in English, Hindi and Telugu.

A route plan (see :mod:`vln.synthetic.instructions`) is a list of clauses; each language gives
several wordings per clause kind, so that the same route is described in varied words and a
model has to read the instruction rather than memorise a few strings. Hindi and Telugu are
written in their own scripts; word order follows each language (postpositions after nouns).
"""
from __future__ import annotations

ROOM_WORDS = {
    "en": {t: t for t in ("bedroom", "bathroom", "kitchen", "living room", "dining room", "hallway", "office",
                          "laundry", "garage", "closet", "study", "playroom")},
    "hi": {
        "bedroom": "शयनकक्ष", "bathroom": "स्नानघर", "kitchen": "रसोईघर", "living room": "बैठक",
        "dining room": "भोजन कक्ष", "hallway": "गलियारा", "office": "दफ़्तर", "laundry": "धुलाई कक्ष",
        "garage": "गैराज", "closet": "भंडार कक्ष", "study": "अध्ययन कक्ष", "playroom": "खेल का कमरा",
    },
    "te": {
        "bedroom": "పడకగది", "bathroom": "స్నానాల గది", "kitchen": "వంటగది", "living room": "హాలు",
        "dining room": "భోజనాల గది", "hallway": "నడవా", "office": "కార్యాలయం", "laundry": "బట్టలు ఉతికే గది",
        "garage": "గ్యారేజీ", "closet": "సామాన్ల గది", "study": "చదువుకునే గది", "playroom": "ఆటల గది",
    },
}

_OBJECTS_EN = ("bed", "wardrobe", "lamp", "nightstand", "painting", "plant", "toilet", "sink", "bathtub", "mirror",
               "towel rack", "fridge", "stove", "counter", "table", "sofa", "tv", "armchair", "coffee table", "chair",
               "cabinet", "bench", "desk", "bookshelf", "washer", "dryer", "shelf", "car", "bicycle", "toolbox",
               "clothes rack", "toy box", "piano", "door", "stairs")
OBJECT_WORDS = {
    "en": {o: o for o in _OBJECTS_EN},
    "hi": {
        "bed": "पलंग", "wardrobe": "अलमारी", "lamp": "लैंप", "nightstand": "साइड टेबल", "painting": "चित्र",
        "plant": "पौधा", "toilet": "शौचालय", "sink": "सिंक", "bathtub": "बाथटब", "mirror": "आईना",
        "towel rack": "तौलिया स्टैंड", "fridge": "फ्रिज", "stove": "चूल्हा", "counter": "काउंटर", "table": "मेज़",
        "sofa": "सोफ़ा", "tv": "टीवी", "armchair": "आरामकुर्सी", "coffee table": "कॉफ़ी टेबल", "chair": "कुर्सी",
        "cabinet": "कैबिनेट", "bench": "बेंच", "desk": "डेस्क", "bookshelf": "किताबों की अलमारी",
        "washer": "वॉशिंग मशीन", "dryer": "ड्रायर", "shelf": "शेल्फ़", "car": "कार", "bicycle": "साइकिल",
        "toolbox": "औज़ारों का डिब्बा", "clothes rack": "कपड़ों का स्टैंड", "toy box": "खिलौनों का डिब्बा",
        "piano": "पियानो", "door": "दरवाज़ा", "stairs": "सीढ़ियाँ",
    },
    "te": {
        "bed": "మంచం", "wardrobe": "బీరువా", "lamp": "దీపం", "nightstand": "చిన్న బల్ల", "painting": "చిత్రపటం",
        "plant": "మొక్క", "toilet": "మరుగుదొడ్డి", "sink": "సింక్", "bathtub": "స్నానపు తొట్టి", "mirror": "అద్దం",
        "towel rack": "తువ్వాల స్టాండ్", "fridge": "ఫ్రిజ్", "stove": "పొయ్యి", "counter": "కౌంటర్", "table": "బల్ల",
        "sofa": "సోఫా", "tv": "టీవీ", "armchair": "చేతుల కుర్చీ", "coffee table": "కాఫీ బల్ల", "chair": "కుర్చీ",
        "cabinet": "అలమార", "bench": "బెంచీ", "desk": "రాత బల్ల", "bookshelf": "పుస్తకాల అర",
        "washer": "వాషింగ్ మెషీన్", "dryer": "డ్రైయర్", "shelf": "అర", "car": "కారు", "bicycle": "సైకిల్",
        "toolbox": "పనిముట్ల పెట్టె", "clothes rack": "బట్టల స్టాండ్", "toy box": "బొమ్మల పెట్టె",
        "piano": "పియానో", "door": "తలుపు", "stairs": "మెట్లు",
    },
}

COLOUR_WORDS = {
    "en": {c: c for c in ("red", "green", "blue", "yellow", "white", "black", "brown", "grey", "orange", "purple")},
    "hi": {"red": "लाल", "green": "हरे", "blue": "नीले", "yellow": "पीले", "white": "सफ़ेद", "black": "काले",
           "brown": "भूरे", "grey": "स्लेटी", "orange": "नारंगी", "purple": "बैंगनी"},
    "te": {"red": "ఎరుపు", "green": "ఆకుపచ్చ", "blue": "నీలం", "yellow": "పసుపు", "white": "తెలుపు",
           "black": "నలుపు", "brown": "గోధుమ", "grey": "బూడిద", "orange": "నారింజ", "purple": "ఊదా"},
}

#: Wordings per clause kind; ``{room}``, ``{thing}`` (colour + object) are filled in.
TEMPLATES = {
    "en": {
        "left": ("turn left", "make a left", "take a left", "go left"),
        "right": ("turn right", "make a right", "take a right", "go right"),
        "around": ("turn around", "turn back", "make a u-turn"),
        "slight_left": ("bear left", "veer slightly left", "turn slightly left"),
        "slight_right": ("bear right", "veer slightly right", "turn slightly right"),
        "forward": ("walk forward", "go straight ahead", "walk straight"),
        "exit": ("exit the {room}", "leave the {room}", "walk out of the {room}", "go out of the {room}"),
        "enter": ("enter the {room}", "walk into the {room}", "go into the {room}", "head into the {room}"),
        "through": ("walk through the {room}", "go through the {room}", "cross the {room}"),
        "pass": ("walk past the {thing}", "go past the {thing}", "pass the {thing}", "continue past the {thing}"),
        "up": ("go up the stairs", "climb the stairs", "walk up the stairs", "take the stairs up"),
        "down": ("go down the stairs", "walk down the stairs", "take the stairs down", "descend the stairs"),
        "stop": ("stop next to the {thing} in the {room}", "wait by the {thing} in the {room}",
                 "stop in the {room} near the {thing}", "stop when you reach the {thing} in the {room}"),
        "stop_room": ("stop in the {room}", "wait in the {room}", "stop once you are in the {room}"),
        "thing": "{colour} {object}",
        "joiners": (" and ", ", then ", " and then "),
        "end": ". ",
    },
    "hi": {
        "left": ("बाएँ मुड़ें", "बाईं ओर मुड़िए", "बाएँ घूमें"),
        "right": ("दाएँ मुड़ें", "दाईं ओर मुड़िए", "दाएँ घूमें"),
        "around": ("पीछे मुड़ें", "वापस घूम जाइए"),
        "slight_left": ("थोड़ा बाएँ मुड़ें", "हल्का बाईं ओर चलें"),
        "slight_right": ("थोड़ा दाएँ मुड़ें", "हल्का दाईं ओर चलें"),
        "forward": ("सीधे चलें", "आगे बढ़ें", "सीधे आगे जाइए"),
        "exit": ("{room} से बाहर निकलें", "{room} से बाहर जाइए"),
        "enter": ("{room} में जाएँ", "{room} में प्रवेश करें", "{room} के अंदर जाइए"),
        "through": ("{room} से होकर जाएँ", "{room} को पार करें"),
        "pass": ("{thing} के पास से गुज़रें", "{thing} के आगे से निकलें", "{thing} को पार करें"),
        "up": ("सीढ़ियाँ चढ़ें", "सीढ़ियों से ऊपर जाएँ"),
        "down": ("सीढ़ियाँ उतरें", "सीढ़ियों से नीचे जाएँ"),
        "stop": ("{room} में {thing} के पास रुकें", "{room} में {thing} के बगल में रुक जाइए",
                 "{thing} के पास {room} में रुकें"),
        "stop_room": ("{room} में रुकें", "{room} में पहुँचकर रुक जाइए"),
        "thing": "{colour} {object}",
        "joiners": (" और ", ", फिर ", " और फिर "),
        "end": "। ",
    },
    "te": {
        "left": ("ఎడమవైపు తిరగండి", "ఎడమకు తిరగండి"),
        "right": ("కుడివైపు తిరగండి", "కుడికి తిరగండి"),
        "around": ("వెనక్కి తిరగండి", "వెనుకకు తిరగండి"),
        "slight_left": ("కొంచెం ఎడమవైపు తిరగండి", "కొద్దిగా ఎడమకు వెళ్ళండి"),
        "slight_right": ("కొంచెం కుడివైపు తిరగండి", "కొద్దిగా కుడికి వెళ్ళండి"),
        "forward": ("నేరుగా నడవండి", "ముందుకు వెళ్ళండి"),
        "exit": ("{room} నుండి బయటకు వెళ్ళండి", "{room} నుండి బయటకు రండి"),
        "enter": ("{room}లోకి వెళ్ళండి", "{room}లోకి ప్రవేశించండి"),
        "through": ("{room} గుండా వెళ్ళండి", "{room} దాటండి"),
        "pass": ("{thing} దాటి వెళ్ళండి", "{thing} పక్కనుండి నడవండి"),
        "up": ("మెట్లు ఎక్కండి", "మెట్ల మీదుగా పైకి వెళ్ళండి"),
        "down": ("మెట్లు దిగండి", "మెట్ల మీదుగా కిందకు వెళ్ళండి"),
        "stop": ("{room}లో {thing} దగ్గర ఆగండి", "{room}లో {thing} పక్కన ఆగండి"),
        "stop_room": ("{room}లో ఆగండి", "{room}కి చేరుకుని ఆగండి"),
        "thing": "{colour} రంగు {object}",
        "joiners": (" మరియు ", ", తర్వాత "),
        "end": ". ",
    },
}

LANGUAGES = tuple(TEMPLATES)
#: RxR locale of each language (English alternates between the two RxR English locales).
LOCALES = {"en": ("en-US", "en-IN"), "hi": ("hi-IN",), "te": ("te-IN",)}
