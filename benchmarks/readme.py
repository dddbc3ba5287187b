"""Copy benchmark tables into the README and the data card between ``<!-- results:NAME -->`` markers.

``python -m benchmarks readme`` rewrites each marked block from ``benchmarks/results/NAME.md``, so
the README never holds a hand-typed number; ``tests/test_readme.py`` fails when they drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path

from .report import RESULTS

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = (ROOT / "README.md", ROOT / "data" / "telecom" / "README.md")
_BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def result_block(name: str) -> str:
    """The README block for a result file: everything after its title line."""
    text = (RESULTS / f"{name}.md").read_text(encoding="utf-8")
    return text.split("\n", 1)[1].strip() + "\n"


def render(readme: str) -> str:
    return _BLOCK.sub(lambda m: m.group(1) + result_block(m.group("name")) + m.group(4), readme)


def run() -> None:
    for document in DOCUMENTS:
        updated = render(document.read_text(encoding="utf-8"))
        document.write_text(updated, encoding="utf-8")
        names = [m.group("name") for m in _BLOCK.finditer(updated)]
        print(
            f"{document.relative_to(ROOT)}: {len(names)} result block(s) refreshed: {', '.join(names) or 'none'}"
        )
