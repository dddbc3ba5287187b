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
    from benchmarks.readme import DOCUMENTS, INDEX, index, render

    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        assert render(text) == text, f"{document.name} is stale: run python -m benchmarks readme"
    assert INDEX.read_text(encoding="utf-8") == index(), (
        "benchmarks/results.md is stale: run python -m benchmarks readme"
    )


def test_sample_archive_named_in_the_readme_exists():
    for path in re.findall(r"examples/[\w./-]+\.(?:csv|jsonl|parquet)", README):
        assert (ROOT / path).exists(), path


def test_python_example_shows_what_the_bundled_model_gives():
    # the example outputs went stale once when the bundled model was retrained
    import ast

    import vnfeedback

    model = vnfeedback.load()
    shown = re.search(r"p = model\.predict\((\".+?\")\)\np\.labels +# (\{.+?\})\n", README)
    assert shown, "the README's predict example moved; update this test"
    assert model.predict(ast.literal_eval(shown.group(1))).labels == ast.literal_eval(shown.group(2))
    call = re.search(r'model\.explain\((".+?"), task="(\w+)", label="(\w+)", top=5\)\n((?:#.*\n)+)', README)
    assert call, "the README's explain example moved; update this test"
    listed = re.findall(r"\{'feature': '(.+?)', 'view': '(.+?)', 'weight': (-?[\d.]+)\}", call.group(4))
    actual = model.explain(ast.literal_eval(call.group(1)), task=call.group(2), label=call.group(3), top=5)
    assert listed and [(f, v, round(float(w), 2)) for f, v, w in listed] == [
        (a["feature"], a["view"], round(a["weight"], 2)) for a in actual[: len(listed)]
    ]
