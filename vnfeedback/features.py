"""Sparse TF-IDF features from several views of one normalised comment, in one pass.

Views (each an independent block of columns, L2-normalised on its own, as in a FeatureUnion):

``w``  word n-grams: syllable n-grams (default) or underthesea word n-grams of the normalised text
``s``  syllable n-grams of the accent-stripped text, where "mang yeu qua" meets "mạng yếu quá"
``c``  character n-grams inside accent-stripped syllables (``char_wb``-style), robust to typos
``n``  negated tokens (``neg_mạng``) from ``tokenize.mark_negation``
``k``  telecom concepts (``resources/concepts.tsv``): "mất tín hiệu" and "sóng yếu" both give
       ``k|network``, so a wording rare in training still meets the common ones

The extractor follows scikit-learn's conventions (parameters in ``__init__``, learned state ending in
``_``) but is self-contained: it computes everything with numpy/scipy, so a saved vocabulary and idf
give identical features whatever scikit-learn version is installed.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .errors import ParameterError
from .normalize import normalize, strip_accents
from .tokenize import drop_boundaries, mark_negation, segment, syllables

__all__ = ["FeatureExtractor", "VIEW_NAMES", "Analysis"]

#: View code -> readable name, in column order.
VIEW_NAMES = {
    "w": "words",
    "s": "accent-stripped syllables",
    "c": "characters",
    "n": "negated words",
    "k": "concepts",
}
TOKENIZERS = ("syllable", "underthesea")

# A comment longer than this is cut before analysis (a documented fallback: no comment is that
# long; a pasted log is). It keeps a 1,000,000-character input to well under a second.
MAX_TEXT_CHARS = 20_000


@dataclass
class Analysis:
    """What the extractor read in one text: its features per view and whether it had any words."""

    features: list[str] = field(default_factory=list)
    has_words: bool = False


@functools.lru_cache(maxsize=100_000)
def _char_grams(token: str, low: int, high: int) -> tuple[str, ...]:
    padded = f" {token} "
    grams = []
    for n in range(low, high + 1):
        if n > len(padded):
            break
        grams.extend("c|" + padded[i : i + n] for i in range(len(padded) - n + 1))
    return tuple(grams)


@functools.cache
def _concept_table() -> dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]]:
    """First syllable -> [(phrase syllables, concepts)], longest phrases first."""
    from importlib import resources

    phrases: dict[tuple[str, ...], set[str]] = {}
    text = resources.files("vnfeedback.resources").joinpath("concepts.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            phrase, concept = line.split("\t")
            phrases.setdefault(tuple(phrase.split()), set()).add(concept)
    table: dict[str, list] = {}
    for phrase, concepts in sorted(phrases.items(), key=lambda p: -len(p[0])):
        table.setdefault(phrase[0], []).append((phrase, tuple(sorted(concepts))))
    return table


def _concepts(tokens: Sequence[str]) -> list[str]:
    table = _concept_table()
    found = []
    for i, token in enumerate(tokens):
        for phrase, concepts in table.get(token, ()):
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                found.extend("k|" + c for c in concepts)
    return found


def _ngrams(prefix: str, tokens: Sequence[str], low: int, high: int) -> list[str]:
    out = []
    count = len(tokens)
    for n in range(low, high + 1):
        for i in range(count - n + 1):
            out.append(prefix + " ".join(tokens[i : i + n]))
    return out


def _check_range(name: str, value: object) -> tuple[int, int]:
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) for v in value)
        or not 0 <= value[0] <= value[1]
    ):
        raise ParameterError(
            f"{name} must be a pair (low, high) of whole numbers with 0 <= low <= high "
            f"(0 turns the view off), got {value!r}"
        )
    return int(value[0]), int(value[1])


class FeatureExtractor:
    """TF-IDF over word, accent-stripped, character and negation views of normalised text.

    Parameters
    ----------
    tokenizer : {"syllable", "underthesea"}
        How the ``w`` view splits text: syllables (fast) or underthesea word segmentation.
    word_ngrams, stripped_ngrams, char_ngrams : (int, int)
        n-gram ranges of the ``w``, ``s`` and ``c`` views; ``(0, 0)`` turns a view off.
    negation : bool
        Add the ``n`` view of negated tokens.
    concepts : bool
        Add the ``k`` view of telecom concepts.
    min_df : int
        Keep features seen in at least this many training texts.
    max_features : int or None
        Keep at most this many features per view, the most frequent.
    abbreviations : mapping or None
        Extra abbreviation expansions on top of the bundled table (saved with the model).
    """

    def __init__(
        self,
        *,
        tokenizer: str = "syllable",
        word_ngrams: tuple[int, int] = (1, 3),
        stripped_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (2, 5),
        negation: bool = True,
        concepts: bool = True,
        min_df: int = 2,
        max_features: int | None = None,
        abbreviations: Mapping[str, str] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.word_ngrams = word_ngrams
        self.stripped_ngrams = stripped_ngrams
        self.char_ngrams = char_ngrams
        self.negation = negation
        self.concepts = concepts
        self.min_df = min_df
        self.max_features = max_features
        self.abbreviations = abbreviations

    # --- parameters -----------------------------------------------------------------------------

    def get_params(self) -> dict:
        """The constructor parameters as plain JSON-ready values."""
        return {
            "tokenizer": self.tokenizer,
            "word_ngrams": list(self.word_ngrams),
            "stripped_ngrams": list(self.stripped_ngrams),
            "char_ngrams": list(self.char_ngrams),
            "negation": bool(self.negation),
            "concepts": bool(self.concepts),
            "min_df": int(self.min_df),
            "max_features": self.max_features,
            "abbreviations": dict(self.abbreviations or {}),
        }

    def _validate(self) -> None:
        if self.tokenizer not in TOKENIZERS:
            raise ParameterError(f"tokenizer must be one of {TOKENIZERS}, got {self.tokenizer!r}")
        self._word = _check_range("word_ngrams", self.word_ngrams)
        self._stripped = _check_range("stripped_ngrams", self.stripped_ngrams)
        self._chars = _check_range("char_ngrams", self.char_ngrams)
        if not isinstance(self.min_df, int) or self.min_df < 1:
            raise ParameterError(f"min_df must be a whole number >= 1, got {self.min_df!r}")
        if self.max_features is not None and (
            not isinstance(self.max_features, int) or self.max_features < 1
        ):
            raise ParameterError(f"max_features must be None or >= 1, got {self.max_features!r}")
        from .normalize import load_abbreviations

        extra = {str(k).lower(): str(v) for k, v in (self.abbreviations or {}).items()}
        self._table = {**load_abbreviations(), **extra}

    # --- analysis -------------------------------------------------------------------------------

    def _read(self, text: str) -> tuple[list[str], list[str], bool]:
        """Features other than character n-grams, the tokens whose character n-grams count, and
        whether the text has any word (not only placeholders, ``?`` and ``!``)."""
        normalized = normalize(text[:MAX_TEXT_CHARS], abbreviations=self._table)
        base = syllables(normalized)
        words = segment(normalized) if self.tokenizer == "underthesea" else base
        features: list[str] = []
        kept = drop_boundaries(words)
        if self._word[1]:
            features += _ngrams("w|", kept, max(self._word[0], 1), self._word[1])
        stripped = [strip_accents(t) for t in drop_boundaries(base)]
        if self.concepts:
            features += _concepts(stripped)
        if self._stripped[1]:
            features += _ngrams("s|", stripped, max(self._stripped[0], 1), self._stripped[1])
        if self.negation:
            features += ["n|" + t for t in mark_negation(words)]
        wordy = [t for t in stripped if not t.startswith("xx") and t not in ("?", "!")]
        return features, (wordy if self._chars[1] else []), bool(wordy)

    def analyze(self, text: str) -> Analysis:
        """The feature strings of one text (before vocabulary lookup), with their view prefix."""
        features, char_tokens, has_words = self._read(text)
        low, high = max(self._chars[0], 1), self._chars[1]
        for token in char_tokens:
            features.extend(_char_grams(token, low, high))
        return Analysis(features, has_words)

    def transform_flagged(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, list[bool]]:
        """The feature matrix of ``texts`` and, per text, whether it has any word.

        The fast path of prediction: each syllable's character n-grams are looked up once per
        process and kept as column numbers; the result equals ``transform`` exactly.
        """
        vocabulary, cache = self.vocabulary_, self._char_columns
        low, high = max(self._chars[0], 1), self._chars[1]
        rows, columns, flags = [], [], []
        for row, text in enumerate(texts):
            features, char_tokens, has_words = self._read(text)
            found = [j for j in map(vocabulary.get, features) if j is not None]
            for token in char_tokens:
                known = cache.get(token)
                if known is None:
                    known = cache[token] = [
                        j for j in map(vocabulary.get, _char_grams(token, low, high)) if j is not None
                    ]
                found += known
            columns += found
            rows += [row] * len(found)
            flags.append(has_words)
        counts = sp.csr_matrix(
            (np.ones(len(columns)), (np.asarray(rows, dtype=np.int64), np.asarray(columns, dtype=np.int64))),
            shape=(len(flags), len(self.feature_names_)),
        )
        counts.sum_duplicates()
        return self._weigh(counts), flags

    # --- fit / transform ------------------------------------------------------------------------

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Learn the vocabulary and idf from ``texts`` and return their feature matrix."""
        self._validate()
        counted = [_count(self.analyze(t).features) for t in texts]
        df: dict[str, int] = {}
        for counts in counted:
            for feature in counts:
                df[feature] = df.get(feature, 0) + 1
        kept: dict[str, list[tuple[int, str]]] = {code: [] for code in VIEW_NAMES}
        for feature, freq in df.items():
            if freq >= self.min_df:
                kept[feature[0]].append((freq, feature))
        names: list[str] = []
        for code in VIEW_NAMES:
            chosen = kept[code]
            if self.max_features is not None and len(chosen) > self.max_features:
                chosen = sorted(chosen, key=lambda p: (-p[0], p[1]))[: self.max_features]
            names.extend(sorted(f for _, f in chosen))
        n_docs = len(texts)
        self.feature_names_ = names
        self.vocabulary_ = {name: i for i, name in enumerate(names)}
        self.idf_ = np.array(
            [math.log((1 + n_docs) / (1 + df[name])) + 1.0 for name in names], dtype=np.float64
        )
        self._set_views()
        return self._matrix(counted)

    def fit(self, texts: Sequence[str]) -> FeatureExtractor:
        """Learn the vocabulary and idf from ``texts``."""
        self.fit_transform(texts)
        return self

    def transform(self, texts: Iterable[str]) -> sp.csr_matrix:
        """The feature matrix of ``texts`` (one row each), with the learned vocabulary."""
        return self._matrix(_count(self.analyze(t).features) for t in texts)

    def restore(self, feature_names: list[str], idf: np.ndarray) -> FeatureExtractor:
        """Set the learned state from a saved vocabulary and idf (used by ``load``)."""
        self._validate()
        self.feature_names_ = list(feature_names)
        self.vocabulary_ = {name: i for i, name in enumerate(self.feature_names_)}
        self.idf_ = np.asarray(idf, dtype=np.float64)
        self._set_views()
        return self

    def _set_views(self) -> None:
        self._char_columns: dict[str, list[int]] = {}  # syllable -> its character n-gram columns
        order = {code: i for i, code in enumerate(VIEW_NAMES)}
        self.view_of_column_ = np.fromiter(
            (order[name[0]] for name in self.feature_names_),
            dtype=np.int64,
            count=len(self.feature_names_),
        )

    def _matrix(self, counted: Iterable[dict[str, int]]) -> sp.csr_matrix:
        vocabulary = self.vocabulary_
        indptr, indices, data = [0], [], []
        for counts in counted:
            for feature, count in counts.items():
                column = vocabulary.get(feature)
                if column is not None:
                    indices.append(column)
                    data.append(count)
            indptr.append(len(indices))
        n_rows = len(indptr) - 1
        counts = sp.csr_matrix(
            (
                np.asarray(data, dtype=np.float64),
                np.asarray(indices, dtype=np.int64),
                np.asarray(indptr, dtype=np.int64),
            ),
            shape=(n_rows, len(self.feature_names_)),
        )
        counts.sort_indices()
        return self._weigh(counts)

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Raw counts -> sublinear tf x idf, each view L2-normalised."""
        counts.data = (1.0 + np.log(counts.data)) * self.idf_[counts.indices]
        return _normalize_views(counts, self.view_of_column_, len(VIEW_NAMES))


def _count(features: list[str]) -> dict[str, int]:
    return Counter(features)  # counts in C: the hot loop of prediction


def _normalize_views(matrix: sp.csr_matrix, view_of_column: np.ndarray, n_views: int) -> sp.csr_matrix:
    """L2-normalise each view's block of columns within each row."""
    if matrix.nnz == 0:
        return matrix
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    views = view_of_column[matrix.indices]
    squares = np.zeros((matrix.shape[0], n_views))
    np.add.at(squares, (rows, views), matrix.data**2)
    norms = np.sqrt(squares)
    matrix.data /= norms[rows, views]
    return matrix
