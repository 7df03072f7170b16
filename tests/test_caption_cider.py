"""Vectorised CIDEr-D against pycocoevalcap's scorer (the same formula, df from given sets)."""
import numpy as np
import pytest

from captioning.cider import CiderD, WordIds, cider_d_text

cider_scorer = pytest.importorskip("pycocoevalcap.cider.cider_scorer")

WORDS = "a the red blue chair table sofa lamp in on next to room with small big two".split()


def random_caption(rng, lo=0, hi=12):
    return " ".join(rng.choice(WORDS, size=rng.integers(lo, hi)))


def random_sets(rng, n_sets, n_refs=(1, 6)):
    return [[random_caption(rng, 1) for _ in range(rng.integers(*n_refs))] for _ in range(n_sets)]


def reference_scores(pairs):
    """pycocoevalcap's per-image CIDEr over (candidate, refs) pairs: df over all their ref sets."""
    scorer = cider_scorer.CiderScorer(n=4, sigma=6.0)
    for cand, refs in pairs:
        scorer += (cand, refs)
    return scorer.compute_score()[1]


def test_equals_pycocoevalcap_cider_with_the_scored_references():
    rng = np.random.default_rng(0)
    refs = random_sets(rng, 40)
    cands = [random_caption(rng) for _ in refs]  # includes empty and one-word candidates
    cands[0], cands[1] = refs[0][0], ""
    ours = cider_d_text(dict(enumerate(refs)), dict(enumerate(cands)))
    expected = reference_scores(list(zip(cands, refs)))
    np.testing.assert_allclose([ours[i] for i in range(len(refs))], expected, rtol=1e-12, atol=1e-12)
    assert expected.max() > 1.0  # not a comparison of zeros


def test_reward_with_training_df_equals_pycocoevalcap_over_the_training_sets():
    """SCST: several samples per training image, df from all training reference sets. pycocoevalcap
    counts df over the sets it is given, so it is given every training set (with a placeholder
    candidate for the unscored ones) once per sample."""
    rng = np.random.default_rng(1)
    train = random_sets(rng, 30, (5, 6))
    words = WordIds()
    scorer = CiderD([[words.encode(r) for r in s] for s in train], vocab_size=len(WORDS) + 1)
    images = rng.integers(0, len(train), size=12)
    samples = [random_caption(rng, 1) for _ in images]
    ours = scorer.score([words.encode(c) for c in samples], images)
    for k, (img, cand) in enumerate(zip(images, samples)):
        pairs = [(cand if i == img else "a", refs) for i, refs in enumerate(train)]
        assert ours[k] == pytest.approx(reference_scores(pairs)[img], rel=1e-12, abs=1e-12)


def test_df_comes_from_the_given_sets_not_the_scored_ones():
    rng = np.random.default_rng(2)
    train, test = random_sets(rng, 25), random_sets(rng, 10)
    cands = {i: random_caption(rng, 2) for i in range(10)}
    own = cider_d_text(dict(enumerate(test)), cands)
    with_train_df = cider_d_text(dict(enumerate(test)), cands, df_sets=train)
    pairs = [(cands[i], test[i]) for i in range(10)] + [("a", s) for s in train]
    assert list(with_train_df.values()) != pytest.approx(list(own.values()))
    # pycocoevalcap given test + train sets counts df over both: ours with df over both agrees
    both = cider_d_text(dict(enumerate(test)), cands, df_sets=test + train)
    np.testing.assert_allclose(list(both.values()), reference_scores(pairs)[:10], rtol=1e-12)


def test_padded_array_input_and_end_token():
    refs = [[[1, 2, 3, 4]], [[2, 2, 5]]]
    scorer = CiderD(refs, vocab_size=6)
    padded = np.array([[1, 2, 3, 4, -1], [2, 2, 5, -1, -1], [5, -1, -1, -1, -1]])
    np.testing.assert_allclose(scorer.score(padded, [0, 1, 0]), scorer.score([[1, 2, 3, 4], [2, 2, 5], [5]], [0, 1, 0]))
    # the released code's trailing end token "0" is counted as a word in both
    eos = CiderD([[[1, 2, 3, 4]], [[2, 2, 5]]], vocab_size=6, end_token=0)
    words = WordIds()
    text_refs = [["1 2 3 4 0"], ["2 2 5 0"]]
    enc = [[words.encode(r) for r in s] for s in text_refs]
    plain = CiderD(enc, vocab_size=10)
    cand = [2, 2, 5]
    expected = plain.score([words.encode("2 2 5 0")], [1])
    assert eos.score([cand], [1]) == pytest.approx(expected)


def test_bad_input():
    scorer = CiderD([[[0, 1]]], vocab_size=2)
    with pytest.raises(ValueError, match="token ids"):
        scorer.score([[0, 7]], [0])
    with pytest.raises(ValueError, match="set_index"):
        scorer.score([[0, 1]], [3])
    with pytest.raises(ValueError, match="at least one reference"):
        CiderD([[]], vocab_size=2)


def test_reward_counts_the_end_token_as_the_released_code():
    """The SCST reward scores ``array_to_str`` strings: words, then ``0`` for a caption shorter than
    the maximum length (samples and references alike); a caption stopping mid-phrase loses the
    reward the references' ending bigram gives."""
    import torch

    from captioning.data import EncodedCaptions
    from captioning.scst import reward_scorer, reward_tokens

    max_len = 6
    refs = [[3, 4, 5, 6], [3, 4, 5, 7, 8, 9], [4, 5, 6]]  # the second is cut at max_len: no end token
    enc = EncodedCaptions(np.array([1, 2]), np.array([r + [0] * (max_len - len(r)) for r in refs], dtype=np.int32),
                          np.array([len(r) for r in refs], dtype=np.int32), np.array([0, 2]), np.array([2, 3]))
    seqs = torch.tensor([[3, 4, 5, 6, 0, 0], [3, 4, 5, 0, 0, 0], [3, 4, 5, 7, 8, 9], [4, 5, 6, 0, 0, 0]])
    assert reward_tokens(seqs).tolist()[1] == [3, 4, 5, 0, -1, -1]
    assert reward_tokens(seqs, count_end=False).tolist()[1] == [3, 4, 5, -1, -1, -1]
    ours = reward_scorer(enc, vocab_size=10, max_len=max_len).score(reward_tokens(seqs), [0, 0, 0, 1])
    texts = ["3 4 5 6 0", "3 4 5 0", "3 4 5 7 8 9", "4 5 6 0"]
    ref_texts = [["3 4 5 6 0", "3 4 5 7 8 9"], ["4 5 6 0"]]
    # pycocoevalcap with df over both training sets (a placeholder candidate for the other set)
    expected = [reference_scores([(t, ref_texts[0]), ("x", ref_texts[1])])[0] for t in texts[:3]]
    expected.append(reference_scores([("x", ref_texts[0]), (texts[3], ref_texts[1])])[1])
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
    words_only = reward_scorer(enc, vocab_size=10, max_len=max_len, count_end=False)
    plain = words_only.score(reward_tokens(seqs, count_end=False), [0, 0, 0, 1])
    # stopping after "3 4 5" (no reference ends there) costs more when the end token counts
    assert ours[1] / ours[0] < plain[1] / plain[0]
