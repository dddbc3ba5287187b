"""Writing benchmark results: a Markdown table with the date, machine and command, plus JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def command() -> str:
    return "python -m benchmarks " + " ".join(sys.argv[1:])


def table(headers: list[str], rows: list[list]) -> str:
    def cell(value):
        if isinstance(value, float):
            return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.1f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write(name: str, title: str, body: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"# {title}\n\nMeasured {stamp} on {machine()}.\nReproduce: `{command()}`\n\n{body}\n"
    path = RESULTS / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    (RESULTS / f"{name}.json").write_text(
        json.dumps(
            {"date": stamp, "machine": machine(), "command": command(), **data}, ensure_ascii=False, indent=1
        ),
        encoding="utf-8",
    )
    print(text)
    return path
