"""Per-task linear models: calibration, thresholds, determinism, on small separable data."""

import numpy as np
import scipy.sparse as sp

from vnfeedback.models import fit_task


def separable(n=60, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.random((n, 12)) * 0.2
    X[np.arange(n), y] += 1.0
    return sp.csr_matrix(X), y


def test_single_task_probabilities_sum_to_one_and_learn_the_classes():
    X, y = separable()
    model, oof = fit_task(
        X, y, kind="single", labels=["a", "b", "c"], C_grid=(0.1, 1.0), n_folds=3, random_state=0
    )
    proba = model.proba(X)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert (proba.argmax(axis=1) == y).mean() > 0.95
    assert oof.shape == proba.shape


def test_binary_single_task_gets_one_row_per_class():
    X, y = separable(n_classes=2)
    model, _ = fit_task(X, y, kind="single", labels=["no", "yes"], C_grid=(1.0,), n_folds=3, random_state=0)
    assert model.coef.shape[0] == 2
    assert (model.proba(X).argmax(axis=1) == y).mean() > 0.95


def test_multilabel_thresholds_are_probabilities_and_labels_are_learned():
    X, y = separable(n=90, n_classes=3)
    Y = np.zeros((90, 3), dtype=np.int8)
    Y[np.arange(90), y] = 1
    Y[::5, 0] = 1  # some rows carry two labels
    model, _oof = fit_task(
        X, Y, kind="multilabel", labels=["a", "b", "c"], C_grid=(0.3,), n_folds=3, random_state=0
    )
    assert ((model.thresholds > 0) & (model.thresholds < 1)).all()
    predicted = model.proba(X) >= model.thresholds
    assert (predicted == Y.astype(bool)).mean() > 0.9


def test_fitting_is_deterministic_for_a_random_state():
    X, y = separable()
    a, _ = fit_task(X, y, kind="single", labels=["a", "b", "c"], C_grid=(0.1, 1.0), n_folds=3, random_state=7)
    b, _ = fit_task(X, y, kind="single", labels=["a", "b", "c"], C_grid=(0.1, 1.0), n_folds=3, random_state=7)
    assert np.array_equal(a.coef, b.coef) and np.array_equal(a.calib_coef, b.calib_coef)


def test_nb_weighting_folds_into_one_linear_model():
    X, y = separable()
    model, _ = fit_task(
        X, y, kind="single", labels=["a", "b", "c"], C_grid=(1.0,), n_folds=3, random_state=0, nb=True
    )
    assert model.coef.shape == (3, X.shape[1])
    assert (model.proba(X).argmax(axis=1) == y).mean() > 0.95


def test_unweighted_classes_change_the_model():
    X, y = separable()
    y = np.where(np.arange(len(y)) % 10 == 0, 2, np.minimum(y, 1))  # class 2 is rare
    a, _ = fit_task(X, y, kind="single", labels=["a", "b", "c"], C_grid=(1.0,), n_folds=3, random_state=0)
    b, _ = fit_task(
        X,
        y,
        kind="single",
        labels=["a", "b", "c"],
        C_grid=(1.0,),
        n_folds=3,
        random_state=0,
        class_weight=None,
    )
    assert not np.allclose(a.coef, b.coef)


def random_labels(n=120, n_features=600, seed=0):
    """Rows with nothing to learn: random sparse features, random labels."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, n_features, density=0.02, random_state=seed, format="csr")
    return X, rng.integers(0, 2, n)


def test_copies_stay_with_their_originals_in_the_folds():
    # a copy of a held-out row in the training side would let a memorising model "predict" it
    X, y = random_labels()
    n = X.shape[0]
    copy_of = np.arange(n)
    doubled, y2 = sp.vstack([X, X[copy_of]]).tocsr(), np.concatenate([y, y[copy_of]])
    for kind, target in (("single", y2), ("multilabel", np.stack([y2, 1 - y2], axis=1))):
        model, oof = fit_task(
            doubled,
            target,
            kind=kind,
            labels=["a", "b"],
            C_grid=(100.0,),
            n_folds=4,
            random_state=0,
            copy_of=copy_of,
        )
        assert oof.shape[0] == n  # probabilities of the originals only
        guessed = oof.argmax(axis=1) if kind == "single" else (oof[:, 0] >= model.thresholds[0]).astype(int)
        assert (guessed == y).mean() < 0.7, kind  # chance, not recall


def test_group_folds_keep_each_group_in_one_test_part():
    from vnfeedback.models import group_folds

    rng = np.random.default_rng(1)
    groups = rng.integers(0, 40, 500)
    folds = group_folds(groups, 5, random_state=0)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(500))  # every row tested once
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
        assert sorted(np.concatenate([train, test]).tolist()) == list(range(500))
    sizes = [len(test) for _, test in folds]
    assert max(sizes) - min(sizes) <= np.bincount(groups).max()  # dealt to the emptiest fold
    again = group_folds(groups, 5, random_state=0)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again, strict=True))
    assert any(
        (a[1] != b[1]).any() for a, b in zip(folds, group_folds(groups, 5, random_state=1), strict=True)
    )


def test_group_folds_stop_a_group_from_leaking_into_its_own_scores():
    # each comment written twice (one customer repeating themselves): folds that split a pair let a
    # memorising model "predict" one copy from the other; group folds do not
    from vnfeedback.models import group_folds

    X, y = random_labels()
    n = X.shape[0]
    twice, y2 = sp.vstack([X, X]).tocsr(), np.concatenate([y, y])
    groups = np.concatenate([np.arange(n), np.arange(n)])
    scores = {}
    for name, folds in (("random", None), ("grouped", group_folds(groups, 4, random_state=0))):
        _, oof = fit_task(
            twice,
            y2,
            kind="single",
            labels=["a", "b"],
            C_grid=(100.0,),
            n_folds=4,
            random_state=0,
            folds=folds,
        )
        scores[name] = (oof.argmax(axis=1) == y2).mean()
    assert scores["random"] > 0.8  # the leak the grouping prevents
    assert scores["grouped"] < 0.7  # chance


def test_nb_auto_keeps_per_label_the_side_with_the_better_out_of_fold_f1():
    from vnfeedback.models import _binary_f1, _fit_binary

    rng = np.random.default_rng(4)  # a seed under which the labels differ in their choice
    n, d = 240, 40
    X = sp.csr_matrix(rng.poisson(0.4, (n, d)).astype(float))
    dense = X.toarray()
    # labels of different shapes: one feature, a sum of many weak ones, noise around a few
    Y = np.stack(
        [
            dense[:, 0] > 0,
            dense[:, 1:15].sum(axis=1) > 6,
            (dense[:, 15] + dense[:, 16] + rng.random(n) * 0.8) > 1.0,
            (dense[:, 20:40] @ rng.random(20) + rng.normal(0, 0.6, n)) > 3.5,
        ],
        axis=1,
    ).astype(np.int8)
    common = dict(kind="multilabel", labels=list("abcd"), C_grid=(0.3,), n_folds=3, random_state=0)
    fixed = {nb: fit_task(X, Y, nb=nb, **common) for nb in (False, True)}
    auto, auto_oof = fit_task(X, Y, nb="auto", **common)
    candidates = np.round(np.linspace(0.05, 0.95, 91), 2)

    def best_f1(oof, j):
        return max(_binary_f1(Y[:, j].astype(bool), oof[:, j] >= t) for t in candidates)

    assert set(auto.nb.tolist()) == {False, True}  # the data makes both choices happen
    for j, chosen in enumerate(auto.nb.tolist()):
        model, oof = fixed[chosen]
        assert np.array_equal(auto.coef[j], model.coef[j]) and auto.thresholds[j] == model.thresholds[j]
        # and the final model is the chosen side's, fitted on every row
        reference = _fit_binary(X, Y[:, j], 0.3, random_state=0, class_weight="balanced", nb=chosen)[0]
        assert np.array_equal(auto.coef[j], reference)
        assert np.array_equal(auto_oof[:, j], oof[:, j])
        other = fixed[not chosen][1]
        assert best_f1(oof, j) >= best_f1(other, j) - 1e-12
    # a single-label task chooses once for all its labels; on this label the NB side wins, and the
    # final model is that side's (checked against the binary fit itself, not through fit_task again)
    single, _ = fit_task(X, Y[:, 3], kind="single", labels=["no", "yes"], C_grid=(0.3,), n_folds=3,
                         random_state=0, nb="auto")  # fmt: skip
    assert single.nb.tolist() == [True, True]
    coef, _ = _fit_binary(X, Y[:, 3], 0.3, random_state=0, class_weight="balanced", nb=True)
    assert np.array_equal(single.coef[1], coef / 2)
