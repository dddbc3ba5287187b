"""The labelling loop: which comments to label next, and which labelled rows look wrong.

``suggest(archive, model, n=200)`` picks the unlabelled comments most worth a person's time, and
``write_suggestions`` writes them as a CSV ready to fill in. ``audit(labelled_data)`` lists training
rows whose label the data itself contradicts, and ``write_audit`` writes them for review.

Suggestion rules
----------------
1. Rows without text (missing, not a string, blank, unreadable bytes, longer than
   ``vnfeedback.batch.MAX_FIELD_CHARS``) are dropped.
2. Rows with the same normalised text (``vnfeedback.normalize.normalize``) count once: the first one
   is kept.
3. Each remaining comment gets an uncertainty in [0, 1] per task, and the largest over the tasks:

   - ``single`` task: ``1 - p_top``, the probability that the top label is wrong;
   - ``multilabel`` task: ``1 - min_k m_k`` with ``m_k`` the distance of label k's probability
     ``p`` from its threshold ``t`` as a share of the room on that side:
     ``(p - t) / (1 - t)`` above the threshold, ``(t - p) / t`` below it. With ``t = 0.5`` this is
     ``1 - 2 min_k |p_k - t_k|``; scaling keeps a label at ``p = 0`` certain when its threshold
     is low (thresholds are often 0.05 to 0.3), where the unscaled distance would call almost
     every comment unsure.

4. A pool of the ``pool_factor * n`` most uncertain comments is gathered in order of uncertainty,
   skipping near-duplicates: a comment whose cosine similarity to one already in the pool is at least
   ``near_duplicate`` (0.9) on the model's features (``model.features_``, each row scaled to unit
   length; texts with no known feature share one point) is left out.
5. From the pool, ``n`` comments are chosen greedily: first the most uncertain one, then each time
   the one maximising ``uncertainty * distance`` where distance is the cosine distance to the
   closest comment already chosen (farthest-point selection weighted by uncertainty). The result is
   in that order, so the first k rows are the best k to label.

Audit rules (confident learning)
--------------------------------
Out-of-fold probabilities come from ``n_folds`` models, each trained with ``vnfeedback.train`` on the
other folds (folds stratified on the single-label tasks and each row's rarest multi-label label).
A label with fewer than 2 examples in a fold's training part cannot be learned there: a single-label
class's rows are left out of that fold's training, a multi-label label is removed from that fold's
training rows, and the held-out rows are not judged on a label the fold's model does not know.

- ``single`` task, per class ``j``: the threshold ``t_j`` is the mean out-of-fold probability of
  ``j`` over the rows labelled ``j``. A row labelled ``i`` is suspect when some other class ``j``
  has ``p_j >= t_j`` and ``p_j > p_i``; the suggested label is the most probable such ``j``.
- ``multilabel`` task, per label ``k`` with ``m_k`` the mean out-of-fold probability of ``k`` over the
  rows carrying it, and ``t_k`` the threshold of the model that predicted the row:

  - a row carrying ``k`` is suspect when ``p_k < min(m_k / 2, t_k)``: suggest removing ``k``;
  - a row lacking ``k`` is suspect when ``p_k >= m_k`` and ``p_k >= t_k``: suggest adding ``k``.

  All of a row's changes on one task make one suspect.

Each suspect carries ``p_suggested`` and ``p_given``: for a single-label task the out-of-fold
probabilities of the suggested and of the given label; for a multi-label task the probability that
every suggested change is right (``p_k`` for an addition, ``1 - p_k`` for a removal, multiplied) and
that every one is wrong. Suspects are sorted by ``margin``, largest first, a number in (0, 1]:

- ``single``: ``p_suggested - p_given``;
- ``multilabel``: the largest, over the row's changes, distance of ``p_k`` from the threshold
  ``t_k`` as a share of the room on that side, ``(t_k - p_k) / t_k`` for a removal and
  ``(p_k - t_k) / (1 - t_k)`` for an addition (the scale of ``suggest``'s uncertainty). Not
  ``1 - 2 p_k``: the calibrated probabilities of a rare label stay small even on its positives, and
  that difference would rank every removal of a rare label above every single-label suspect.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import os
import random
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .errors import DataError, ParameterError, VnfeedbackWarning
from .normalize import normalize
from .tables import infer_tasks, read_records, table_format

__all__ = ["suggest", "write_suggestions", "audit", "write_audit"]

log = logging.getLogger("vnfeedback.labelling")

#: Comments scored and compared per block while building the pool (bounds memory).
_BLOCK = 1000


# --- validation --------------------------------------------------------------------------------


def _check_whole(name: str, value: Any, minimum: int, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name} must be a whole number >= {minimum}, got {value!r}; {fix}")


def _check_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ParameterError(f"{name} must be a number in (0, 1], got {value!r}")


def _check_model(model: Any) -> None:
    if not hasattr(model, "models_") or not hasattr(model, "features_"):
        raise ParameterError(
            f"model must be a fitted FeedbackClassifier, got {type(model).__name__}; "
            f"use vnfeedback.load() or vnfeedback.train(...)"
        )


def _check_columns(rows: list[dict[str, Any]], columns: Sequence[str], fix: str) -> None:
    seen: set[str] = set()
    for row in rows[:1000]:
        seen.update(row)
    missing = [c for c in columns if not any(c in row for row in rows)]
    if missing:
        raise DataError(f"missing column(s) {missing}; the data has {sorted(seen)}. {fix}")


# --- reading -----------------------------------------------------------------------------------


def _uniform(rng: random.Random) -> float:
    """A draw in the open interval (0, 1), so that its logarithm is finite and negative."""
    while True:
        u = rng.random()
        if u > 0.0:
            return u


def _sample(items: Iterable[Any], k: int, rng: random.Random) -> list[tuple[int, Any]]:
    """A uniform sample of ``k`` items with their positions, in input order, in one pass.

    Li's reservoir "Algorithm L": it draws the length of each skip instead of a number per item, so a
    stream of millions of rows costs little more than reading it, and only ``k`` items are held.
    """
    stream = enumerate(items)
    reservoir = list(itertools.islice(stream, k))
    if len(reservoir) < k:
        return reservoir
    w = math.exp(math.log(_uniform(rng)) / k)
    while True:
        skip = math.floor(math.log(_uniform(rng)) / math.log1p(-w)) if w < 1.0 else 0
        item = next(itertools.islice(stream, skip, None), None)
        if item is None:
            break
        reservoir[rng.randrange(k)] = item
        w *= math.exp(math.log(_uniform(rng)) / k)
    reservoir.sort(key=lambda pair: pair[0])
    return reservoir


def _stream_path(path: str) -> Iterator[dict[str, Any]]:
    from .batch import read_chunks  # the archive reader of `classify`: chunked, .gz, bad lines kept

    if not os.path.exists(path):
        raise DataError(f"no such file: {path!r}")
    chunks = read_chunks(path, table_format(path), 10_000)
    try:
        for chunk in chunks:
            yield from chunk
    finally:
        chunks.close()


def _read_sample(data: Any, max_rows: int, random_state: int) -> list[tuple[int, dict[str, Any]]]:
    """At most ``max_rows`` rows of ``data`` with their row numbers (a uniform sample if there are more)."""
    rng = random.Random(random_state)
    if isinstance(data, (str, os.PathLike)):
        if ".tsv" in str(data).lower():  # the streaming reader knows comma-separated files only
            return _sample(read_records(data), max_rows, rng)
        return _sample(_stream_path(str(data)), max_rows, rng)
    if hasattr(data, "iloc") and hasattr(data, "columns"):  # a pandas DataFrame: sample positions
        positions = [i for i, _ in _sample(range(len(data)), max_rows, rng)]
        return list(zip(positions, read_records(data.iloc[positions]), strict=True))
    if isinstance(data, (Mapping, bytes, bytearray)) or not isinstance(data, Iterable):
        read_records(data)  # raises the DataError that says what data may be
    sampled = _sample(data, max_rows, rng)
    rows = read_records([row for _, row in sampled])  # checks that every row is a mapping
    return [(i, row) for (i, _), row in zip(sampled, rows, strict=True)]


def _text_of(row: dict[str, Any], column: str) -> str | None:
    """The row's comment, or None when it has none that can be read."""
    from .batch import MAX_FIELD_CHARS

    value = row.get(column)
    if "__error__" in row or not isinstance(value, str) or not value.strip():
        return None
    if len(value) > MAX_FIELD_CHARS:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes read as surrogates
        return None
    return value


# --- uncertainty -------------------------------------------------------------------------------


def _task_uncertainty(model: Any, task: str, scores: Mapping[str, float]) -> tuple[float, str]:
    """One task's uncertainty for one prediction, and why (see the module docstring)."""
    task_model = model.models_[task]
    p = np.array([scores[label] for label in task_model.labels])
    if task_model.kind == "single":
        first, second = np.argsort(-p, kind="stable")[:2]
        why = (
            f"{task}: {task_model.labels[first]} {p[first]:.2f} vs "
            f"{task_model.labels[second]} {p[second]:.2f}"
        )
        return float(1.0 - p[first]), why
    t = np.clip(np.asarray(task_model.thresholds, dtype=float), 1e-9, 1 - 1e-9)
    margin = np.where(p >= t, (p - t) / (1.0 - t), (t - p) / t)
    k = int(np.argmin(margin))
    why = f"{task}: {task_model.labels[k]} {p[k]:.2f}, threshold {t[k]:.2f}"
    return float(np.clip(1.0 - margin[k], 0.0, 1.0)), why


def _uncertainty(model: Any, prediction: Any, tasks: Sequence[str]) -> tuple[float, str]:
    """The largest uncertainty over ``tasks`` and why."""
    best, reason = -1.0, ""
    for task in tasks:
        value, why = _task_uncertainty(model, task, prediction.scores[task])
        if value > best:
            best, reason = value, why
    return best, reason


# --- diversity ---------------------------------------------------------------------------------


def _unit_rows(X: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to unit length, plus one column where texts with no known feature meet."""
    X = sp.csr_matrix(X, dtype=np.float64)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    empty = norms == 0
    scale = np.where(empty, 0.0, 1.0 / np.where(empty, 1.0, norms))
    return sp.hstack([sp.diags(scale) @ X, sp.csr_matrix(empty.astype(np.float64)[:, None])], format="csr")


def _pool(model: Any, texts: list[str], order: np.ndarray, size: int, near: float):
    """The first ``size`` texts of ``order`` that are not near-duplicates of an earlier one.

    Returns their positions (into ``texts``) and their unit feature rows.
    """
    kept: list[int] = []
    kept_rows: list[sp.csr_matrix] = []
    for start in range(0, len(order), _BLOCK):
        block = order[start : start + _BLOCK]
        rows = _unit_rows(model.features_.transform([texts[i] for i in block]))
        earlier = sp.vstack(kept_rows, format="csr") if kept_rows else None
        to_kept = (rows @ earlier.T).toarray() if earlier is not None else np.zeros((len(block), 0))
        within = (rows @ rows.T).toarray()
        accepted: list[int] = []
        for a, index in enumerate(block):
            if to_kept.shape[1] and to_kept[a].max() >= near:
                continue
            if accepted and within[a, accepted].max() >= near:
                continue
            accepted.append(a)
            kept.append(int(index))
            if len(kept) == size:
                break
        if accepted:
            kept_rows.append(rows[accepted])
        if len(kept) == size:
            break
    matrix = sp.vstack(kept_rows, format="csr") if kept_rows else sp.csr_matrix((0, 1))
    return kept, matrix


def _select(uncertainty: np.ndarray, X: sp.csr_matrix, n: int) -> list[int]:
    """Greedy farthest-point selection weighted by uncertainty; the most uncertain row comes first."""
    if not len(uncertainty):
        return []
    chosen = [int(np.argmax(uncertainty))]
    taken = np.zeros(len(uncertainty), dtype=bool)
    distance = np.ones(len(uncertainty))
    while True:
        newest = chosen[-1]
        taken[newest] = True
        similarity = (X @ X[newest].T).toarray().ravel()
        distance = np.minimum(distance, np.clip(1.0 - similarity, 0.0, 1.0))
        if len(chosen) == min(n, len(uncertainty)):
            return chosen
        score = np.where(taken, -np.inf, uncertainty * distance)
        chosen.append(int(np.argmax(score)))  # ties: the earlier, i.e. more uncertain, row


# --- suggest -----------------------------------------------------------------------------------


def suggest(
    data: Any,
    model: Any,
    *,
    n: int = 200,
    text_column: str = "text",
    id_column: str | None = None,
    tasks: Sequence[str] | None = None,
    max_rows: int = 200_000,
    pool_factor: int = 5,
    near_duplicate: float = 0.9,
    random_state: int = 0,
) -> list[dict[str, Any]]:
    """The unlabelled comments most worth labelling next: ones the model is unsure of, unlike each other.

    The rules are in the module docstring: drop rows without text, count identical normalised texts
    once, score each comment's uncertainty from ``model.predict_many``, gather the most uncertain
    ones without near-duplicates, and choose ``n`` of them that are uncertain and far apart.

    Parameters
    ----------
    data : path, DataFrame or iterable of dicts
        An unlabelled archive: ``.csv``/``.jsonl``/``.parquet`` (``.gz`` for csv/jsonl), a pandas
        DataFrame, or dicts with the text column.
    model : FeedbackClassifier
        A fitted model (``vnfeedback.load()``).
    n : int
        How many comments to return at most (fewer when the archive has fewer distinct ones).
    text_column : str
        The column holding the comment.
    id_column : str, optional
        A column identifying each row (a ticket number); copied to ``id`` in the result.
    tasks : sequence of str, optional
        Judge uncertainty on these tasks only (default: every task of the model).
    max_rows : int
        Read at most this many rows: an archive with more is replaced by a uniform random sample of
        ``max_rows`` of its rows (seeded by ``random_state``), read in one streaming pass, so memory
        stays bounded and a date-sorted archive is not judged by its first rows only.
    pool_factor : int
        The diverse choice is made among the ``pool_factor * n`` most uncertain distinct comments.
    near_duplicate : float
        Cosine similarity (on the model's features) from which two comments count as one.
    random_state : int
        Seeds the sample of a large archive; the rest is deterministic.

    Returns
    -------
    list of dict
        In the order chosen (the first k are the best k to label), each with ``row`` (the row number
        in ``data``), ``id`` (with ``id_column``), ``text``, ``uncertainty`` (0 to 1),
        ``predicted`` (task -> label, or list of labels for a multi-label task) and ``why`` (the
        unsure task and the probabilities that make it so).

    Raises
    ------
    ParameterError
        ``n``, ``max_rows``, ``pool_factor`` or ``near_duplicate`` out of range, an unfitted model, or
        a task the model does not have.
    DataError
        A missing text or id column, or data that is not a table.

    Example
    -------
    >>> model = vnfeedback.load()  # doctest: +SKIP
    >>> rows = suggest("archive.csv", model, n=2, id_column="id")  # doctest: +SKIP
    >>> rows[0]["text"], rows[0]["why"]  # doctest: +SKIP
    ('gói cước này có tự gia hạn không', 'intent: question 0.46 vs complaint 0.41')
    """
    _check_whole("n", n, 1, "ask for at least one comment")
    _check_whole("max_rows", max_rows, 1, "pass a row limit such as 200_000")
    _check_whole("pool_factor", pool_factor, 1, "5 is a good default")
    _check_fraction("near_duplicate", near_duplicate)
    _check_model(model)
    judged = list(model.models_) if tasks is None else list(tasks)
    if isinstance(tasks, str) or not judged:
        raise ParameterError(f"tasks must be a non-empty list of task names, got {tasks!r}")
    unknown = [task for task in judged if task not in model.models_]
    if unknown:
        raise ParameterError(
            f"the model has no task(s) {unknown}; its tasks are {list(model.models_)}. "
            f"Pass tasks= from those, or a model trained on them"
        )

    sampled = _read_sample(data, max_rows, random_state)
    if not sampled:
        return []
    rows = [row for _, row in sampled]
    columns = [text_column] + ([id_column] if id_column is not None else [])
    _check_columns(rows, columns, "Pass text_column= (and id_column=) naming your columns")

    seen: set[str] = set()
    numbers, ids, texts = [], [], []
    dropped = duplicates = 0
    for number, row in sampled:
        text = _text_of(row, text_column)
        if text is None:
            dropped += 1
            continue
        key = normalize(text)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        numbers.append(number)
        ids.append(row.get(id_column) if id_column is not None else None)
        texts.append(text)
    log.info(
        "suggest: %d rows read, %d without text, %d repeated; %d distinct comments",
        len(sampled),
        dropped,
        duplicates,
        len(texts),
    )
    if not texts:
        return []

    predictions = model.predict_many(texts)
    scored = [_uncertainty(model, p, judged) for p in predictions]
    uncertainty = np.array([value for value, _ in scored])
    order = np.argsort(-uncertainty, kind="stable")
    pool, X = _pool(model, texts, order, pool_factor * n, near_duplicate)
    chosen = [pool[k] for k in _select(uncertainty[pool], X, n)]

    out = []
    for i in chosen:
        row: dict[str, Any] = {"row": numbers[i]}
        if id_column is not None:
            row["id"] = ids[i]
        row["text"] = texts[i]
        row["uncertainty"] = round(float(uncertainty[i]), 4)
        row["predicted"] = {task: predictions[i].labels[task] for task in model.models_}
        row["why"] = scored[i][1]
        out.append(row)
    return out


# --- writing -----------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return "|".join(str(v) for v in value)
    if value is None:
        return ""
    return value


def _write_csv_atomic(path: str | os.PathLike, header: list[str], records: Iterable[list[Any]]) -> None:
    """Write a CSV to a temporary file beside ``path``, then rename it over ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", newline="", dir=target.parent, prefix=f".{target.name}.", delete=False
    )
    try:
        with handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(records)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def write_suggestions(
    rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, tasks: Iterable[str]
) -> None:
    """Write suggestions as a CSV to fill in, atomically (a temporary file, then a rename).

    Columns: ``id`` (the id column's value, or the row number when ``suggest`` had no
    ``id_column``), ``text``, then per task ``<task>_predicted`` and an empty ``<task>`` for the
    person's label (``a|b`` for several labels of a multi-label task), then ``uncertainty`` and
    ``why``. The filled file is labelled data ``vnfeedback.train`` reads.

    Parameters
    ----------
    rows : list of dict
        What ``suggest`` returned.
    path : str or path-like
        The CSV to write; its folder is created if needed.
    tasks : iterable of str
        The tasks to label, in column order (``model.tasks`` works).

    Raises
    ------
    ParameterError
        A task that the suggestions were not predicted for.

    Example
    -------
    >>> rows = suggest("archive.csv", model, n=100)  # doctest: +SKIP
    >>> write_suggestions(rows, "to_label.csv", model.tasks)  # doctest: +SKIP
    """
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    if not tasks:
        raise ParameterError("tasks must name at least one task to label, got none")
    if rows:
        known = list(rows[0].get("predicted", {}))
        unknown = [task for task in tasks if task not in known]
        if unknown:
            raise ParameterError(
                f"the suggestions have no task(s) {unknown}; they were predicted for {known}. "
                f"Pass tasks= from those"
            )
    header = ["id", "text"]
    for task in tasks:
        header += [f"{task}_predicted", task]
    header += ["uncertainty", "why"]
    records = []
    for row in rows:
        record = [_cell(row.get("id", row.get("row"))), row["text"]]
        for task in tasks:
            record += [_cell(row["predicted"][task]), ""]
        record += [row.get("uncertainty", ""), row.get("why", "")]
        records.append(record)
    _write_csv_atomic(path, header, records)


# --- audit -------------------------------------------------------------------------------------


def _fold_keys(tasks: Mapping[str, str], targets: Mapping[str, list], n_folds: int) -> list[str]:
    """A stratification key per row: its single labels and rarest multi-label label, coarsened
    until every key has at least ``n_folds`` rows."""
    n_rows = len(next(iter(targets.values())))
    single = [task for task, kind in tasks.items() if kind == "single"]
    multi = [task for task, kind in tasks.items() if kind == "multilabel"]
    counts = Counter(label for task in multi for labels in targets[task] for label in labels)
    full, coarse = [], []
    for i in range(n_rows):
        labels = [label for task in multi for label in targets[task][i]]
        rarest = min(labels, key=lambda label: (counts[label], label)) if labels else "-"
        parts = [targets[task][i] for task in single]
        full.append("|".join([*parts, rarest]))
        coarse.append(parts[0] if parts else rarest)
    full_count, coarse_count = Counter(full), Counter(coarse)
    return [
        f if full_count[f] >= n_folds else (c if coarse_count[c] >= n_folds else "rare")
        for f, c in zip(full, coarse, strict=True)
    ]


def _folds(keys: list[str], n_folds: int, random_state: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    index = np.zeros(len(keys))
    with warnings.catch_warnings():
        # "the least populated class has only k members": expected for a rare bucket
        warnings.simplefilter("ignore", UserWarning)
        try:
            return list(StratifiedKFold(n_folds, shuffle=True, random_state=random_state).split(index, keys))
        except ValueError:  # every key smaller than n_folds
            return list(KFold(n_folds, shuffle=True, random_state=random_state).split(index))


def _learnable(
    train: np.ndarray, tasks: Mapping[str, str], targets: Mapping[str, list]
) -> tuple[list[int], dict[str, set[str]]]:
    """The training rows of a fold and, per task, the labels it can learn (>= 2 examples, not on
    every row). Rows of a single-label class that cannot be learned are left out."""
    rows = [int(i) for i in train]
    while True:
        dropped = set()
        for task, kind in tasks.items():
            if kind == "single":
                counts = Counter(targets[task][i] for i in rows)
                dropped |= {i for i in rows if counts[targets[task][i]] < 2}
        if not dropped:
            break
        rows = [i for i in rows if i not in dropped]
    learnable: dict[str, set[str]] = {}
    for task, kind in tasks.items():
        if kind == "single":
            labels = {targets[task][i] for i in rows}
            learnable[task] = labels if len(labels) >= 2 else set()
        else:
            counts = Counter(label for i in rows for label in targets[task][i])
            learnable[task] = {label for label, c in counts.items() if 2 <= c < len(rows)}
    return rows, learnable


def _out_of_fold(
    texts: list[str],
    tasks: Mapping[str, str],
    targets: Mapping[str, list],
    labels: Mapping[str, list[str]],
    *,
    text_column: str,
    n_folds: int,
    random_state: int,
    train_options: Mapping[str, Any],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], set[tuple[str, str]]]:
    """Out-of-fold probabilities per task (NaN where the fold's model does not know the label),
    the thresholds of the model behind each multi-label probability, and the labels some fold
    could not learn."""
    from . import train

    n_rows = len(texts)
    proba = {task: np.full((n_rows, len(labels[task])), np.nan) for task in tasks}
    thresholds = {task: np.full((n_rows, len(labels[task])), np.nan) for task in tasks}
    unlearned: set[tuple[str, str]] = set()
    folds = _folds(_fold_keys(tasks, targets, n_folds), n_folds, random_state)
    trained = 0
    for number, (train_index, test_index) in enumerate(folds):
        rows, learnable = _learnable(train_index, tasks, targets)
        for task in tasks:
            unlearned |= {(task, label) for label in set(labels[task]) - learnable[task]}
        fold_tasks = {task: kind for task, kind in tasks.items() if learnable[task]}
        if not fold_tasks or len(rows) < 2 * n_folds:
            log.warning("audit: fold %d has too little data to learn from; its rows are not judged", number)
            continue
        fold_rows = []
        for i in rows:
            row = {text_column: texts[i]}
            for task, kind in fold_tasks.items():
                value = targets[task][i]
                row[task] = [v for v in value if v in learnable[task]] if kind == "multilabel" else value
            fold_rows.append(row)
        with warnings.catch_warnings():
            # "fewer than 10 examples" on every fold repeats what the data's size already says
            warnings.simplefilter("ignore", VnfeedbackWarning)
            fold_model = train(
                fold_rows,
                tasks=fold_tasks,
                text_column=text_column,
                random_state=random_state,
                n_folds=n_folds,
                **train_options,
            )
        trained += 1
        predictions = fold_model.predict_many([texts[i] for i in test_index])
        for task in fold_tasks:
            task_model = fold_model.models_[task]
            for k, label in enumerate(labels[task]):
                if label not in task_model.labels:
                    continue
                position = task_model.labels.index(label)
                proba[task][test_index, k] = [p.scores[task][label] for p in predictions]
                thresholds[task][test_index, k] = task_model.thresholds[position]
    if not trained:
        raise DataError(
            f"audit: no fold has two labels with 2+ examples to learn from (tasks {list(tasks)}); "
            f"add labelled rows or pass a smaller n_folds"
        )
    return proba, thresholds, unlearned


def _mean_on_positives(p: np.ndarray, positive: np.ndarray) -> float:
    values = p[positive & ~np.isnan(p)]
    return float(values.mean()) if len(values) else math.nan


def _single_suspects(task: str, labels: list[str], given: list[str], p: np.ndarray) -> list[dict[str, Any]]:
    index = {label: k for k, label in enumerate(labels)}
    y = np.array([index[v] for v in given])
    class_threshold = np.array([_mean_on_positives(p[:, j], y == j) for j in range(len(labels))])
    out = []
    for i in range(len(y)):
        p_given = p[i, y[i]]
        if math.isnan(p_given):
            continue
        candidates = [
            j
            for j in range(len(labels))
            if j != y[i] and not math.isnan(p[i, j]) and p[i, j] >= class_threshold[j] and p[i, j] > p_given
        ]
        if not candidates:
            continue
        j = max(candidates, key=lambda c: p[i, c])
        out.append(
            {
                "row": i,
                "task": task,
                "given": labels[y[i]],
                "suggested": labels[j],
                "p_suggested": float(p[i, j]),
                "p_given": float(p_given),
                "margin": float(p[i, j] - p_given),
                "reason": (
                    f"{labels[j]} {p[i, j]:.2f} >= its class mean {class_threshold[j]:.2f} "
                    f"and > {labels[y[i]]} {p_given:.2f}"
                ),
            }
        )
    return out


def _multilabel_suspects(
    task: str, labels: list[str], given: list[list[str]], p: np.ndarray, thresholds: np.ndarray
) -> list[dict[str, Any]]:
    Y = np.zeros((len(given), len(labels)), dtype=bool)
    for i, row in enumerate(given):
        Y[i] = [label in row for label in labels]
    positive_mean = np.array([_mean_on_positives(p[:, k], Y[:, k]) for k in range(len(labels))])
    out = []
    for i in range(len(given)):
        added, removed, reasons, strengths = [], [], [], []
        p_right = p_wrong = 1.0
        for k, label in enumerate(labels):
            pk, tk, mk = p[i, k], thresholds[i, k], positive_mean[k]
            if math.isnan(pk) or math.isnan(mk):
                continue
            if Y[i, k] and pk < min(mk / 2, tk):
                removed.append(label)
                p_right, p_wrong = p_right * (1 - pk), p_wrong * pk
                strengths.append((tk - pk) / tk)
                reasons.append(f"-{label}: {pk:.2f} < min(half its mean {mk / 2:.2f}, threshold {tk:.2f})")
            elif not Y[i, k] and pk >= mk and pk >= tk:
                added.append(label)
                p_right, p_wrong = p_right * pk, p_wrong * (1 - pk)
                strengths.append((pk - tk) / (1 - tk) if tk < 1 else 0.0)
                reasons.append(f"+{label}: {pk:.2f} >= its mean {mk:.2f} and threshold {tk:.2f}")
        if not added and not removed:
            continue
        suggested = [label for label in given[i] if label not in removed] + added
        out.append(
            {
                "row": i,
                "task": task,
                "given": list(given[i]),
                "suggested": suggested,
                "p_suggested": float(p_right),
                "p_given": float(p_wrong),
                "margin": float(max(strengths)),
                "reason": "; ".join(reasons),
            }
        )
    return out


def audit(
    data: Any,
    *,
    tasks: Mapping[str, str] | None = None,
    text_column: str = "text",
    id_column: str | None = None,
    n_folds: int = 5,
    random_state: int = 0,
    **train_options: Any,
) -> list[dict[str, Any]]:
    """Labelled rows whose label the rest of the data contradicts (likely mislabelled), best first.

    Confident learning on out-of-fold probabilities; the rules are in the module docstring. Costs
    ``n_folds`` trainings.

    Parameters
    ----------
    data : path, DataFrame or iterable of dicts
        Labelled data as ``vnfeedback.train`` reads it.
    tasks : dict, optional
        Task -> ``"single"`` or ``"multilabel"``, the tasks to audit; None infers them from the data.
    text_column : str
        The column holding the comment.
    id_column : str, optional
        A column identifying each row; default: ``"id"`` when the data has it.
    n_folds : int
        Folds for the out-of-fold probabilities (>= 2); each fold's model also uses this many folds
        for its own calibration.
    random_state : int
        Seeds the folds and the models.
    **train_options
        Other ``vnfeedback.train`` options (``C_grid=``, ``tokenizer=``, ...), checked by name.

    Returns
    -------
    list of dict
        One per suspect row and task, sorted by ``margin`` (largest first): ``row`` (0-based row
        number in ``data``), ``id`` (when there is an id column), ``text``, ``task``, ``given`` and
        ``suggested`` (a label, or a list of labels for a multi-label task), ``p_suggested``,
        ``p_given``, ``margin`` and ``reason``.

    Raises
    ------
    ParameterError
        ``n_folds`` below 2, an unknown train option, or a task kind other than single/multilabel.
    DataError
        Missing columns, empty texts, single-label rows without a label, too few rows.

    Warns
    -----
    VnfeedbackWarning
        When some label has too few examples for every fold to learn it (rows are not judged on it
        in those folds).

    Example
    -------
    >>> suspects = audit("my_labels.jsonl", tasks={"intent": "single"}, n_folds=5)  # doctest: +SKIP
    >>> suspects[0]["text"], suspects[0]["given"], suspects[0]["suggested"]  # doctest: +SKIP
    ('Mạng chập chờn cả tuần nay', 'praise', 'complaint')
    """
    import inspect

    from .classifier import FeedbackClassifier

    _check_whole("n_folds", n_folds, 2, "5 is usual; 2 or 3 for a quick look")
    allowed = set(inspect.signature(FeedbackClassifier).parameters) - {
        "tasks",
        "text_column",
        "random_state",
        "n_folds",
    }
    unknown = sorted(set(train_options) - allowed)
    if unknown:
        raise ParameterError(f"unknown train option(s) {unknown} for audit(); allowed: {sorted(allowed)}")

    rows = read_records(data)
    if not rows:
        raise DataError("no rows to audit; pass labelled data")
    _check_columns(rows, [text_column], "Pass text_column= naming the comment column")
    if tasks is None:
        tasks = infer_tasks(rows, text_column)
        if not tasks:
            raise DataError(
                f"no task to audit: pass tasks={{'column': 'single' | 'multilabel'}}; columns are {sorted(rows[0])}"
            )
    tasks = dict(tasks)
    bad_kinds = {task: kind for task, kind in tasks.items() if kind not in ("single", "multilabel")}
    if bad_kinds:
        raise ParameterError(f"task kinds must be 'single' or 'multilabel', got {bad_kinds}")
    _check_columns(rows, list(tasks), "Pass tasks= naming your label columns")
    if id_column is not None:
        _check_columns(rows, [id_column], "Pass id_column= naming your id column, or leave it out")
    ids = id_column if id_column is not None else ("id" if any("id" in row for row in rows) else None)
    if len(rows) < 3 * n_folds:
        raise DataError(
            f"audit with n_folds={n_folds} needs at least {3 * n_folds} rows, got {len(rows)}; "
            f"pass a smaller n_folds or more data"
        )
    # the same validation (and messages naming the rows) as training
    texts, targets = FeedbackClassifier(tasks=tasks, text_column=text_column)._targets(rows, tasks)
    labels = {}
    for task, kind in tasks.items():
        values = targets[task] if kind == "single" else [v for row in targets[task] for v in row]
        labels[task] = sorted(set(values))
    proba, thresholds, unlearned = _out_of_fold(
        texts,
        tasks,
        targets,
        labels,
        text_column=text_column,
        n_folds=n_folds,
        random_state=random_state,
        train_options=train_options,
    )
    if unlearned:
        warnings.warn(
            f"audit: label(s) {sorted(unlearned)} have too few examples for every fold to learn them; "
            f"rows are not judged on them where a fold could not",
            VnfeedbackWarning,
            stacklevel=2,
        )

    suspects = []
    for task, kind in tasks.items():
        if kind == "single":
            suspects += _single_suspects(task, labels[task], targets[task], proba[task])
        else:
            suspects += _multilabel_suspects(task, labels[task], targets[task], proba[task], thresholds[task])
    out = []
    for suspect in suspects:
        i = suspect["row"]
        record: dict[str, Any] = {"row": i}
        if ids is not None:
            record["id"] = rows[i].get(ids)
        record.update(
            {
                "text": texts[i],
                "task": suspect["task"],
                "given": suspect["given"],
                "suggested": suspect["suggested"],
                "p_suggested": round(suspect["p_suggested"], 4),
                "p_given": round(suspect["p_given"], 4),
                "margin": round(suspect["margin"], 4),
                "reason": suspect["reason"],
            }
        )
        out.append(record)
    out.sort(key=lambda r: (-r["margin"], r["row"], r["task"]))
    return out


def write_audit(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Write audit suspects as a CSV, atomically (a temporary file, then a rename).

    Columns: ``row``, ``id`` (when the suspects have one), ``text``, ``task``, ``given``,
    ``suggested`` (``a|b`` for several labels), ``p_suggested``, ``p_given``, ``margin``, ``reason``.

    Parameters
    ----------
    rows : list of dict
        What ``audit`` returned.
    path : str or path-like
        The CSV to write; its folder is created if needed.

    Example
    -------
    >>> write_audit(audit("my_labels.csv", tasks={"intent": "single"}), "suspects.csv")  # doctest: +SKIP
    """
    columns = [
        "row",
        "id",
        "text",
        "task",
        "given",
        "suggested",
        "p_suggested",
        "p_given",
        "margin",
        "reason",
    ]
    if not any("id" in row for row in rows):
        columns.remove("id")
    _write_csv_atomic(path, columns, ([_cell(row.get(c)) for c in columns] for row in rows))
