"""Trend reports over a classified archive: one self-contained HTML file plus JSON.

``trend_report(path, output)`` reads a file written by ``vnfeedback classify`` (CSV, JSON Lines or
Parquet, ``.gz`` for the text formats) in chunks, so a 1,000,000-row archive never sits in memory, and
reports per week or per month:

- volume: every row of the period, split into classified rows and rows ``classify`` could not
  classify (a non-empty ``error``);
- the count and share of each complaint type and each product area, over the classified rows. A
  comment may have several complaint types, so those shares can sum to more than 1; ``(none)``
  counts the rows with no complaint type. Product-area shares sum to 1;
- the share of classified rows that need review;
- spikes, with the most representative comments of each;
- frequent terms the model does not know.

Dates are ISO strings (``2025-09-12``, optionally followed by ``T``/a space and a time) or date
values (Parquet). A row whose date is missing or unreadable is counted under ``undated`` (in the
JSON and in the page's note), never dropped; it takes no part in the time series. Periods are ISO
weeks (``2025-W37``) or months (``2025-09``); a period without any comment inside the archive's date
range is kept with zero counts, because an empty week is part of the baseline.

The plausible-date rule
-----------------------
Exports often fill a missing date with a placeholder (``1900-01-01``, ``1970-01-01``,
``0001-01-01``, ``9999-12-31``). Trusted, one such row would stretch the series over centuries of
empty periods. So a date is used only when it falls between 2000-01-01 and one year (366 days) after
the day the report is made, both included: feedback cannot be older than the digital archives it
comes from, nor written in the future (the year of margin covers clocks and time zones set wrong). A
row dated outside that window is counted under ``undated`` like a row without a date, and the report
says how many rows were set aside this way, with the first few distinct values (``dates_set_aside``
in the JSON, a sentence in the page, a warning through the ``vnfeedback.trends`` logger). The window
is a fixed rule rather than one fitted to the data, so a row's period never depends on the other
rows (only the last plausible date moves, with the day of the report); the window used is written in
the JSON. A date inside the window but far from the rest (a placeholder of 2000-01-01) still widens
the range: ``since``/``until`` (``--since``/``--until``) keep the report to the span asked for. As
a last guard, a span of more than 2,000 periods is refused with a ``DataError``.

The spike rule
--------------
For every complaint type and product area (``(none)`` included: a growing share of comments that fit
no complaint type can be a new problem), the count of a period is compared with the counts of the
``baseline_periods`` periods before it (fewer at the start of the archive). With ``m`` and ``s`` the
mean and population standard deviation of those trailing counts, the period is a spike when

    count >= 5  and  count >= 1.5 * m  and  count > m + 3 * max(s, sqrt(m), 1),

and at least 2 trailing periods exist. The ``sqrt(m)`` floor is the Poisson standard deviation, so a
label that was perfectly flat (``s = 0``) is not flagged for ordinary noise; the floor of 1 and the
minimum count of 5 keep rare labels (0, 0, 1 then 3) quiet; the ratio of 1.5 keeps a busy label
(1,000 a week) from being flagged for a statistically clear but small rise (1,100). The trailing
window includes earlier spikes, so a problem that stays high is flagged when it starts, not every
period after.

For each (period, label), the five comments with the highest task score (``complaint_type_score`` or
``product_area_score``: the top probability of that task) are kept while reading, one per normalised
text, so memory is bounded by periods x labels x 5; a spike shows those of its period and label.

The new-term rule
-----------------
Each classified comment is normalised (``vnfeedback.normalize.normalize`` with the model's abbreviation
table) and split into syllables. A syllable is a candidate when it has at least 2 characters, at
least one letter, and is not a placeholder (``xx...``). A term is *known* to the model when the model
has it as a word n-gram (a ``w|`` key of ``model.features_.vocabulary_``; underthesea models write
words with ``_``) or its accent-stripped form as a syllable n-gram (``s|``: the model reads
"sieu" and "siêu" alike). Counted, once per comment:

- ``word``: an unknown candidate syllable;
- ``bigram``: two adjacent candidate syllables, both known, whose pair is unknown (a new phrase made
  of known syllables; a pair holding an unknown syllable is already reported through that word);
- ``code``: an ALL-CAPS code of the raw text (``[A-Z][A-Z0-9]{2,}`` as a whole token, e.g.
  ``SIEU5G``), because normalisation turns most package codes into the ``xxpackage`` placeholder.
  A code whose lower-case form is a known term (a comment typed in capitals, ``MANG YEU``) is not
  one; the same token lower-cased is then not counted again as a word.

Counts live in one bounded counter per kind: past 100,000 distinct terms it keeps the 50,000 most
frequent, so the count of a term pruned early and seen again later is an underestimate (the frequent
terms, the ones reported, are rarely affected), and the many one-off words (typos) never push a code
out. The report lists, per kind, the 30 most frequent terms found in at least 5 comments (codes
first: they are the rarest and the most telling), with their first and last period seen.

Figures are matplotlib PNGs embedded as ``data:`` URIs: the HTML has no external resource and no
script.
"""

from __future__ import annotations

import base64
import functools
import heapq
import html
import io
import json
import logging
import math
import os
import re
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from .batch import read_chunks
from .errors import DataError, ParameterError
from .normalize import clean, finish, load_abbreviations, prepare, prepare_many, strip_accents
from .tables import parse_multilabel, table_format, write_atomic
from .tokenize import syllables

__all__ = ["trend_report"]

log = logging.getLogger("vnfeedback.trends")

#: Allowed values of ``by``.
PERIODS = ("week", "month")
#: The classified columns a trend report follows, with their kind.
TREND_TASKS = {"complaint_type": "multilabel", "product_area": "single"}
NO_LABEL = "(none)"
UNDATED = "undated"

#: The earliest plausible date of a comment; the latest is ``LATEST_DATE_MARGIN`` after today.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE_MARGIN = timedelta(days=366)
#: Distinct implausible date values the report quotes.
SET_ASIDE_EXAMPLES = 5
#: The most periods a report builds; past this it refuses rather than loop over empty periods.
MAX_PERIODS = 2_000

SPIKE_MIN_COUNT = 5
SPIKE_MIN_RATIO = 1.5
SPIKE_SIGMAS = 3.0
SPIKE_MIN_TRAILING = 2
EXAMPLES_PER_SPIKE = 5
EXAMPLE_CHARS = 300

TERM_MIN_COMMENTS = 5
TOP_TERMS = 30  # per kind of term
TERM_COUNTER_SIZE = 50_000
MIN_TERM_CHARS = 2

# A comment longer than this is read only up to here for terms (the same cut as the features).
_TERM_TEXT_CHARS = 20_000
# Distinct chunks of text (runs between spaces) kept finished; past this the cache starts afresh.
_CHUNK_CACHE_SIZE = 200_000
# Comments read as one batch (``prepare_many``) by the report.
_READ_BATCH = 2_000
# What the period reader returns for a readable date outside the plausible window.
_IMPLAUSIBLE = "implausible"
# ... and for a plausible date outside the span asked for (since=, until=).
_OUTSIDE = "outside"

_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T\s]|$)")
_CODE_RE = re.compile(r"(?<!\w)[A-Z][A-Z0-9]{2,}(?!\w)")

SPIKE_RULE = (
    f"count >= {SPIKE_MIN_COUNT} and count >= {SPIKE_MIN_RATIO:g} * m and count > m + {SPIKE_SIGMAS:g} * "
    f"max(s, sqrt(m), 1), where m and s are the mean and standard deviation of the trailing periods' "
    f"counts (at least {SPIKE_MIN_TRAILING})"
)
DATE_RULE = (
    f"a date before {EARLIEST_DATE.isoformat()} or more than {LATEST_DATE_MARGIN.days} days after the day "
    f"of the report is a placeholder, not a comment's date: the row is counted as undated"
)
TERM_RULE = (
    f"syllables, syllable pairs and ALL-CAPS codes of the comments that the model has no feature for, "
    f"found in at least {TERM_MIN_COMMENTS} comments; the {TOP_TERMS} most frequent of each kind"
)


# --- periods -----------------------------------------------------------------------------------


def _period_label(day: date, by: str) -> str:
    if by == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def _period_start(label: str, by: str) -> date:
    if by == "week":
        year, week = label.split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    year, month = label.split("-")
    return date(int(year), int(month), 1)


def _period_range(first: str, last: str, by: str) -> list[str]:
    """Every period from ``first`` to ``last``, the empty ones included.

    Parameters
    ----------
    first, last : str
        Period labels (``2025-W37`` or ``2025-09``), ``first`` not after ``last``.
    by : {"week", "month"}
        The kind of period.

    Returns
    -------
    list of str
        The labels, in order.

    Raises
    ------
    DataError
        When the span holds more than ``MAX_PERIODS`` periods (placeholder dates in the data).
    """
    day, end = _period_start(first, by), _period_start(last, by)
    if by == "week":
        count = (end - day).days // 7 + 1
    else:
        count = (end.year - day.year) * 12 + end.month - day.month + 1
    if count > MAX_PERIODS:
        raise DataError(
            f"the dates run from {first} to {last}: {count:,} {by}s, more than the {MAX_PERIODS:,} a "
            f"report can show; "
            + ("report by month (by='month', --by month) or " if by == "week" else "")
            + "keep only the rows of the span you want (look for placeholder dates in the date column)"
        )
    labels = []
    for number in range(count):
        labels.append(_period_label(day, by))
        if number == count - 1:
            break  # never step past the last period: after 9999-12 there is no date to step to
        if by == "week":
            day += timedelta(days=7)
        else:
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return labels


def _date_window() -> tuple[date, date]:
    """The first and last plausible date of a comment, both included (the rule in the module docstring)."""
    return EARLIEST_DATE, date.today() + LATEST_DATE_MARGIN


def _period_reader(
    by: str, window: tuple[date, date], span: tuple[date | None, date | None] = (None, None)
) -> Callable[[Any], str | None]:
    """A function from a date cell to its period label; None when it holds no readable date,
    ``_IMPLAUSIBLE`` when its date lies outside ``window`` (first and last plausible date), and
    ``_OUTSIDE`` when it is plausible but outside ``span`` (first and last day asked for, or None)."""
    earliest, latest = window
    since, until = span

    def label(day: date) -> str:
        if not earliest <= day <= latest:
            return _IMPLAUSIBLE
        if (since is not None and day < since) or (until is not None and day > until):
            return _OUTSIDE
        return _period_label(day, by)

    @functools.lru_cache(maxsize=4096)
    def from_text(head: str) -> str | None:
        match = _DATE_RE.match(head)
        if match is None:
            return None
        try:
            return label(date(*map(int, match.groups())))
        except ValueError:  # 2025-02-30
            return None

    def period_of(value: Any) -> str | None:
        if isinstance(value, datetime):
            return label(value.date())
        if isinstance(value, date):
            return label(value)
        if isinstance(value, str):
            # the first 11 characters decide (the date and what follows it), so the cache stays small
            return from_text(value.strip()[:11])
        return None

    return period_of


# --- what one row says -------------------------------------------------------------------------


def _reads(reader: _TermReader, rows: list[dict[str, Any]], readable: list[bool], text_column: str):
    """The reads of the readable rows, in order, a few thousand comments per batch (what a batch's
    reads hold is kept only until its rows are counted)."""
    for start in range(0, len(rows), _READ_BATCH):
        batch = zip(rows[start : start + _READ_BATCH], readable[start : start + _READ_BATCH], strict=True)
        yield from reader.read_many([row[text_column] for row, ok in batch if ok])


def _failed(row: dict[str, Any]) -> bool:
    """Whether the row was not classified (an error from reading it or from ``classify``)."""
    error = row.get("__error__") or row.get("error")
    return isinstance(error, str) and bool(error.strip())


def _has_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) if value is not None and value == value else False


def _score(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number else 0.0


def _labels(value: Any, kind: str) -> list[str]:
    if kind == "multilabel":
        labels = parse_multilabel(value)
    elif isinstance(value, str):
        labels = [value.strip()] if value.strip() else []
    else:
        labels = parse_multilabel(value)[:1]
    return labels or [NO_LABEL]


@dataclass
class _Period:
    """Counts of one period (or of the undated rows)."""

    volume: int = 0
    classified: int = 0
    errors: int = 0
    needs_review: int = 0
    labels: dict[str, Counter] = field(default_factory=dict)


class _Examples:
    """The best few comments of one (period, label): a min-heap on (score, earlier row first)."""

    __slots__ = ("heap", "keys")

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, str, str]] = []
        self.keys: set[str] = set()

    def offer(self, score: float, order: int, key: str, text: str) -> None:
        item = (score, -order, key, text)
        if key in self.keys:
            # the same comment posted again adds nothing to read; keep its best-scored copy
            index = next(i for i, kept in enumerate(self.heap) if kept[2] == key)
            if item > self.heap[index]:
                self.heap[index] = item
                heapq.heapify(self.heap)
            return
        if len(self.heap) < EXAMPLES_PER_SPIKE:
            heapq.heappush(self.heap, item)
            self.keys.add(key)
        elif item > self.heap[0]:
            dropped = heapq.heapreplace(self.heap, item)
            self.keys.discard(dropped[2])
            self.keys.add(key)

    def best(self) -> list[dict[str, Any]]:
        return [{"text": text, "score": score} for score, _, _, text in sorted(self.heap, reverse=True)]


# --- terms -------------------------------------------------------------------------------------


def _known_terms(model: Any) -> tuple[frozenset[str], frozenset[str]]:
    """The model's word n-grams (with spaces) and accent-stripped syllable n-grams."""
    words, stripped = set(), set()
    for key in model.features_.vocabulary_:
        if key.startswith("w|"):
            words.add(key[2:].replace("_", " "))
        elif key.startswith("s|"):
            stripped.add(key[2:])
    return frozenset(words), frozenset(stripped)


TERM_KINDS = ("code", "word", "bigram")


class _TermReader:
    """Comments -> (normalised text, the unknown terms it holds), a batch at a time.

    Reads each comment exactly as ``normalize`` and ``syllables`` would, one by one (tests hold the two
    equal on real comments), but the text-wide half of normalisation runs once per batch
    (``prepare_many``), and each distinct chunk of prepared text (a run between spaces; nothing after
    ``prepare`` crosses a space) is finished and split into syllables once, until the cache is full.
    """

    def __init__(self, model: Any) -> None:
        self.words, self.stripped = _known_terms(model)
        extra = getattr(model.features_, "abbreviations", None) or {}
        self.table = {**load_abbreviations(), **{str(k).lower(): str(v) for k, v in extra.items()}}
        self.chunks: dict[str, _Chunk] = {}  # prepared chunk -> what it reads as
        self.known = functools.lru_cache(maxsize=65_536)(self._known)

    def _known(self, term: str) -> bool:
        return term in self.words or strip_accents(term) in self.stripped

    def _state(self, token: str) -> int:
        """0: not a candidate (short, placeholder, punctuation, digits); 1: unknown; 2: known."""
        if len(token) < MIN_TERM_CHARS or token.startswith("xx") or not any(ch.isalpha() for ch in token):
            return 0
        return 2 if self.known(token) else 1

    def _chunk(self, chunk: str) -> _Chunk:
        """A chunk read once: its finished text, the terms inside it, and what joins it to its neighbours."""
        finished = finish(chunk, self.table)
        found: set[tuple[str, str]] = set()
        first: str | None = None
        previous: str | None = None
        for position, token in enumerate(syllables(finished)):
            state = self._state(token)
            if position == 0:
                first = token if state == 2 else ""
            if state == 1:
                found.add(("word", token))
            elif state == 2 and previous is not None:
                pair = f"{previous} {token}"
                if not self.known(pair):
                    found.add(("bigram", pair))
            previous = token if state == 2 else None
        entry = _Chunk(finished, frozenset(found), first, previous)
        self.chunks[chunk] = entry
        return entry

    def read_many(self, texts: list[str]) -> list[tuple[str, frozenset[tuple[str, str]]]]:
        """(normalised text, unknown terms) of every text; a text is read up to ``_TERM_TEXT_CHARS``."""
        cut = [text[:_TERM_TEXT_CHARS] for text in texts]
        distinct = list(dict.fromkeys(cut))  # comments repeat a lot in real archives
        prepared = prepare_many(distinct)
        if prepared is None:  # a text holds the batch separator: one at a time
            prepared = [prepare(text) for text in distinct]
        if len(self.chunks) > _CHUNK_CACHE_SIZE:
            self.chunks.clear()
        done = {text: self._read(text, ready) for text, ready in zip(distinct, prepared, strict=True)}
        return [done[text] for text in cut]

    def _read(self, text: str, prepared: str) -> tuple[str, frozenset[tuple[str, str]]]:
        chunks, known = self.chunks, self.known
        pieces: list[str] = []
        terms: set[tuple[str, str]] = set()
        previous: str | None = None  # the known candidate just before, for pairs that span no gap
        for chunk in prepared.split():
            entry = chunks.get(chunk) or self._chunk(chunk)
            if entry.finished:
                pieces.append(entry.finished)
            if entry.terms:
                terms |= entry.terms
            if entry.first is None:  # no syllable: the chunk joins nothing and breaks nothing
                continue
            if previous is not None and entry.first:
                pair = f"{previous} {entry.first}"
                if not known(pair):
                    terms.add(("bigram", pair))
            previous = entry.last
        for match in _CODE_RE.finditer(clean(text)):
            code = match.group(0)
            if not known(code.lower()):
                terms.add(("code", code))
                terms.discard(("word", code.lower()))
        return " ".join(pieces), frozenset(terms)


class _Chunk(NamedTuple):
    """One chunk of prepared text as ``_TermReader`` keeps it."""

    finished: str
    terms: frozenset[tuple[str, str]]  # unknown words, and unknown pairs inside the chunk
    first: str | None  # its first syllable if a known candidate, "" if another, None if it has none
    last: str | None  # its last syllable if a known candidate


class _TermCounter:
    """Comments per term with first and last period seen, one bounded counter per kind of term.

    Each kind is pruned on its own, so the many one-off typos among the words can never push a
    rising package code out of its counter.
    """

    def __init__(self, size: int = TERM_COUNTER_SIZE) -> None:
        self.size = size
        self.counts: dict[str, Counter] = {kind: Counter() for kind in TERM_KINDS}
        self.seen: dict[str, dict[str, list[str | None]]] = {kind: {} for kind in TERM_KINDS}

    def add(self, terms: frozenset[tuple[str, str]], period: str | None) -> None:
        for kind, term in terms:
            counts, seen = self.counts[kind], self.seen[kind]
            counts[term] += 1
            span = seen.get(term)
            if span is None:
                seen[term] = [period, period]
            elif period is not None:
                if span[0] is None or period < span[0]:
                    span[0] = period
                if span[1] is None or period > span[1]:
                    span[1] = period
            if len(counts) > 2 * self.size:
                kept = Counter(dict(counts.most_common(self.size)))
                self.counts[kind] = kept
                self.seen[kind] = {t: seen[t] for t in kept}

    def top(self) -> list[dict[str, Any]]:
        """The most frequent terms of each kind found in enough comments: codes, words, then pairs."""
        found = []
        for kind in TERM_KINDS:
            counts, seen = self.counts[kind], self.seen[kind]
            frequent = [(term, n) for term, n in counts.items() if n >= TERM_MIN_COMMENTS]
            frequent.sort(key=lambda item: (-item[1], seen[item[0]][0] or "~", item[0]))
            found += [
                {
                    "term": term,
                    "kind": kind,
                    "comments": n,
                    "first_period": seen[term][0],
                    "last_period": seen[term][1],
                }
                for term, n in frequent[:TOP_TERMS]
            ]
        return found


# --- spikes ------------------------------------------------------------------------------------


def _spikes(
    periods: list[dict[str, Any]], labels: dict[str, list[str]], baseline_periods: int
) -> list[dict[str, Any]]:
    """Every (period, task, label) whose count breaks the spike rule of the module docstring."""
    found = []
    for task, names in labels.items():
        for label in names:
            series = [p[task]["counts"].get(label, 0) for p in periods]
            for index, count in enumerate(series):
                trailing = series[max(0, index - baseline_periods) : index]
                if len(trailing) < SPIKE_MIN_TRAILING or count < SPIKE_MIN_COUNT:
                    continue
                mean = statistics.fmean(trailing)
                spread = statistics.pstdev(trailing)
                threshold = mean + SPIKE_SIGMAS * max(spread, math.sqrt(mean), 1.0)
                if count > threshold and count >= SPIKE_MIN_RATIO * mean:
                    found.append(
                        {
                            "period": periods[index]["period"],
                            "task": task,
                            "label": label,
                            "count": count,
                            "share": periods[index][task]["shares"].get(label, 0.0),
                            "baseline_mean": round(mean, 3),
                            "baseline_std": round(spread, 3),
                            "threshold": round(threshold, 3),
                        }
                    )
    found.sort(key=lambda s: (s["period"], -s["count"] / max(s["threshold"], 1.0)))
    return found


# --- the page ----------------------------------------------------------------------------------


def _figure_maker() -> Callable[..., Any]:
    """``Figure`` with an Agg canvas, imported lazily.

    The object-oriented API is used instead of ``pyplot`` + ``matplotlib.use("Agg")`` so that a
    report made inside a notebook or a GUI program leaves that program's backend and figures alone.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ParameterError("trend reports draw figures with matplotlib: pip install matplotlib") from None

    def make(**options: Any) -> Any:
        figure = Figure(layout="constrained", **options)
        FigureCanvasAgg(figure)
        return figure

    return make


def _figure_uri(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _time_axis(axes: Any, names: list[str]) -> None:
    step = max(1, math.ceil(len(names) / 14))
    axes.set_xticks(range(0, len(names), step))
    axes.set_xticklabels(names[::step], rotation=45, ha="right", fontsize=8)
    axes.set_xlim(-0.6, len(names) - 0.4)
    axes.grid(axis="y", alpha=0.3)


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    palette = colormaps["tab20"]
    # the dark shade of each of the ten hues first, so that up to ten labels never look alike
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return [palette(order[i % 20]) for i in range(n)]


def _figures(make: Callable[..., Any], report: dict[str, Any]) -> list[tuple[str, str]]:
    periods = report["periods"]
    names = [p["period"] for p in periods]
    x = list(range(len(names)))
    figures = []

    figure = make(figsize=(10, 3.2))
    axes = figure.add_subplot()
    classified = [p["classified"] for p in periods]
    axes.bar(x, classified, color="#4c78a8", label="classified")
    axes.bar(x, [p["errors"] for p in periods], bottom=classified, color="#e45756", label="not classified")
    axes.set_title(f"Comments per {report['by']}")
    axes.legend(fontsize=8)
    _time_axis(axes, names)
    figures.append(("comments per period", _figure_uri(figure)))

    spikes = {(s["task"], s["label"], s["period"]) for s in report["spikes"]}
    for task, title in (("complaint_type", "Share of comments per complaint type"),):
        if task not in report["labels"]:
            continue
        figure = make(figsize=(10, 4))
        axes = figure.add_subplot()
        for label, color in zip(report["labels"][task], _colors(len(report["labels"][task])), strict=True):
            shares = [p[task]["shares"].get(label, 0.0) for p in periods]
            style = "--" if label == NO_LABEL else "-"
            axes.plot(x, shares, style, marker=".", color=color, label=label)
            marked = [i for i, name in enumerate(names) if (task, label, name) in spikes]
            axes.scatter(marked, [shares[i] for i in marked], s=90, facecolors="none", edgecolors="red")
        axes.set_ylim(bottom=0)
        axes.set_title(title + " (red circles: spikes; a comment may have several types)")
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        _time_axis(axes, names)
        figures.append((title, _figure_uri(figure)))

    if "product_area" in report["labels"]:
        figure = make(figsize=(10, 3.6))
        axes = figure.add_subplot()
        bottom = [0.0] * len(periods)
        labels = report["labels"]["product_area"]
        for label, color in zip(labels, _colors(len(labels)), strict=True):
            shares = [p["product_area"]["shares"].get(label, 0.0) for p in periods]
            axes.bar(x, shares, bottom=bottom, color=color, label=label, width=0.9)
            marked = [i for i, name in enumerate(names) if ("product_area", label, name) in spikes]
            axes.bar(
                marked,
                [shares[i] for i in marked],
                bottom=[bottom[i] for i in marked],
                width=0.9,
                fill=False,
                edgecolor="red",
                linewidth=2,
            )
            bottom = [b + s for b, s in zip(bottom, shares, strict=True)]
        axes.set_ylim(0, 1)
        axes.set_title("Share of comments per product area (red outline: spikes)")
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        _time_axis(axes, names)
        figures.append(("share per product area", _figure_uri(figure)))

    figure = make(figsize=(10, 2.8))
    axes = figure.add_subplot()
    axes.plot(x, [p["needs_review_share"] for p in periods], marker=".", color="#f58518")
    axes.set_ylim(0, 1)
    axes.set_title("Share of classified comments that need review")
    _time_axis(axes, names)
    figures.append(("share needing review", _figure_uri(figure)))
    return figures


STYLE = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#1a202c;padding:0 1em}h1{font-size:1.6em}h2{border-bottom:1px solid #cbd5e0;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}td,th{border:1px solid #e2e8f0;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#edf2f7}img{max-width:100%}.note{color:#4a5568;font-size:.9em}
blockquote{margin:.2em 0;color:#2d3748}"""


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are HTML already (callers escape what comes from the data)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(report: dict[str, Any], figures: list[tuple[str, str]]) -> str:
    e = html.escape
    undated = report["undated"]
    sections = [
        f"<h1>Trends in {e(Path(report['source']).name)}</h1>",
        f"<p class='note'>{report['rows']:,} comments, {report['classified']:,} classified, "
        f"{report['errors']:,} not classified (an error in the archive)"
        + (
            f"; per {e(report['by'])} from {e(report['first_period'])} to {e(report['last_period'])}. "
            if report["periods"]
            else ". "
        )
        + f"{undated['volume']:,} comment(s) without a readable {e(report['date_column'])} are counted "
        f"under “undated” and left out of the figures.</p>",
    ]
    aside = report["dates_set_aside"]
    if aside["rows"]:
        sections.append(
            f"<p class='note'><b>{aside['rows']:,} of the undated comment(s) have a {e(report['date_column'])} "
            f"outside {e(aside['window'][0])} to {e(aside['window'][1])}</b> (for example "
            + ", ".join(f"“{e(value)}”" for value in aside["examples"])
            + f"): taken for placeholders, not dates. The rule: {e(DATE_RULE)}.</p>"
        )
    span = report["outside_span"]
    if span["since"] or span["until"]:
        sections.append(
            f"<p class='note'>The span asked for: {e(_span_text(span['since'], span['until']))}; "
            f"{span['rows']:,} comment(s) dated outside it are left out of this report.</p>"
        )
    if figures:
        sections.append(
            "<h2>Over time</h2>" + "".join(f"<p><img alt='{e(alt)}' src='{uri}'></p>" for alt, uri in figures)
        )
    else:
        sections.append("<p class='note'>No dated comment: nothing to draw.</p>")

    rows = []
    for spike in report["spikes"]:
        quotes = "".join(
            f"<blockquote>{e(example['text'][:EXAMPLE_CHARS])} <span class='note'>({example['score']:.2f})"
            "</span></blockquote>"
            for example in spike["examples"]
        )
        rows.append(
            [
                e(spike["period"]),
                e(spike["task"]),
                f"<b>{e(spike['label'])}</b>",
                f"{spike['count']:,}",
                f"{spike['share']:.1%}",
                f"{spike['baseline_mean']:.1f}",
                f"{spike['threshold']:.1f}",
                quotes or "<span class='note'>no text</span>",
            ]
        )
    sections.append(
        "<h2>Spikes</h2>"
        + f"<p class='note'>A period is a spike for a label when {e(SPIKE_RULE)}; trailing periods: "
        f"{report['baseline_periods']}. Comments: the highest-scoring ones of that period and label.</p>"
        + (
            _table(
                ["period", "task", "label", "count", "share", "baseline mean", "threshold", "comments"],
                rows,
            )
            if rows
            else "<p>No spike.</p>"
        )
    )

    terms = [
        [
            e(t["term"]),
            e(t["kind"]),
            f"{t['comments']:,}",
            e(str(t["first_period"] or UNDATED)),
            e(str(t["last_period"] or UNDATED)),
        ]
        for t in report["new_terms"]
    ]
    sections.append(
        "<h2>New frequent terms</h2>"
        + f"<p class='note'>{e(TERM_RULE)}.</p>"
        + (
            _table(["term", "kind", "comments", "first seen", "last seen"], terms)
            if terms
            else "<p>No frequent unknown term.</p>"
        )
    )

    numbers = []
    for p in report["periods"] + ([undated] if undated["volume"] else []):
        tops = []
        for task in report["labels"]:
            counts = p[task]["counts"]
            if counts:
                label = max(counts, key=counts.get)
                tops.append(f"{e(label)} ({p[task]['shares'][label]:.0%})")
            else:
                tops.append("")
        numbers.append(
            [
                e(p["period"]),
                f"{p['volume']:,}",
                f"{p['errors']:,}",
                f"{p['needs_review_share']:.1%}",
                *tops,
            ]
        )
    sections.append(
        "<h2>Per period</h2>"
        + _table(
            ["period", "comments", "not classified", "needs review", *(f"top {t}" for t in report["labels"])],
            numbers,
        )
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Trends in {e(Path(report['source']).name)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(sections)}</body></html>"
    )


# --- the report --------------------------------------------------------------------------------


def _period_numbers(name: str, stats: _Period, labels: dict[str, list[str]]) -> dict[str, Any]:
    numbers: dict[str, Any] = {
        "period": name,
        "volume": stats.volume,
        "classified": stats.classified,
        "errors": stats.errors,
        "needs_review": stats.needs_review,
        "needs_review_share": round(stats.needs_review / stats.classified, 4) if stats.classified else 0.0,
    }
    for task, names in labels.items():
        counts = stats.labels.get(task, Counter())
        numbers[task] = {
            "counts": {label: counts[label] for label in names if counts[label]},
            "shares": {
                label: round(counts[label] / stats.classified, 4)
                for label in names
                if counts[label] and stats.classified
            },
        }
    return numbers


def trend_report(
    path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    date_column: str = "date",
    by: str = "month",
    text_column: str = "text",
    model: Any = None,
    baseline_periods: int = 4,
    chunk_size: int = 50_000,
    since: str | date | None = None,
    until: str | date | None = None,
) -> dict[str, Any]:
    """Write an HTML trend report of a classified archive (and ``<stem>.json`` beside it).

    The archive is read in chunks of ``chunk_size`` rows; what is kept between chunks is bounded
    (counts per period and label, five comments per period and label, a pruned term counter), so a
    1,000,000-row archive is fine. The plausible-date, spike and new-term rules are in the module
    docstring: a row dated before 2000-01-01 or more than a year after today counts as undated.

    Parameters
    ----------
    path : path
        A file written by ``vnfeedback classify`` (``.csv``, ``.jsonl``, ``.parquet``; ``.gz`` for
        csv/jsonl) with ``complaint_type`` and/or ``product_area``, ``<task>_score``,
        ``needs_review``, ``error``, the date column and the text column.
    output : path
        The HTML file to write; the numbers go to the same name with ``.json``.
    date_column : str
        The column with each comment's date (ISO ``YYYY-MM-DD``, a time may follow).
    by : {"month", "week"}
        Calendar months (``2025-09``) or ISO weeks (``2025-W37``).
    text_column : str
        The column with the comment, for example comments and new terms.
    model : FeedbackClassifier, path or None
        The model whose vocabulary defines a known term: a loaded model, a model directory, or None
        for the bundled model.
    baseline_periods : int
        How many trailing periods a period's count is compared with (at least 2).
    chunk_size : int
        Rows read at a time.
    since, until : str or date, optional
        The first and last day to report (ISO ``YYYY-MM-DD``, both included): the report covers
        exactly the periods from ``since`` to ``until``, and rows dated outside are left out
        (counted in ``outside_span``); spikes are judged against the trailing periods inside the
        span. Undated rows are still counted under ``undated``. Use them
        for a quarter's report, or to keep out a placeholder date that falls inside the plausible
        window (``2000-01-01`` in a 2025 archive).

    Returns
    -------
    dict
        What is written to the JSON file: totals, ``periods`` (one entry per period of the range,
        empty ones included), ``undated``, ``dates_set_aside`` (``rows`` dated outside the
        plausible ``window``, counted under ``undated``, and the first few distinct values as
        ``examples``), ``outside_span`` (``rows`` left out by ``since``/``until``, and the span),
        ``labels``, ``spikes`` (with ``examples``) and ``new_terms``. ``rows`` counts the rows in
        the report, not those outside the span.

    Raises
    ------
    ParameterError
        For a ``by`` other than "week" or "month", a bad ``baseline_periods`` or ``chunk_size``, an
        output path ending in ``.json``, a ``since``/``until`` that is not a date or comes in the
        wrong order, or when matplotlib is not installed.
    DataError
        When the file is missing, of an unknown format, empty, or lacks the date, text or classified
        columns, when no row is left inside ``since``/``until``, or when the report would span more
        than 2,000 periods.

    Example
    -------
    >>> report = trend_report("phan_loai_thang9.parquet", "xu_huong.html", by="week")  # doctest: +SKIP
    >>> report["spikes"][0]["label"], report["spikes"][0]["examples"][0]["text"]  # doctest: +SKIP
    ('network_quality', 'Mạng 4G mất sóng cả ngày ở Cầu Giấy, gọi tổng đài không ai nghe')
    >>> [t["term"] for t in report["new_terms"] if t["kind"] == "code"]  # doctest: +SKIP
    ['SIEU5G']
    """
    if by not in PERIODS:
        raise ParameterError(f"by must be one of {PERIODS}, got {by!r}")
    if isinstance(baseline_periods, bool) or not isinstance(baseline_periods, int) or baseline_periods < 2:
        raise ParameterError(f"baseline_periods must be a whole number >= 2, got {baseline_periods!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ParameterError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    output = Path(output)
    json_path = output.with_suffix(".json")
    if json_path == output:
        raise ParameterError(
            f"output is the HTML page and the numbers go beside it in .json; got {str(output)!r}"
        )
    span = (_day(since, "since"), _day(until, "until"))
    if span[0] is not None and span[1] is not None and span[0] > span[1]:
        raise ParameterError(f"since ({span[0]}) is after until ({span[1]}); swap them")
    make_figure = _figure_maker()  # before the long read: a missing matplotlib should fail at once
    source = str(path)
    if not os.path.isfile(source):
        raise DataError(f"no such file: {source!r}")
    fmt = table_format(source)
    if model is None or isinstance(model, (str, os.PathLike)):
        import vnfeedback

        model = vnfeedback.load(model)
    reader = _TermReader(model)
    window = _date_window()
    period_of = _period_reader(by, window, span)
    set_aside = outside = 0
    set_aside_examples: dict[str, None] = {}  # the first distinct values, in order

    stats: dict[str, _Period] = {}
    examples: dict[tuple[str, str, str], _Examples] = {}
    terms = _TermCounter()
    tasks: dict[str, str] | None = None
    order = 0
    for chunk in read_chunks(source, fmt, chunk_size):
        if tasks is None and any("__error__" not in row for row in chunk):
            tasks = _check_columns(chunk, source, date_column, text_column)
        failed = [_failed(row) for row in chunk]
        periods_of_rows = [period_of(row.get(date_column)) for row in chunk]
        readable = [
            not bad and period != _OUTSIDE and _has_text(row.get(text_column))
            for row, bad, period in zip(chunk, failed, periods_of_rows, strict=True)
        ]
        reads = _reads(reader, chunk, readable, text_column)
        for row, bad, ok, period in zip(chunk, failed, readable, periods_of_rows, strict=True):
            if period == _OUTSIDE:
                outside += 1
                continue
            order += 1
            if period == _IMPLAUSIBLE:
                set_aside += 1
                if len(set_aside_examples) < SET_ASIDE_EXAMPLES:
                    set_aside_examples.setdefault(str(row.get(date_column)).strip()[:40])
                period = None
            bucket = stats.get(period or UNDATED)
            if bucket is None:
                bucket = stats[period or UNDATED] = _Period(labels={task: Counter() for task in TREND_TASKS})
            bucket.volume += 1
            if bad:
                bucket.errors += 1
                continue
            bucket.classified += 1
            bucket.needs_review += _is_true(row.get("needs_review"))
            text = row.get(text_column)
            read = next(reads) if ok else None
            for task, kind in (tasks or {}).items():
                labels = _labels(row.get(task), kind)
                bucket.labels[task].update(labels)
                if read is not None and period is not None:
                    score = _score(row.get(f"{task}_score"))
                    for label in labels:
                        kept = examples.get((period, task, label))
                        if kept is None:
                            kept = examples[(period, task, label)] = _Examples()
                        # the key is cut like the text shown, so a very long comment costs no more
                        kept.offer(score, order, read[0][:EXAMPLE_CHARS], text[:EXAMPLE_CHARS])
            if read is not None and read[1]:
                terms.add(read[1], period)
    if order == 0:
        if outside:
            raise DataError(
                f"all {outside:,} row(s) of {source} are dated outside the span asked for, "
                f"{_span_text(*(day.isoformat() if day else None for day in span))}; "
                f"widen since/until (--since/--until)"
            )
        raise DataError(f"{source} holds no rows; nothing to report")

    totals = {task: Counter() for task in tasks or {}}
    for bucket in stats.values():
        for task in totals:
            totals[task].update(bucket.labels[task])
    # most frequent first, so the legends read like a ranking; (none) last
    labels = {
        task: sorted(counts, key=lambda label: (label == NO_LABEL, -counts[label], label))
        for task, counts in totals.items()
    }
    if set_aside:
        log.warning(
            "%d row(s) of %s have a date outside %s..%s (e.g. %s): taken for placeholders, counted as undated",
            set_aside,
            source,
            window[0].isoformat(),
            window[1].isoformat(),
            ", ".join(set_aside_examples),
        )
    dated = sorted(name for name in stats if name != UNDATED)
    if dated:  # a span asked for is shown whole, its empty periods at either end included
        first = _period_label(span[0], by) if span[0] is not None else dated[0]
        last = _period_label(span[1], by) if span[1] is not None else dated[-1]
        names = _period_range(first, last, by)
    else:
        names = []
    periods = [_period_numbers(name, stats.get(name, _Period()), labels) for name in names]
    spikes = _spikes(periods, labels, baseline_periods)
    for spike in spikes:
        kept = examples.get((spike["period"], spike["task"], spike["label"]))
        spike["examples"] = kept.best() if kept else []

    report: dict[str, Any] = {
        "source": source,
        "by": by,
        "date_column": date_column,
        "baseline_periods": baseline_periods,
        "rows": order,
        "classified": sum(b.classified for b in stats.values()),
        "errors": sum(b.errors for b in stats.values()),
        "first_period": names[0] if names else None,
        "last_period": names[-1] if names else None,
        "labels": labels,
        "periods": periods,
        "undated": _period_numbers(UNDATED, stats.get(UNDATED, _Period()), labels),
        "dates_set_aside": {
            "rows": set_aside,
            "examples": list(set_aside_examples),
            "window": [window[0].isoformat(), window[1].isoformat()],
        },
        "outside_span": {
            "rows": outside,
            "since": span[0].isoformat() if span[0] is not None else None,
            "until": span[1].isoformat() if span[1] is not None else None,
        },
        "spikes": spikes,
        "new_terms": terms.top(),
        "rules": {"spike": SPIKE_RULE, "new_terms": TERM_RULE, "dates": DATE_RULE},
    }
    figures = _figures(make_figure, report) if periods else []
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, _page(report, figures).encode("utf-8"))
    write_atomic(json_path, json.dumps(report, ensure_ascii=False, indent=1).encode("utf-8"))
    return report


def _day(value: str | date | None, name: str) -> date | None:
    """``since``/``until`` as a date (a datetime's day, or ISO ``YYYY-MM-DD`` text)."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ParameterError(f"{name} must be a date as YYYY-MM-DD (e.g. 2025-07-01), got {value!r}")


def _span_text(since: str | None, until: str | None) -> str:
    """``since``/``until`` (ISO text or None) as the page and the errors say them."""
    return f"{since or 'the first date'} to {until or 'the last date'}"


def _check_columns(
    chunk: list[dict[str, Any]], source: str, date_column: str, text_column: str
) -> dict[str, str]:
    """The classified columns present; a missing date or text column is an error that says what to pass."""
    columns = [c for c in dict.fromkeys(c for row in chunk for c in row) if not c.startswith("__")]
    for name, option in (
        (date_column, "date_column= (--date-column)"),
        (text_column, "text_column= (--text-column)"),
    ):
        if name not in columns:
            raise DataError(f"no column {name!r} in {source}; columns are {columns}; use {option}")
    tasks = {task: kind for task, kind in TREND_TASKS.items() if task in columns}
    if not tasks:
        raise DataError(
            f"no classified column ({', '.join(TREND_TASKS)}) in {source}; columns are {columns}; "
            f"run `vnfeedback classify` on the archive first"
        )
    return tasks
