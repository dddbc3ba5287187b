"""The HTML reports, looked at in a real headless Chromium: every figure renders, no console error."""

import os
import shutil

import pytest

pytest.importorskip("matplotlib")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if os.environ.get("VNFEEDBACK_REQUIRE_BROWSER") != "1":
    pytest.importorskip("playwright", reason="pip install playwright to look at the reports in Chromium")
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.slow

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def look_at(path, screenshot=None):
    """Open a page in Chromium: (number of images, broken images, console errors)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path.resolve().as_uri(), wait_until="load")
        images = page.evaluate("() => document.images.length")
        broken = page.evaluate(
            "() => Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => i.alt || i.src.slice(0, 40))"
        )
        if screenshot:
            page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return images, broken, errors


def test_the_checker_sees_a_broken_image_and_a_script_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><html><body><img alt='bad' src='data:image/png;base64,AAAA'>"
        "<script>undefinedFunction()</script></body></html>",
        encoding="utf-8",
    )
    images, broken, errors = look_at(page)
    assert images == 1 and broken == ["bad"] and errors


def test_evaluation_report_renders_in_chromium(tiny_model, small_rows, tmp_path):
    from vnfeedback.reports import evaluation_report

    evaluation_report(tiny_model, small_rows, tmp_path / "report.html", baseline=tiny_model)
    images, broken, errors = look_at(tmp_path / "report.html", tmp_path / "report.png")
    assert images == 1 + 2 * len(tiny_model.tasks)
    assert broken == [] and errors == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_trend_report_renders_in_chromium(tiny_model_dir, tmp_path):
    from pathlib import Path

    import vnfeedback
    from vnfeedback.batch import classify_file
    from vnfeedback.trends import trend_report

    archive = Path(__file__).resolve().parent.parent / "examples" / "sample_archive.csv"
    classify_file(str(archive), str(tmp_path / "classified.jsonl"), model_dir=str(tiny_model_dir))
    trend_report(
        tmp_path / "classified.jsonl",
        tmp_path / "trends.html",
        by="month",
        model=vnfeedback.load(tiny_model_dir),
    )
    images, broken, errors = look_at(tmp_path / "trends.html", tmp_path / "trends.png")
    assert images >= 4 and broken == [] and errors == []
