"""Vectorised CIDEr-D: the self-critical reward and the CIDEr of pycocoevalcap, one implementation.

The formula is the one of ``ciderD_scorer.py`` (self-critical.pytorch / ImageCaptioning.pytorch,
``cider/pyciderevalcap/ciderD``), which is also the one of pycocoevalcap 1.2's ``cider_scorer.py``:

* n-grams n = 1..4 of the whitespace-split caption; term frequency tf, document frequency df =
  the number of reference *sets* (images) in which the n-gram occurs at least once;
* idf = log(N) - log(max(1, df)), N = the number of reference sets df was counted over;
* per n, the cosine of tf-idf vectors with the candidate's weights *clipped* by the reference's
  (``min(v_cand, v_ref) * v_ref``), times a Gaussian length penalty exp(-delta^2 / (2 sigma^2)),
  sigma = 6, delta = the difference of the two captions' *bigram* counts (the reference code
  counts the length in its ``n == 1`` branch, i.e. bigrams: words - 1);
* averaged over n, summed over the references, divided by their number, times 10.

CIDEr versus CIDEr-D. The original CIDEr (Vedantam et al. 2015) has no clipping, no length
penalty, and stems words; "CIDEr-D" adds the clipping and the penalty and drops stemming. The
metric pycocoevalcap reports as ``CIDEr`` *is* this CIDEr-D formula; what differs between it and
the SCST reward is only where df and N come from: pycocoevalcap counts them over the references
being scored (the test split), the reward over the training references, fixed once for the run
(``df_mode="corpus"`` on the training set in the released code). :class:`CiderD` takes the
reference sets df is counted over at construction and scores candidates against any of those sets,
so ``CiderD(test_refs)`` reproduces pycocoevalcap's ``CIDEr`` and ``CiderD(train_refs)`` the
reward (tests/test_caption_cider.py checks both against pycocoevalcap's scorer).

The released SCST code scores ``array_to_str`` strings that end with the end token ``0`` in both
candidates and references; pass ``end_token=<id>`` to :meth:`CiderD.score` and
:class:`CiderD` to count it the same way (default: words only, as the metric does).

Everything is float64 numpy: one candidate's n-grams are encoded as int64 keys (token ids in
base V+1), matched to the references by ``searchsorted``, and reduced with ``bincount``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

N_MAX = 4
SIGMA = 6.0
MAX_VOCAB = 55_000  # (V+1)**4 must fit in int64


def _as_padded(seqs) -> tuple[np.ndarray, np.ndarray]:
    """(N, L) int64 token ids padded with -1 and (N,) lengths from a list of sequences or a padded
    array whose rows end at the first negative id."""
    if isinstance(seqs, np.ndarray) and seqs.ndim == 2:
        arr = seqs.astype(np.int64, copy=False)
        valid = arr >= 0
        lengths = np.where(valid.all(1), arr.shape[1], np.argmin(valid, axis=1))
        return arr, lengths.astype(np.int64)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    arr = np.full((len(seqs), max(1, int(lengths.max(initial=0)))), -1, dtype=np.int64)
    for i, s in enumerate(seqs):
        arr[i, :len(s)] = s
    return arr, lengths


def ngram_keys(arr: np.ndarray, lengths: np.ndarray, base: int, n_max: int = N_MAX):
    """Every n-gram (n = 1..n_max) of each row as an int64 key.

    Args:
        arr: (N, L) int64 token ids in [0, base - 1) (entries past a row's length are ignored).
        lengths: (N,) number of tokens of each row.
        base: V + 1 for ids in [0, V).
    Returns:
        rows (K,) int64 row index, keys (K,) int64 n-gram key, order (K,) int64 n - 1.
    """
    n_rows, width = arr.shape
    rows, keys, orders = [], [], []
    tok = np.where(arr >= 0, arr + 1, 0)
    for n in range(1, n_max + 1):
        if width < n:
            break
        key = np.zeros((n_rows, width - n + 1), dtype=np.int64)
        for j in range(n):
            key = key * base + tok[:, j:width - n + 1 + j]
        valid = np.arange(width - n + 1)[None, :] + n <= lengths[:, None]
        r, _ = np.nonzero(valid)
        rows.append(r)
        keys.append(key[valid])
        orders.append(np.full(len(r), n - 1, dtype=np.int64))
    return np.concatenate(rows), np.concatenate(keys), np.concatenate(orders)


def count_ngrams(rows: np.ndarray, keys: np.ndarray, orders: np.ndarray):
    """Term frequencies: unique (row, key) pairs with their counts, sorted by row then key."""
    uniq, inv = np.unique(keys, return_inverse=True)
    comp = rows * len(uniq) + inv
    comp_u, first, tf = np.unique(comp, return_index=True, return_counts=True)
    return comp_u // len(uniq), uniq[comp_u % len(uniq)], orders[first], tf.astype(np.float64)


class CiderD:
    """CIDEr-D with document frequencies fixed by a collection of reference sets.

    Args:
        ref_sets: one list of references per image, each reference a sequence of int token ids in
            [0, V) (see :class:`WordIds` for text).
        vocab_size: V, an upper bound of the token ids (ids of candidates too); < 55,000.
        sigma: the length penalty's standard deviation (6).
        end_token: an id appended to every reference (and, in :meth:`score`, candidate), as the
            released SCST code does with its ``0``; None = words only.
        df_sets: count df (and N) over the first ``df_sets`` reference sets only (the rest can be
            scored against but do not enter df); None = all of them.
    """

    def __init__(self, ref_sets: Sequence[Sequence[Sequence[int]]], vocab_size: int, sigma: float = SIGMA,
                 end_token: int | None = None, df_sets: int | None = None):
        if vocab_size + 1 >= MAX_VOCAB:
            raise ValueError(f"vocab_size {vocab_size} too large for int64 4-gram keys (< {MAX_VOCAB - 1})")
        if not ref_sets or any(len(s) == 0 for s in ref_sets):
            raise ValueError("every reference set needs at least one reference")
        self.base = vocab_size + 1
        self.sigma = sigma
        self.end_token = end_token
        self.n_sets = len(ref_sets)
        n_df = self.n_sets if df_sets is None else df_sets
        if not 0 < n_df <= self.n_sets:
            raise ValueError(f"df_sets must lie in [1, {self.n_sets}]")
        self.ref_len = np.log(float(n_df))
        n_refs = np.array([len(s) for s in ref_sets], dtype=np.int64)
        self.set_start = np.concatenate([[0], np.cumsum(n_refs)])
        self.n_refs = n_refs
        flat = [list(r) + ([end_token] if end_token is not None else []) for s in ref_sets for r in s]
        arr, lengths = _as_padded(flat)
        self._check_ids(arr, lengths)
        self.ref_bigrams = np.maximum(lengths - 1, 0).astype(np.float64)
        rows, keys, orders, tf = count_ngrams(*ngram_keys(arr, lengths, self.base))
        # document frequency: the number of sets holding the n-gram
        ref_set = np.repeat(np.arange(self.n_sets), n_refs)[rows]
        self.keys, key_idx = np.unique(keys, return_inverse=True)
        set_pairs = np.unique((ref_set * len(self.keys) + key_idx)[ref_set < n_df])
        self.df = np.bincount(set_pairs % len(self.keys), minlength=len(self.keys)).astype(np.float64)
        self.idf = self.ref_len - np.log(np.maximum(1.0, self.df))
        # reference table sorted by (reference, n-gram id)
        self.ref_comp = rows * len(self.keys) + key_idx
        order = np.argsort(self.ref_comp, kind="stable")
        self.ref_comp, self.ref_tf = self.ref_comp[order], tf[order]
        w = tf * self.idf[key_idx]
        self.ref_norm = np.sqrt(np.bincount(rows * N_MAX + orders, weights=w * w,
                                            minlength=len(flat) * N_MAX)).reshape(len(flat), N_MAX)

    def _check_ids(self, arr, lengths):
        valid = np.arange(arr.shape[1])[None, :] < lengths[:, None]
        if valid.any() and (arr[valid].min() < 0 or arr[valid].max() >= self.base - 1):
            raise ValueError(f"token ids must lie in [0, {self.base - 1})")

    def score(self, candidates, set_index) -> np.ndarray:
        """CIDEr-D of each candidate against its reference set.

        Args:
            candidates: N token-id sequences, or an (N, L) int array padded with negative ids.
            set_index: (N,) index of each candidate's reference set in ``ref_sets``.
        Returns:
            (N,) float64 scores (x10 scale, as pycocoevalcap's per-image CIDEr).
        """
        set_index = np.asarray(set_index, dtype=np.int64)
        arr, lengths = _as_padded(candidates)
        if self.end_token is not None:
            arr = np.concatenate([arr, np.full((len(arr), 1), -1, dtype=np.int64)], 1)
            arr[np.arange(len(arr)), lengths] = self.end_token
            lengths = lengths + 1
        self._check_ids(arr, lengths)
        n_c = len(arr)
        if len(set_index) != n_c:
            raise ValueError(f"{n_c} candidates but {len(set_index)} set indices")
        if n_c and (set_index.min() < 0 or set_index.max() >= self.n_sets):
            raise ValueError(f"set_index must lie in [0, {self.n_sets})")
        rows, keys, orders, tf = count_ngrams(*ngram_keys(arr, lengths, self.base))
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = self.keys[pos] == keys
        df = np.where(found, self.df[pos], 0.0)
        vh = tf * (self.ref_len - np.log(np.maximum(1.0, df)))
        norm_h = np.sqrt(np.bincount(rows * N_MAX + orders, weights=vh * vh,
                                     minlength=n_c * N_MAX)).reshape(n_c, N_MAX)
        # candidate n-grams the references know, expanded over the candidate's references
        rows_f, pos_f, ord_f, tf_f, vh_f = rows[found], pos[found], orders[found], tf[found], vh[found]
        k = self.n_refs[set_index[rows_f]]
        rep = np.repeat(np.arange(len(rows_f)), k)
        j = np.arange(len(rep)) - np.repeat(np.cumsum(k) - k, k)
        ref_id = self.set_start[set_index[rows_f[rep]]] + j
        comp = ref_id * len(self.keys) + pos_f[rep]
        at = np.minimum(np.searchsorted(self.ref_comp, comp), len(self.ref_comp) - 1)
        tf_r = np.where(self.ref_comp[at] == comp, self.ref_tf[at], 0.0)
        vr = tf_r * self.idf[pos_f[rep]]
        contrib = np.minimum(vh_f[rep], vr) * vr
        # per (candidate, reference slot, n): slots are numbered 0..k-1 inside the candidate's set
        k_max = int(self.n_refs.max())
        val = np.bincount((rows_f[rep] * k_max + j) * N_MAX + ord_f[rep], weights=contrib,
                          minlength=n_c * k_max * N_MAX).reshape(n_c, k_max, N_MAX)
        slot = np.arange(k_max)[None, :]
        k_c = self.n_refs[set_index]
        has = slot < k_c[:, None]
        ref_ids = np.where(has, self.set_start[set_index][:, None] + slot, 0)
        denom = norm_h[:, None, :] * self.ref_norm[ref_ids]
        val = np.where(denom != 0, val / np.where(denom != 0, denom, 1.0), val)
        hyp_bigrams = np.maximum(lengths - 1, 0).astype(np.float64)
        delta = hyp_bigrams[:, None] - self.ref_bigrams[ref_ids]
        val = val * (np.e ** (-(delta ** 2) / (2 * self.sigma ** 2)))[:, :, None]
        val = np.where(has[:, :, None], val, 0.0)
        return val.sum(1).mean(1) / k_c * 10.0


class WordIds:
    """Words -> int ids for scoring text with :class:`CiderD` (whitespace split, as the reference).

    New words get new ids, so repeated unknown words of a candidate still count as one n-gram.
    """

    def __init__(self):
        self.ids: dict[str, int] = {}

    def encode(self, text: str) -> list[int]:
        return [self.ids.setdefault(w, len(self.ids)) for w in text.split()]


def cider_d_text(ref_sets: dict, candidates: dict, df_sets: Sequence[Sequence[str]] | None = None,
                 sigma: float = SIGMA) -> dict:
    """CIDEr-D of tokenised text: ``{image_id: score}``.

    Args:
        ref_sets: image id -> list of reference strings (tokenised, words separated by spaces).
        candidates: image id -> one candidate string (the keys must be those of ``ref_sets``).
        df_sets: the reference sets df is counted over; None = ``ref_sets`` themselves (which is
            pycocoevalcap's ``CIDEr``).
    """
    if set(candidates) != set(ref_sets):
        raise ValueError("candidates and references must cover the same image ids")
    words = WordIds()
    ids = list(ref_sets)
    sets = [[words.encode(r) for r in ref_sets[i]] for i in ids]
    extra = [] if df_sets is None else [[words.encode(r) for r in s] for s in df_sets]
    cands = [words.encode(candidates[i]) for i in ids]
    vocab = max(1, len(words.ids))
    if df_sets is None:
        scorer, index = CiderD(sets, vocab, sigma), np.arange(len(ids))
    else:  # score against ref_sets with df from df_sets: the scored sets are appended after them
        scorer = CiderD(extra + sets, vocab, sigma, df_sets=len(extra))
        index = len(extra) + np.arange(len(ids))
    return dict(zip(ids, scorer.score(cands, index).tolist()))
