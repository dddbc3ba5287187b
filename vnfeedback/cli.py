"""The ``vnfeedback`` command: a thin shell over the Python API.

One function per subcommand parses nothing itself, calls the API and prints. Only our own errors
(``VnfeedbackError``) and unreadable files are caught: they print ``ErrorType: message`` on one line
and exit 1. Diagnostics go through ``logging`` on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from . import __version__

log = logging.getLogger("vnfeedback")


class _Version(argparse.Action):
    """``--version``: the version, and whether batch prediction runs the C loop (a slow install,
    one built without a C compiler, shows here)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from .features import _speedups

        engine = (
            "batch prediction in C"
            if _speedups is not None
            else "batch prediction in numpy: the C loop was not built (no C compiler at install?)"
        )
        print(f"vnfeedback {__version__} ({engine})")
        parser.exit()


def _whole(minimum: int):
    """An option's whole-number type: bad values are refused by the option's name before any work
    (the API's own check would name its Python parameter, after output had begun)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"whole number >= {minimum}"  # what argparse names in its own messages
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vnfeedback",
        description="Tag Vietnamese telecom feedback: complaint type, product area, intent.",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument("-v", "--verbose", action="store_true", help="more log messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", help="classify an archive (CSV, JSONL, Parquet, or - for stdin)")
    p.add_argument("input", help="input file, or - for stdin")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--id-column", default=None, help="a column that must be present (checked up front)")
    p.add_argument(
        "--format",
        dest="input_format",
        choices=["csv", "jsonl", "parquet"],
        help="input format (default: from the extension; jsonl for stdin)",
    )
    p.add_argument(
        "--output-format",
        choices=["csv", "jsonl", "parquet"],
        help="output format (default: from the extension, else the input's)",
    )
    p.add_argument("--jobs", type=_whole(1), default=1, help="worker processes (default 1)")
    p.add_argument("--chunk-size", type=_whole(1), default=5000, help="rows per chunk (default 5000)")
    p.add_argument("--resume", action="store_true", help="continue a killed run from its checkpoint")
    p.add_argument(
        "--explain",
        nargs="?",
        type=_whole(1),
        const=5,
        default=0,
        metavar="N",
        help="add the top N n-grams behind each label (default N: 5)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.set_defaults(run=_classify)

    p = sub.add_parser("train", help="train a model from labelled data")
    p.add_argument("data", help="labelled .csv/.jsonl/.parquet")
    p.add_argument("-o", "--output", required=True, help="model directory to write")
    p.add_argument(
        "--task",
        action="append",
        default=[],
        metavar="NAME:KIND",
        help="a task and its kind (single or multilabel); repeat; default: inferred",
    )
    p.add_argument("--text-column", default="text")
    p.add_argument("--cv", type=_whole(2), default=5, help="cross-validation folds (default 5)")
    p.add_argument("--tokenizer", choices=["syllable", "underthesea"], default="syllable")
    p.add_argument("--test", default=None, help="labelled held-out data: its metrics go into the model card")
    p.add_argument("--name", default=None, help="the model's name in its card")
    p.add_argument("--description", default=None, help="a description for the model card")
    p.add_argument("--rules", default=None, help="a JSON file of label rules between tasks")
    p.add_argument(
        "--cv-groups",
        default=None,
        metavar="COLUMN",
        help="keep the rows of one group (a customer, thread or branch id) in one cross-validation fold",
    )
    p.add_argument(
        "--rules-weight",
        type=float,
        default=0.5,
        metavar="W",
        help="how much a rule's target task counts when the tasks disagree (0: the condition task "
        "decides alone; default 0.5)",
    )
    p.add_argument(
        "--augment-stripped",
        action="store_true",
        help="also learn from accent-stripped copies of the comments that have diacritics",
    )
    p.add_argument(
        "--negation",
        action="store_true",
        help="add the view of negated words (off by default: it scored lower on every corpus measured)",
    )
    p.add_argument(
        "--char-weight",
        type=float,
        default=1.0,
        metavar="W",
        help="how much the character n-grams count against the word views (below 1: less; default 1)",
    )
    p.add_argument(
        "--nb-weighting",
        choices=["off", "on", "auto"],
        default="off",
        help="naive-Bayes scaling of the features: off (default), on, or auto (chosen per label by "
        "cross-validation; trains several times longer)",
    )
    p.add_argument("--random-state", type=int, default=0)
    p.set_defaults(run=_train)

    p = sub.add_parser("evaluate", help="metrics of a model on labelled data, optionally as an HTML report")
    p.add_argument("data")
    p.add_argument("--model", default=None)
    p.add_argument("--json", action="store_true", help="print the full metrics as JSON")
    p.add_argument("--report", default=None, metavar="HTML", help="write an HTML report (and its .json)")
    p.add_argument("--baseline", default=None, metavar="DIR", help="a second model to compare against")
    p.add_argument(
        "--cv",
        type=_whole(2),
        default=None,
        metavar="K",
        help="cross-validate the model's recipe on DATA (training data) instead of scoring it",
    )
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("report", help="a trend report over a classified archive (HTML + JSON)")
    p.add_argument("classified", help="a file written by vnfeedback classify")
    p.add_argument("-o", "--output", default="trends.html")
    p.add_argument("--date-column", default="date")
    p.add_argument("--by", choices=["week", "month"], default="month")
    p.add_argument("--text-column", default="text")
    p.add_argument("--model", default=None, help="the model that classified it (for new terms)")
    p.add_argument(
        "--since", default=None, metavar="YYYY-MM-DD", help="first day to report (default: the first date)"
    )
    p.add_argument(
        "--until", default=None, metavar="YYYY-MM-DD", help="last day to report (default: the last date)"
    )
    p.set_defaults(run=_report)

    p = sub.add_parser("suggest", help="the comments most worth labelling next, as a CSV to fill in")
    p.add_argument("archive")
    p.add_argument("-n", type=_whole(1), default=200, help="how many (default 200)")
    p.add_argument("-o", "--output", default="to_label.csv")
    p.add_argument("--model", default=None)
    p.add_argument("--text-column", default="text")
    p.add_argument("--id-column", default=None)
    p.set_defaults(run=_suggest)

    p = sub.add_parser("audit", help="likely mislabelled rows of labelled data, from out-of-fold predictions")
    p.add_argument("data")
    p.add_argument("-o", "--output", default="audit.csv")
    p.add_argument("--task", action="append", default=[], metavar="NAME:KIND")
    p.add_argument("--text-column", default="text")
    p.add_argument("--cv", type=_whole(2), default=5)
    p.set_defaults(run=_audit)

    p = sub.add_parser("explain", help="the n-grams behind a text's labels")
    p.add_argument("text")
    p.add_argument("--model", default=None)
    p.add_argument("--top", type=_whole(1), default=8)
    p.set_defaults(run=_explain)
    return parser


def _classify(args: argparse.Namespace) -> int:
    from .batch import classify_file

    summary = classify_file(
        args.input,
        args.output,
        model_dir=args.model,
        text_column=args.text_column,
        id_column=args.id_column,
        input_format=args.input_format,
        output_format=args.output_format,
        chunk_size=args.chunk_size,
        jobs=args.jobs,
        resume=args.resume,
        explain=args.explain,
        progress=False if args.no_progress else None,
    )
    print(summary.render(), file=sys.stderr)
    return 0


def _parse_tasks(specs: list[str]) -> dict[str, str] | None:
    from .errors import ParameterError

    if not specs:
        return None
    tasks = {}
    for spec in specs:
        name, _, kind = spec.partition(":")
        if not name or kind not in ("single", "multilabel"):
            raise ParameterError(f"--task takes NAME:single or NAME:multilabel, got {spec!r}")
        tasks[name] = kind
    return tasks


def _train(args: argparse.Namespace) -> int:
    import vnfeedback

    rules = None
    if args.rules:
        try:
            with open(args.rules, encoding="utf-8") as handle:
                rules = json.load(handle)
        except json.JSONDecodeError as exc:
            raise vnfeedback.ParameterError(f"--rules {args.rules}: not valid JSON ({exc})") from None
    model = vnfeedback.train(
        args.data,
        tasks=_parse_tasks(args.task),
        text_column=args.text_column,
        random_state=args.random_state,
        n_folds=args.cv,
        tokenizer=args.tokenizer,
        label_rules=rules,
        rules_weight=args.rules_weight,
        cv_groups=args.cv_groups,
        augment_stripped=args.augment_stripped,
        negation=args.negation,
        char_weight=args.char_weight,
        nb_weighting={"off": False, "on": True, "auto": "auto"}[args.nb_weighting],
    )
    if args.name:
        model.card_["name"] = args.name
    if args.description:
        model.card_["description"] = args.description
    if args.test:
        model.card_["test_metrics"] = model.evaluate(args.test)
    model.save(args.output)
    print(_metrics_table(model.card["cv_metrics"]["tasks"], "cross-validation"), file=sys.stderr)
    if args.test:
        print(_metrics_table(model.card["test_metrics"]["tasks"], "test"), file=sys.stderr)
    print(f"saved to {args.output}", file=sys.stderr)
    return 0


def _metrics_table(tasks: dict, title: str) -> str:
    lines = [f"{title}:"]
    for task, m in tasks.items():
        if m["kind"] == "single":
            lines.append(
                f"  {task:<16} accuracy {m['accuracy']:.3f}  macro-F1 {m['macro_f1']:.3f}  "
                f"weighted-F1 {m['weighted_f1']:.3f}"
            )
        else:
            lines.append(
                f"  {task:<16} micro-F1 {m['micro_f1']:.3f}  macro-F1 {m['macro_f1']:.3f}  "
                f"exact match {m['exact_match']:.3f}"
            )
    return "\n".join(lines)


def _evaluate(args: argparse.Namespace) -> int:
    import vnfeedback

    model = vnfeedback.load(args.model)
    if args.report or args.baseline or args.cv:
        from .reports import evaluation_report

        baseline = vnfeedback.load(args.baseline) if args.baseline else None
        output = args.report or "report.html"
        report = evaluation_report(model, args.data, output, baseline=baseline, cv=args.cv)
        print(
            _metrics_table(
                report["tasks"], f"{report['n']} rows" + (f", {args.cv}-fold CV" if args.cv else "")
            )
        )
        if "verdict" in report:
            verdict = report["verdict"]
            print(
                ("promote: " if verdict["promote"] else "do not promote: ")
                + f"better on {verdict['better_tasks']} task(s), worse on {verdict['worse_tasks']}"
            )
        print(f"report: {output} (metrics: {Path(output).with_suffix('.json')})", file=sys.stderr)
        return 0
    report = model.evaluate(args.data)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        print(_metrics_table(report["tasks"], f"{report['n']} rows"))
        print(f"needs review: {report['needs_review_share']:.1%}")
    return 0


def _report(args: argparse.Namespace) -> int:
    import vnfeedback

    from .trends import trend_report

    report = trend_report(
        args.classified,
        args.output,
        date_column=args.date_column,
        by=args.by,
        text_column=args.text_column,
        model=vnfeedback.load(args.model),
        since=args.since,
        until=args.until,
    )
    print(
        f"{len(report.get('periods', []))} period(s), {len(report.get('spikes', []))} spike(s), "
        f"{len(report.get('new_terms', []))} new term(s)"
    )
    print(f"report: {args.output} (numbers: {Path(args.output).with_suffix('.json')})", file=sys.stderr)
    return 0


def _suggest(args: argparse.Namespace) -> int:
    import vnfeedback

    from .labelling import suggest, write_suggestions

    model = vnfeedback.load(args.model)
    rows = suggest(args.archive, model, n=args.n, text_column=args.text_column, id_column=args.id_column)
    write_suggestions(rows, args.output, model.tasks)
    print(f"{len(rows)} comment(s) to label written to {args.output}", file=sys.stderr)
    return 0


def _audit(args: argparse.Namespace) -> int:
    from .labelling import audit, write_audit

    rows = audit(args.data, tasks=_parse_tasks(args.task), text_column=args.text_column, n_folds=args.cv)
    write_audit(rows, args.output)
    print(f"{len(rows)} likely mislabelled row(s) written to {args.output}", file=sys.stderr)
    return 0


def _explain(args: argparse.Namespace) -> int:
    import vnfeedback

    model = vnfeedback.load(args.model)
    prediction = model.predict(args.text)
    for task, chosen in prediction.labels.items():
        labels = chosen if isinstance(chosen, list) else [chosen]
        if not labels:
            print(f"{task}: (none)")
        for label in labels:
            print(f"{task} = {label} ({prediction.scores[task][label]:.2f})")
            for item in model.explain(args.text, task=task, label=label, top=args.top):
                print(f"    {item['weight']:+.3f}  {item['feature']}  [{item['view']}]")
    if prediction.needs_review:
        print("needs review: " + "; ".join(prediction.review_reasons))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 a reported error, 2 bad usage)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s"
    )
    from .errors import VnfeedbackError

    formatted = warnings.formatwarning  # a warning prints as one line, like an error: no path, no source
    warnings.formatwarning = _one_line
    try:
        return _run(args, VnfeedbackError)
    finally:
        warnings.formatwarning = formatted


def _one_line(message, category, filename, lineno, line=None) -> str:
    return f"{category.__name__}: {message}\n"


def _run(args: argparse.Namespace, expected: type[Exception]) -> int:
    try:
        return args.run(args)
    except expected as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"{type(exc).__name__}: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
