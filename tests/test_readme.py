"""The README's promises: two commands first, CI runs them, and result tables come from benchmarks."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_starts_with_the_two_fresh_machine_commands():
    head = README.split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", head, re.S)
    assert len(commands) == 2
    assert "vnfeedback classify" in commands[0] and "pytest" in commands[1]
    assert all(c.startswith("python3 -m venv") for c in commands)


def test_ci_reads_its_commands_from_the_readme():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "readme_command classify" in ci and "readme_command test" in ci
    assert "<!-- command:classify -->" in README and "<!-- command:test -->" in README


def test_readme_result_tables_match_the_benchmark_results():
    import sys

    sys.path.insert(0, str(ROOT))
    from benchmarks.readme import DOCUMENTS, render

    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        assert render(text) == text, f"{document.name} is stale: run python -m benchmarks readme"


def test_sample_archive_named_in_the_readme_exists():
    for path in re.findall(r"examples/[\w./-]+\.(?:csv|jsonl|parquet)", README):
        assert (ROOT / path).exists(), path
