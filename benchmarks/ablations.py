"""What each modelling idea gives: one option changed at a time against the defaults.

Scored on the development splits of the public corpora (UIT-VSFC dev, UIT-ViSFD dev) and by 5-fold
cross-validation on the telecom corpus's training split (with the bundled model's label rules), so a
choice of default never peeks at a test split: those stay for the headline tables.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import datasets, report
from .corpus import TASKS, label_rules, load

VARIANTS = {
    "defaults": {},
    "NB log-count ratio weighting": {"nb_weighting": True},
    "NB weighting or not, chosen by CV (auto)": {"nb_weighting": "auto"},
    "no class weights": {"class_weight": None},
    "wider C grid (0.03-3)": {"C_grid": (0.03, 0.1, 0.3, 1.0, 3.0)},
    "no character n-grams": {"char_ngrams": (0, 0)},
    "character view weight 0.7": {"char_weight": 0.7},
    "character view weight 0.5": {"char_weight": 0.5},
    "character 1-4-grams": {"char_ngrams": (1, 4)},
    "word 1-2-grams": {"word_ngrams": (1, 2)},
    "negation view": {"negation": True},
    "concept view": {"concepts": True},
    "accent-stripped copies": {"augment_stripped": True},
    "label rules: intent decides alone": {"rules_weight": 0.0},
}
# options that only act through label rules, which only the telecom corpus has: the public corpora
# would repeat the defaults' scores
RULES_ONLY = {"label rules: intent decides alone"}


def _score(name: str, options: dict, root: Path) -> dict:
    import warnings

    import vnfeedback

    warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
    out: dict[str, float | None] = (
        dict.fromkeys(["VSFC sentiment wF1", "VSFC topic wF1", "ViSFD micro-F1"])
        if name in RULES_ONLY
        else _public(options, root)
    )
    # out-of-fold predictions of the folds that also choose C: every option gets the same treatment
    started = time.perf_counter()
    telecom = vnfeedback.train(load("train"), tasks=TASKS, label_rules=label_rules(), **options)
    seconds = time.perf_counter() - started
    for task in TASKS:
        out[f"telecom {task} CV mF1"] = telecom.card["cv_metrics"]["tasks"][task]["macro_f1"]
    return {"variant": name, **out, "telecom train s": seconds}


def _public(options: dict, root: Path) -> dict[str, float]:
    import vnfeedback

    out = {}
    vsfc = vnfeedback.train(
        datasets.vsfc(root, "train"), tasks={"sentiment": "single", "topic": "single"}, **options
    ).evaluate(datasets.vsfc(root, "dev"))["tasks"]
    out["VSFC sentiment wF1"] = vsfc["sentiment"]["weighted_f1"]
    out["VSFC topic wF1"] = vsfc["topic"]["weighted_f1"]
    visfd = vnfeedback.train(
        datasets.visfd(root, "train"), tasks={"aspects": "multilabel"}, **options
    ).evaluate(datasets.visfd(root, "dev"))["tasks"]["aspects"]
    out["ViSFD micro-F1"] = visfd["micro_f1"]
    return out


def run(*, data_dir: str | None) -> None:
    from joblib import Parallel, delayed

    root = datasets.data_dir(data_dir)
    results = Parallel(n_jobs=2)(delayed(_score)(name, options, root) for name, options in VARIANTS.items())
    columns = [c for c in results[0] if c not in ("variant", "telecom train s")]
    base = results[0]
    rows = [
        [
            r["variant"],
            *[
                "—"
                if r[c] is None
                else f"{r[c] * 100:.1f}" + ("" if r is base else f" ({(r[c] - base[c]) * 100:+.1f})")
                for c in columns
            ],
            f"{r['telecom train s']:.0f}"
            + ("" if r is base else f" ({r['telecom train s'] / base['telecom train s']:.1f}x)"),
        ]
        for r in results
    ]
    body = report.table(["variant", *columns, "telecom train s"], rows)
    sizes = (
        f"VSFC dev has {len(datasets.vsfc(root, 'dev')):,} comments, ViSFD dev "
        f"{len(datasets.visfd(root, 'dev')):,}, telecom train {len(load('train')):,}"
    )
    body += (
        "\n\nOne option changed at a time from the `vnfeedback.train` defaults; "
        "public corpora scored on their "
        "dev splits, the telecom corpus by 5-fold cross-validation on its training split with the label "
        "rules (— : an option that acts only through label rules, which the public corpora do not have). "
        "Differences of a few tenths "
        f"are within noise ({sizes}). Training seconds: the telecom model of each row (5-fold CV and "
        "the final fit), two rows at a time on the two cores."
    )
    report.write("ablations", "Ablations: what each modelling idea gives", body, {"results": results})
