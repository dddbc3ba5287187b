"""Trend reports over a classified archive: periods, shares, spikes, new terms, the page and its JSON."""

import csv
import itertools
import json
import re
import sys
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("matplotlib")

from vnfeedback import DataError, ParameterError, trends
from vnfeedback.normalize import strip_accents
from vnfeedback.trends import EXAMPLES_PER_SPIKE, _spikes, _TermCounter, trend_report

# Everyday words the stand-in model knows (as the bundled one would); anything else is "new".
KNOWN_TEXTS = [
    "mạng yếu quá không vào được",
    "bị trừ tiền vô lý",
    "gói cước đăng ký không được",
    "wifi nhà mất kết nối",
    "nhân viên tổng đài hỗ trợ",
    "mãi mà gọi",
]

NETWORK = "Mạng yếu quá không vào được"
BILLING = "Bị trừ tiền vô lý"
PLACES = ["Cầu Giấy", "Hà Đông", "Thủ Đức", "Bình Thạnh", "Gò Vấp", "Hải Châu", "Ninh Kiều", "Long Biên"]
TIMES = ["sáng", "trưa", "chiều", "tối", "đêm"]


def network_text(k):
    """The k-th of 40 different network complaints (numbers would all normalise to xxnum)."""
    return f"{NETWORK} ở {PLACES[k % len(PLACES)]} buổi {TIMES[k // len(PLACES)]}"


def stand_in_model(texts=KNOWN_TEXTS):
    """An object with the one thing trend_report reads from a model: its feature vocabulary."""
    vocabulary = {}
    for text in texts:
        words = text.split()
        for gram in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
            vocabulary.setdefault(f"w|{gram}", len(vocabulary))
            vocabulary.setdefault(f"s|{strip_accents(gram)}", len(vocabulary))
    return SimpleNamespace(features_=SimpleNamespace(vocabulary_=vocabulary, abbreviations=None))


def row(day, text, complaint_type, product_area="mobile_data", *, score=0.9, needs_review=False, error=""):
    """One row shaped like `vnfeedback classify`'s JSON Lines output."""
    return {
        "id": f"C{abs(hash((day, text, score))) % 10**8}",
        "date": day,
        "text": text,
        "complaint_type": complaint_type,
        "complaint_type_score": score,
        "product_area": product_area,
        "product_area_score": score,
        "intent": "complaint",
        "intent_score": 0.8,
        "needs_review": needs_review,
        "error": error,
    }


def monday(week):
    """The Monday of a week of 2025, counting from ISO week 36 (1 September 2025)."""
    return (date(2025, 9, 1) + timedelta(weeks=week)).isoformat()


def weekly_rows(network_per_week, billing_per_week=3):
    rows = []
    for week, network in enumerate(network_per_week):
        for k in range(network):
            rows.append(row(monday(week), network_text(k), ["network_quality"], score=0.5 + k / 100))
        for k in range(billing_per_week):
            rows.append(row(monday(week), f"{BILLING} {k}", ["billing"], "mobile_voice_sms"))
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path, rows):
    """The same rows as `vnfeedback classify` writes them to CSV: a|b labels, true/false flags."""

    def cell(value):
        if isinstance(value, list):
            return "|".join(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else value

    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: cell(v) for k, v in r.items()} for r in rows)
    return path


@pytest.fixture
def numbers_only(monkeypatch):
    """Skip drawing (a tenth of a second per figure) in tests about the numbers; the page tests draw."""
    monkeypatch.setattr(trends, "_figures", lambda make_figure, report: [])


def report_of(tmp_path, rows, **options):
    archive = write_jsonl(tmp_path / "classified.jsonl", rows)
    options.setdefault("model", stand_in_model())
    return trend_report(archive, tmp_path / "trends.html", **options)


# --- spikes ------------------------------------------------------------------------------------


def test_planted_spike_is_flagged_with_its_best_distinct_comments(tmp_path, numbers_only):
    rows = weekly_rows([3, 2, 4, 3, 3, 30, 3])
    # the same complaint posted twice (other spacing and case) must be shown once
    again = network_text(29).replace("Mạng yếu", "MẠNG   YẾU")
    rows.append(row(monday(5), again, ["network_quality"], score=0.99))
    report = report_of(tmp_path, rows, by="week", baseline_periods=4)
    flagged = {(s["period"], s["task"], s["label"]) for s in report["spikes"]}
    # the network comments are all mobile_data, so the product area spikes with them; billing does not
    assert flagged == {
        ("2025-W41", "complaint_type", "network_quality"),
        ("2025-W41", "product_area", "mobile_data"),
    }
    spike = next(s for s in report["spikes"] if s["task"] == "complaint_type")
    assert spike["count"] == 31 and spike["baseline_mean"] == pytest.approx(3.0)
    texts = [e["text"] for e in spike["examples"]]
    assert len(texts) == EXAMPLES_PER_SPIKE
    assert texts[0] == again  # highest score first
    assert network_text(29) not in texts  # its duplicate, once normalised
    assert texts[1:] == [network_text(k) for k in (28, 27, 26, 25)]
    assert [e["score"] for e in spike["examples"]] == sorted(
        (e["score"] for e in spike["examples"]), reverse=True
    )


def test_flat_series_has_no_spike(tmp_path, numbers_only):
    report = report_of(tmp_path, weekly_rows([3, 5, 2, 4, 3, 5, 4, 2, 3, 5]), by="week")
    assert report["spikes"] == []


def test_spike_needs_two_trailing_periods_and_a_minimum_count(tmp_path, numbers_only):
    # week 2 jumps from 0 and 1 (two trailing periods) to 4: below the minimum count of 5
    report = report_of(tmp_path, weekly_rows([0, 1, 4], billing_per_week=1), by="week")
    assert report["spikes"] == []
    # a big second week has one trailing period only: no baseline to be compared with
    report = report_of(tmp_path, weekly_rows([3, 40]), by="week")
    assert report["spikes"] == []


def test_spike_rule_on_counts():
    def flagged(series, baseline_periods=4):
        periods = [
            {"period": f"2025-W{36 + i}", "complaint_type": {"counts": {"billing": n}, "shares": {}}}
            for i, n in enumerate(series)
        ]
        return [s["period"] for s in _spikes(periods, {"complaint_type": ["billing"]}, baseline_periods)]

    assert flagged([3, 2, 4, 3, 30]) == ["2025-W40"]
    assert flagged([0, 0, 1, 3]) == []  # rare label: under the minimum count
    assert flagged([2, 2, 2, 2, 9]) == ["2025-W40"]  # flat: the sqrt(m) floor, 2 + 3 * 1.41 = 6.2
    assert flagged([2, 2, 2, 2, 6]) == []
    assert flagged([1000, 1000, 1000, 1000, 1150]) == []  # clear in numbers, small in size
    assert flagged([1000, 1000, 1000, 1000, 1600]) == ["2025-W40"]
    assert flagged([3, 3, 30, 30, 30]) == ["2025-W38"]  # a lasting problem is flagged once, when it starts
    assert flagged([3, 3, 3, 3, 3, 3, 30], baseline_periods=2) == ["2025-W42"]


def test_product_area_spikes_are_found_too(tmp_path, numbers_only):
    rows = weekly_rows([3, 3, 3, 3, 3], billing_per_week=0)
    rows += [
        row(monday(4), "wifi nhà mất kết nối", [], "home_internet", score=0.7 + k / 100) for k in range(12)
    ]
    spikes = report_of(tmp_path, rows, by="week")["spikes"]
    assert ("product_area", "home_internet") in {(s["task"], s["label"]) for s in spikes}
    # the same comment twelve times: one example
    home = next(s for s in spikes if s["label"] == "home_internet")
    assert [e["text"] for e in home["examples"]] == ["wifi nhà mất kết nối"]


# --- periods and shares ------------------------------------------------------------------------


def test_shares_counts_and_gap_periods(tmp_path, numbers_only):
    rows = [
        row("2025-09-03", NETWORK, ["network_quality", "customer_service"], "mobile_data"),
        row("2025-09-10T08:15:00", BILLING, ["billing"], "mobile_voice_sms", needs_review=True),
        row("2025-09-28 23:59", "ok", [], "general"),
        row("2025-09-29", NETWORK, ["network_quality"], "mobile_data"),
        row("2025-11-02", BILLING, ["billing"], "mobile_voice_sms"),
    ]
    report = report_of(tmp_path, rows, by="month")
    assert [p["period"] for p in report["periods"]] == ["2025-09", "2025-10", "2025-11"]
    september, october, _ = report["periods"]
    assert september["volume"] == 4 and september["needs_review_share"] == 0.25
    assert september["complaint_type"]["counts"] == {
        "network_quality": 2,
        "billing": 1,
        "customer_service": 1,
        "(none)": 1,
    }
    assert september["complaint_type"]["shares"]["network_quality"] == 0.5
    assert sum(september["product_area"]["shares"].values()) == pytest.approx(1.0)
    assert sum(september["product_area"]["counts"].values()) == september["classified"]
    assert october["volume"] == 0 and october["complaint_type"]["counts"] == {}  # an empty month is kept
    assert report["labels"]["complaint_type"][-1] == "(none)"


def test_iso_weeks_cross_the_new_year(tmp_path, numbers_only):
    rows = [row("2025-12-28", NETWORK, ["network_quality"]), row("2025-12-29", NETWORK, ["network_quality"])]
    report = report_of(tmp_path, rows, by="week")
    assert [p["period"] for p in report["periods"]] == ["2025-W52", "2026-W01"]


def test_undated_and_unclassified_rows_are_counted_not_dropped(tmp_path, numbers_only):
    rows = weekly_rows([3, 3], billing_per_week=0)
    for day in ["", "không rõ", "2025-02-30", None, "12/09/2025"]:
        rows.append(row(day, NETWORK, ["network_quality"]))
    rows.append(row("2025-09-02", "\ufffd\ufffd", [], "", error="undecodable bytes (not UTF-8)"))
    rows.append(row(None, "", [], "", error="missing 'text'"))
    report = report_of(tmp_path, rows, by="week")
    assert report["undated"]["volume"] == 6
    assert report["undated"]["classified"] == 5 and report["undated"]["errors"] == 1
    assert report["errors"] == 2 and report["rows"] == len(rows)
    assert sum(p["volume"] for p in report["periods"]) + report["undated"]["volume"] == len(rows)
    first = report["periods"][0]
    assert first["volume"] == 4 and first["classified"] == 3 and first["errors"] == 1
    assert "(none)" not in first["complaint_type"]["counts"]  # an unclassified row has no labels


def test_csv_pipes_and_jsonl_lists_give_the_same_numbers(tmp_path, numbers_only):
    rows = weekly_rows([3, 4, 2])
    rows[0]["complaint_type"] = ["network_quality", "customer_service"]
    rows[1]["needs_review"] = True
    model = stand_in_model()
    from_jsonl = trend_report(
        write_jsonl(tmp_path / "a.jsonl", rows), tmp_path / "a.html", by="week", model=model
    )
    from_csv = trend_report(write_csv(tmp_path / "b.csv", rows), tmp_path / "b.html", by="week", model=model)
    assert from_csv["periods"] == from_jsonl["periods"]
    assert from_csv["periods"][0]["complaint_type"]["counts"]["customer_service"] == 1
    assert from_csv["periods"][0]["needs_review"] == 1


def test_parquet_with_date_values_read_in_small_chunks(tmp_path, numbers_only):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = weekly_rows([3, 2, 4, 3, 3, 30])
    for r in rows:
        r["date"] = date.fromisoformat(r["date"])
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "classified.parquet")
    whole = trend_report(
        tmp_path / "classified.parquet", tmp_path / "p.html", by="week", model=stand_in_model()
    )
    chunked = trend_report(
        tmp_path / "classified.parquet",
        tmp_path / "q.html",
        by="week",
        model=stand_in_model(),
        chunk_size=7,
    )
    assert chunked["periods"] == whole["periods"] and chunked["spikes"] == whole["spikes"]
    assert whole["periods"][5]["complaint_type"]["counts"]["network_quality"] == 30
    assert {s["label"] for s in whole["spikes"]} == {"network_quality", "mobile_data"}


# --- placeholder dates --------------------------------------------------------------------------
# Non-regression: a row dated 9999-12-31 crashed the report (year 10000 is out of range), one dated
# 0001-01-01 made it build hundreds of thousands of empty weeks, 1900/1970 thousands of them.


def test_placeholder_dates_are_set_aside_as_undated_and_named(tmp_path, numbers_only, caplog):
    rows = weekly_rows([3, 2, 4])
    rows.insert(1, row("9999-12-31", NETWORK, ["network_quality"]))
    rows.append(row("0001-01-01T00:00:00", BILLING, ["billing"], "mobile_voice_sms"))
    rows.append(row("9999-12-31", BILLING, ["billing"], "mobile_voice_sms"))
    with caplog.at_level("WARNING", logger="vnfeedback.trends"):
        report = report_of(tmp_path, rows, by="week")
    assert [p["period"] for p in report["periods"]] == ["2025-W36", "2025-W37", "2025-W38"]
    assert report["undated"]["volume"] == 3 and report["undated"]["classified"] == 3
    assert sum(p["volume"] for p in report["periods"]) + 3 == report["rows"] == len(rows)
    aside = report["dates_set_aside"]
    assert aside["rows"] == 3 and aside["examples"] == ["9999-12-31", "0001-01-01T00:00:00"]
    assert aside["window"][0] == "2000-01-01"
    page = (tmp_path / "trends.html").read_text(encoding="utf-8")
    assert re.search(r"3 of the undated comment\(s\) have a date outside 2000-01-01", page)
    assert "“9999-12-31”" in page and "“0001-01-01T00:00:00”" in page
    saved = json.loads((tmp_path / "trends.json").read_text(encoding="utf-8"))
    assert saved["dates_set_aside"] == aside
    [warning] = [r for r in caplog.records if r.name == "vnfeedback.trends"]
    assert warning.levelname == "WARNING"
    assert re.search(r"3 row\(s\) of .* outside 2000-01-01\.\..*9999-12-31, 0001-01-01", warning.getMessage())


def test_since_and_until_keep_a_placeholder_inside_the_window_out(tmp_path, numbers_only):
    # 2000-01-01 is a plausible date, so among 2025 rows it stretched a weekly report over 1,400 weeks
    rows = weekly_rows([3, 2, 4, 3, 30, 3])
    rows.insert(2, row("2000-01-01", NETWORK, ["network_quality"]))
    rows.append(row(None, BILLING, ["billing"], "mobile_voice_sms"))
    report = report_of(tmp_path, rows, by="week", since="2025-09-01", until=date(2025, 10, 19))
    names = [p["period"] for p in report["periods"]]
    assert names == [f"2025-W{w}" for w in range(36, 43)]  # the span whole: W42 is empty
    assert report["periods"][-1]["volume"] == 0
    assert report["outside_span"] == {"rows": 1, "since": "2025-09-01", "until": "2025-10-19"}
    assert report["rows"] == len(rows) - 1 == sum(p["volume"] for p in report["periods"]) + 1
    assert report["undated"]["volume"] == 1  # an undated row is not outside the span
    assert {(s["period"], s["label"]) for s in report["spikes"]} == {
        ("2025-W40", "network_quality"),
        ("2025-W40", "mobile_data"),
    }
    page = (tmp_path / "trends.html").read_text(encoding="utf-8")
    assert "The span asked for: 2025-09-01 to 2025-10-19; 1 comment(s) dated outside it" in page
    # rows outside the span are neither counted nor read for terms, and the spike's examples are in it
    # (a spike is judged against the trailing periods inside the span: W40 has W38 and W39)
    rows[:0] = [
        row(monday(0), f"Đăng ký gói ZMAX99 mãi không được {k}", ["promotion_package"]) for k in range(6)
    ]
    assert any(t["term"] == "ZMAX99" for t in report_of(tmp_path, rows, by="week")["new_terms"])
    narrow = report_of(tmp_path, rows, by="week", since="2025-09-15")
    assert narrow["periods"][0]["period"] == "2025-W38"
    assert narrow["outside_span"]["rows"] == 6 + 1 + (3 + 3) + (2 + 3)  # ZMAX99, the placeholder, W36, W37
    assert not any(t["term"] == "ZMAX99" for t in narrow["new_terms"])
    assert all(e["text"].startswith(NETWORK) for e in narrow["spikes"][0]["examples"])


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"since": "2025-13-01"}, ParameterError, r"since must be a date as YYYY-MM-DD .* got '2025-13-01'"),
        ({"until": 20250101}, ParameterError, r"until must be a date as YYYY-MM-DD"),
        (
            {"since": "2025-10-01", "until": "2025-09-01"},
            ParameterError,
            r"since \(2025-10-01\) is after until",
        ),
        (
            {"since": "2030-01-01"},
            DataError,
            r"all 9 row\(s\) .* outside the span asked for, 2030-01-01 to the last date",
        ),
    ],
)
def test_a_bad_or_empty_span_is_refused(tmp_path, numbers_only, options, error, message):
    with pytest.raises(error, match=message):
        report_of(tmp_path, weekly_rows([3, 3, 3], billing_per_week=0), **options)


def test_plausible_window_edges_and_date_values(tmp_path, numbers_only):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    latest = date.today() + timedelta(days=366)
    days = [date(1999, 12, 31), date(2000, 1, 1), latest, latest + timedelta(days=1), date(1970, 1, 1)]
    rows = [row(day, NETWORK, ["network_quality"]) for day in days]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "classified.parquet")
    report = trend_report(
        tmp_path / "classified.parquet", tmp_path / "p.html", by="month", model=stand_in_model()
    )
    assert report["first_period"] == "2000-01"
    assert report["last_period"] == f"{latest.year}-{latest.month:02d}"
    assert report["dates_set_aside"]["rows"] == 3 and report["undated"]["volume"] == 3
    assert report["dates_set_aside"]["examples"] == [
        "1999-12-31",
        (latest + timedelta(days=1)).isoformat(),
        "1970-01-01",
    ]
    assert report["dates_set_aside"]["window"] == ["2000-01-01", latest.isoformat()]


def test_ordinary_dates_set_nothing_aside_and_the_page_does_not_mention_it(tmp_path, numbers_only):
    report = report_of(tmp_path, weekly_rows([3, 2]), by="week")
    assert report["dates_set_aside"]["rows"] == 0 and report["dates_set_aside"]["examples"] == []
    assert "have a date outside" not in (tmp_path / "trends.html").read_text(encoding="utf-8")


def test_period_range_reaches_the_last_possible_period():
    assert trends._period_range("9999-W51", "9999-W52", "week") == ["9999-W51", "9999-W52"]
    assert trends._period_range("9999-11", "9999-12", "month") == ["9999-11", "9999-12"]


def test_period_range_refuses_a_span_too_long_to_show():
    with pytest.raises(
        DataError,
        match=r"the dates run from 1970-W01 to 2026-W10: 2,93\d weeks, more than the 2,000 .*"
        r"--by month.*placeholder dates",
    ):
        trends._period_range("1970-W01", "2026-W10", "week")
    with pytest.raises(DataError, match=r"0001-01 to 9999-12: 119,988 months") as refused:
        trends._period_range("0001-01", "9999-12", "month")
    assert "--by month" not in str(refused.value)
    built = trends._period_range("1990-W01", "2026-W10", "week")  # 1,888 weeks: under the cap
    assert len(built) == len(set(built)) == 1888 and built[0] == "1990-W01" and built[-1] == "2026-W10"


# --- new terms ---------------------------------------------------------------------------------


def test_new_package_code_surfaces_and_known_words_do_not(tmp_path, numbers_only):
    rows = weekly_rows([3, 3, 3, 3])
    for week in (2, 3):
        for k in range(4):
            rows.append(row(monday(week), f"Đăng ký gói SIEU5G mãi không được {k}", ["promotion_package"]))
    report = report_of(tmp_path, rows, by="week")
    terms = {t["term"]: t for t in report["new_terms"]}
    assert terms["SIEU5G"]["kind"] == "code" and terms["SIEU5G"]["comments"] == 8
    assert terms["SIEU5G"]["first_period"] == "2025-W38" and terms["SIEU5G"]["last_period"] == "2025-W39"
    assert "sieu5g" not in terms  # the code is reported once, as written
    assert not {"mạng", "yếu", "đăng", "không", "mạng yếu"} & set(terms)
    # a placeholder is never a term: "lần 12" and friends give xxnum
    assert not any(t.startswith("xx") for t in terms)


def test_new_word_and_new_pair_of_known_syllables(tmp_path, numbers_only):
    rows = [row(monday(0), "mạng chập chờn quá", ["network_quality"]) for _ in range(6)]
    rows += [
        row(monday(1), "wifi mất mạng", ["network_quality"]) for _ in range(6)
    ]  # "mất mạng": known words
    rows += [row(monday(1), "mạng yếu lắm", ["network_quality"]) for _ in range(2)]  # too rare
    terms = {t["term"]: t for t in report_of(tmp_path, rows, by="week")["new_terms"]}
    assert terms["chập"]["kind"] == "word" and terms["chập"]["comments"] == 6
    assert terms["mất mạng"]["kind"] == "bigram"
    assert "lắm" not in terms
    assert "chập chờn" not in terms  # holds an unknown syllable: reported as the words


def test_a_comment_in_capitals_is_not_a_code(tmp_path, numbers_only):
    rows = [row(monday(0), "MANG YEU QUA KHONG VAO DUOC", ["network_quality"]) for _ in range(6)]
    assert report_of(tmp_path, rows)["new_terms"] == []


def test_term_counter_stays_bounded_and_typos_never_push_out_a_code():
    counter = _TermCounter(size=10)
    for i in range(500):
        terms = {("word", f"từ{i}"), ("bigram", f"mạng {i}")}
        if i % 50 == 0:  # a code far rarer than the stream of one-off words
            terms.add(("code", "SIEU5G"))
        counter.add(frozenset(terms), "2025-W37")
        assert all(len(counter.counts[kind]) <= 20 for kind in counter.counts)
        assert all(len(counter.seen[kind]) == len(counter.counts[kind]) for kind in counter.counts)
    assert counter.counts["code"]["SIEU5G"] == 10
    assert [(t["term"], t["comments"]) for t in counter.top()] == [("SIEU5G", 10)]


# --- the page and the JSON ---------------------------------------------------------------------


def test_page_is_self_contained_and_json_beside_it_matches(tmp_path):
    rows = weekly_rows([3, 2, 4, 3, 3, 30])
    rows.append(row(monday(5), "<script>alert('mạng')</script> mạng yếu", ["network_quality"], score=1.0))
    report = report_of(tmp_path, rows, by="week")
    page = (tmp_path / "trends.html").read_text(encoding="utf-8")
    images = re.findall(r"<img [^>]*src='([^']+)'", page)
    assert len(images) == 4 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "&lt;script&gt;" in page  # comments are escaped, never run
    assert "2025-W41" in page and "network_quality" in page
    saved = json.loads((tmp_path / "trends.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(report, ensure_ascii=False))
    assert saved["rules"]["spike"].startswith("count >= 5")


def test_archive_with_only_undated_rows_still_gives_a_page(tmp_path):
    report = report_of(tmp_path, [row("", NETWORK, ["network_quality"])])
    assert report["periods"] == [] and report["undated"]["volume"] == 1
    assert "No dated comment" in (tmp_path / "trends.html").read_text(encoding="utf-8")


# --- bad input ---------------------------------------------------------------------------------


def test_missing_date_column_names_the_columns_and_the_option(tmp_path, numbers_only):
    rows = [{k: v for k, v in row("2025-09-01", NETWORK, []).items() if k != "date"}]
    rows[0]["ngay_gui"] = "2025-09-01"
    with pytest.raises(DataError, match=r"no column 'date' .*columns are \[.*'ngay_gui'.*date_column="):
        report_of(tmp_path, rows)
    report = report_of(tmp_path, rows, date_column="ngay_gui")
    assert report["periods"][0]["volume"] == 1


def test_missing_text_or_classified_columns_are_errors(tmp_path, numbers_only):
    with pytest.raises(DataError, match=r"no column 'noi_dung'.*text_column="):
        report_of(tmp_path, [row("2025-09-01", NETWORK, [])], text_column="noi_dung")
    raw = [{"date": "2025-09-01", "text": NETWORK}]
    with pytest.raises(DataError, match=r"no classified column .*vnfeedback classify"):
        report_of(tmp_path, raw)


def test_unknown_period_and_bad_options_are_refused(tmp_path, numbers_only):
    rows = [row("2025-09-01", NETWORK, [])]
    with pytest.raises(ParameterError, match=r"by must be one of \('week', 'month'\), got 'day'"):
        report_of(tmp_path, rows, by="day")
    with pytest.raises(ParameterError, match="baseline_periods must be a whole number >= 2"):
        report_of(tmp_path, rows, baseline_periods=1)
    with pytest.raises(ParameterError, match="chunk_size must be a whole number >= 1"):
        report_of(tmp_path, rows, chunk_size=0)
    with pytest.raises(ParameterError, match=r"\.json"):
        trend_report(write_jsonl(tmp_path / "c.jsonl", rows), tmp_path / "out.json", model=stand_in_model())


def test_empty_or_missing_archive_is_an_error(tmp_path, numbers_only):
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="holds no rows"):
        trend_report(tmp_path / "empty.jsonl", tmp_path / "t.html", model=stand_in_model())
    with pytest.raises(DataError, match="no such file"):
        trend_report(tmp_path / "nowhere.csv", tmp_path / "t.html", model=stand_in_model())


def test_missing_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    with pytest.raises(ParameterError, match="pip install matplotlib"):
        report_of(tmp_path, [row("2025-09-01", NETWORK, [])])
    assert not (tmp_path / "trends.html").exists()


# --- end to end --------------------------------------------------------------------------------


@pytest.mark.slow
def test_classify_then_trend_report_with_a_real_model(tiny_model_dir, tmp_path):
    from vnfeedback.batch import classify_file

    texts = ["Mạng 4G chập chờn, gọi tổng đài chờ 20 phút", "bị trừ 15k vô lý", "wifi nhà mất kết nối suốt"]
    archive = [
        {"id": i, "date": f"2025-{9 + i % 3:02d}-{1 + i % 28:02d}", "text": texts[i % 3]} for i in range(60)
    ]
    archive += [{"id": 100 + i, "date": "2025-11-15", "text": f"gói SIEU5G lỗi {i}"} for i in range(6)]
    write_csv(tmp_path / "archive.csv", archive)
    classify_file(
        str(tmp_path / "archive.csv"), str(tmp_path / "classified.csv"), model_dir=str(tiny_model_dir)
    )
    report = trend_report(
        tmp_path / "classified.csv", tmp_path / "trends.html", model=str(tiny_model_dir), by="month"
    )
    assert [p["period"] for p in report["periods"]] == ["2025-09", "2025-10", "2025-11"]
    assert report["classified"] == 66 and report["errors"] == 0
    assert "SIEU5G" in {t["term"] for t in report["new_terms"]}
    assert (tmp_path / "trends.json").exists()


# --- the batch reader of terms against the plain definition ------------------------------------


def plain_reader(model):
    """The new-term rule of the module docstring, applied to one comment at a time with ``normalize``."""
    from vnfeedback.normalize import clean, load_abbreviations, normalize
    from vnfeedback.tokenize import syllables

    words, stripped = trends._known_terms(model)
    extra = getattr(model.features_, "abbreviations", None) or {}
    table = {**load_abbreviations(), **extra}

    def known(term):
        return term in words or strip_accents(term) in stripped

    def candidate(token):
        return len(token) >= 2 and not token.startswith("xx") and any(ch.isalpha() for ch in token)

    def read(text):
        text = text[: trends._TERM_TEXT_CHARS]
        normalized = normalize(text, abbreviations=table)
        terms, previous = set(), None
        for token in syllables(normalized):
            if candidate(token) and not known(token):
                terms.add(("word", token))
            elif candidate(token) and previous is not None and not known(f"{previous} {token}"):
                terms.add(("bigram", f"{previous} {token}"))
            previous = token if candidate(token) and known(token) else None
        for code in re.findall(r"(?<!\w)[A-Z][A-Z0-9]{2,}(?!\w)", clean(text)):
            if not known(code.lower()):
                terms.add(("code", code))
                terms.discard(("word", code.lower()))
        return normalized, frozenset(terms)

    return read


def real_comments():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    rows = (root / "data" / "telecom" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    with open(root / "examples" / "sample_archive.csv", encoding="utf-8", newline="") as handle:
        archive = [row["text"] for row in csv.DictReader(handle)]
    return [json.loads(line)["text"] for line in rows] + archive


def test_batch_reader_reads_real_comments_like_the_plain_rule(monkeypatch):
    import vnfeedback

    model = vnfeedback.load()
    texts = real_comments()
    texts += [texts[0], texts[1].upper(), "gói SIEU5G \ue000 lỗi", "x" * 30_000 + " MIMAX90"]
    expected = list(map(plain_reader(model), texts))
    reader = trends._TermReader(model)
    assert reader.read_many(texts) == expected
    # a small chunk cache, started afresh many times, and batches that hold the separator character
    monkeypatch.setattr(trends, "_CHUNK_CACHE_SIZE", 50)
    reader = trends._TermReader(model)
    got = [read for start in range(0, len(texts), 97) for read in reader.read_many(texts[start : start + 97])]
    assert got == expected
    assert any(kind == "code" for _, terms in expected for kind, _ in terms)  # the rule had work to do
    assert any(kind == "bigram" for _, terms in expected for kind, _ in terms)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.sampled_from(list("mạngyếuquáKOkoSIEU5Gdcđc \n\t,.?!15k😡\ue000")), max_size=30),
        min_size=1,
        max_size=5,
    )
)
def test_batch_reader_reads_any_text_like_the_plain_rule(texts):
    model = stand_in_model()
    assert trends._TermReader(model).read_many(texts) == list(map(plain_reader(model), texts))
