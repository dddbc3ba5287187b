"""Vietnamese text normalisation: pure functions from a raw comment to the string the features read.

The steps, in order (``normalize``):

1. ``clean``: lone surrogates, control and zero-width characters removed; Unicode NFC.
2. Emoji and emoticons become sentiment placeholder tokens (``xxemopos``, ``xxemoneg``, ...).
3. Lower-casing.
4. URLs, e-mails, phone numbers, hotlines, USSD codes, money, data sizes, speeds, dates, times,
   package codes and other numbers become placeholder tokens (``xxurl``, ``xxmoney``, ...), so that
   "trừ 15k" and "trừ 50.000đ" meet.
5. Word by word: letters repeated for emphasis squeezed ("chậmmmm" -> "chậm", "quáaaa" -> "quá");
   one tone-mark placement ("hoà" -> "hòa", "thuỷ" -> "thủy"); teencode and telecom abbreviations
   expanded from ``resources/abbreviations.tsv`` plus any user extension ("ko dc" -> "không được",
   "nv" -> "nhân viên").

``strip_accents`` gives the accent-stripped view ("mạng yếu quá" -> "mang yeu qua") that lets comments
typed without diacritics meet the ones typed with them. Negation is marked at the token stage
(``vnfeedback.tokenize.mark_negation``) because it needs token boundaries.

Every function here takes and returns strings and holds no mutable global state; the data files are
read once, on first use.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from importlib import resources

import numpy as np

__all__ = [
    "clean",
    "normalize",
    "prepare",
    "prepare_many",
    "finish_word",
    "strip_accents",
    "load_abbreviations",
    "PLACEHOLDERS",
]

#: Placeholder tokens that normalisation may emit, with what each stands for.
PLACEHOLDERS = {
    "xxurl": "a web address",
    "xxemail": "an e-mail address",
    "xxphone": "a phone number",
    "xxhotline": "an 1800/1900 hotline number",
    "xxussd": "a USSD code such as *101#",
    "xxmoney": "an amount of money (15k, 50.000đ, 2 triệu)",
    "xxdatasize": "a data volume (2GB, 500MB)",
    "xxspeed": "a connection speed (100Mbps)",
    "xxdate": "a date (12/3, 12/03/2025)",
    "xxtime": "a time of day (8h30)",
    "xxpackage": "a package or plan code (ST90, V120, SD70)",
    "xxnum": "any other number",
    "xxemopos": "a positive emoji or emoticon",
    "xxemoneg": "a negative emoji or emoticon",
    "xxemoneutral": "a laughing or neutral emoji",
    "xxemoji": "any other emoji",
}

_RESOURCES = "vnfeedback.resources"


def _read_tsv(name: str) -> list[tuple[str, str]]:
    text = resources.files(_RESOURCES).joinpath(name).read_text(encoding="utf-8")
    pairs = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, value = line.split("\t")
        pairs.append((unicodedata.normalize("NFC", key), unicodedata.normalize("NFC", value)))
    return pairs


@functools.cache
def load_abbreviations() -> dict[str, str]:
    """The bundled abbreviation table (short form -> expansion), read once.

    Returns
    -------
    dict
        A new copy each call is not made: treat the result as read-only.
    """
    return {key.lower(): value for key, value in _read_tsv("abbreviations.tsv")}


@functools.cache
def _emoji_tables() -> tuple[dict[str, str], dict[str, str]]:
    emoji, emoticons = {}, {}
    for symbol, token in _read_tsv("emoji.tsv"):
        if any(ch.isascii() for ch in symbol):
            emoticons[symbol] = token
        else:
            emoji[symbol.replace("\ufe0f", "")] = token
    return emoji, emoticons


@functools.cache
def _tone_table() -> tuple[re.Pattern[str], dict[str, str]]:
    pairs = dict(_read_tsv("tone_marks.tsv"))
    alternatives = "|".join(sorted(pairs, key=len, reverse=True))
    # only at the end of a syllable, and not after q ("quý" is already right)
    return re.compile(rf"(?<!q)({alternatives})(?!\w)"), pairs


# --- character classes -------------------------------------------------------------------------

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_INVISIBLE_RE = re.compile(r"[\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff\ufe0e\ufe0f]")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
_UNSAFE_RE = re.compile(
    "[" + "".join(p.pattern[1:-1] for p in (_CONTROL_RE, _INVISIBLE_RE, _SURROGATE_RE)) + "]"
)
# Emoji blocks: pictographs, symbols, dingbats, flags, and supplemental symbols.
_EMOJI_RE = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2300-\u23ff\u2b00-\u2bff\U0001f1e6-\U0001f1ff]")
_TONE_MARKS = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def clean(text: str) -> str:
    """Remove what breaks tokenisers (lone surrogates, control and zero-width characters); NFC.

    Parameters
    ----------
    text : str
        Any string, including ones decoded with ``surrogateescape``.

    Returns
    -------
    str
        The same text in Unicode NFC, with those characters replaced by a space (controls, surrogates)
        or removed (zero-width).

    Example
    -------
    >>> clean("Mạng\\u200b yếu\\x00 quá")
    'Mạng yếu  quá'
    """
    return unicodedata.normalize("NFC", _strip_unsafe(text))


def _strip_unsafe(text: str) -> str:
    if not _UNSAFE_RE.search(text):  # one scan for the usual text that has none of them
        return text
    text = _SURROGATE_RE.sub(" ", text)
    text = _CONTROL_RE.sub(" ", text)
    return _INVISIBLE_RE.sub("", text)


_TABLE_CHARS = [chr(code) for code in range(0x00C0, 0x1EFF + 1)]  # the letters the tables map


def _each(form: str, texts: list[str]) -> list[str]:
    """``unicodedata.normalize(form, t)`` of every text, in one call: NUL between them is a starter
    that nothing composes with, so no mark moves or merges across it (a loop of 7,744 calls was most
    of a freshly started process's first batch)."""
    return unicodedata.normalize(form, "\x00".join(texts)).split("\x00")


@functools.cache
def _strip_table() -> dict[int, str]:
    table = {ord("đ"): "d", ord("Đ"): "D"}
    for char, parts in zip(_TABLE_CHARS, _each("NFD", _TABLE_CHARS), strict=True):
        if parts != char:  # otherwise the base is the letter itself, or empty for a lone mark
            base = "".join(c for c in parts if not unicodedata.combining(c))
            if len(base) == 1 and base.isascii():
                table[ord(char)] = base
    return table


def strip_accents(text: str) -> str:
    """The accent-stripped view of a text: every Vietnamese letter reduced to its ASCII base.

    Example
    -------
    >>> strip_accents("Mạng yếu quá, đợi mãi")
    'Mang yeu qua, doi mai'
    """
    return text.translate(_strip_table())


@functools.cache
def _tone_only_table() -> dict[int, str]:
    """Letter -> the same letter without its tone mark (keeps ư, ơ, â, ê, ô, ă)."""
    kept = "\x00".join(_each("NFD", _TABLE_CHARS)).translate(dict.fromkeys(map(ord, _TONE_MARKS)))
    return {
        ord(char): composed
        for char, composed in zip(_TABLE_CHARS, unicodedata.normalize("NFC", kept).split("\x00"), strict=True)
        if composed != char and len(composed) == 1
    }


# --- placeholders ------------------------------------------------------------------------------

_L = r"a-zà-ỹđ"  # lower-case Vietnamese letters (NFC, after lower-casing)
_TLD = r"\.(?:com|vn|net|org|info|io|me|ly)\b"  # the web addresses the URL rule knows without a scheme
# Every rule must take time linear in the text: a rule that is tried at every position of a long run
# and scans to the run's end each time takes seconds on 20,000 characters (``"1." * 10_000``, a
# single pasted line). So an address's parts are bounded as in DNS and e-mail (a label of at most 63
# characters, at most 16 labels, a mailbox name of at most 64), and the number rules below never
# start again inside a run of digits where the start of the run could not match.
_LABEL = r"[\w-]{1,63}"
_PLACEHOLDER_RULES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(rf"(?:https?://|www\.)\S+|\b{_LABEL}(?:\.{_LABEL}){{0,15}}{_TLD}(?:/\S*)?"),
        " xxurl ",
    ),
    (re.compile(rf"\b[\w.+-]{{1,64}}@{_LABEL}(?:\.{_LABEL}){{1,15}}\b"), " xxemail "),
    # The rules below start with the character they consume first and check what precedes it with a
    # lookbehind only then ("\d(?<!x\d)" = "(?<!x)\d"): the same matches, but the regex engine can skip
    # ahead to the next candidate character instead of trying the whole pattern at every position.
    (re.compile(r"1(?<![\d*#]1)[89]00[\s.]?\d{4}(?!\d)"), " xxhotline "),
    (re.compile(r"[*#]\d{2,4}(?:[*#]\d*)*#"), " xxussd "),
    (re.compile(r"(?:\+(?<!\w\+)84|8(?<!\w8)4|0(?<!\w0))\d{2,3}(?:[\s.-]?\d){6,7}(?!\w)"), " xxphone "),
    (re.compile(r"0(?<!\w0)\d{2,4}x{3,}(?!\w)"), " xxphone "),
    (
        re.compile(
            rf"\d(?<![\w.,]\d)\d*(?:[.,]\d+)*\s?(?:k|nghìn|ngàn|đ|đồng|vnd|vnđ|tr|triệu|củ|cành|xị|lít)(?![{_L}\d])"
        ),
        " xxmoney ",
    ),
    (
        re.compile(
            rf"\d(?:(?<![\w.,]\d)\d*(?:[.,]\d+)?\s?(?:gb|mb|kb|g|m)(?:b)?/?(?:s|giây)(?![{_L}])|(?<!\d\d)\d*\s?(?:mbps|kbps|gbps)(?![{_L}]))"
        ),
        " xxspeed ",
    ),
    (re.compile(rf"\d(?<![\w.,]\d)\d*(?:[.,]\d+)?\s?(?:gb|mb|kb|tb)(?![{_L}\d])"), " xxdatasize "),
    (re.compile(r"\d(?<![\w/]\d)\d?[/-]\d{1,2}(?:[/-]\d{2,4})?(?![\w/])"), " xxdate "),
    (re.compile(rf"\d(?<!\w\d)\d?h(?:\d{{2}})?(?![{_L}\d])"), " xxtime "),
    (re.compile(r"(?<![\w])(?:[a-z]{1,6}\d{2,4}[a-z]{0,3}|\d[a-z]\d{2,4}[a-z]{0,2})(?![\w])"), " xxpackage "),
    # (a digit after a digit starts a match only where the run's first digit could not: after a letter)
    (re.compile(rf"\d(?<![{_L}]\d)(?<!(?<![{_L}])\d\d)\d*(?:[.,]\d+)*(?![{_L}\d])"), " xxnum "),
]
# The first two rules can only match a text that ``_ADDRESS_GATE`` finds; the others all need a digit.
_ADDRESS_PASS, _DIGIT_PASS = _PLACEHOLDER_RULES[:2], _PLACEHOLDER_RULES[2:]
_ADDRESS_GATE = re.compile(rf"@|www\.|https?://|{_TLD}")

_WORD_RE = re.compile(r"\w+")
_SPACES_RE = re.compile(r"\s+")


@functools.cache
def _emoticon_re() -> re.Pattern[str]:
    """An emoticon followed by a space or the end (the caller checks what comes before: a pattern
    that starts with a lookbehind would be tried at every position, this one only at its first
    characters)."""
    _, emoticons = _emoji_tables()
    alternatives = "|".join(re.escape(e) for e in sorted(emoticons, key=len, reverse=True))
    return re.compile(rf"(?:{alternatives})(?![^ ])")


def _replace_emoji(text: str) -> str:
    emoji, emoticons = _emoji_tables()

    def emoticon_token(match: re.Match[str]) -> str:
        start = match.start()
        alone = start == 0 or text[start - 1] == " "  # a whole space-separated token
        return emoticons[match.group(0)] if alone else match.group(0)

    text = _emoticon_re().sub(emoticon_token, text)

    def emoji_token(match: re.Match[str]) -> str:
        return " " + emoji.get(match.group(0), "xxemoji") + " "

    return _EMOJI_RE.sub(emoji_token, text)


def _fix_tone_placement(text: str) -> str:
    pattern, pairs = _tone_table()
    return pattern.sub(lambda m: pairs[m.group(1)], text)


def _squeeze_repeats(text: str) -> str:
    """'chậmmmm' -> 'chậm', 'quáaaa' -> 'quá'; keeps real doubles ('xoong', 'cừu')."""
    base = text.translate(_tone_only_table())
    stripped = strip_accents(base)
    if not _RUN_RE.search(stripped):
        return text
    out = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and stripped[j] == stripped[i] and stripped[i].isalpha():
            j += 1
        run = j - i
        if run >= 3:
            out.append(text[i])
        elif run == 2 and base[i] == text[i + 1] and text[i] != text[i + 1] and base[i].isascii():
            # an accented vowel followed by its bare copy ('quáa'), not 'cừu' (ư is not bare u)
            out.append(text[i])
        else:
            out.append(text[i:j])
        i = j
    return "".join(out)


_RUN_RE = re.compile(r"([a-z])\1")


def normalize(text: str, *, abbreviations: Mapping[str, str] | None = None) -> str:
    """Normalise one comment for feature extraction (see the module docstring for the steps).

    Parameters
    ----------
    text : str
        A raw comment, any length, any mix of diacritics, emoji and teencode.
    abbreviations : mapping, optional
        Short form -> expansion. Defaults to the bundled table; pass
        ``{**load_abbreviations(), **yours}`` to extend it.

    Returns
    -------
    str
        Lower-cased, NFC, with placeholders and expansions; punctuation is kept.

    Example
    -------
    >>> normalize("Mạng 4G chậmmmm, bị trừ 15k ko rõ lý do 😡")
    'mạng 4g chậm, bị trừ xxmoney không rõ lý do xxemoneg'
    """
    table = load_abbreviations() if abbreviations is None else abbreviations
    return finish(prepare(text), table)


def finish(prepared: str, table: Mapping[str, str]) -> str:
    """Step 5 of ``normalize`` on a ``prepare``d text (or any run of it between spaces): every word
    finished, spaces collapsed."""
    text = _WORD_RE.sub(lambda m: finish_word(m.group(0), table), prepared)
    return _SPACES_RE.sub(" ", text).strip()


# Normalisation in two halves, so that a whole batch can go through the first half at once:
# ``prepare`` (steps 1 to 4) works on the text as a whole, ``finish_word`` (step 5) on one word at
# a time, because none of step 5 ever looks beyond the word. ``normalize`` is ``finish_word``
# applied to every word of ``prepare(text)``; ``prepare_many`` is ``prepare`` applied to every text.

#: Separates the texts of a batch in ``prepare_many``: a private-use character, which no step matches
#: and which ``prepare`` never produces, with a space on either side so that no pattern runs on into
#: the next text (every pattern treats a space like the end of the text).
BATCH_SEPARATOR = " \ue000 "

# Every placeholder rule needs one of these; a text without any skips the rules. The batch forms run
# on to the end of their text, so that one scan of a batch matches each text at most once: texts with
# an address get the address rules, then texts with a digit (all the other rules need one) the rest.
_PLACEHOLDER_GATE = re.compile(r"\d|" + _ADDRESS_GATE.pattern)
_ADDRESS_GATE_RUN = re.compile(_ADDRESS_GATE.pattern.join(("(?:", ")[^\ue000]*")))
# Where the number rules can match (their windows): from the start of a run of text between spaces
# that holds a digit, over every following run that holds a digit, to one space and the next run.
# Every number rule needs a digit; what it takes before its first digit lies in that
# digit's run (letters of a package code, "+", "*", "#"), what it takes after its last digit ends in
# the next run ("15 nghìn", "5 mb/giây"), and no rule takes a run without a digit between two
# digits. So no match reaches outside the windows, and none of the rules' lookbehinds and lookaheads
# tells the space before or after a window from the separator that stands there instead. The
# pattern finds a window from its first digit; ``_digit_windows`` steps back to the start of the run.
# A space here is any of Python's whitespace but U+1680 (OGHAM SPACE MARK), which lies inside the
# letter range ``_L`` and so must stay inside a run, next to the digit a lookbehind checks.
_SPACES = "\t-\r\x1c-\x20\x85\xa0\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_RUN = rf"[^{_SPACES}\ue000]*"
_DIGIT_WINDOW = re.compile(rf"\d{_RUN}(?:[{_SPACES}]+{_RUN}\d{_RUN})*(?:[{_SPACES}]{_RUN})?")
# How far back a window's start is looked for; a run longer than this starts its window at its
# text's start instead (a larger window is never wrong, only slower).
_RUN_LOOKBACK = 64


def _placeholders(text: str, rules: Sequence[tuple[re.Pattern[str], str]] = _PLACEHOLDER_RULES) -> str:
    for pattern, token in rules:
        text = pattern.sub(token, text)
    return text


def prepare(text: str) -> str:
    """Steps 1 to 4 of ``normalize`` (clean, emoji, lower-case, placeholders) on one text."""
    text = _replace_emoji(clean(text)).lower()
    return _placeholders(text) if _PLACEHOLDER_GATE.search(text) else text


def _run_gated(parts: list[str], joined: str, gate: re.Pattern[str], rules: Sequence) -> bool:
    """Apply ``rules`` in place to the parts (texts of ``joined``) that ``gate`` finds; whether any."""
    starts = [m.start() for m in gate.finditer(joined)]
    if not starts:
        return False
    ends = np.cumsum([len(part) + len(BATCH_SEPARATOR) for part in parts])
    gated = np.searchsorted(ends, starts, side="right").tolist()
    done = _placeholders(BATCH_SEPARATOR.join(parts[i] for i in gated), rules).split(BATCH_SEPARATOR)
    for i, part in zip(gated, done, strict=True):
        parts[i] = part
    return True


def prepare_many(texts: list[str]) -> list[str] | None:
    """``prepare`` of every text, each regular expression run once over the whole batch.

    Returns None when a text holds the separator character itself; the caller then prepares
    the texts one at a time.
    """
    if not texts:
        return []
    joined = BATCH_SEPARATOR.join(texts)
    if joined.count("\ue000") != len(texts) - 1:
        return None
    # NFC text by text: on the joined batch one decomposed accent anywhere makes NFC re-compose it all
    nfc = functools.partial(unicodedata.normalize, "NFC")
    joined = BATCH_SEPARATOR.join(map(nfc, _strip_unsafe(joined).split(BATCH_SEPARATOR)))
    joined = _replace_emoji(joined).lower()
    parts = joined.split(BATCH_SEPARATOR)
    # the rules in their order: URL and e-mail on the texts with an address, then the rest on the texts
    # with a digit (the rest all need one, so no other text can change)
    if _run_gated(parts, joined, _ADDRESS_GATE_RUN, _ADDRESS_PASS):
        joined = BATCH_SEPARATOR.join(parts)
    return _digit_windows(joined).split(BATCH_SEPARATOR)


def _is_gap(char: str) -> bool:
    """Whether ``char`` ends a run (``_RUN``): a space of ``_SPACES`` or the batch separator."""
    return (char.isspace() and char != "\u1680") or char == "\ue000"


def _digit_windows(joined: str) -> str:
    """The number rules applied to a joined batch, run only over the windows around its digits
    (``_DIGIT_WINDOW``): the same result as over the whole texts, on a tenth of the characters."""
    spans: list[list[int]] = []
    for match in _DIGIT_WINDOW.finditer(joined):
        start, end = match.span()
        low = max(start - _RUN_LOOKBACK, 0)
        while start > low and not _is_gap(joined[start - 1]):
            start -= 1
        if start == low and start and not _is_gap(joined[start - 1]):
            start = joined.rfind("\ue000", 0, start) + 1  # the text's start (its separator's space)
        if spans and spans[-1][1] >= start:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    if not spans:
        return joined
    done = _placeholders(BATCH_SEPARATOR.join(joined[s:e] for s, e in spans), _DIGIT_PASS).split(
        BATCH_SEPARATOR
    )
    out, previous = [], 0
    for (start, end), window in zip(spans, done, strict=True):
        out += (joined[previous:start], window)
        previous = end
    out.append(joined[previous:])
    return "".join(out)


@functools.lru_cache(maxsize=200_000)
def _shape_word(word: str) -> str:
    # squeeze first: "hoàaaa" -> "hoà" only then ends in "oà", which tone placement moves to "hòa"
    return _fix_tone_placement(_squeeze_repeats(word))


def finish_word(word: str, table: Mapping[str, str]) -> str:
    """Step 5 of ``normalize`` on one word: repeated letters, tone placement, abbreviation."""
    word = _shape_word(word)
    return table.get(word, word)
