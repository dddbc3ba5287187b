"""The multi-task feedback classifier: one feature pass, one linear model per task.

``FeedbackClassifier`` follows scikit-learn's estimator conventions: the constructor stores
parameters, ``fit`` learns (state ends in ``_``) and returns self, ``random_state`` fixes all
randomness. ``train`` and ``load`` in ``vnfeedback/__init__.py`` are the public entry points.

The needs-review rule (written once, here):

- a text with nothing to read (empty, whitespace, only emoji/numbers/links) always needs review;
- a ``single`` task needs review when its top probability is below ``review_min_proba`` (0.5);
- a ``multilabel`` task needs review when any label's probability lies within ``review_band`` (0.1)
  of that label's threshold;
- a ``single`` task needs review when the label rules chose a label other than its most probable
  one (``rules_weight``, below).

Label rules (``label_rules``) tie a multi-label task to a single-label one, as a taxonomy does
("praise has no complaint type; a complaint has at least one")::

    {"complaint_type": {"none_when": {"intent": ["praise", "other"]},
                        "some_when": {"intent": ["complaint"]}}}

``none_when`` empties the multi-label task's labels; ``some_when`` keeps its most probable label when
none passed its threshold. Scores are never changed, only the labels chosen from them.

Where the two tasks disagree (intent "praise" while complaint-type labels pass their thresholds,
intent "complaint" while none does), the condition task's label is chosen with the other task's
evidence (``rules_weight`` w): each of its labels scores ``log p + w * cost``, where ``cost`` is
what the rule would overrule, in log-odds against the thresholds: the sum of
``-(logit(p_l) - logit(t_l))`` over the labels it would empty, or ``logit(p_top) - logit(t_top)``
for the one it would force. A label chosen this way, not the task's most probable one, makes the
prediction need review. ``rules_weight=0`` lets the condition task decide alone.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import gc
import hashlib
import itertools
import json
import numbers
import platform
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import __version__
from .errors import DataError, ParameterError, TextTypeError, VnfeedbackWarning
from .features import VIEW_NAMES, FeatureExtractor
from .models import TASK_KINDS, fit_task, group_folds
from .normalize import strip_accents
from .tables import (
    _is_missing,
    infer_tasks,
    not_a_label,
    not_labels,
    parse_multilabel,
    parse_single,
    read_records,
)

__all__ = ["FeedbackClassifier", "Prediction", "check_text"]

#: A label needs at least this many training examples; fewer gives a warning naming it.
MIN_LABEL_EXAMPLES = 10


@dataclass(frozen=True)
class Prediction:
    """The labels of one text, their probabilities, and whether a person should look at it.

    Attributes
    ----------
    labels : dict
        Task -> label id (``single``) or list of label ids, most probable first (``multilabel``).
    scores : dict
        Task -> {label id: calibrated probability in [0, 1]} for every label of every task.
    needs_review : bool
        True where the model is unsure (see the rule in ``vnfeedback.classifier``).
    review_reasons : list of str
        Why ``needs_review`` is True (empty otherwise).

    ``predict_many`` builds the ``scores`` dicts only when they are first read (from one row per task
    of the batch's probability arrays), since archives mostly need the labels and ``max_score``.
    Predictions compare equal by value; like the dicts they hold, they are not hashable.
    """

    __hash__ = None  # type: ignore[assignment]  # not the dataclass's hash of its dicts, which fails inside

    labels: dict[str, Any]
    scores: dict[str, dict[str, float]]
    needs_review: bool
    review_reasons: list[str] = field(default_factory=list)

    @classmethod
    def _from_batch(
        cls,
        labels: dict[str, Any],
        batch: tuple[tuple[str, Sequence[str], np.ndarray, list[float]], ...],
        row: int,
        needs_review: bool,
        review_reasons: list[str],
    ) -> Prediction:
        """A prediction whose ``scores`` are, until read, row ``row`` of its batch's arrays (per
        task: task, label ids, probabilities of every text, each text's top probability): the
        attribute is left unset, so that ``__getattr__`` builds it."""
        prediction = object.__new__(cls)
        prediction.__dict__.update(
            labels=labels, needs_review=needs_review, review_reasons=review_reasons, _batch=batch, _row=row
        )
        return prediction

    def __getattr__(self, name: str) -> Any:  # only called for attributes not set: the lazy scores
        batch = self.__dict__.get("_batch")
        if name == "scores" and batch is None and "scores" in self.__dict__:
            # another thread built them after this one missed them (it sets them before it lets go
            # of the batch)
            return self.__dict__["scores"]
        if name != "scores" or batch is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        row = self.__dict__["_row"]
        scores = {task: dict(zip(names, p[row].tolist(), strict=True)) for task, names, p, _ in batch}
        self.__dict__["scores"] = scores  # another thread may have done the same: equal dicts
        self.__dict__.pop("_batch", None)  # the batch's arrays are freed with its last reader
        return scores

    def __getstate__(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "scores": self.scores,
            "needs_review": self.needs_review,
            "review_reasons": self.review_reasons,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def max_score(self, task: str) -> float:
        """The highest probability among ``task``'s labels (the CLI's ``<task>_score`` column)."""
        for name, _, _, tops in self.__dict__.get("_batch") or ():
            if name == task:
                return tops[self.__dict__["_row"]]
        if task not in self.labels:
            raise ParameterError(f"task must be one of {list(self.labels)}, got {task!r}")
        return max(self.scores[task].values())

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-serialisable dict of the prediction."""
        return {
            "labels": {k: (list(v) if isinstance(v, list) else v) for k, v in self.labels.items()},
            "scores": {k: dict(v) for k, v in self.scores.items()},
            "needs_review": bool(self.needs_review),
            "review_reasons": list(self.review_reasons),
        }


@contextlib.contextmanager
def _collector_paused(n_texts: int):
    """Pause Python's cyclic garbage collector while the predictions of ``n_texts`` texts are built.

    Each prediction is a handful of containers (the object, its dicts and lists), none in a cycle,
    so the collections their allocation triggers find nothing to free; yet each full collection
    walks every live object of the process, and on a large heap those walks took up to a fifth of a
    batch (one full collection per pass inside ``python -m benchmarks quality``). Short calls (fewer texts than the collector's
    first threshold, e.g. ``predict``) leave it alone. It is switched back on afterwards, errors
    included, unless it was off before; ``test_predict_many_makes_no_cyclic_garbage`` holds the
    "no cycle" claim.
    """
    if n_texts < gc.get_threshold()[0] or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _refuse_non_labels(task: str, rows: list[dict[str, Any]], strange: list[int], what: str) -> None:
    """A DataError naming the rows of ``task`` that hold something other than labels, if any."""
    if strange:
        shown = ", ".join(f"row {i}: {rows[i].get(task)!r}" for i in strange[:5])
        raise DataError(
            f"task {task!r}: {len(strange)} row(s) hold a value that is not a label ({shown}"
            f"{' ...' if len(strange) > 5 else ''}); {what}"
        )


def _whole(value: Any) -> bool:
    """A whole number, numpy's included, and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _weight(value: Any) -> bool:
    """A rules weight: a real number in [0, 100] (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value <= 100


def _char_weight(value: Any) -> bool:
    """A character view weight: a real number in (0, 100] (not a bool)."""
    return _weight(value) and value > 0


def check_text(text: Any, where: str = "text") -> str:
    """Return ``text`` if it is a ``str``; raise a ``TextTypeError`` saying how to fix it otherwise."""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        raise TextTypeError(
            f"{where} must be str, got {type(text).__name__}; decode it first, "
            f"e.g. data.decode('utf-8', errors='replace')"
        )
    raise TextTypeError(
        f"{where} must be str, got {type(text).__name__} ({text!r:.40}); drop missing rows or "
        f"pass fillna('') / str(value)"
    )


def _sha256_rows(texts: Sequence[str], targets: dict[str, list]) -> str:
    digest = hashlib.sha256()
    for i, text in enumerate(texts):
        row = {"text": text, **{task: values[i] for task, values in targets.items()}}
        digest.update(json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _library_versions(tokenizer: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["numpy", "scipy", "scikit-learn"] + (["underthesea"] if tokenizer == "underthesea" else [])
    versions = {"python": platform.python_version(), "vnfeedback": __version__}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - the dependency is required
            versions[name] = "unknown"
    return versions


class FeedbackClassifier:
    """Classify Vietnamese feedback on several tasks at once.

    Parameters
    ----------
    tasks : dict or None
        Task name -> ``"single"`` or ``"multilabel"``. None infers them from the data
        (list-valued columns are multilabel).
    text_column : str
        The column holding the comment.
    tokenizer : {"syllable", "underthesea"}
        Fast syllable n-grams (default) or underthesea word segmentation.
    word_ngrams, stripped_ngrams, char_ngrams, negation, concepts, min_df, max_features, abbreviations
        Feature options, see ``vnfeedback.features.FeatureExtractor``.
    char_weight : float
        How much the character view counts against the word and accent-stripped views (each view
        of a comment is L2-normalised to length one, then this scales the character view). Below 1
        the SVM leans less on character n-grams: its penalty on their coefficients grows by
        ``1 / char_weight**2``. Applied to the training matrix and folded into the coefficients, so
        prediction and the saved file are the same as without it.
    C_grid : tuple of float
        Regularisation strengths tried by cross-validation.
    class_weight : {"balanced", None}
        Weigh classes inversely to their frequency (helps rare labels) or not.
    nb_weighting : bool or "auto"
        Scale features by naive-Bayes log-count ratios before the SVM (NBSVM). ``"auto"`` tries
        both and keeps, like C, the one with the better out-of-fold score (per label for
        multilabel tasks; the card lists the choice); it trains several times as long, which is
        why it is not the default (``python -m benchmarks ablations`` times it).
    augment_stripped : bool
        Also learn from an accent-stripped copy (same labels) of every training comment that has
        diacritics, so that comments typed without them read like the rest. Copies are never scored:
        each stays with its original in the cross-validation folds, and out-of-fold probabilities,
        calibration, thresholds and the card's CV metrics come from the original comments only.
    n_folds : int
        Folds for choosing C, calibrating probabilities and choosing thresholds.
    cv_groups : str or None
        A column of the training rows (a customer, thread, branch or writer id) whose rows must stay
        in one fold: the choices above and the card's CV metrics then come from predicting groups
        the folds never trained on, as new customers' comments would be. A row without a value is
        a group of its own. None: rows are dealt to folds at random.
    review_min_proba, review_band : float
        The needs-review rule (see the module docstring).
    label_rules : dict or None
        Consistency rules between tasks (see the module docstring).
    rules_weight : float
        How much a rule's target task speaks when the tasks disagree (module docstring); 0 lets the
        condition task decide alone, as models saved before this option did.
    random_state : int
        Seeds every random choice; the same data and seed give the same model.

    Example
    -------
    >>> rows = [{"text": "mạng yếu quá", "intent": "complaint"}, ...]  # doctest: +SKIP
    >>> model = FeedbackClassifier(tasks={"intent": "single"}).fit(rows)  # doctest: +SKIP
    >>> model.predict("sóng chập chờn cả ngày").labels["intent"]  # doctest: +SKIP
    'complaint'
    """

    def __init__(
        self,
        *,
        tasks: Mapping[str, str] | None = None,
        text_column: str = "text",
        tokenizer: str = "syllable",
        word_ngrams: tuple[int, int] = (1, 3),
        stripped_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (2, 5),
        char_weight: float = 1.0,
        negation: bool = False,
        concepts: bool = False,
        min_df: int = 2,
        max_features: int | None = None,
        abbreviations: Mapping[str, str] | None = None,
        C_grid: tuple[float, ...] = (0.1, 0.3, 1.0),
        class_weight: str | None = "balanced",
        nb_weighting: bool | str = False,
        augment_stripped: bool = False,
        n_folds: int = 5,
        cv_groups: str | None = None,
        review_min_proba: float = 0.5,
        review_band: float = 0.1,
        label_rules: Mapping[str, Mapping[str, Mapping[str, list[str]]]] | None = None,
        rules_weight: float = 0.5,
        random_state: int = 0,
    ) -> None:
        self.tasks = tasks
        self.text_column = text_column
        self.tokenizer = tokenizer
        self.word_ngrams = word_ngrams
        self.stripped_ngrams = stripped_ngrams
        self.char_ngrams = char_ngrams
        self.char_weight = char_weight
        self.negation = negation
        self.concepts = concepts
        self.min_df = min_df
        self.max_features = max_features
        self.abbreviations = abbreviations
        self.C_grid = C_grid
        self.class_weight = class_weight
        self.nb_weighting = nb_weighting
        self.augment_stripped = augment_stripped
        self.n_folds = n_folds
        self.cv_groups = cv_groups
        self.review_min_proba = review_min_proba
        self.review_band = review_band
        self.label_rules = label_rules
        self.rules_weight = rules_weight
        self.random_state = random_state

    # --- public read-only views -----------------------------------------------------------------

    @property
    def tasks(self) -> dict[str, str] | None:
        """Task -> kind. Fitted: the tasks the model has; unfitted: the ``tasks`` parameter.

        (The API contract names this ``model.tasks``; scikit-learn's convention would keep the
        parameter untouched, so the parameter lives in ``get_params()["tasks"]``.)
        """
        if hasattr(self, "models_"):
            return {name: model.kind for name, model in self.models_.items()}
        return self._tasks_param

    @tasks.setter
    def tasks(self, value: Mapping[str, str] | None) -> None:
        self._tasks_param = dict(value) if value is not None else None

    @property
    def labels(self) -> dict[str, list[str]]:
        """Task -> its label ids, in the model's order."""
        self._check_fitted()
        return {name: list(model.labels) for name, model in self.models_.items()}

    @property
    def card(self) -> dict[str, Any]:
        """Metadata: version, training data hash and size, label counts, CV metrics, versions."""
        self._check_fitted()
        return self.card_

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_stacked", None)  # pickle copies each task's view of it: stacked again on arrival
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "models_" in state:
            self._stack_coef()

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise ParameterError("this FeedbackClassifier is not fitted yet: call fit(data) or load()")

    def feature_params(self) -> dict[str, Any]:
        return {
            "tokenizer": self.tokenizer,
            "word_ngrams": tuple(self.word_ngrams),
            "stripped_ngrams": tuple(self.stripped_ngrams),
            "char_ngrams": tuple(self.char_ngrams),
            "negation": self.negation,
            "concepts": self.concepts,
            "min_df": self.min_df,
            "max_features": self.max_features,
            "abbreviations": self.abbreviations,
        }

    # --- training -------------------------------------------------------------------------------

    def _validate_params(self) -> None:
        if not _whole(self.n_folds) or self.n_folds < 2:
            raise ParameterError(f"n_folds must be a whole number >= 2, got {self.n_folds!r}")
        if not _whole(self.random_state):  # None would make training unrepeatable
            raise ParameterError(f"random_state must be a whole number, got {self.random_state!r}")
        grid = tuple(self.C_grid) if isinstance(self.C_grid, (list, tuple)) else ()
        if not grid or not all(isinstance(c, (int, float)) and c > 0 for c in grid):
            raise ParameterError(f"C_grid must be a non-empty tuple of positive numbers, got {self.C_grid!r}")
        if not (isinstance(self.nb_weighting, bool) or self.nb_weighting == "auto"):
            raise ParameterError(f"nb_weighting must be True, False or 'auto', got {self.nb_weighting!r}")
        if not isinstance(self.augment_stripped, bool):
            raise ParameterError(f"augment_stripped must be True or False, got {self.augment_stripped!r}")
        if self.class_weight not in ("balanced", None):
            raise ParameterError(f"class_weight must be 'balanced' or None, got {self.class_weight!r}")
        if not 0 < self.review_min_proba < 1:
            raise ParameterError(f"review_min_proba must be in (0, 1), got {self.review_min_proba!r}")
        if not 0 <= self.review_band < 0.5:
            raise ParameterError(f"review_band must be in [0, 0.5), got {self.review_band!r}")
        if self.cv_groups is not None and not (isinstance(self.cv_groups, str) and self.cv_groups):
            raise ParameterError(f"cv_groups must be a column name or None, got {self.cv_groups!r}")
        if not _char_weight(self.char_weight):
            raise ParameterError(
                f"char_weight must be a number in (0, 100], got {self.char_weight!r}; "
                "char_ngrams=(0, 0) turns the character view off"
            )
        if not _weight(self.rules_weight):
            raise ParameterError(f"rules_weight must be a number in [0, 100], got {self.rules_weight!r}")

    def _targets(self, rows: list[dict[str, Any]], tasks: dict[str, str]):
        """Texts and per-task targets, validated; errors name the rows."""
        column = self.text_column
        missing_column = [name for name in (column, *tasks) if name not in rows[0]]
        if missing_column:
            raise DataError(
                f"missing column(s) {missing_column}; the data has {sorted(rows[0])}. "
                f"Pass text_column= or tasks= to match your columns"
            )
        texts, bad = [], []
        for i, row in enumerate(rows):
            value = row.get(column)
            if not isinstance(value, str) or not value.strip():
                bad.append(i)
            texts.append(value if isinstance(value, str) else "")
        if bad:
            raise DataError(
                f"{len(bad)} row(s) have an empty or non-text {column!r} (rows {bad[:10]}"
                f"{' ...' if len(bad) > 10 else ''}); drop them or fill them before training"
            )
        targets: dict[str, list] = {}
        for task, kind in tasks.items():
            if kind == "multilabel":
                strange = [i for i, row in enumerate(rows) if not_labels(row.get(task))]
                _refuse_non_labels(
                    task,
                    rows,
                    strange,
                    "a multi-label value is a list of label ids, label ids joined by "
                    "'|', or empty for no label",
                )
                targets[task] = [sorted(set(parse_multilabel(row.get(task)))) for row in rows]
                continue
            values, bad, strange = [], [], []
            for i, row in enumerate(rows):
                value = parse_single(row.get(task))
                if value is None:
                    (strange if not_a_label(row.get(task)) else bad).append(i)
                values.append(value or "")
            _refuse_non_labels(
                task,
                rows,
                strange,
                "a single-label value is text or a whole number: write the label id there",
            )
            if bad:
                raise DataError(
                    f"task {task!r} is single-label but {len(bad)} row(s) have no label "
                    f"(rows {bad[:10]}{' ...' if len(bad) > 10 else ''}); label them, drop them, "
                    f"or declare the task 'multilabel' if a row may have no label"
                )
            targets[task] = values
        return texts, targets

    def fit(self, data: Any) -> FeedbackClassifier:
        """Learn features and every task's model from labelled data.

        Parameters
        ----------
        data : path, DataFrame or iterable of dicts
            A ``.csv``/``.jsonl``/``.parquet`` path (``.gz`` allowed for text formats), a pandas
            DataFrame, or dicts with the text column and one column per task.

        Returns
        -------
        FeedbackClassifier
            self, fitted.

        Raises
        ------
        DataError
            Missing columns, empty texts, missing single labels, a task with one class, a label
            with fewer than 2 examples.
        """
        self._validate_params()
        rows = read_records(data)
        if len(rows) < 2 * self.n_folds:
            raise DataError(f"training needs at least {2 * self.n_folds} rows, got {len(rows)}")
        given = self._tasks_param
        tasks = dict(given) if given is not None else infer_tasks(rows, self.text_column)
        if not tasks:
            raise DataError(
                f"no task to learn: pass tasks={{'column': 'single' | 'multilabel'}}; columns are {sorted(rows[0])}"
            )
        if given is None:
            warnings.warn(
                f"tasks inferred from the data: {tasks}; pass tasks= to choose",
                VnfeedbackWarning,
                stacklevel=2,
            )
        for task, kind in tasks.items():
            if not isinstance(task, str):
                raise ParameterError(f"a task is named by its column, as text; got {task!r}")
            if kind not in TASK_KINDS:
                raise ParameterError(f"task {task!r} has kind {kind!r}; a kind is one of {TASK_KINDS}")
        texts, targets = self._targets(rows, tasks)
        for task, kind in tasks.items():
            piped = sorted({label for labels in targets[task] for label in labels if "|" in label})
            if kind == "multilabel" and piped:  # CSV output writes a row's labels as "a|b"
                raise DataError(
                    f"task {task!r}: label(s) {piped[:5]} contain '|', which separates labels in CSV; "
                    f"rename them"
                )
        self._check_rules(tasks, targets)
        groups = self._groups(rows)
        folds = None if groups is None else group_folds(groups, self.n_folds, self.random_state)

        # accent-stripped copies of the comments that have diacritics, after the originals
        stripped = [strip_accents(text) for text in texts] if self.augment_stripped else texts
        copy_of = np.array(
            [i for i, (a, b) in enumerate(zip(texts, stripped, strict=True)) if a != b], dtype=np.int64
        )
        features = FeatureExtractor(**self.feature_params())
        X = features.fit_transform(texts + [stripped[i] for i in copy_of])
        scale = self._column_scale(features)
        if scale is not None:
            X.data *= scale[X.indices]
        models, oof, label_counts = {}, {}, {}
        for task, kind in tasks.items():
            values = targets[task]
            if kind == "single":
                counts = Counter(values)
                labels = sorted(counts)
            else:
                counts = Counter(label for labels_ in values for label in labels_)
                labels = sorted(counts)
            label_counts[task] = {label: counts[label] for label in labels}
            self._check_counts(task, kind, counts, len(values))
            if kind == "single":
                index = {label: k for k, label in enumerate(labels)}
                y = np.array([index[v] for v in values])
            else:
                y = np.zeros((len(values), len(labels)), dtype=np.int8)
                index = {label: k for k, label in enumerate(labels)}
                for i, labels_ in enumerate(values):
                    for label in labels_:
                        y[i, index[label]] = 1
            model, oof_proba = fit_task(
                X,
                np.concatenate([y, y[copy_of]]),
                kind=kind,
                labels=labels,
                C_grid=tuple(self.C_grid),
                n_folds=self.n_folds,
                random_state=self.random_state,
                class_weight=self.class_weight,
                nb=self.nb_weighting,
                copy_of=copy_of,
                folds=folds,
            )
            if scale is not None:  # (X * scale) @ coef == X @ (scale * coef): one model over X
                model.coef = model.coef * scale
            # saved as float32: round here so a loaded model predicts exactly like this one
            model.coef = model.coef.astype(np.float32)
            models[task] = model
            oof[task] = (y, oof_proba)

        self.features_ = features
        self.models_ = models
        self._stack_coef()
        self.text_column_ = self.text_column
        from .evaluation import metrics_from_proba

        decided = self.decide({task: proba for task, (_, proba) in oof.items()})
        self.card_ = {
            "name": "custom",
            "description": "",
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "library_versions": _library_versions(self.tokenizer),
            "training_data": {
                "rows": len(texts),
                "accent_stripped_copies": len(copy_of),
                "sha256": _sha256_rows(texts, targets),
                "label_counts": label_counts,
            },
            "cv_metrics": {
                "folds": int(self.n_folds),
                "note": "out-of-fold predictions on the training data (features fitted on all of it)"
                + ("" if groups is None else f"; folds never split a {self.cv_groups!r} group"),
                "tasks": {
                    task: metrics_from_proba(self.models_[task], y, proba, predicted=decided[task])
                    for task, (y, proba) in oof.items()
                },
            },
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()},
            "n_features": int(X.shape[1]),
        }
        if self.nb_weighting == "auto":
            self.card_["nb_weighting_chosen"] = {
                task: [label for label, nb in zip(m.labels, m.nb.tolist(), strict=True) if nb]
                for task, m in self.models_.items()
            }
        return self

    def _column_scale(self, features: FeatureExtractor) -> np.ndarray | None:
        """Each column's training weight (``char_weight`` on the character view); None: all 1."""
        if self.char_weight == 1:
            return None
        chars = list(VIEW_NAMES).index("c")
        return np.where(features.view_of_column_ == chars, float(self.char_weight), 1.0)

    def _groups(self, rows: list[dict[str, Any]]) -> np.ndarray | None:
        """Each row's ``cv_groups`` group as a code; None without ``cv_groups``."""
        column = self.cv_groups
        if column is None:
            return None
        if not any(column in row for row in rows):
            raise DataError(f"cv_groups: no column {column!r} in the data; the columns are {sorted(rows[0])}")
        codes: list[int] = []
        index: dict[tuple, int] = {}
        for i, row in enumerate(rows):
            value = row.get(column)
            if _is_missing(value) or (isinstance(value, str) and not value.strip()):
                key: tuple = ("row", i)  # no group: a group of its own
            else:
                try:
                    hash(value)
                except TypeError:
                    raise DataError(
                        f"cv_groups: row {i} has {value!r} in {column!r}; a group is one value, such as "
                        f"a customer id"
                    ) from None
                key = ("value", value)
            codes.append(index.setdefault(key, len(index)))
        if len(index) < self.n_folds:
            raise DataError(
                f"cv_groups: {column!r} has {len(index)} group(s), and {self.n_folds} folds need at least "
                f"{self.n_folds}; lower n_folds or use a finer column"
            )
        return np.array(codes, dtype=np.int64)

    def _check_rules(self, tasks: dict[str, str], targets: dict[str, list]) -> None:
        for target, rule in (self.label_rules or {}).items():
            if tasks.get(target) != "multilabel":
                raise ParameterError(f"label_rules: {target!r} must be a multilabel task of this model")
            if not isinstance(rule, Mapping) or not set(rule) <= {"none_when", "some_when"}:
                raise ParameterError(
                    f"label_rules[{target!r}] takes 'none_when' and/or 'some_when', got {rule!r}"
                )
            seen: dict[str, set] = {}
            for kind, when in rule.items():
                if not isinstance(when, Mapping) or not all(
                    isinstance(values, (list, tuple, set)) and all(isinstance(v, str) for v in values)
                    for values in when.values()
                ):
                    raise ParameterError(
                        f"label_rules[{target!r}][{kind!r}] must map tasks to lists of labels, got {when!r}"
                    )
                for task, values in when.items():
                    if tasks.get(task) != "single":
                        raise ParameterError(
                            f"label_rules[{target!r}]: condition task {task!r} must be a "
                            f"single-label task of this model"
                        )
                    unknown = set(values) - set(targets[task])
                    if unknown:
                        raise ParameterError(
                            f"label_rules[{target!r}]: {task!r} has no label(s) {sorted(unknown)}"
                        )
                    if seen.get(task, set()) & set(values):
                        raise ParameterError(
                            f"label_rules[{target!r}]: {sorted(seen[task] & set(values))} "
                            f"are in both none_when and some_when"
                        )
                    seen.setdefault(task, set()).update(values)

    def _apply_rules(
        self, labels: dict[str, list], best: dict[str, np.ndarray], probas: dict[str, np.ndarray]
    ) -> None:
        """``label_rules`` on a batch: ``labels[target][i]`` emptied where a ``none_when`` condition
        holds, or given the target's most probable label where it is empty and ``some_when`` holds."""
        n = len(next(iter(labels.values()), []))

        def holds(conditions: Mapping[str, list]) -> np.ndarray:
            met = np.zeros(n, dtype=bool)
            for task, values in conditions.items():
                names = self.models_[task].labels
                met |= np.isin(best[task], [names.index(v) for v in values])
            return met

        for target, rule in (self.label_rules or {}).items():
            none, some = holds(rule.get("none_when", {})), holds(rule.get("some_when", {}))
            target_names = self.models_[target].labels
            top = probas[target].argmax(axis=1)
            chosen = labels[target]
            for i in np.flatnonzero(none | some).tolist():
                if none[i]:
                    chosen[i] = []
                elif not chosen[i]:
                    chosen[i] = [target_names[top[i]]]

    def _check_counts(self, task: str, kind: str, counts: Counter, n_rows: int) -> None:
        if kind == "single" and len(counts) < 2:
            raise DataError(
                f"task {task!r} has one class only ({next(iter(counts))!r}); a classifier needs two or more"
            )
        if kind == "multilabel" and not counts:
            raise DataError(f"task {task!r} has no label on any row")
        rare = {label: n for label, n in counts.items() if n < 2}
        if rare:
            raise DataError(
                f"task {task!r}: label(s) {rare} have fewer than 2 examples; add examples or merge the label"
            )
        if kind == "multilabel":
            always = [label for label, n in counts.items() if n == n_rows]
            if always:
                raise DataError(f"task {task!r}: label(s) {always} are on every row; nothing to learn")
        few = {label: n for label, n in counts.items() if n < MIN_LABEL_EXAMPLES}
        if few:
            warnings.warn(
                f"task {task!r}: label(s) {few} have fewer than {MIN_LABEL_EXAMPLES} examples; "
                f"expect unreliable predictions for them",
                VnfeedbackWarning,
                stacklevel=3,
            )

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (scikit-learn style)."""
        return {
            "tasks": self._tasks_param,
            "text_column": self.text_column,
            **{k: v for k, v in self.feature_params().items()},
            "abbreviations": dict(self.abbreviations or {}),
            "char_weight": self.char_weight,
            "C_grid": list(self.C_grid),
            "class_weight": self.class_weight,
            "nb_weighting": self.nb_weighting,
            "augment_stripped": self.augment_stripped,
            "n_folds": int(self.n_folds),
            "cv_groups": self.cv_groups,
            "review_min_proba": self.review_min_proba,
            "review_band": self.review_band,
            "label_rules": _plain_rules(self.label_rules),
            "rules_weight": float(self.rules_weight),
            "random_state": int(self.random_state),
        }

    # --- prediction -----------------------------------------------------------------------------

    def predict(self, text: str) -> Prediction:
        """Classify one comment.

        Parameters
        ----------
        text : str
            Any Vietnamese comment; empty text gives a prediction with ``needs_review=True``.

        Returns
        -------
        Prediction

        Raises
        ------
        TextTypeError
            If ``text`` is not a str (None, a number, bytes).

        Example
        -------
        >>> import vnfeedback
        >>> p = vnfeedback.load().predict("Mạng 4G chập chờn, gọi tổng đài chờ 20 phút")
        >>> "network_quality" in p.labels["complaint_type"]
        True
        """
        return self.predict_many([check_text(text)])[0]

    def predict_many(
        self, texts: Iterable[str], *, n_jobs: int = 1, batch_size: int = 2000
    ) -> list[Prediction]:
        """Classify many comments; same order and same results as ``predict`` one by one.

        Identical texts are read once (and share one ``Prediction``: treat predictions as
        read-only), and each batch is read as a whole. With ``n_jobs > 1`` the
        batches are shared among worker processes; every prediction then travels back by pickle,
        which eats most of the gain, so for archives ``vnfeedback classify --jobs`` (whose workers
        write their own output) is the parallel path. While a long list (at least the collector's first
        threshold, 700 by default) is read, Python's cyclic garbage collector is paused (the
        predictions hold no cycles) and switched back on afterwards if it was on.

        Parameters
        ----------
        texts : iterable of str
        n_jobs : int
            Worker processes (joblib/loky); 1 runs in this process.
        batch_size : int
            Texts per batch (the memory/speed trade-off).

        Returns
        -------
        list of Prediction
        """
        self._check_fitted()
        if isinstance(texts, (str, bytes)):
            raise TextTypeError("predict_many takes a list of texts; for one text use predict(text)")
        if isinstance(texts, Mapping):  # iterating it would classify its keys
            raise TextTypeError(
                "predict_many takes a list of texts, got a dict; pass list(d.values()) to classify its values"
            )
        if hasattr(texts, "columns") and hasattr(texts, "iloc"):  # a DataFrame: iterating gives its columns
            raise TextTypeError(
                "predict_many takes a list of texts, got a DataFrame; pass its text column, e.g. df['text']"
            )
        if not isinstance(texts, Iterable):
            raise TextTypeError(
                f"predict_many takes a list of texts, got {type(texts).__name__} ({texts!r:.40}); "
                f"for one text use predict(text)"
            )
        if not _whole(n_jobs) or n_jobs == 0 or n_jobs < -1:
            raise ParameterError(f"n_jobs must be a positive whole number or -1, got {n_jobs!r}")
        if not _whole(batch_size) or batch_size < 1:
            raise ParameterError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        n_jobs, batch_size = int(n_jobs), int(batch_size)
        texts = [check_text(t, where=f"texts[{i}]") for i, t in enumerate(texts)]
        batches = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
        if n_jobs == 1 or len(batches) <= 1:
            results = self._predict_batches(batches)
        else:
            from joblib import Parallel, delayed, effective_n_jobs

            # one group of batches per worker, so the model is sent to each worker once
            size = -(-len(batches) // effective_n_jobs(n_jobs))
            groups = [batches[i : i + size] for i in range(0, len(batches), size)]
            done = Parallel(n_jobs=n_jobs, backend="loky")(delayed(self._predict_batches)(g) for g in groups)
            results = [batch for group in done for batch in group]
        return [p for batch in results for p in batch]

    def _predict_batches(self, batches: list[list[str]]) -> list[list[Prediction]]:
        with _collector_paused(sum(map(len, batches))):
            return [self._predict_batch(batch) for batch in batches]

    def _predict_batch(self, texts: list[str]) -> list[Prediction]:
        unique, probas, has_words = self._read_batch(texts)
        predictions = self._predictions(probas, has_words)
        if len(unique) == len(texts):
            return predictions
        by_text = dict(zip(unique, predictions, strict=True))
        return [by_text[t] for t in texts]

    def _read_batch(self, texts: list[str]) -> tuple[list[str], dict[str, np.ndarray], list[bool]]:
        """A batch's distinct texts (identical ones are read once), every task's probabilities for
        them, and whether each has a word: what ``predict_many`` and the batch columns start from."""
        unique = list(dict.fromkeys(texts))
        decisions, has_words = self.features_.scores_flagged(unique, self._coef_blocks())
        return unique, self._probas(decisions), has_words

    def _stack_coef(self) -> None:
        """Put every task's coefficients side by side in one float64 array in C order, (n_features,
        n_labels of every task), each task's ``coef`` becoming a view of its columns: one product
        with it gives every task's ``X @ coef.T``, bit for bit (each column adds the same row
        entries in the same order), reading each text's features once, one row of weights per
        feature. Done once, when a model is trained or loaded: the coefficients are then held
        once (a copy stacked at the first batch doubled them, 48 MB more for the bundled model,
        and took from 6 to 70 ms of that batch)."""
        models = list(self.models_.values())
        stacked, views = _side_by_side([m.coef for m in models], self.features_.idf_.shape[0])
        for m, view in zip(models, views, strict=True):
            m.coef = view
        self._stacked = (tuple(views), stacked)

    def _coef_blocks(self) -> list[np.ndarray]:
        """What ``features_.scores_flagged`` multiplies by to give every task's ``X @ coef.T`` side by
        side: the stacked array of ``_stack_coef``, or, once a task's ``coef`` has been replaced,
        each task's ``coef.T`` (its outputs side by side all the same; a copy where one is not
        float64 in C order)."""
        models = list(self.models_.values())
        stacked = self.__dict__.get("_stacked")
        if (
            stacked is not None
            and len(stacked[0]) == len(models)
            and all(a is m.coef for a, m in zip(stacked[0], models, strict=False))
        ):
            return [stacked[1]]
        return [m.coef.T for m in models]

    def _probas(self, decisions: np.ndarray) -> dict[str, np.ndarray]:
        """Every task's ``model.proba(X)`` from ``X @ np.hstack(self._coef_blocks())``."""
        probas, start = {}, 0
        for task, model in self.models_.items():
            end = start + len(model.labels)
            probas[task] = model.calibrate(np.ascontiguousarray(decisions[:, start:end]) + model.intercept)
            start = end
        return probas

    def decide(self, probas: Mapping[str, np.ndarray]) -> dict[str, list]:
        """The labels ``predict`` gives for these probabilities: the most probable label of a
        single-label task, the labels at or above their thresholds of a multilabel one (most
        probable first), then the label rules (which may choose a single-label task's label where
        the tasks disagree: ``rules_weight`` in the module docstring).

        Parameters
        ----------
        probas : mapping
            Task -> array (n_texts, n_labels) of calibrated probabilities, columns in label order.

        Returns
        -------
        dict
            Task -> one entry per text: a label id (single) or a list of label ids (multilabel).
        """
        return self._decide(probas)[0]

    def _decide(self, probas: Mapping[str, np.ndarray]) -> tuple[dict[str, list], dict[str, np.ndarray]]:
        """``decide``, and per single-label task whether each text's label is not its most probable
        one (the label rules chose it: the prediction needs review)."""
        labels: dict[str, list] = {}
        best = self._weigh_rules(probas)
        moved: dict[str, np.ndarray] = {}
        for task, model in self.models_.items():
            p, names = probas[task], model.labels
            if model.kind == "single":
                top = p.argmax(axis=1)
                picked = best.setdefault(task, top)
                moved[task] = picked != top
                labels[task] = [names[k] for k in picked.tolist()]
            else:
                order = np.argsort(-p, axis=1, kind="stable")
                rows, ranks = np.nonzero(np.take_along_axis(p >= np.asarray(model.thresholds), order, axis=1))
                chosen: list[list[str]] = [[] for _ in range(len(p))]
                for i, k in zip(rows.tolist(), order[rows, ranks].tolist(), strict=True):
                    chosen[i].append(names[k])
                labels[task] = chosen
        self._apply_rules(labels, best, probas)
        return labels, moved

    def _weigh_rules(self, probas: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The label of each condition task of the label rules, chosen with the evidence of the
        tasks the rules would overrule (module docstring). Costs are never positive, so only a text
        whose most probable label is one a rule would overrule can change: the others keep it, and
        without such a text nothing is computed."""
        weight = float(self.rules_weight)
        if not self.label_rules or weight == 0:
            return {}
        top: dict[str, np.ndarray] = {}  # condition task -> most probable label of each text
        passed: dict[str, np.ndarray] = {}  # target -> (n_texts, n_labels), at or above the thresholds
        overrules = []  # (target, kind, condition task, its label columns, texts where the rule acts)
        for target, rule in self.label_rules.items():
            passed[target] = probas[target] >= np.asarray(self.models_[target].thresholds)
            some = passed[target].any(axis=1)
            for kind, acts in (("none_when", some), ("some_when", ~some)):
                for task, values in rule.get(kind, {}).items():
                    names = self.models_[task].labels
                    columns = [names.index(v) for v in values]
                    if task not in top:  # (setdefault would compute the argmax for every rule)
                        top[task] = probas[task].argmax(axis=1)
                    overrules.append((target, kind, task, columns, acts))
        rows = {task: np.zeros(len(best), dtype=bool) for task, best in top.items()}
        for _, _, task, columns, acts in overrules:
            named = np.zeros(probas[task].shape[1], dtype=bool)
            named[columns] = True  # (not np.isin: it sorts, which costs a one-text predict ~10 us)
            rows[task] |= acts & named[top[task]]
        if not any(r.any() for r in rows.values()):
            return top
        margins = {  # log-odds of each label against its threshold, >= 0 where it passed
            target: _logit(probas[target]) - _logit(np.asarray(self.models_[target].thresholds))
            for target in passed
        }
        cost = {task: np.zeros_like(probas[task]) for task in top}  # (n_texts, n_labels), <= 0
        for target, kind, task, columns, acts in overrules:
            p, margin = probas[target], margins[target]
            if kind == "none_when":  # the labels it would empty
                overruled = -np.where(passed[target], margin, 0.0).sum(axis=1)
            else:  # the most probable label it would force
                overruled = margin[np.arange(len(p)), p.argmax(axis=1)]
            cost[task][:, columns] += np.where(acts, np.minimum(overruled, 0.0), 0.0)[:, None]
        for task, best in top.items():
            change = np.flatnonzero(rows[task])
            if len(change):
                scores = np.log(np.maximum(probas[task][change], 1e-300)) + weight * cost[task][change]
                best[change] = scores.argmax(axis=1)
        return top

    def _predict_columns(self, texts: list[str], batch_size: int = 2000) -> dict[str, list]:
        """What a batch job writes for each text, as columns, without building ``Prediction``
        objects: per task the labels and the top probability rounded to 4 places
        (``<task>_score``), and ``needs_review``. The same values as ``predict_many`` gives (tested);
        the texts must be ``str`` (the batch job checks them first)."""
        self._check_fitted()
        out: dict[str, list] = {}
        for task in self.models_:
            out[task], out[f"{task}_score"] = [], []
        out["needs_review"] = []
        with _collector_paused(len(texts)):
            for start in range(0, len(texts), batch_size):
                batch = texts[start : start + batch_size]
                unique, probas, has_words = self._read_batch(batch)
                labels, moved = self._decide(probas)
                columns = {"needs_review": self._review_flags(probas, moved, has_words).tolist()}
                for task, p in probas.items():
                    columns[task] = labels[task]
                    columns[f"{task}_score"] = list(map(round, p.max(axis=1).tolist(), itertools.repeat(4)))
                if len(unique) != len(batch):  # identical texts were read once
                    where = {text: k for k, text in enumerate(unique)}
                    picks = [where[text] for text in batch]
                    columns = {name: [values[k] for k in picks] for name, values in columns.items()}
                for name, values in columns.items():
                    out[name] += values
        return out

    def _review_flags(
        self, probas: dict[str, np.ndarray], moved: dict[str, np.ndarray], has_words: Sequence[bool]
    ) -> np.ndarray:
        """Whether each text needs review: ``Prediction.needs_review`` without the reasons."""
        flags = ~np.asarray(has_words, dtype=bool)
        for failed, _ in self._review_tests(probas, moved):
            flags |= failed
        return flags

    def _review_tests(
        self, probas: dict[str, np.ndarray], moved: dict[str, np.ndarray]
    ) -> Iterator[tuple[np.ndarray, Callable[[int], str]]]:
        """The review rule of each task (module docstring): which texts fail it, and why text ``i``
        failed. ``_predictions`` and ``_review_flags`` both read the rule from here; ``moved`` is
        ``_decide``'s (labels the label rules chose over the most probable one)."""
        for task, model in self.models_.items():
            p = probas[task]
            if model.kind == "single":
                top = p.max(axis=1)
                yield top < self.review_min_proba, functools.partial(self._too_unsure, task, top)
                if moved[task].any():
                    yield moved[task], functools.partial(self._overruled, task, model.labels, p)
            else:
                close = np.abs(p - np.asarray(model.thresholds)) < self.review_band
                yield close.any(axis=1), functools.partial(self._too_close, task, model.labels, close)

    def _too_unsure(self, task: str, top: np.ndarray, i: int) -> str:
        return f"{task}: top probability {top[i]:.2f} < {self.review_min_proba}"

    def _overruled(self, task: str, names: list[str], p: np.ndarray, i: int) -> str:
        top = int(p[i].argmax())
        return f"{task}: most probable {names[top]!r} ({p[i, top]:.2f}) overruled by the label rules"

    def _too_close(self, task: str, names: list[str], close: np.ndarray, i: int) -> str:
        near = ", ".join(names[k] for k in np.flatnonzero(close[i]))
        return f"{task}: {near} within {self.review_band} of the threshold"

    def _predictions(self, probas: dict[str, np.ndarray], has_words: list[bool]) -> list[Prediction]:
        """The predictions of a batch from its probabilities, decided with array operations."""
        reasons: list[list[str]] = [
            [] if w else ["nothing to read: the text has no words"] for w in has_words
        ]
        labels, moved = self._decide(probas)
        for failed, why in self._review_tests(probas, moved):
            for i in np.flatnonzero(failed).tolist():
                reasons[i].append(why(i))
        tops = {task: p.max(axis=1) for task, p in probas.items()}  # each task's top probability per text
        tasks = list(self.models_)
        label_rows = zip(*(labels[task] for task in tasks), strict=True)
        # the score dicts wait until read: each prediction keeps its row number in the batch's arrays
        batch = tuple(
            (task, model.labels, probas[task], tops[task].tolist()) for task, model in self.models_.items()
        )
        build = Prediction._from_batch
        return [
            build(dict(zip(tasks, ls, strict=True)), batch, i, bool(why), why)
            for i, (ls, why) in enumerate(zip(label_rows, reasons, strict=True))
        ]

    # --- explanation ----------------------------------------------------------------------------

    def explain(
        self, text: str, *, task: str | None = None, label: str | None = None, top: int = 10
    ) -> list[dict[str, Any]]:
        """The n-grams that pushed a label's score for this text, with signed weights.

        Parameters
        ----------
        text : str
        task : str, optional
            Defaults to the first task.
        label : str, optional
            Defaults to the predicted label (the top one for a multilabel task).
        top : int
            How many features to return, largest absolute contribution first.

        Returns
        -------
        list of dict
            ``{"feature": "mạng yếu", "view": "words", "weight": 0.41}``; weight = feature value x
            coefficient, positive pushing towards ``label``.

        Example
        -------
        >>> vnfeedback.load().explain("mạng yếu quá", task="complaint_type",
        ...                           label="network_quality", top=3)  # doctest: +SKIP
        [{'feature': 'mạng yếu', 'view': 'words', 'weight': 0.52}, ...]
        """
        self._check_fitted()
        text = check_text(text)
        task = task if task is not None else next(iter(self.models_))
        if not isinstance(task, str) or task not in self.models_:
            raise ParameterError(f"task must be one of {list(self.models_)}, got {task!r}")
        model = self.models_[task]
        if label is None:
            prediction = self.predict(text)
            chosen = prediction.labels[task]
            if isinstance(chosen, str):
                label = chosen
            else:  # the top label, predicted or not
                label = chosen[0] if chosen else max(model.labels, key=prediction.scores[task].get)
        if not isinstance(label, str) or label not in model.labels:
            raise ParameterError(f"label must be one of {model.labels} for task {task!r}, got {label!r}")
        if not _whole(top) or top < 1:
            raise ParameterError(f"top must be a whole number >= 1, got {top!r}")
        row = self.features_.transform([text])
        k = model.labels.index(label)
        weights = row.data * model.coef[k, row.indices]
        order = np.argsort(-np.abs(weights), kind="stable")[:top]
        names = self.features_.feature_names_
        views = list(VIEW_NAMES.values())
        out = []
        for i in order:
            name = names[row.indices[i]]
            readable = _readable(name)
            out.append(
                {
                    "feature": readable,
                    "view": views[self.features_.view_of_column_[row.indices[i]]],
                    "weight": round(float(weights[i]), 6),
                }
            )
        return out

    # --- evaluation and persistence -------------------------------------------------------------

    def evaluate(self, data: Any) -> dict[str, Any]:
        """Metrics per task and per label on labelled data (see ``vnfeedback.evaluation``)."""
        from .evaluation import evaluate_model

        return evaluate_model(self, data)

    def save(self, path: Any) -> None:
        """Write the model to a directory, atomically; JSON and ``.npz`` only, no pickle."""
        from .persistence import save_model

        save_model(self, path)

    def __repr__(self) -> str:
        if hasattr(self, "models_"):
            return f"FeedbackClassifier(tasks={self.tasks}, name={self.card_.get('name')!r})"
        return "FeedbackClassifier(unfitted)"


def _side_by_side(coefs: list[np.ndarray], n_features: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The (n_labels, n_features) ``coefs`` side by side in one float64 array in C order, (n_features,
    n_labels of all), and each one's view of it (the same values: float32 widens exactly)."""
    stacked = np.empty((n_features, sum(coef.shape[0] for coef in coefs)))
    views, start = [], 0
    for coef in coefs:
        end = start + coef.shape[0]
        stacked[:, start:end] = coef.T
        views.append(stacked[:, start:end].T)
        start = end
    return stacked, views


def _logit(p: np.ndarray | float) -> np.ndarray:
    """log(p / (1 - p)), finite: p is kept within [1e-9, 1 - 1e-9]."""
    q = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(q) - np.log1p(-q)


def _plain_rules(rules: Mapping | None) -> dict | None:
    """Label rules as plain JSON-ready dicts and lists."""
    if rules is None:
        return None
    return {
        target: {kind: {task: list(values) for task, values in when.items()} for kind, when in rule.items()}
        for target, rule in rules.items()
    }


def _readable(feature: str) -> str:
    """A feature name as a person reads it: 'w|mạng yếu' -> 'mạng yếu'; character n-grams show where
    the syllable goes on with '…': 'c|ang' -> '…ang…', 'c| mang' -> 'mang…' (a syllable that starts so),
    'c|ang ' -> '…ang' (ends so), 'c| mang ' -> 'mang' (the whole syllable)."""
    view, text = feature[0], feature[2:]
    if view == "c":
        return ("" if text.startswith(" ") else "…") + text.strip() + ("" if text.endswith(" ") else "…")
    if view == "k":
        return f"concept: {text}"
    return text
