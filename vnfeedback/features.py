"""Sparse TF-IDF features from several views of one normalised comment, in one pass.

Views (each an independent block of columns, L2-normalised on its own, as in a FeatureUnion):

``w``  word n-grams: syllable n-grams (default) or underthesea word n-grams of the normalised text
``s``  syllable n-grams of the accent-stripped text, where "mang yeu qua" meets "mạng yếu quá"
``c``  character n-grams inside accent-stripped syllables (``char_wb``-style), robust to typos
``n``  negated tokens (``neg_mạng``) from ``tokenize.mark_negation``
``k``  telecom concepts (``resources/concepts.tsv``, off by default): "mất tín hiệu" and "sóng yếu"
       both give ``k|network``, so a wording rare in a small training set still meets the common ones

The extractor follows scikit-learn's conventions (parameters in ``__init__``, learned state ending in
``_``) but is self-contained: it computes everything with numpy/scipy, so a saved vocabulary and idf
give identical features whatever scikit-learn version is installed. Batch prediction has an
optional C loop (``_speedups.c``, built by ``pip install`` where a C compiler is found) that gives
the same scores to the last bit without building the feature matrix.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from operator import itemgetter
from typing import Any

import numpy as np
import scipy.sparse as sp

from .errors import ParameterError
from .normalize import BATCH_SEPARATOR, finish_word, normalize, prepare_many, strip_accents
from .tokenize import (
    _BOUNDARY,
    _SCOPE_ENDS,
    _TOKEN_RE,
    NEGATION_CUES,
    NEGATION_SCOPE,
    drop_boundaries,
    mark_negation,
    segment,
    syllables,
)

try:  # the batch loop in C; without a C compiler at install time the numpy path does the same
    from . import _speedups
except ImportError:  # pragma: no cover - exercised by forcing it off in the tests
    _speedups = None

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
    length = len(padded)
    slices = _gram_slices(length, low, high) if length <= 64 else _gram_slices.__wrapped__(length, low, high)
    return tuple(map("c|".__add__, map(padded.__getitem__, slices)))


@functools.cache  # called for lengths up to 64 only: a few thousand slices each
def _gram_slices(length: int, low: int, high: int) -> tuple[slice, ...]:
    """The slices of every ``low``..``high``-character window of a string of ``length``, shortest
    windows first, each length left to right."""
    return tuple(slice(i, i + n) for n in range(low, min(high, length) + 1) for i in range(length - n + 1))


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


def _is_wordy(stripped: str) -> bool:
    """Whether a kept (accent-stripped) token is a word: not a placeholder, ``?`` or ``!``. Only
    words get character n-grams, and a text without any has nothing to read."""
    return not stripped.startswith("xx") and stripped not in ("?", "!")


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
        Add the ``n`` view of negated tokens (off by default: every corpus, the comments with a
        negation word most of all, scores higher without it; see ``python -m benchmarks ablations``).
    concepts : bool
        Add the ``k`` view of telecom concepts (off by default: with the telecom corpus's training
        comments it no longer helps, see ``python -m benchmarks ablations``).
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
        negation: bool = False,
        concepts: bool = False,
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
        wordy = [t for t in stripped if _is_wordy(t)]
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

        The fast path of prediction: with the syllable tokenizer a whole batch is read at once
        (``_BatchReader``); otherwise text by text, with each syllable's character n-grams looked
        up once per process. Either way the result equals ``transform`` exactly.
        """
        return self._counts_flagged(*self._prepare(texts))

    def scores_flagged(
        self, texts: Sequence[str], coef: np.ndarray | Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[bool]]:
        """``transform(texts) @ coef`` (coef: n_features x n_outputs, or a sequence of such blocks,
        whose scores come out side by side, as for ``np.hstack(coef)``) and, per text, whether it
        has any word.

        The fast path of prediction: with the C extension built and the syllable tokenizer, each
        batch goes from its syllables to the scores in one C loop without a feature matrix;
        otherwise through the feature matrix of ``transform_flagged``. Either way the scores equal
        those of ``transform(texts) @ coef`` to the last bit.
        """
        # no copy of a block that is already float64 in C order (a model's stacked coefficients)
        blocks = [
            np.ascontiguousarray(b, dtype=np.float64)
            for b in ([coef] if isinstance(coef, np.ndarray) else coef)
        ]
        texts, prepared = self._prepare(texts)
        if _speedups is not None and prepared is not None:
            reader = self._batch_reader()
            with reader.lock:
                found = reader.scores(prepared, blocks)
            if found is not None:
                scores, has_words = found
                return scores, has_words.tolist()
        X, has_words = self._counts_flagged(texts, prepared)
        # each output column sums the same products in the same order, block by block or stacked
        return np.hstack([np.asarray(X @ b) for b in blocks]), has_words

    def _prepare(self, texts: Sequence[str]) -> tuple[list[str], list[str] | None]:
        """The texts cut to ``MAX_TEXT_CHARS`` and, for the batch path, ``prepare_many`` of them
        (None: read text by text)."""
        texts = [t[:MAX_TEXT_CHARS] for t in texts]
        return texts, (prepare_many(texts) if self._batchable() else None)

    def _counts_flagged(
        self, texts: list[str], prepared: list[str] | None
    ) -> tuple[sp.csr_matrix, list[bool]]:
        """``transform_flagged`` of texts already ``_prepare``d."""
        if prepared is None:
            return self._transform_flagged_by_text(texts)
        reader = self._batch_reader()
        with reader.lock:
            found = reader.counts(prepared)
        if found is None:  # ids outgrew their packing: start afresh, read this batch text by text
            self._reader = None
            return self._transform_flagged_by_text(texts)
        counts, has_words = found
        return self._weigh(counts), has_words.tolist()

    def _batchable(self) -> bool:
        return self.tokenizer == "syllable" and max(self._word[1], self._stripped[1]) <= 3

    def _batch_reader(self) -> _BatchReader:
        with _READER_LOCK:
            reader = getattr(self, "_reader", None)
            if reader is None or reader.full():
                reader = self._reader = _BatchReader(self, getattr(self, "_reader_state", None))
                _WITH_READERS.add(self)
        return reader

    def _transform_flagged_by_text(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, list[bool]]:
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

    def __getstate__(self) -> dict:
        # the per-process caches are rebuilt on first use; the reader also holds a lock
        state = self.__dict__.copy()
        state.pop("_reader", None)
        state["_char_columns"] = {}
        return state

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
        self.vocabulary_ = dict(zip(self.feature_names_, range(len(self.feature_names_)), strict=True))
        self.idf_ = np.asarray(idf, dtype=np.float64)
        self._set_views()
        return self

    def _set_views(self) -> None:
        self._char_columns: dict[str, list[int]] = {}  # syllable -> its character n-gram columns
        self._reader = None  # the batch path's tables, built on first use
        self._reader_state = None  # or taken from these (``_BatchReader.export``, saved with the model)
        # each name's view code (one ASCII letter) -> the view's number, for all names at once
        codes = np.frombuffer("".join(map(itemgetter(0), self.feature_names_)).encode("ascii"), np.uint8)
        number = np.full(256, -1, dtype=np.int64)
        number[[ord(code) for code in VIEW_NAMES]] = np.arange(len(VIEW_NAMES))
        self.view_of_column_ = number[codes]
        if (self.view_of_column_ < 0).any():
            raise ValueError(f"a feature name without a view code of {list(VIEW_NAMES)}")

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
        counts.data = _sublinear_tf(counts.data) * self.idf_[counts.indices]
        return _normalize_views(counts, self.view_of_column_, len(VIEW_NAMES))


_TF_TABLE_SIZE = 1 << 16  # a feature's count in one text stays below this (MAX_TEXT_CHARS)


@functools.cache
def _tf_table() -> np.ndarray:
    """``1 + log(count)`` for every count below ``_TF_TABLE_SIZE`` (entry 0 unused): the numpy and
    the C path both read their tf here, so they agree to the last bit."""
    table = np.zeros(_TF_TABLE_SIZE)
    table[1:] = 1.0 + np.log(np.arange(1, _TF_TABLE_SIZE, dtype=np.float64))
    table.flags.writeable = False
    return table


def _sublinear_tf(counts: np.ndarray) -> np.ndarray:
    """``1 + log(count)`` of whole-number counts."""
    if len(counts) and counts.max() < _TF_TABLE_SIZE:
        return _tf_table()[counts.astype(np.int64)]
    return 1.0 + np.log(counts)


def _count(features: list[str]) -> dict[str, int]:
    return Counter(features)  # counts in C: the hot loop of prediction


def _normalize_views(matrix: sp.csr_matrix, view_of_column: np.ndarray, n_views: int) -> sp.csr_matrix:
    """L2-normalise each view's block of columns within each row."""
    if matrix.nnz == 0:
        return matrix
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    views = view_of_column[matrix.indices]
    cells = rows * n_views + views
    norms = np.sqrt(np.bincount(cells, weights=matrix.data**2, minlength=matrix.shape[0] * n_views))
    matrix.data /= norms[cells]
    return matrix


# --- the batch path of prediction ----------------------------------------------------------------

_READER_LOCK = threading.Lock()
# Extractors whose reader was built in this process. A child forked while another thread of its
# parent held a reader's lock (and was halfway through filling the reader's tables) inherits that
# lock held for ever: the child drops such a reader, to be built afresh, and takes a new module
# lock. A reader whose lock was free is whole (its tables change only under the lock) and is kept.
_WITH_READERS: weakref.WeakSet[FeatureExtractor] = weakref.WeakSet()


def _forget_readers_after_fork() -> None:
    global _READER_LOCK
    _READER_LOCK = threading.Lock()
    for extractor in list(_WITH_READERS):
        reader = extractor.__dict__.get("_reader")
        if reader is not None and reader.lock.locked():
            extractor._reader = None


os.register_at_fork(after_in_child=_forget_readers_after_fork)
_PACK_BITS = 21  # an n-gram of up to three ids packs exactly into one int64 key
_ID_LIMIT = 1 << _PACK_BITS  # ids at or above this would not pack exactly
_MAX_IDS = 1_000_000  # a reader whose tables grow past this starts afresh (bounded memory)
_EMPTY = np.empty(0, dtype=np.int64)
_AFTER_VIEW_CODE = itemgetter(slice(2, None))  # "w|mạng yếu" -> "mạng yếu"
#: The layout of ``_BatchReader.export``: a model file whose reader tables carry another version
#: has them derived again at first use. Raise it whenever ``_BatchReader._derive`` (or what it
#: calls: ``_add_syllables``, ``_char_grams``, ``strip_accents``, the flags) would give other tables
#: for the same vocabulary; ``tests/test_persistence.py`` compares the bundled model's saved
#: tables with freshly derived ones.
READER_STATE_VERSION = 1
_STATE_PER_SYLLABLE = ("to_stripped", "flags", "negated", "row_lengths")


def _pack_strings(strings: Sequence[str]) -> np.ndarray:
    """Strings (none with a line break) as UTF-8 bytes, each ended by one."""
    return np.frombuffer("".join(s + "\n" for s in strings).encode(), dtype=np.uint8).copy()


def _unpack_strings(packed: np.ndarray) -> list[str]:
    return packed.tobytes().decode().split("\n")[:-1]


def _state_groups(extractor: FeatureExtractor) -> list[tuple[str, int]]:
    """The (view, n) of every n-gram lookup of a reader (``_BatchReader.ngrams``, and its saved tables)."""
    return [
        (view, n)
        for view, (low, high) in (("w", extractor._word), ("s", extractor._stripped))
        for n in range(max(low, 2), high + 1)
    ]


def reader_state(extractor: FeatureExtractor, arrays: Mapping[str, np.ndarray]) -> dict[str, Any] | None:
    """The reader tables a model file holds for ``extractor`` (``arrays``, named as by
    ``_BatchReader.export``), checked so that the batch path can rely on them; None when the file
    has none of this layout or the extractor does not read by batch. Raises ``ValueError`` naming
    the table that is wrong. The strings (``syllables``, ``stripped``) come back unpacked."""
    version = arrays.get("version")
    if (
        version is None
        or not extractor._batchable()
        or not isinstance(version, np.ndarray)
        or version.dtype.kind != "i"
        or version.tolist() != [READER_STATE_VERSION]
    ):
        return None
    n_columns = len(extractor.feature_names_)
    groups = [f"{view}{n}_{part}" for view, n in _state_groups(extractor) for part in ("keys", "columns")]
    state: dict[str, Any] = {"version": version}
    for name in ("syllables", "stripped", *_STATE_PER_SYLLABLE, "row_columns", *groups):
        value = arrays.get(name)
        wanted = np.uint8 if name in ("syllables", "stripped") else np.int64
        if not isinstance(value, np.ndarray) or value.dtype != wanted or value.ndim != 1:
            raise ValueError(f"reader table {name!r} is missing or not a 1-d {np.dtype(wanted).name} array")
        state[name] = value
    counts = {}
    for name in ("syllables", "stripped"):
        try:
            strings = _unpack_strings(state[name])
        except UnicodeDecodeError:
            raise ValueError(f"reader table {name!r} is not UTF-8 text") from None
        if (len(state[name]) and state[name][-1] != ord("\n")) or len(set(strings)) != len(strings):
            raise ValueError(
                f"reader table {name!r} does not hold distinct strings, each ended by a line break"
            )
        if len(strings) >= min(_MAX_IDS, _ID_LIMIT):
            raise ValueError(
                f"reader table {name!r} holds {len(strings):,} strings, more than a reader keeps"
            )
        counts[name] = len(strings)
        state[name] = strings  # unpacked once, here

    def within(name: str, low: int, high: int) -> None:
        value = state[name]
        if len(value) and (value.min() < low or value.max() >= high):
            raise ValueError(f"reader table {name!r} has values outside [{low}, {high})")

    for name in _STATE_PER_SYLLABLE:
        if len(state[name]) != counts["syllables"]:
            raise ValueError(f"reader table {name!r} has {len(state[name])} values, not one per syllable")
    within("to_stripped", 0, counts["stripped"])
    within("flags", 0, 16)
    within("negated", -1, n_columns)
    within("row_lengths", 0, n_columns + 1)
    within("row_columns", 0, n_columns)
    if int(state["row_lengths"].sum()) != len(state["row_columns"]):
        raise ValueError("reader tables 'row_lengths' and 'row_columns' disagree")
    for view, n in _state_groups(extractor):
        keys, columns = state[f"{view}{n}_keys"], state[f"{view}{n}_columns"]
        if len(keys) != len(columns):
            raise ValueError(f"reader tables '{view}{n}_keys' and '{view}{n}_columns' differ in length")
        within(f"{view}{n}_keys", 0, 1 << (_PACK_BITS * n))
        within(f"{view}{n}_columns", 0, n_columns)
    return state


def _number(ids: dict[str, int], new: list[str]) -> None:
    """Give each of ``new`` (distinct, none in ``ids``) the next free id."""
    ids.update(zip(new, range(len(ids), len(ids) + len(new)), strict=True))


def _pack(ids: Sequence[int]) -> int:
    key = 0
    for i in ids:
        key = (key << _PACK_BITS) | i
    return key


def _pack_windows(ids: np.ndarray, n: int) -> np.ndarray:
    """The packed key of every window of ``n`` consecutive ids."""
    key = ids[: len(ids) - n + 1].astype(np.int64)
    for k in range(1, n):
        key = (key << _PACK_BITS) | ids[k : len(ids) - n + 1 + k]
    return key


def _same_text(text: np.ndarray, n: int) -> np.ndarray:
    """For each window of ``n`` consecutive tokens: whether all of it lies in one text."""
    return text[n - 1 :] == text[: len(text) - n + 1]


def _ragged(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indices ``starts[i], ..., starts[i] + lengths[i] - 1`` for every i, concatenated."""
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    if not len(lengths):
        return _EMPTY
    step = np.ones(int(lengths.sum()), dtype=np.int64)
    step[0] = starts[0]
    step[np.cumsum(lengths)[:-1]] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return np.cumsum(step)


class _Growing:
    """An int64 array that grows by doubling (the per-id tables of ``_BatchReader``); values are
    appended to a list and copied into the array when it is next read."""

    def __init__(self, first: Sequence[int] | np.ndarray = ()) -> None:
        self.pending: list[int] = []
        if isinstance(first, np.ndarray):
            self.data = np.empty(max(1024, 2 * len(first)), dtype=np.int64)
            self.data[: len(first)] = first
            self.flushed = len(first)
        else:
            self.data = np.empty(1024, dtype=np.int64)
            self.flushed = 0
            self.extend(first)

    @property
    def size(self) -> int:
        return self.flushed + len(self.pending)

    def extend(self, values: Iterable[int]) -> None:
        self.pending.extend(values)

    def append(self, value: int) -> None:
        self.pending.append(value)

    def view(self) -> np.ndarray:
        if self.pending:
            end = self.size
            if end > len(self.data):
                grown = np.empty(max(end, 2 * len(self.data)), dtype=np.int64)
                grown[: self.flushed] = self.data[: self.flushed]
                self.data = grown
            self.data[self.flushed : end] = self.pending
            self.flushed, self.pending = end, []
        return self.data[: self.flushed]


class _Lookup:
    """Packed n-gram keys -> values (a key may have several), looked up for a whole batch."""

    def __init__(self, keys: np.ndarray, values: np.ndarray) -> None:
        same = keys[1:] == keys[:-1]
        if np.all((keys[1:] > keys[:-1]) | (same & (values[1:] >= values[:-1]))):
            self.values = values  # already in order (a saved reader's tables): no sort
        else:
            order = np.lexsort((values, keys))  # by key, then value
            self.values, keys = values[order], keys[order]
        starts = np.ones(len(keys), dtype=bool)
        starts[1:] = keys[1:] != keys[:-1]
        self.first = np.flatnonzero(starts)
        self.keys = keys[self.first]
        counts = np.diff(self.first, append=len(keys))
        self.counts = counts if len(counts) and counts.max() > 1 else None
        self.slots = None  # with the C extension: a hash table over ``keys``, one probe a window
        if _speedups is not None and len(self.keys):
            self.slots = np.empty(1 << (2 * len(self.keys) - 1).bit_length(), dtype=np.int64)
            _speedups.hash_build(self.keys, self.slots)

    @classmethod
    def of(cls, pairs: Sequence[tuple[int, int]]) -> _Lookup:
        """From (key, value) pairs."""
        array = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        return cls(array[:, 0], array[:, 1])

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into ``keys`` of every match, the matched value), one pair per match."""
        if not len(self.keys) or not len(keys):
            return _EMPTY, _EMPTY
        if self.slots is not None:
            at = np.empty(len(keys), dtype=np.int64)
            _speedups.hash_find(self.keys, self.slots, keys, at)
            where = np.flatnonzero(at >= 0)
        else:
            at = np.searchsorted(self.keys, keys)
            at[at == len(self.keys)] = 0
            where = np.flatnonzero(self.keys[at] == keys)
        at = at[where]
        if self.counts is None:
            return where, self.values[self.first[at]]
        counts = self.counts[at]
        return np.repeat(where, counts), self.values[_ragged(self.first[at], counts)]


class _BatchReader:
    """``FeatureExtractor.transform_flagged`` and ``scores_flagged`` for a whole batch at once
    (syllable tokenizer).

    The first half of normalisation runs once over the joined batch (``normalize.prepare_many``);
    each distinct chunk (text between spaces) is finished word by word and split into syllables once
    per process, and each new syllable given its unigram and character columns; n-grams, concepts
    and negation scopes are then found with array operations on syllable ids (``entries``). From
    there ``counts`` builds the count matrix with a sparse product, and ``scores`` (with the C
    extension) goes straight to the linear scores. The counts equal those of the text-by-text path
    exactly, and the scores those of ``transform(texts) @ coef`` (tests hold them to the last bit on
    real corpora).
    """

    KEPT, WORDY, SCOPE_END, CUE = 1, 2, 4, 8  # bit flags of a syllable

    def __init__(self, extractor: FeatureExtractor, state: Mapping[str, Any] | None = None) -> None:
        """The tables of ``extractor``'s vocabulary: derived from its feature names, or taken from
        ``state`` (``export`` of a reader of the same vocabulary, saved with the model and checked
        by ``reader_state``), which skips the derivation (most of the time a freshly loaded model
        spent before its first batch)."""
        self.x = extractor
        self.lock = threading.Lock()
        self.n_columns = len(extractor.feature_names_)
        self.syllable: dict[str, int] = {}
        self.stripped: dict[str, int] = {}
        # a chunk is a run of prepared text between spaces; the separator has no syllables
        self.raw: dict[str, int] = {BATCH_SEPARATOR.strip(): 0}
        self.raw_offsets = _Growing([0, 0])  # chunk id -> its syllable ids (ragged)
        self.raw_syllables = _Growing()
        self.to_stripped = _Growing()  # syllable id -> stripped id
        self.flags = _Growing()
        self.negated = _Growing()  # syllable id -> column of "n|neg_<syllable>", or -1
        # rows of the matrix that turns a text's syllable counts into feature counts: first one
        # row per column (for the counts found by n-gram lookups), then one per syllable id with
        # its unigram and character n-gram columns
        self.row_offsets = _Growing(np.arange(self.n_columns + 1))
        self.row_columns = _Growing(np.arange(self.n_columns))
        self._whole: sp.csr_matrix | None = None
        w_low, w_high = max(extractor._word[0], 1), extractor._word[1]
        s_low, s_high = max(extractor._stripped[0], 1), extractor._stripped[1]
        self.w_unigrams, self.s_unigrams = w_low <= 1 <= w_high, s_low <= 1 <= s_high
        if state is None:
            lookups = self._derive()
        else:
            lookups = self._adopt(state)
        empty = _Lookup(_EMPTY, _EMPTY)
        self.ngrams = [(view, n, lookups.get((view, n), empty)) for view, n in _state_groups(extractor)]
        # concepts: phrases of up to three syllables by their key; longer ones by their first
        # three syllables, then checked in full
        exact: dict[int, list[tuple[int, int]]] = {}
        self.long_phrases: list[tuple[tuple[int, ...], int]] = []
        if extractor.concepts:
            for phrases in _concept_table().values():
                for phrase, concepts in phrases:
                    ids = tuple(self._stripped_id(p) for p in phrase)
                    for concept in concepts:
                        column = extractor.vocabulary_.get("k|" + concept)
                        if column is None:
                            continue
                        if len(ids) <= 3:
                            exact.setdefault(len(ids), []).append((_pack(ids), column))
                        else:
                            self.long_phrases.append((ids, column))
        self.phrases = {n: _Lookup.of(pairs) for n, pairs in exact.items()}
        self.long_starts = _Lookup.of([(_pack(ids[:3]), k) for k, (ids, _) in enumerate(self.long_phrases)])

    def _derive(self) -> dict[tuple[str, int], _Lookup]:
        """Number the syllables of the vocabulary's n-grams and build the n-gram lookups."""
        extractor = self.x
        w_high, s_high = extractor._word[1], extractor._stripped[1]
        # every syllable of a known n-gram gets its id now, so that a key names one n-gram only; the
        # names are sorted into (view, n) groups and split with string methods run over all of them
        # at once (a Python loop over the ~170,000 names was most of the reader's start)
        names, view_of = extractor.feature_names_, extractor.view_of_column_
        spaces = np.fromiter(map(str.count, names, repeat(" ")), dtype=np.int64, count=len(names))
        number = {code: i for i, code in enumerate(VIEW_NAMES)}
        grams: dict[tuple[str, int], tuple[list[str], list[int]]] = {}
        for view, high in (("w", w_high), ("s", s_high)):
            for n in range(2, high + 1):
                columns = np.flatnonzero((view_of == number[view]) & (spaces == n - 1)).tolist()
                if columns:
                    joined = " ".join(map(names.__getitem__, columns))
                    if joined.count("|") == len(columns):  # only the view codes hold a "|": drop them
                        joined = joined.replace(view + "|", "")
                    else:  # a syllable with a "|" (never one that text gives: ``tokenize._TOKEN_RE``)
                        joined = " ".join(map(_AFTER_VIEW_CODE, map(names.__getitem__, columns)))
                    grams[view, n] = (joined.split(" "), columns)
        lookups = {}
        for (view, n), (syllables_, columns) in grams.items():
            ids = self.syllable if view == "w" else self.stripped
            new = [syllable for syllable in dict.fromkeys(syllables_) if syllable not in ids]
            if view == "w":
                self._add_syllables(new)
            else:
                _number(self.stripped, new)
            packed = _pack_windows(
                np.fromiter(map(ids.__getitem__, syllables_), np.int64, len(syllables_)), n
            )
            lookups[view, n] = _Lookup(packed[::n], np.array(columns, dtype=np.int64))
        return lookups

    def export(self) -> dict[str, np.ndarray] | None:
        """The tables ``_derive`` built, as arrays for the model file (``__init__``'s ``state``); only
        for a reader that has read no text yet. None when a syllable holds a line break (never one
        that text gives), which the packed strings could not keep, or when there are more syllables
        than a reader keeps (``reader_state`` would refuse the file)."""
        if self.raw_syllables.size or len(self.raw) != 1:
            raise RuntimeError("export() is for a reader that has not read any text yet")
        syllables_, stripped = list(self.syllable), list(self.stripped)
        if max(len(syllables_), len(stripped)) >= min(_MAX_IDS, _ID_LIMIT):
            return None
        if any("\n" in s for s in chain(syllables_, stripped)):
            return None
        # where each syllable's row starts and ends (the rows before them are one per column)
        bounds = self.row_offsets.view()[self.n_columns :]
        state = {
            "version": np.array([READER_STATE_VERSION], dtype=np.int64),
            "syllables": _pack_strings(syllables_),
            "stripped": _pack_strings(stripped),
            "to_stripped": self.to_stripped.view().copy(),
            "flags": self.flags.view().copy(),
            "negated": self.negated.view().copy(),
            "row_lengths": np.diff(bounds),
            "row_columns": self.row_columns.view()[bounds[0] :].copy(),
        }
        for view, n, lookup in self.ngrams:
            keys = lookup.keys if lookup.counts is None else np.repeat(lookup.keys, lookup.counts)
            state[f"{view}{n}_keys"], state[f"{view}{n}_columns"] = keys.copy(), lookup.values.copy()
        return state

    def _adopt(self, state: Mapping[str, Any]) -> dict[tuple[str, int], _Lookup]:
        """Take the tables of ``export`` as ``reader_state`` checked them when the model was loaded
        (its strings already unpacked)."""
        _number(self.syllable, state["syllables"])
        _number(self.stripped, state["stripped"])
        self.to_stripped = _Growing(state["to_stripped"])
        self.flags = _Growing(state["flags"])
        self.negated = _Growing(state["negated"])
        lengths = state["row_lengths"]
        self.row_offsets = _Growing(
            np.concatenate((np.arange(self.n_columns + 1), self.n_columns + np.cumsum(lengths)))
        )
        self.row_columns = _Growing(np.concatenate((np.arange(self.n_columns), state["row_columns"])))
        return {
            (view, n): _Lookup(state[f"{view}{n}_keys"], state[f"{view}{n}_columns"])
            for view, n in _state_groups(self.x)
        }

    def full(self) -> bool:
        return max(len(self.syllable), len(self.stripped), len(self.raw)) > _MAX_IDS

    def _stripped_id(self, stripped: str) -> int:
        found = self.stripped.get(stripped)
        if found is None:
            found = self.stripped[stripped] = len(self.stripped)
        return found

    def _add_syllables(self, new: list[str]) -> None:
        """Ids for syllables not seen before (distinct), each with its row of ``row_columns`` (its
        unigram and character n-gram columns), flags, stripped id and negated column; the
        vocabulary is looked up once for all of them."""
        if not new:
            return
        x, vocabulary = self.x, self.x.vocabulary_
        _number(self.syllable, new)
        stripped = list(map(strip_accents, new))
        low, high = max(x._chars[0], 1), x._chars[1]
        names: list[str] = []
        per_syllable, flags = [], []
        for syllable, plain in zip(new, stripped, strict=True):
            before = len(names)
            flag = 0
            if syllable not in _BOUNDARY:
                flag = self.KEPT
                if self.w_unigrams:
                    names.append("w|" + syllable)
                if self.s_unigrams:
                    names.append("s|" + plain)
                if _is_wordy(plain):
                    flag |= self.WORDY
                    if high:
                        names += _char_grams(plain, low, high)
            if syllable in _SCOPE_ENDS:
                flag |= self.SCOPE_END
            elif syllable in NEGATION_CUES:
                flag |= self.CUE
            per_syllable.append(len(names) - before)
            flags.append(flag)
        columns = np.fromiter(map(vocabulary.get, names, repeat(-1)), dtype=np.int64, count=len(names))
        known = columns >= 0
        owner = np.repeat(np.arange(len(new)), per_syllable)[known]
        self.row_offsets.extend(
            (self.row_columns.size + np.cumsum(np.bincount(owner, minlength=len(new)))).tolist()
        )
        self.row_columns.extend(columns[known].tolist())
        self.to_stripped.extend(map(self._stripped_id, stripped))
        self.flags.extend(flags)
        if x.negation:
            self.negated.extend(vocabulary.get("n|neg_" + syllable, -1) for syllable in new)
        else:
            self.negated.extend(repeat(-1, len(new)))

    def _add_chunks(self, new: list[str]) -> None:
        """Ids for chunks not seen before (distinct): each finished word by word and split into
        syllables, the new syllables then added all at once."""
        table, split = self.x._table, []
        for chunk in new:
            found: list[str] = []
            for word in _TOKEN_RE.findall(chunk):
                found += syllables(word if word in "?!.,;:" else finish_word(word, table))
            split.append(found)
        known = self.syllable
        self._add_syllables([s for s in dict.fromkeys(chain.from_iterable(split)) if s not in known])
        for chunk, found in zip(new, split, strict=True):
            self.raw[chunk] = len(self.raw)
            self.raw_syllables.extend(map(known.__getitem__, found))
            self.raw_offsets.append(self.raw_syllables.size)

    def counts(self, prepared: list[str]) -> tuple[sp.csr_matrix, np.ndarray] | None:
        """Raw feature counts of ``prepare``d texts and, per text, whether it has any word; None
        when this batch brought so many new syllables that their ids no longer pack exactly."""
        found = self.entries(prepared)
        if found is None:
            return None
        indptr, rows, has_words = found
        n_texts = len(prepared)
        if n_texts >= 256:
            to_features = self._to_features()
        else:  # only the rows this small batch uses: a single text should not pay for the table
            rows, inverse = np.unique(rows, return_inverse=True)
            to_features = self._to_features(rows)
            rows = inverse.ravel()
        # the matrix keeps duplicate entries, which the product adds up exactly (whole numbers)
        per_text = sp.csr_matrix((np.ones(len(rows)), rows, indptr), shape=(n_texts, to_features.shape[0]))
        counts = per_text @ to_features
        counts.sort_indices()
        return counts, has_words

    def scores(self, prepared: list[str], coef: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """``transform(texts) @ np.hstack(coef)`` (blocks of float64 in C order) for ``prepare``d
        texts, bit for bit, from the C loop of
        ``_speedups`` (no feature matrix is built), and whether each text has any word; None as in
        ``counts``, or when a count is past the tf table."""
        found = self.entries(prepared)
        if found is None:
            return None
        indptr, rows, has_words = found
        x = self.x
        out = np.zeros((len(prepared), sum(block.shape[1] for block in coef)))
        done = _speedups.scores(
            indptr,
            rows,
            self.row_offsets.view(),
            self.row_columns.view(),
            _tf_table(),
            x.idf_,
            x.view_of_column_,
            len(VIEW_NAMES),
            tuple(coef),
            out,
        )
        return (out, has_words) if done else None

    def entries(self, prepared: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """What each ``prepare``d text holds, as rows of the ``row_columns`` table: ``indptr`` and
        ``rows`` (a text's rows are ``rows[indptr[i]:indptr[i + 1]]``, a row may repeat), and
        whether each text has any word; None when this batch brought so many new syllables that
        their ids no longer pack exactly."""
        n_texts = len(prepared)
        # every token lies inside one chunk: nothing in ``finish_word`` or ``syllables`` crosses a space
        chunks = BATCH_SEPARATOR.join(prepared).split()
        ids = np.fromiter(map(self.raw.get, chunks, repeat(-1)), np.int64, len(chunks))
        if len(ids) and ids.min() < 0:  # read each new chunk once, then look every chunk up again
            self._add_chunks(list(dict.fromkeys(compress(chunks, (ids < 0).tolist()))))
            ids = np.fromiter(map(self.raw.__getitem__, chunks), np.int64, len(chunks))
            if max(len(self.syllable), len(self.stripped)) >= _ID_LIMIT:
                return None
        separator = ids == 0
        text_of_word = np.cumsum(separator)[~separator]
        ids = ids[~separator]
        offsets = self.raw_offsets.view()
        lengths = offsets[ids + 1] - offsets[ids]
        syl = self.raw_syllables.view()[_ragged(offsets[ids], lengths)]
        text = np.repeat(text_of_word, lengths)
        flags = self.flags.view()[syl]
        texts, rows = [], []  # the counts not in a syllable's row: n-grams, concepts, negation
        if self.x.negation and len(syl):
            self._negation(syl, text, flags, texts, rows)
        kept = (flags & self.KEPT) != 0
        syl, text, flags = syl[kept], text[kept], flags[kept]
        has_words = np.zeros(n_texts, dtype=bool)
        has_words[text[(flags & self.WORDY) != 0]] = True
        stripped = self.to_stripped.view()[syl]
        for view, n, lookup in self.ngrams:
            self._windows(lookup, syl if view == "w" else stripped, text, n, texts, rows)
        for n, lookup in self.phrases.items():
            self._windows(lookup, stripped, text, n, texts, rows)
        if self.long_phrases:
            self._long_phrases(stripped, text, texts, rows)
        # a found n-gram's row is its column's; a syllable's row follows the columns' rows
        texts = np.concatenate([*texts, text])
        rows = np.concatenate([*rows, syl + self.n_columns])
        # texts come as a few runs, each in text order: a stable sort is a merge
        indptr = np.zeros(n_texts + 1, dtype=np.int64)
        np.cumsum(np.bincount(texts, minlength=n_texts), out=indptr[1:])
        return indptr, rows[np.argsort(texts, kind="stable")], has_words

    def _to_features(self, used: np.ndarray | None = None) -> sp.csr_matrix:
        """The rows of ``row_columns`` as a matrix: all of them (kept until the table grows), or
        only those in ``used``."""
        offsets = self.row_offsets.view()
        if used is None:
            if self._whole is None or self._whole.shape[0] != len(offsets) - 1:
                self._whole = sp.csr_matrix(
                    (np.ones(offsets[-1]), self.row_columns.view(), offsets),
                    shape=(len(offsets) - 1, self.n_columns),
                )
            return self._whole
        starts, lengths = offsets[used], offsets[used + 1] - offsets[used]
        return sp.csr_matrix(
            (
                np.ones(int(lengths.sum())),
                self.row_columns.view()[_ragged(starts, lengths)],
                np.concatenate(([0], np.cumsum(lengths))),
            ),
            shape=(len(used), self.n_columns),
        )

    def _windows(self, lookup, ids, text, n, rows, columns) -> None:
        """The counts of every known n-gram (or concept phrase) of ``n`` ids within a text."""
        if len(ids) < n:
            return
        where, values = lookup.find(_pack_windows(ids, n))
        inside = _same_text(text, n)[where]
        rows.append(text[where[inside]])
        columns.append(values[inside])

    def _long_phrases(self, stripped, text, rows, columns) -> None:
        where, values = (
            self.long_starts.find(_pack_windows(stripped, 3)) if len(stripped) >= 3 else (_EMPTY, _EMPTY)
        )
        found_rows, found_columns = [], []
        for start, k in zip(where.tolist(), values.tolist(), strict=True):
            phrase, column = self.long_phrases[k]
            end = start + len(phrase)
            if end <= len(stripped) and text[end - 1] == text[start]:
                if tuple(stripped[start:end].tolist()) == phrase:
                    found_rows.append(int(text[start]))
                    found_columns.append(column)
        rows.append(np.array(found_rows, dtype=np.int64))
        columns.append(np.array(found_columns, dtype=np.int64))

    def _negation(self, syl, text, flags, rows, columns) -> None:
        """``tokenize.mark_negation`` for every text at once: a token is negated when the last cue or
        scope end before it, in its own text, is a cue at most ``NEGATION_SCOPE`` tokens back."""
        position = np.arange(len(syl))
        first = np.ones(len(syl), dtype=bool)
        first[1:] = text[1:] != text[:-1]
        event = (flags & (self.SCOPE_END | self.CUE)) != 0
        last = np.maximum.accumulate(np.where(event | first, position, -1))
        before = np.concatenate(([-1], last[:-1]))
        before[first] = -1
        cue_before = before >= 0
        cue_before[cue_before] = (flags[before[cue_before]] & self.CUE) != 0
        marked = cue_before & ~event & (position - before <= NEGATION_SCOPE)
        negated = self.negated.view()[syl[marked]]
        known = negated >= 0
        rows.append(text[marked][known])
        columns.append(negated[known])
