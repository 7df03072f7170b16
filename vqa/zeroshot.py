"""Zero-shot VQA with CLIP (CLIP-ViL §5): every candidate answer scored by image-text similarity.

For a question Q about an image I, each answer A of the vocabulary (3,129 for VQA v2) is scored
with the cosine of CLIP's normalised embeddings of I and of a text (the ranking of CLIP's logits,
which only multiply the cosine by the logit scale), in two modes:

* ``prompt``: the text is ``"question: Q answer: A"`` (:data:`PROMPT`);
* ``no_prompt``: the text is the answer alone.

Cost and caching (:class:`AnswerScorer`): the ``no_prompt`` answer embeddings are the same for every
question: encoded once. ``prompt`` embeddings depend on the question text only, not the image:
questions are grouped by text, so each distinct text encodes its A prompts once (batched, the
batches cut to their longest prompt) for all the images it is asked about, and the last
``cache_size`` texts stay cached. The BPE ids of the answers and of each question part are also
tokenized once (:class:`features.clip_text.Tokens`).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch

from .data import QAExample
from .metric import normalize_prediction, process_punctuation, question_accuracy

#: The prompt of the paper's probe; ``{question}`` and ``{answer}`` are filled in.
PROMPT = "question: {question} answer: {answer}"
MODES = ("prompt", "no_prompt")


def prompt_pieces(question: str, answer: str) -> tuple[str, str]:
    """The prompt of ``question`` and ``answer`` as (question part, answer): joined by one space
    they are ``PROMPT.format(question=question, answer=answer)``."""
    return PROMPT.split("{answer}")[0].rstrip().format(question=question), answer


class AnswerScorer:
    """Cosine similarities of images with every candidate answer, in either mode.

    Args:
        clip: a :class:`features.clip_text.ClipModel`.
        answers: the candidate answers (the vocabulary, in label order).
        batch_size: texts per text-tower batch.
        cache: keep the encodings (False: re-encode the answers for every question, the baseline).
        cache_size: prompted answer matrices kept, one per question text (each A x D floats).
        amp_dtype: autocast dtype of the text tower (``torch.bfloat16`` on a GPU), or None.

    Attributes:
        encoded: texts run through the text tower so far.
    """

    def __init__(self, clip, answers: Sequence[str], batch_size: int = 256, cache: bool = True,
                 cache_size: int = 16, amp_dtype: torch.dtype | None = None):
        if not answers:
            raise ValueError("no candidate answers to score")
        self.clip, self.answers = clip, list(answers)
        self.batch_size, self.cache, self.cache_size, self.amp_dtype = batch_size, cache, cache_size, amp_dtype
        self._plain: torch.Tensor | None = None
        self._prompted: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.encoded = 0

    def _encode(self, parts: list[tuple[str, ...]]) -> torch.Tensor:
        self.encoded += len(parts)
        return self.clip.encode_texts(parts, self.batch_size, self.amp_dtype)

    def answer_embeddings(self) -> torch.Tensor:
        """(A, D) embeddings of the answers alone (encoded once when caching)."""
        if self._plain is not None:
            return self._plain
        emb = self._encode([(a,) for a in self.answers])
        if self.cache:
            self._plain = emb
        return emb

    def prompt_embeddings(self, question: str) -> torch.Tensor:
        """(A, D) embeddings of ``question: <question> answer: <A>`` for every answer A."""
        hit = self._prompted.get(question)
        if hit is not None:
            self._prompted.move_to_end(question)
            return hit
        emb = self._encode([prompt_pieces(question, a) for a in self.answers])
        if self.cache and self.cache_size > 0:
            self._prompted[question] = emb
            while len(self._prompted) > self.cache_size:
                self._prompted.popitem(last=False)
        return emb

    def text_embeddings(self, question: str, mode: str) -> torch.Tensor:
        """(A, D) candidate embeddings of ``question`` in ``mode`` (see :data:`MODES`)."""
        if mode == "prompt":
            return self.prompt_embeddings(question)
        if mode == "no_prompt":
            return self.answer_embeddings()
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")

    def scores(self, image_embeddings: torch.Tensor, questions: Sequence[str], mode: str) -> torch.Tensor:
        """(B, A) cosine similarities of B (image embedding, question) pairs with every answer.

        Args:
            image_embeddings: (B, D) L2-normalised.
            questions: B question texts (pairs are grouped by text: each text is encoded once).
        """
        image_embeddings = image_embeddings.to(self.clip.device)
        out = torch.empty(len(questions), len(self.answers), device=self.clip.device)
        groups = _group(questions) if self.cache else {i: [i] for i in range(len(questions))}
        for rows in groups.values():
            text = self.text_embeddings(questions[rows[0]], mode)
            out[rows] = image_embeddings[rows] @ text.T
        return out


def _group(questions: Sequence[str]) -> dict:
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        groups.setdefault(q, []).append(i)
    return groups


def predict(scorer: AnswerScorer, examples: Sequence[QAExample], image_embeddings: torch.Tensor,
            image_index: dict[str, int], mode: str, chunk: int = 4096) -> dict[int, int]:
    """Example index -> label of the best-scored answer (ties: the lowest label).

    Args:
        image_embeddings: (N, D) embeddings of the images; ``image_index`` maps an example's
            ``image_id`` to its row.
        chunk: examples scored at a time (bounds the (chunk, A) score matrix).
    """
    order = sorted(range(len(examples)), key=lambda i: examples[i].question)  # equal texts together
    out = {}
    for start in range(0, len(order), chunk):
        idx = order[start:start + chunk]
        rows = torch.tensor([image_index[examples[i].image_id] for i in idx], dtype=torch.long)
        scores = scorer.scores(image_embeddings[rows], [examples[i].question for i in idx], mode)
        for i, label in zip(idx, scores.argmax(dim=1).tolist()):
            out[i] = label
    return out


def uniform_chance(examples: Sequence[QAExample], answers: Sequence[str]) -> float:
    """Expected official accuracy (percent, 2 decimals) of an answer drawn uniformly from
    ``answers`` for each annotated question: the level a probe without information sits at.
    Exact: only the answers whose normalised form is one of a question's ground-truth answers can
    score, and those are scored with :func:`vqa.metric.question_accuracy`."""
    by_form: dict[str, list[str]] = {}
    for a in answers:
        by_form.setdefault(normalize_prediction(a), []).append(a)
    per_question = []
    for ex in examples:
        if not ex.answers:
            continue
        forms = {g["answer"] for g in ex.answers}
        forms |= {process_punctuation(f) for f in forms}
        hits = [question_accuracy(a, ex.answers) for f in forms for a in by_form.get(f, ())]
        per_question.append(sum(hits) / len(answers))
    if not per_question:
        raise ValueError("no annotated questions")
    return round(100 * sum(per_question) / len(per_question), 2)


def image_files(folder, examples: Sequence[QAExample], source: str = "questions") -> list[tuple[str, object]]:
    """``(image_id, path)`` of the images the examples ask about, found in ``folder`` (recursive;
    COCO file names ``COCO_val2014_000000000042.jpg`` are image ``"42"``, see :func:`vqa.data.image_key`).

    Raises:
        DataFormatError: an example's image is not in ``folder`` (names the question and the image).
    """
    from features.grid_extract import list_images
    from vln.errors import DataFormatError

    from .data import image_key

    found = {image_key(stem): path for stem, path in list_images(folder)}
    needed = {}
    for ex in examples:
        if ex.image_id not in found:
            raise DataFormatError(source, f"question_id {ex.question_id}", "image_id",
                                  f"image {ex.image_id} is not in {folder}")
        needed[ex.image_id] = found[ex.image_id]
    return sorted(needed.items())


def zero_shot_vqa(clip, examples: Sequence[QAExample], answers: Sequence[str], images: Sequence[tuple[str, object]],
                  modes: Sequence[str] = MODES, batch_size: int = 256, image_batch_size: int = 32, workers: int = 0,
                  amp_dtype: torch.dtype | None = None) -> tuple[dict, dict]:
    """Answer every example with every mode.

    Args:
        clip: a :class:`features.clip_text.ClipModel`.
        answers: the candidate answers.
        images: ``(image_id, path)`` of the examples' images (:func:`image_files`).

    Returns:
        ``{mode: results}`` (the official results list ``[{question_id, answer}]`` in example order)
        and ``{mode: scores}`` (:func:`vqa.predict.score`: ``overall``, ``perAnswerType``,
        ``perQuestionType``; empty without annotations) plus ``"texts_encoded"``.
    """
    from features.clip_text import encode_image_files

    from .answers import AnswerVocab
    from .predict import results as official_results
    from .predict import score

    ids, embs = encode_image_files(clip, images, image_batch_size, workers)
    index = {image_id: i for i, image_id in enumerate(ids)}
    scorer = AnswerScorer(clip, answers, batch_size=batch_size, amp_dtype=amp_dtype)
    vocab = AnswerVocab(answers)
    out, scores = {}, {}
    for mode in modes:
        labels = predict(scorer, examples, embs, index, mode)
        out[mode] = official_results(list(examples), vocab, labels)
        scores[mode] = score(list(examples), out[mode])
    scores["texts_encoded"] = scorer.encoded
    return out, scores
