"""Benchmarks: ``python -m benchmarks {tokenizers,quality,ablations,corpus,bundled,batch,readme} [--data-dir DIR]``.

Each benchmark prints the command that reproduces it and writes its table to
``benchmarks/results/<name>.md`` (and ``.json``); the README quotes those files.
"""

from __future__ import annotations

import argparse
import sys

from .datasets import DatasetsMissing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--data-dir", default=None, help="folder holding the public corpora")
    sub = parser.add_subparsers(dest="name", required=True)
    p = sub.add_parser("tokenizers", help="syllable path vs underthesea word segmentation")
    p.add_argument("--speed-texts", type=int, default=20_000, help="real comments to time (default 20000)")
    p = sub.add_parser("quality", help="vnfeedback defaults vs peers on the public corpora")
    p.add_argument("--systems", nargs="+", default=None, help="a subset of the systems")
    sub.add_parser("corpus", help="variety and label statistics of data/telecom")
    sub.add_parser("bundled", help="the bundled model on its test split and the sample archive")
    p = sub.add_parser("batch", help="classify throughput and memory on a large archive, and Spark")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--no-spark", action="store_true")
    p.add_argument("--repeats", type=int, default=3, help="runs of each --jobs, alternating (default 3)")
    sub.add_parser("ablations", help="one modelling option at a time against the defaults (dev splits)")
    sub.add_parser("readme", help="copy the result tables into README.md and benchmarks/results.md")
    args = parser.parse_args(argv)
    try:
        if args.name == "readme":
            from .readme import run

            run()
        elif args.name == "ablations":
            from .ablations import run

            run(data_dir=args.data_dir)
        elif args.name == "quality":
            from .quality import SYSTEMS, run

            run(data_dir=args.data_dir, systems=tuple(args.systems or SYSTEMS))
        elif args.name == "batch":
            from .batch import run

            run(rows=args.rows, data_dir=args.data_dir, spark=not args.no_spark, repeats=args.repeats)
        elif args.name == "bundled":
            from .bundled import run

            run()
        elif args.name == "corpus":
            from .corpus import run

            run()
        elif args.name == "tokenizers":
            from .tokenizers import run

            run(data_dir=args.data_dir, speed_texts=args.speed_texts)
    except DatasetsMissing as exc:
        print(f"datasets missing: {exc}", file=sys.stderr)
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
