"""Per-task linear models: fitting with cross-validated choices, calibrated probabilities, thresholds.

One ``TaskModel`` per task, all reading the same feature matrix:

- ``single`` tasks: a one-vs-rest linear SVM (``LinearSVC``, squared hinge, balanced class weights);
  its decision values go through a small multinomial logistic calibrator fitted on out-of-fold
  decisions, so the probabilities sum to one and mean what they say.
- ``multilabel`` tasks: one binary linear SVM per label (balanced), a Platt calibrator per label on
  out-of-fold decisions, and a per-label threshold on the calibrated probability that maximises the
  out-of-fold F1.

The regularisation strength ``C`` is chosen per task (single) or per label (multilabel) from a small
grid by out-of-fold F1. scikit-learn is used to *fit* only: the learned state is plain numpy arrays,
and prediction is numpy/scipy arithmetic, so a saved model predicts identically on any
scikit-learn version.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["TaskModel", "fit_task", "TASK_KINDS"]

TASK_KINDS = ("single", "multilabel")


@dataclass
class TaskModel:
    """The learned state of one task; every array is plain numpy.

    Attributes
    ----------
    kind : {"single", "multilabel"}
    labels : list of str
    coef : ndarray of shape (n_labels, n_features)
    intercept : ndarray of shape (n_labels,)
    calib_coef : ndarray, (n_labels, n_labels) for single tasks, (n_labels,) for multilabel
    calib_intercept : ndarray of shape (n_labels,)
    thresholds : ndarray of shape (n_labels,); 0.5 for single tasks (unused there)
    C : ndarray of shape (n_labels,), the regularisation chosen (for the card)
    """

    kind: str
    labels: list[str]
    coef: np.ndarray
    intercept: np.ndarray
    calib_coef: np.ndarray
    calib_intercept: np.ndarray
    thresholds: np.ndarray
    C: np.ndarray
    nb: np.ndarray | None = None  # per label, whether NB scaling was chosen (for the card; not saved)

    def __post_init__(self) -> None:
        # float64, and column-major when it has to be converted anyway, so that ``X @ coef.T`` reads
        # it in place (a file may store float32; widening is exact). A float64 array is kept as it
        # is: a trained or loaded classifier's are views of its stacked array (``_stack_coef``)
        if not (isinstance(self.coef, np.ndarray) and self.coef.dtype == np.float64):
            self.coef = np.asfortranarray(self.coef, dtype=np.float64)

    def decision(self, X: sp.csr_matrix) -> np.ndarray:
        """Raw linear scores, shape (n_texts, n_labels)."""
        return np.asarray(X @ self.coef.T) + self.intercept

    def calibrate(self, decision: np.ndarray) -> np.ndarray:
        """Decision values -> probabilities."""
        if self.kind == "single":
            # an explicit product and row sum, not BLAS: BLAS may sum in a different order for a
            # different batch size, and predict() must equal predict_many() to the last bit
            logits = (decision[:, None, :] * self.calib_coef[None, :, :]).sum(axis=2) + self.calib_intercept
            logits -= logits.max(axis=1, keepdims=True)
            expd = np.exp(logits)
            return expd / expd.sum(axis=1, keepdims=True)
        return _sigmoid(decision * self.calib_coef + self.calib_intercept)

    def proba(self, X: sp.csr_matrix) -> np.ndarray:
        """Calibrated probabilities, shape (n_texts, n_labels)."""
        return self.calibrate(self.decision(X))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _fit_svm(X, y, C, random_state, class_weight="balanced"):
    from sklearn.svm import LinearSVC

    model = LinearSVC(C=C, class_weight=class_weight, random_state=random_state, max_iter=5000)
    with warnings.catch_warnings():
        # liblinear's convergence warning on tiny folds says nothing the CV score does not
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return model.coef_.astype(np.float64), model.intercept_.astype(np.float64)


def _nb_ratio(X, y, alpha: float = 1.0) -> np.ndarray:
    """Naive Bayes log-count ratio of each feature for a binary target (Wang & Manning's NBSVM)."""
    positive = alpha + np.asarray(X[y == 1].sum(axis=0)).ravel()
    negative = alpha + np.asarray(X[y == 0].sum(axis=0)).ravel()
    return np.log(positive / positive.sum()) - np.log(negative / negative.sum())


def _fit_binary(X, y, C, random_state, class_weight, nb):
    """One binary linear SVM, as (coef over the original features, intercept).

    With ``nb`` the SVM learns on NB-scaled features ``X * r``; since ``(X * r) @ w == X @ (r * w)``
    the result is still one linear model over X.
    """
    if y.min() == y.max():
        return np.zeros(X.shape[1]), (1.0 if y[0] else -1.0)
    if nb:
        ratio = _nb_ratio(X, y)
        coef, intercept = _fit_svm(X @ sp.diags(ratio), y, C, random_state, class_weight)
        return coef[0] * ratio, intercept[0]
    coef, intercept = _fit_svm(X, y, C, random_state, class_weight)
    return coef[0], intercept[0]


def _binary_decision(X_train, y_train, X_test, C, random_state, class_weight, nb):
    """Out-of-fold decision values of one binary SVM."""
    coef, intercept = _fit_binary(X_train, y_train, C, random_state, class_weight, nb)
    return np.asarray(X_test @ coef) + intercept


def _single_coef(coef: np.ndarray, intercept: np.ndarray, n_labels: int):
    """LinearSVC returns one row for two classes: spread it into one row per class."""
    if n_labels == 2 and coef.shape[0] == 1:
        return np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    return coef, intercept


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> float:
    scores = []
    for k in range(n_labels):
        tp = np.sum((y_pred == k) & (y_true == k))
        fp = np.sum((y_pred == k) & (y_true != k))
        fn = np.sum((y_pred != k) & (y_true == k))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))


def _binary_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    tp = np.sum(y_pred & y_true)
    denominator = y_pred.sum() + y_true.sum()
    return float(2 * tp / denominator) if denominator else 0.0


def _folds(y: np.ndarray, kind: str, n_folds: int, random_state: int) -> list[tuple]:
    from sklearn.model_selection import KFold, StratifiedKFold

    if kind == "single":
        smallest = np.bincount(y).min()
        splitter = StratifiedKFold(
            min(n_folds, max(int(smallest), 2)), shuffle=True, random_state=random_state
        )
        return list(splitter.split(np.zeros(len(y)), y))
    splitter = KFold(n_folds, shuffle=True, random_state=random_state)
    return list(splitter.split(np.zeros(len(y))))


def group_folds(groups: np.ndarray, n_folds: int, random_state: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds that never split a group: (train, test) row indices, rows of one group in one test part.

    Groups are dealt, largest first (ties in a seeded random order), to the fold with the fewest rows
    so far, so folds stay close in size.
    """
    _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.random.RandomState(random_state).permutation(len(sizes))
    order = order[np.argsort(-sizes[order], kind="stable")]
    rows, fold_of = np.zeros(n_folds, dtype=np.int64), np.empty(len(sizes), dtype=np.int64)
    for group in order.tolist():
        k = int(rows.argmin())
        fold_of[group] = k
        rows[k] += sizes[group]
    fold = fold_of[inverse.ravel()]
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_folds)]


def fit_task(
    X: sp.csr_matrix,
    y: np.ndarray,
    *,
    kind: str,
    labels: list[str],
    C_grid: tuple[float, ...],
    n_folds: int,
    random_state: int,
    class_weight: str | None = "balanced",
    nb: bool = False,
    copy_of: np.ndarray | None = None,
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[TaskModel, np.ndarray]:
    """Fit one task; return the model and its out-of-fold probabilities (for the model card).

    Parameters
    ----------
    X : sparse matrix (n_texts, n_features)
    y : ndarray
        Class indices (n_texts,) for ``single``; a 0/1 matrix (n_texts, n_labels) for ``multilabel``.
    copy_of : ndarray of int, optional
        When the last ``len(copy_of)`` rows are extra copies of training rows (e.g. accent-stripped),
        the row each copies. A copy only ever joins the training side of a fold, with its original:
        folds, out-of-fold probabilities, calibration and thresholds are those of the original rows
        (the returned probabilities are for them only), and the final model learns from every row.
    folds : list of (train, test) index arrays over the original rows, optional
        Given folds (``group_folds``) instead of ``n_folds`` shuffled ones.
    """
    n = X.shape[0] - (0 if copy_of is None else len(copy_of))
    if folds is None:
        folds = _folds(y[:n], kind, n_folds, random_state)
    if copy_of is not None and len(copy_of):
        folds = [
            (np.concatenate([train, n + np.flatnonzero(np.isin(copy_of, train))]), test)
            for train, test in folds
        ]
    options = {"random_state": random_state, "class_weight": class_weight}
    # "auto": with and without NB scaling, chosen like C, by the out-of-fold score (per label for
    # multilabel tasks)
    grid = [(C, choice) for choice in ((False, True) if nb == "auto" else (bool(nb),)) for C in C_grid]
    if kind == "single":
        return _fit_single(X, y, labels, grid, folds, options, n)
    return _fit_multilabel(X, y, labels, grid, folds, options, n)


def _fit_ovr(X, y, n_labels, C, nb, options):
    """One-vs-rest binary SVMs of a single-label task: (coef, intercept) with one row per class."""
    if n_labels == 2:  # one SVM separates two classes: spread it over two rows
        coef, intercept = _fit_binary(X, (y == 1).astype(int), C, nb=nb, **options)
        return np.vstack([-coef / 2, coef / 2]), np.array([-intercept / 2, intercept / 2])
    rows = [_fit_binary(X, (y == k).astype(int), C, nb=nb, **options) for k in range(n_labels)]
    return np.vstack([r[0] for r in rows]), np.array([r[1] for r in rows])


def _fit_single(X, y, labels, grid, folds, options, n):
    from sklearn.linear_model import LogisticRegression

    n_labels = len(labels)
    best = None
    for C, nb in grid:
        oof = np.zeros((n, n_labels))
        for train, test in folds:
            coef, intercept = _fit_ovr(X[train], y[train], n_labels, C, nb, options)
            oof[test] = np.asarray(X[test] @ coef.T) + intercept
        score = _macro_f1(y[:n], oof.argmax(axis=1), n_labels)
        if best is None or score > best[0] + 1e-9:
            best = (score, C, nb, oof)
    _, C, nb, oof = best
    calibrator = LogisticRegression(C=1.0, max_iter=1000)
    calibrator.fit(oof, y[:n])
    calib_coef, calib_intercept = _single_coef(calibrator.coef_, calibrator.intercept_, n_labels)
    coef, intercept = _fit_ovr(X, y, n_labels, C, nb, options)
    model = TaskModel(
        kind="single",
        labels=list(labels),
        coef=coef,
        intercept=intercept,
        calib_coef=np.asarray(calib_coef, dtype=np.float64),
        calib_intercept=np.asarray(calib_intercept, dtype=np.float64),
        thresholds=np.full(n_labels, 0.5),
        C=np.full(n_labels, C),
        nb=np.full(n_labels, nb),
    )
    return model, model.calibrate(oof)


def _fit_multilabel(X, Y, labels, grid, folds, options, n):
    from sklearn.linear_model import LogisticRegression

    n_labels = len(labels)
    coefs, intercepts = np.zeros((n_labels, X.shape[1])), np.zeros(n_labels)
    calib_a, calib_b = np.ones(n_labels), np.zeros(n_labels)
    thresholds, chosen_C, chosen_nb = (
        np.full(n_labels, 0.5),
        np.zeros(n_labels),
        np.zeros(n_labels, dtype=bool),
    )
    oof_proba = np.zeros((n, n_labels), dtype=np.float64)
    candidates = np.round(np.linspace(0.05, 0.95, 91), 2)
    for j in range(n_labels):
        y = Y[:, j].astype(bool)
        scored = y[:n]  # the original rows: copies are never scored
        best = None
        for C, nb in grid:
            oof = np.zeros(n)
            for train, test in folds:
                oof[test] = _binary_decision(X[train], y[train].astype(int), X[test], C, nb=nb, **options)
            platt = LogisticRegression(C=1.0, max_iter=1000).fit(oof[:, None], scored.astype(int))
            a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
            proba = _sigmoid(oof * a + b)
            f1s = np.array([_binary_f1(scored, proba >= t) for t in candidates])
            top = f1s.max()
            # among equally good thresholds, the one nearest 0.5
            ties = candidates[f1s >= top - 1e-12]
            threshold = float(ties[np.argmin(np.abs(ties - 0.5))])
            if best is None or top > best[0] + 1e-9:
                best = (top, C, nb, a, b, threshold, proba)
        _, C, nb, a, b, threshold, proba = best
        coefs[j], intercepts[j] = _fit_binary(X, y.astype(int), C, nb=nb, **options)
        calib_a[j], calib_b[j], thresholds[j], chosen_C[j], chosen_nb[j] = a, b, threshold, C, nb
        oof_proba[:, j] = proba
    model = TaskModel(
        kind="multilabel",
        labels=list(labels),
        coef=coefs,
        intercept=intercepts,
        calib_coef=calib_a,
        calib_intercept=calib_b,
        thresholds=thresholds,
        C=chosen_C,
        nb=chosen_nb,
    )
    return model, oof_proba
