"""Tokenisation: the syllable path, negation scopes, and the guards around underthesea."""

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from vnfeedback import tokenize
from vnfeedback.tokenize import MAX_PIECE_CHARS, _pieces, mark_negation, segment, syllables


def test_syllables_keep_question_marks_and_boundaries():
    assert syllables("mạng yếu quá, gọi không được?") == [
        "mạng",
        "yếu",
        "quá",
        ",",
        "gọi",
        "không",
        "được",
        "?",
    ]


def test_negation_scope_stops_at_contrast_word():
    tokens = syllables("không phải mạng yếu mà bị trừ tiền")
    assert mark_negation(tokens, scope=3) == ["neg_phải", "neg_mạng", "neg_yếu"]


def test_negation_scope_stops_at_punctuation():
    assert mark_negation(syllables("không, mạng vẫn yếu")) == []


def test_negation_scope_is_bounded():
    assert mark_negation(syllables("chưa nhận được tiền khuyến mãi"), scope=2) == ["neg_nhận", "neg_được"]


def test_segment_joins_multi_syllable_words():
    words = segment("gọi tổng đài chờ mãi")
    assert "tổng_đài" in words


def test_import_of_underthesea_leaves_root_logger_alone():
    # in a fresh interpreter: in this one underthesea may be imported already, and its import is
    # what reconfigures the root logger
    import subprocess
    import sys

    code = (
        "import logging, sys\n"
        "from vnfeedback.tokenize import segment\n"
        "segment('mạng yếu')\n"
        "assert 'underthesea' in sys.modules\n"
        "root = logging.getLogger()\n"
        "print(len(root.handlers), root.level)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", str(logging.WARNING)]


def test_segment_never_passes_fixed_words(monkeypatch):
    calls = []

    def fake(sentence, **kwargs):
        calls.append(kwargs)
        return sentence.split()

    monkeypatch.setattr(tokenize, "_word_tokenize", lambda: fake)
    tokenize._segment_piece.cache_clear()
    segment("sóng yếu quá trời luôn")
    tokenize._segment_piece.cache_clear()
    assert calls and all("fixed_words" not in kw for kw in calls)


def test_long_run_without_spaces_is_cut_into_bounded_pieces():
    # underthesea's regex tokeniser is super-linear on long unbroken runs like "a." * 20000
    pieces = _pieces("a." * 20000)
    assert max(map(len, pieces)) <= MAX_PIECE_CHARS
    assert "".join(pieces) == "a." * 20000


def test_segment_survives_lone_surrogate_after_cleaning():
    from vnfeedback.normalize import normalize

    assert segment(normalize("mạng\ud800 yếu")) == ["mạng", "yếu"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab .!?\n", max_size=600))
def test_pieces_cover_the_text_and_respect_the_limit(text):
    pieces = _pieces(text)
    assert all(len(p) <= MAX_PIECE_CHARS for p in pieces)
    assert "".join("".join(p.split()) for p in pieces) == "".join(text.split())


def test_a_forked_child_does_not_inherit_the_underthesea_lock_held(fork_while_held):
    import os

    status = fork_while_held(tokenize._underthesea_lock, lambda: not tokenize._underthesea_lock.locked())
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
