"""The official VQA accuracy, reproduced exactly, and GQA's exact-match accuracy.

Reproduced version: the VQA evaluation tools' ``PythonEvaluationTools/vqaEvaluation/vqaEval.py``
on the GT-Vision-Lab/VQA master branch (Python 3 version; the EvalAI copy behaves the same in
every rule below). ``shared/reference/siblings.md`` describes the normalisation differently (it
says both sides are normalised only when the ten answers differ, and that "Yes" against ten
"yes" scores 0); the official code does NOT do that, and this module follows the code:

* prediction: ``\\n`` and ``\\t`` become spaces, then ``strip()``, then ALWAYS
  :func:`process_punctuation` and then :func:`process_digit_article` (lower case, number words
  ``none``/``zero``..``ten`` to digits, articles dropped, the contraction table). So "Yes" against
  ten "yes" scores 100.
* ground truth: never stripped, never lower-cased, never digit/article/contraction-processed.
  Only when the ten answers are not all identical strings does each go through
  :func:`process_punctuation` (and nothing else).
* per question: for each of the ten answer records, the "other" answers are the records that are
  ``!=`` to it as whole dicts (answer, confidence and id; the ids make them unique), acc_i =
  min(1, matches / 3) with matches counted among the others by exact string equality with the
  normalised prediction; the question's accuracy is the mean of the ten.
* summaries: ``round(100 * mean, 2)`` (Python 3's round) over all questions (``overall``), per
  ``answer_type`` and per ``question_type``; per question ``round(100 * acc, 2)``.

Quirks kept on purpose:

* :func:`process_punctuation` decides "remove" versus "replace by a space" for each punctuation
  mark by looking at the ORIGINAL text (mark followed or preceded by a space, or any
  ``digit,digit`` anywhere in the text means remove).
* its period rule is ``re.sub(r"(?!<=\\d)(\\.)(?!\\d)", "", text, re.UNICODE)``: the pattern's
  first group is a (always true) look-ahead, not a look-behind, and ``re.UNICODE`` (= 32) lands in
  the ``count`` parameter, so at most the first 32 periods not followed by a digit are removed.
* the results must cover exactly the annotation file's question ids (the official loader's
  assertion); a question id answered twice keeps its last answer (the loader's index).
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
    "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at",
    "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've",
    "someone'dve": "someone'd've", "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
    "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
    "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}
NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = ("a", "an", "the")
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
#: The official period pattern, verbatim (its ``(?!<=\d)`` is a look-ahead that always holds here).
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")
#: The official call passes ``re.UNICODE`` (= 32) positionally, i.e. as the substitution count.
PERIOD_COUNT = int(re.UNICODE)


def process_punctuation(text: str) -> str:
    """The official ``processPunctuation``: each mark removed when it touches a space in the
    original text (or when the original text holds ``digit,digit``), else replaced by a space;
    then at most 32 periods not followed by a digit removed."""
    out = text
    digit_comma = COMMA_STRIP.search(text) is not None
    for p in PUNCTUATION:
        if (p + " " in text or " " + p in text) or digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD_STRIP.sub("", out, PERIOD_COUNT)


def process_digit_article(text: str) -> str:
    """The official ``processDigitArticle``: lower case, split on white space, number words to
    digits, articles dropped, contractions restored, joined by single spaces."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def normalize_prediction(answer: str) -> str:
    """A predicted answer as the official evaluation compares it (see the module docstring)."""
    answer = answer.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(answer))


def question_accuracy(prediction: str, answers: Sequence[Mapping]) -> float:
    """VQA accuracy in [0, 1] of one prediction against the ten human answer records.

    Args:
        prediction: the raw predicted answer (normalised here).
        answers: the annotation's ``answers``: dicts with ``answer`` (and ``answer_confidence``,
            ``answer_id``); compared as whole dicts for the leave-one-out, as the official code does.
    """
    pred = normalize_prediction(prediction)
    gts = [dict(a) for a in answers]
    if len({a["answer"] for a in gts}) > 1:
        for a in gts:
            a["answer"] = process_punctuation(a["answer"])
    accs = []
    for gt in gts:
        matches = sum(1 for other in gts if other != gt and other["answer"] == pred)
        accs.append(min(1, float(matches) / 3))
    return float(sum(accs)) / len(accs)


def index_results(results, annotation_ids: Iterable, source: str = "results") -> dict:
    """question_id -> answer of a results list ``[{"question_id", "answer"}]``, checked as the
    official loader does: a list, covering exactly the annotation question ids.

    Raises:
        DataFormatError: not a list, a record without ``question_id`` / string ``answer``, or the
            ids differ from the annotations' (the message counts and shows the differing ids).
    """
    from vln.errors import DataFormatError

    if not isinstance(results, list):
        raise DataFormatError(source, None, None, "results must be a JSON list of {question_id, answer}")
    answers = {}
    for i, r in enumerate(results):
        if not isinstance(r, dict) or "question_id" not in r:
            raise DataFormatError(source, f"results[{i}]", "question_id", "is missing")
        if not isinstance(r.get("answer"), str):
            raise DataFormatError(source, f"question_id {r['question_id']}", "answer", "must be a string")
        answers[r["question_id"]] = r["answer"]
    want = set(annotation_ids)
    got = set(answers)
    if got != want:
        missing, extra = sorted(want - got, key=str), sorted(got - want, key=str)
        raise DataFormatError(
            source, None, "question_id",
            f"results do not correspond to the annotations: {len(missing)} question ids unanswered "
            f"{missing[:5]}, {len(extra)} not in the annotations {extra[:5]}")
    return answers


def _percent(values: list[float]) -> float:
    return round(100 * float(sum(values)) / len(values), 2)


def vqa_accuracy(annotations: Sequence[Mapping], predictions: Mapping) -> dict:
    """The official summary of predictions against annotation records.

    Args:
        annotations: annotation records (``question_id``, ``question_type``, ``answer_type``,
            ``answers``) in file order (the order of the sums, as in the official code).
        predictions: question_id -> raw predicted answer (see :func:`index_results`).

    Returns:
        ``{"overall": float, "perQuestionType": {type: float}, "perAnswerType": {type: float},
        "perQuestion": {question_id: float}}``, percentages rounded to 2 decimals.
    """
    all_acc, by_qtype, by_atype, per_question = [], {}, {}, {}
    for ann in annotations:
        acc = question_accuracy(predictions[ann["question_id"]], ann["answers"])
        all_acc.append(acc)
        by_qtype.setdefault(ann["question_type"], []).append(acc)
        by_atype.setdefault(ann["answer_type"], []).append(acc)
        per_question[ann["question_id"]] = round(100 * acc, 2)
    if not all_acc:
        raise ValueError("no annotated questions to score")
    return {"overall": _percent(all_acc),
            "perQuestionType": {k: _percent(v) for k, v in by_qtype.items()},
            "perAnswerType": {k: _percent(v) for k, v in by_atype.items()},
            "perQuestion": per_question}


def gqa_accuracy(predictions: Mapping, gold: Mapping) -> float:
    """GQA accuracy in percent: exact string match of the prediction with the gold ``answer``
    over every question of ``gold`` (question id -> answer); a missing prediction counts wrong."""
    if not gold:
        raise ValueError("no GQA questions to score")
    hits = sum(1 for qid, ans in gold.items() if predictions.get(qid) == ans)
    return 100.0 * hits / len(gold)
