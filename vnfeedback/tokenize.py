"""Tokenisation of normalised text: a fast syllable path and underthesea word segmentation.

``syllables`` splits on Vietnamese syllables (the units between spaces); n-grams of syllables then
recover most multi-syllable words ("tổng đài", "chập chờn") at a tiny fraction of the cost of word
segmentation. ``segment`` runs underthesea 9.5.0's CRF word segmenter ("tổng_đài"), guarded:

- underthesea is imported on first use only, and the root logger it reconfigures is put back;
- ``fixed_words`` (a global inside underthesea) is never passed;
- text is cut into pieces of at most ``MAX_PIECE_CHARS`` before segmentation, because underthesea's
  regex tokeniser is super-linear on long unbroken runs (``"a." * 20000`` takes seconds);
- lone surrogates and control characters are removed by ``normalize.clean`` before any of this;
- results are cached per piece (comments repeat a lot in real archives), and calls into underthesea
  are serialised with a lock so several threads can predict at once.

``mark_negation`` marks the tokens that follow a negation cue ("không phải mạng yếu" ->
``neg_phải``, ``neg_mạng``), so that a denied problem does not look like a reported one.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Callable

__all__ = ["syllables", "segment", "mark_negation", "MAX_PIECE_CHARS", "NEGATION_CUES", "NEGATION_SCOPE"]

#: Longest piece of text handed to underthesea in one call.
MAX_PIECE_CHARS = 200

#: Words that open a negation scope; the scope ends at punctuation, a contrast word, or after
#: ``NEGATION_SCOPE`` tokens.
NEGATION_SCOPE = 2
NEGATION_CUES = frozenset({"không", "chẳng", "chả", "chưa", "đừng", "chớ", "khỏi"})
_SCOPE_ENDS = frozenset({"mà", "nhưng", "nhưng_mà", "song", "tuy", "?", "!", ".", ",", ";", ":"})

_TOKEN_RE = re.compile(r"\w+|[?!.,;:]")
_WORD_RE = re.compile(r"\w+")
_BOUNDARY = frozenset({".", ",", ";", ":"})


def syllables(text: str) -> list[str]:
    """Split normalised text into syllables, keeping ``?``, ``!`` and boundary punctuation.

    Example
    -------
    >>> syllables("mạng yếu quá, gọi tổng đài không được?")
    ['mạng', 'yếu', 'quá', ',', 'gọi', 'tổng', 'đài', 'không', 'được', '?']
    """
    return _TOKEN_RE.findall(text)


def mark_negation(tokens: list[str], *, scope: int = NEGATION_SCOPE) -> list[str]:
    """The tokens inside a negation scope, prefixed ``neg_`` (returned as a separate list).

    Example
    -------
    >>> mark_negation(["không", "phải", "mạng", "yếu", "mà", "bị", "trừ", "tiền"], scope=3)
    ['neg_phải', 'neg_mạng', 'neg_yếu']
    """
    marked: list[str] = []
    remaining = 0
    for token in tokens:
        if token in _SCOPE_ENDS:
            remaining = 0
        elif token in NEGATION_CUES:
            remaining = scope
        elif remaining:
            marked.append("neg_" + token)
            remaining -= 1
    return marked


def drop_boundaries(tokens: list[str]) -> list[str]:
    """Tokens without the boundary punctuation kept for negation scopes (``?`` and ``!`` stay)."""
    return [t for t in tokens if t not in _BOUNDARY]


# --- underthesea -------------------------------------------------------------------------------

_underthesea_lock = threading.Lock()


def _new_lock_after_fork() -> None:  # a child must not inherit the lock held by a parent's thread
    global _underthesea_lock
    _underthesea_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


@functools.cache
def _word_tokenize() -> Callable[..., list[str]]:
    """Import underthesea once, restoring the root logger it reconfigures on import."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        from underthesea import word_tokenize
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return word_tokenize


_SENTENCE_END_RE = re.compile(r"(?<=[.!?;\n])\s+")


def _pieces(text: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """Cut text into pieces of at most ``limit`` characters, at sentence ends, then spaces."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END_RE.split(text):
        if len(sentence) <= limit:
            if sentence.strip():
                pieces.append(sentence)
            continue
        current = ""
        for word in sentence.split():
            while len(word) > limit:  # a run with no space at all: cut it
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(word[:limit])
                word = word[limit:]
            if current and len(current) + 1 + len(word) > limit:
                pieces.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        if current:
            pieces.append(current)
    return pieces


@functools.lru_cache(maxsize=200_000)
def _segment_piece(piece: str) -> tuple[str, ...]:
    word_tokenize = _word_tokenize()
    with _underthesea_lock:
        words = word_tokenize(piece)
    return tuple(w.replace(" ", "_") for w in words)


def segment(text: str) -> list[str]:
    """Word-segment normalised text with underthesea; multi-syllable words joined by ``_``.

    Example
    -------
    >>> segment("gọi tổng đài chờ mãi")
    ['gọi', 'tổng_đài', 'chờ', 'mãi']
    """
    tokens: list[str] = []
    for piece in _pieces(text):
        for word in _segment_piece(piece):
            if _WORD_RE.fullmatch(word):
                tokens.append(word)
            else:  # punctuation runs, "e-mail": keep what the syllable path would keep
                tokens.extend(_TOKEN_RE.findall(word))
    return tokens
