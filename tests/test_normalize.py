"""Normalisation: examples from real comments, and properties that must hold for any string."""

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vnfeedback.normalize import (
    PLACEHOLDERS,
    clean,
    load_abbreviations,
    normalize,
    prepare,
    prepare_many,
    strip_accents,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Mạng 4G chậmmmm", "mạng 4g chậm"),
        ("QUÁAAA tệ", "quá tệ"),
        ("ko dc", "không được"),
        ("mn ơi nv tổng đài nói j vậy", "mọi người ơi nhân viên tổng đài nói gì vậy"),
        ("Hoà mạng ở Thuỷ Nguyên", "hòa mạng ở thủy nguyên"),
        ("quý khách", "quý khách"),
        ("trừ 15k", "trừ xxmoney"),
        ("mất 50.000đ", "mất xxmoney"),
        ("gọi 18001090", "gọi xxhotline"),
        ("bấm *101# kiểm tra", "bấm xxussd kiểm tra"),
        ("sđt 0981234567", "số điện thoại xxphone"),
        ("xem https://abc.vn/khuyen-mai nha", "xem xxurl nha"),
        ("gói ST90 với V120", "gói xxpackage với xxpackage"),
        ("hôm 12/3 mất mạng 2 lần", "hôm xxdate mất mạng xxnum lần"),
        ("tệ quá 😡😡", "tệ quá xxemoneg xxemoneg"),
        ("cảm ơn :)", "cảm ơn xxemopos"),
        ("được 100Mbps thôi", "được xxspeed thôi"),
        ("còn 2GB", "còn xxdatasize"),
    ],
)
def test_normalize_examples(raw, expected):
    assert normalize(raw) == expected


def test_repeated_letters_keep_real_vietnamese_doubles():
    # "xoong" and "cừu" have a doubled base letter that is part of the word
    assert normalize("cái xoong con cừu") == "cái xoong con cừu"


def test_normalize_keeps_4g_and_5g_as_words():
    assert normalize("4G 5G 3g") == "4g 5g 3g"


def test_user_abbreviations_extend_the_bundled_table():
    table = {**load_abbreviations(), "vtp": "viettel post"}
    assert normalize("gửi vtp", abbreviations=table) == "gửi viettel post"
    assert normalize("gửi vtp") == "gửi vtp"


def test_clean_removes_surrogates_controls_and_zero_width():
    assert clean("a\ud800b\x00c\u200bd") == "a b cd"


def test_strip_accents_meets_the_unaccented_spelling():
    assert strip_accents("Mạng yếu quá, đợi mãi ĐƯỢC") == "Mang yeu qua, doi mai DUOC"


def test_accented_and_unaccented_comments_meet_after_normalising():
    expected = "mang yeu qua, khong vao duoc"
    assert strip_accents(normalize("Mạng yếu quá, ko vào đc")) == expected
    assert strip_accents(normalize("mang yeu qua, ko vao dc")) == expected


def test_placeholders_are_documented():
    out = normalize("gọi 0981234567 trừ 15k 😡 gói ST90 ngày 1/2 lúc 8h30 xem www.abc.com 3 lần 😂 🦄")
    emitted = {token for token in out.split() if token.startswith("xx")}
    assert emitted and emitted <= set(PLACEHOLDERS)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_normalize_never_raises_and_output_is_clean(text):
    out = normalize(text)
    assert out == out.strip()
    assert "  " not in out
    out.encode("utf-8")  # no lone surrogate survives
    assert not any(unicodedata.category(ch) == "Cc" for ch in out)
    assert unicodedata.is_normalized("NFC", out)


vietnamese = st.text(
    alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ ,.?!0123456789",
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(vietnamese)
def test_normalize_is_idempotent_on_vietnamese_text(text):
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=300, deadline=None)
@given(vietnamese)
def test_strip_accents_gives_ascii_for_vietnamese_letters(text):
    assert strip_accents(text).isascii()
    assert len(strip_accents(text)) == len(text)


# --- the batch half: prepare_many is prepare on every text, with one pass per step for the batch --

# Pieces that would join up across a text boundary if the separator let them: a number at the end of
# one text and a unit at the start of the next, URLs and hotlines cut in two, emoticons at the edges.
EDGE_PIECES = [
    "15",
    "k",
    " k",
    "1800",
    "1234",
    "www.",
    "abc.vn",
    ":)",
    ":(",
    "a:)",
    "0981",
    " 234567",
    "đ",
    "\n",
    " ",
    "",
    "\u0301",  # a combining accent with nothing before it in its own text
    "a\u200b\u0301",  # zero-width space removed first, then NFC composes "á"
    "ê\u0301",
]


@pytest.mark.parametrize("left", EDGE_PIECES)
def test_prepare_many_does_not_join_neighbouring_texts(left):
    texts = [left, *EDGE_PIECES, left]
    assert prepare_many(texts) == [prepare(t) for t in texts]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from(list("0123456789 .,:;)(/-*#@kđmgbhxwv1\n😡ạ")) | st.characters(),
            max_size=30,
        ),
        max_size=8,
    )
)
def test_prepare_many_equals_prepare_text_by_text(texts):
    batch = prepare_many(texts)
    if any("\ue000" in t for t in texts):
        assert batch is None  # the caller then prepares one text at a time
    else:
        assert batch == [prepare(t) for t in texts]


# The number rules run only over windows around the digits of a batch (``_digit_windows``); these
# pieces make numbers, units and package codes with every kind of space between them, runs of
# letters before a digit longer than the window's look-back, and chains of numbers ("0912 345 678").
WINDOW_PIECES = [
    "0912",
    "345",
    "678",
    "+84",
    "1800",
    "15",
    "2.5",
    "a70",
    "st90",
    "x2",
    "*101#",
    "8h30",
    "12/3",
    "k",
    "củ",
    "nghìn",
    "mb/s",
    "ms",
    "gb",
    "mbps",
    "xxx",
    "ạ",
    "a" * 70,
    "b" * 63,
    " ",
    "  ",
    "\t",
    "\n",
    "\xa0",
    "\u3000",
    "\u1680",  # a space to \s, a letter to the rules' Vietnamese range
    ".",
    "-",
]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.lists(st.sampled_from(WINDOW_PIECES), max_size=12).map("".join), min_size=1, max_size=6))
@example(["pin galaxy a70 4500 ms mà thua", "x2 18 củ.. con này 15 củ là vừa"])  # chains ending in a unit
@example(["a" * 70 + "12 tr", "c" * 64 + "15k", "d" * 65 + "15k"])  # runs longer than the look-back
@example(["0912\xa0345\t678 gọi", "1\u30002gb"])
@example(["\u16806", "ạ\u168012 k", "5\u1680k"])
def test_number_windows_give_what_the_whole_texts_give(texts):
    assert prepare_many(texts) == [prepare(t) for t in texts]


def test_the_window_spaces_are_pythons_whitespace_but_ogham():
    import re

    from vnfeedback.normalize import _SPACES, _is_gap

    spaces = {chr(c) for c in range(0x110000) if re.fullmatch(rf"[{_SPACES}]", chr(c))}
    assert spaces == {chr(c) for c in range(0x110000) if chr(c).isspace()} - {"\u1680"}
    assert all(_is_gap(c) for c in spaces) and _is_gap("\ue000") and not _is_gap("\u1680")


# Runs that made a rule rescan to the end of the run from every position (seconds for 20,000
# characters, the longest text the model reads): each with the rule it hit.
QUADRATIC_BEFORE = {
    "1": "xxspeed (its mbps branch)",
    "1a": "xxnum (a run of digits ending in a letter)",
    "1.": "xxurl",
    "1-": "xxurl",
    "+84": "xxemail",
}


@pytest.mark.parametrize("piece", list(QUADRATIC_BEFORE))
def test_long_runs_take_time_in_proportion_to_their_length(piece):
    # a scaling check, not a speed goal: 8 times the text may take about 8 times as long, not 64
    import time

    def seconds(n):
        text = (piece[:-1] * n + piece[-1:]) if piece == "1a" else piece * n
        text = text[: n * 2]
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            prepare(text)
            prepare_many([text, "x 1"])
            best = min(best, time.perf_counter() - started)
        return best

    small, large = seconds(1_250), seconds(10_000)
    assert large < 0.02 or large / small < 24, (QUADRATIC_BEFORE[piece], small, large)


def test_emoticons_only_count_as_whole_tokens():
    assert normalize("cảm ơn :) :(") == "cảm ơn xxemopos xxemoneg"
    assert "xxemopos" not in normalize("abc:)")


def test_tone_placement_sees_the_squeezed_word():
    # hypothesis found "oàa": squeezing gave "oà", which a second normalize() turned into "òa"
    assert normalize("oàa") == "òa" == normalize(normalize("oàa"))
    assert normalize("hoàaaa") == "hòa"


# The placeholder rules for numbers are written with their first character before the lookbehind,
# for speed. Their plain forms, here in the same order, say what they mean; both must match exactly
# the same text.
PLAIN_NUMBER_RULES = [
    r"(?<![\d*#])1[89]00[\s.]?\d{4}(?!\d)",
    r"[*#]\d{2,4}(?:[*#]\d*)*#",
    r"(?<![\w])(?:\+?84|0)\d{2,3}(?:[\s.-]?\d){6,7}(?![\w])",
    r"(?<![\w])0\d{2,4}x{3,}(?![\w])",
    r"(?<![\w.,])\d+(?:[.,]\d+)*\s?(?:k|nghìn|ngàn|đ|đồng|vnd|vnđ|tr|triệu|củ|cành|xị|lít)(?![a-zà-ỹđ\d])",
    r"(?<![\w.,])\d+(?:[.,]\d+)?\s?(?:gb|mb|kb|g|m)(?:b)?/?(?:s|giây)(?![a-zà-ỹđ])"
    r"|\d+\s?(?:mbps|kbps|gbps)(?![a-zà-ỹđ])",
    r"(?<![\w.,])\d+(?:[.,]\d+)?\s?(?:gb|mb|kb|tb)(?![a-zà-ỹđ\d])",
    r"(?<![\w/])\d{1,2}[/-]\d{1,2}(?:[/-]\d{2,4})?(?![\w/])",
    r"(?<![\w])\d{1,2}h(?:\d{2})?(?![a-zà-ỹđ\d])",
    r"(?<![\w])(?:[a-z]{1,6}\d{2,4}[a-z]{0,3}|\d[a-z]\d{2,4}[a-z]{0,2})(?![\w])",
    r"(?<![a-zà-ỹđ])\d+(?:[.,]\d+)*(?![a-zà-ỹđ\d])",
]
NUMBER_PIECES = [
    *"0123456789 .,/-*#+xkđhab\n",
    "0912345678",
    "84",
    "+84",
    "1800",
    "1900",
    "1091",
    "12",
    "2025",
    "mb",
    "gb",
    "mb/s",
    "mbps",
    "g",
    "giây",
    "tr",
    "triệu",
    "nghìn",
    "xxx",
    "st",
    "ạ",
    "_",
]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(NUMBER_PIECES), max_size=14).map("".join))
# each rule with a word character, and with a space, before its first character
@example("a+84912345678 +84912345678 a84912345678 84912345678 a0912345678 0912345678 a0912xxx 0912xxx")
@example(
    "a18001091 18001091 *18001091 a15k 15k .15k a2gb 2gb a5mb/s 5mb/s a10mbps 10mbps a12/3 12/3 a7h30 7h30"
)
@example("a12 12 1.5 ,5 đ5 5đ")
def test_fast_placeholder_rules_match_their_plain_forms(text):
    import re

    from vnfeedback.normalize import _DIGIT_PASS

    for (pattern, token), plain in zip(_DIGIT_PASS, PLAIN_NUMBER_RULES, strict=True):
        fast = [m.span() for m in pattern.finditer(text)]
        assert fast == [m.span() for m in re.finditer(plain, text)], token


def test_the_accent_tables_equal_their_letter_by_letter_definitions():
    """The tables are built with one normalisation call over all letters (session 12); they must
    equal the loop over single letters they replaced, including letters that are themselves marks."""
    import unicodedata

    from vnfeedback.normalize import _TONE_MARKS, _strip_table, _tone_only_table

    strip, tone = {ord("đ"): "d", ord("Đ"): "D"}, {}
    for code in range(0x00C0, 0x1EFF + 1):
        char = chr(code)
        parts = unicodedata.normalize("NFD", char)
        base = "".join(c for c in parts if not unicodedata.combining(c))
        if base != char and len(base) == 1 and base.isascii():
            strip[code] = base
        kept = unicodedata.normalize("NFC", "".join(c for c in parts if c not in _TONE_MARKS))
        if kept != char and len(kept) == 1:
            tone[code] = kept
    assert _strip_table() == strip
    assert _tone_only_table() == tone
    assert tone[0x037E] == ";"  # a Greek question mark, whose NFC is another character: kept too
