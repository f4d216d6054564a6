"""report.html: the static page (what holds with JavaScript off), its plots, and the page in a real headless browser."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from evalsuite.records import ItemResult, MetricResult
from evalsuite.report import write_reports
from evalsuite.report._examples import item_data, worst_examples
from evalsuite.report._svg import distribution_plot, interval_plot, zoomed
from tests._support.browser import OVERFLOW_JS, WIDTHS, chromium, skip_reason
from tests._support.builders import make_item

WORST_ANSWER = "a distinctive worst answer: the movie is both great and awful"
DATA_BLOCK = re.compile(r'<script type="application/json" id="(data-\d+)">(.*?)</script>', re.S)


def static_text(html: str) -> str:
    """What a reader sees with JavaScript off: the page without its scripts, tags removed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def data_blocks(html: str) -> dict[str, Any]:
    return {name: json.loads(text) for name, text in DATA_BLOCK.findall(html)}


@pytest.fixture
def failing(annotated: list[ItemResult]) -> list[ItemResult]:
    """``annotated`` (a regression with five flips, a quarantined failure, a pass, an item not recorded) with a
    worst example whose answer a test can look for."""
    regressed = annotated[2]
    worst_examples(regressed, regressed.metrics[0], 1)[0].answer = WORST_ANSWER
    return annotated


def test_every_item_its_outcome_the_totals_and_the_reasons_are_in_the_static_page(
        tmp_path: Path, failing: list[ItemResult]) -> None:
    html = write_reports(tmp_path, failing, {"coverage": {"new": ["sentiment::sentiment[t0.0]"]}})["html"].read_text()
    text = " ".join(static_text(html).split())
    rows = re.findall(r'<tr data-tags="([^"]*)" data-section="item-\d+"><td data-label="item"><a [^>]*>([^<]+)</a>', html)
    assert rows == [("failing regressed flaky", "sentiment[t1.0]"), ("failing not_recorded", "sentiment[t0.9]"),
                    ("flaky", "sentiment[t0.5]"), ("new", "sentiment[t0.0]")]
    assert "4 items: 1 passed, 1 failed (1 regression), 1 not recorded, 1 xfailed (quarantined) · 800 examples" in text
    assert "REGRESSION: significant at alpha 0.05" in text  # why sentiment[t1.0] failed
    assert "sentiment[t0.9] not recorded 200 call(s) not recorded in cassettes/s.json" in text
    assert "flips at t0.5; owner alice, until 2027-01-31" in text and "probability 0.310" in text
    assert 'name="viewport" content="width=device-width,initial-scale=1"' in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html


def test_metric_cards_show_what_the_gate_compared(tmp_path: Path, failing: list[ItemResult]) -> None:
    html = write_reports(tmp_path, failing, {})["html"].read_text()
    card = html[html.index('<article class="card failed">'):]
    card = card[: card.index("</article>")]
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", card))
    regression = failing[2].metrics[0]
    assert facts["threshold"] == "&gt;= 0.500" and facts["baseline"] == f"{regression.baseline:.3f}"
    assert facts["p (worse)"] == "p&lt;0.001 exact" and facts["detectable drop"] == "0.083"
    assert facts["change"].startswith("-0.1") and facts["examples"] == "200 (200 paired)"
    assert card.count("<svg") == 1 and "min 0.500" in card


def test_the_worst_examples_and_the_flips_with_both_answers_are_static(tmp_path: Path, failing: list[ItemResult]) -> None:
    html = write_reports(tmp_path, failing, {})["html"].read_text()
    section = html[html.index('id="item-0"'):html.index('id="item-1"')]
    assert "Worst examples for accuracy" in section and WORST_ANSWER in section
    assert "5 example(s) flipped against the baseline" in section
    assert ('<td data-label="baseline answer">positive</td><td data-label="this answer">negative 4</td>'
            '<td data-label="diff" class="diff"><del>positive</del><ins>negative 4</ins></td>') in section


def test_plots_are_inline_svg_with_axes_zoomed_to_the_data(tmp_path: Path, sweep: list[ItemResult]) -> None:
    html = write_reports(tmp_path, sweep, {})["html"].read_text()
    assert "<img" not in html and "data:image" not in html
    # per item: one CI plot per metric, the confusion matrix, the similarity distribution; one sweep per metric
    assert html.count('<svg class="plot') == len(sweep) * 4 + 2
    assert html.count('<figure class="plot sweep">') == 2 and "accuracy against temperature" in html
    drop = MetricResult("accuracy", 0.925, 200, ci_low=0.88, ci_high=0.955, kind="proportion", min=0.9, baseline=1.0)
    low, high = zoomed([0.925, 0.88, 0.955, 1.0, 0.9], clamp=(0, 1))
    assert 0.8 <= low < 0.88 and high == 1.0  # not a bar from 0, where a 0.075 drop is a sliver
    svg = interval_plot(drop) or ""
    assert ">0.85<" in svg and ">0.9<" not in svg and ">min 0.900<" in svg and ">0.925<" in svg
    assert ">0<" not in svg and 'aria-label="accuracy: this run 0.925 [0.880, 0.955], baseline 1.000, min 0.900"' in svg


def test_a_distribution_marks_the_statistic_the_gate_tests() -> None:
    p95 = MetricResult("latency_p95", 0.9, 50, kind="corpus", max=1.2, higher_is_better=False)
    svg = distribution_plot(p95, [0.1 * (i % 10) for i in range(50)]) or ""
    assert ">latency_p95 0.900<" in svg and "mean" not in svg and ">max 1.200<" in svg
    assert ">latency_p95 per example<" in svg and ">examples<" in svg  # both axes labelled
    assert distribution_plot(p95, [0.0, 1.0, 1.0]) is None  # 0/1 values: the CI plot says it all


def test_sweep_series_that_coincide_stay_apart(tmp_path: Path) -> None:
    items = [make_item(t, accuracy=1.0, seed=1, variant=f"t{t}-{v}") for t in (0.0, 0.7) for v in ("a", "b")]
    for item in items:
        item.params["max_tokens"] = 2 if item.variant.endswith("a") else 8
    html = write_reports(tmp_path, items, {})["html"].read_text()
    sweep = html[html.index('<figure class="plot sweep">'):]
    sweep = sweep[: sweep.index("</figure>")]
    assert "max_tokens=2" in sweep and "max_tokens=8" in sweep
    circles = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="5.0"', sweep)
    squares = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="10.0"', sweep)
    assert len(circles) == len(squares) == 2  # one series drawn with circles, the other with squares...
    assert {x for x, _ in circles}.isdisjoint(x for x, _ in squares)  # ...each moved sideways: both visible


def test_text_is_escaped_and_embedded_data_cannot_end_its_script(tmp_path: Path) -> None:
    hostile = "</script><script>alert(1)</script><!--<script>"
    item = make_item(answer_text=hostile, accuracy=0.5)  # failing: its worst examples are in the static page
    html = write_reports(tmp_path, [item], {})["html"].read_text()
    assert html.count("<script") == 2 and html.count("</script>") == 2  # the item's data and the page's script
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in html  # in the static worst-examples table
    [data] = data_blocks(html).values()
    assert {row[3] for row in data["rows"]} == {hostile, "I cannot tell"}


def test_the_rendered_prompt_start_is_stored_once_per_item(tmp_path: Path) -> None:
    item = make_item(n=300)
    shots = "Classify each review.\nReview: Great fun.\nSentiment: positive\n"
    item.prompt_prefix = shots
    for r in item.records:
        r.prompt = f"Review: {r.input_excerpt}\nSentiment:"
    html = write_reports(tmp_path, [item], {})["html"].read_text()
    assert html.count("Review: Great fun.") == 1
    [data] = data_blocks(html).values()
    assert data["prefix"] == shots and data["rows"][5][1] == "Review: review \u003cb>5\u003c/b> & more\nSentiment:"


def test_a_25k_example_item_makes_a_bounded_page(tmp_path: Path) -> None:
    """Each example adds its differing prompt (<= 1,000 characters), answer, values: no per-example markup."""
    item = make_item(n=25_000)
    for r in item.records:
        r.prompt = "Review: " + "word " * 200
    html = write_reports(tmp_path, [item], {})["html"]
    assert html.stat().st_size < 25_000 * 1_200
    assert html.read_text().count("<tr") < 100  # the rows are data for the script, not 25,000 table rows


def test_explorer_data_flags_each_example(failing: list[ItemResult]) -> None:
    regressed = failing[2]
    data = item_data(regressed)
    assert data["metrics"] == ["accuracy", "similarity"] and len(data["rows"]) == 200
    by_id = {row[0]: row for row in data["rows"]}
    assert by_id["ex3"][5] & 2 and by_id["ex7"][5] & 1  # a call error, an unparsed answer
    assert [row[0] for row in data["rows"] if row[8] >= 0] == ["ex0", "ex1", "ex2", "ex3", "ex4"]
    assert data["flips"][4]["diff"] == [[-1, "positive"], [1, "negative 4"]] or data["flips"][4]["diff"] == [
        (-1, "positive"), (1, "negative 4")]


def test_report_json_with_every_new_field_matches_its_schema(tmp_path: Path, annotated: list[ItemResult]) -> None:
    import jsonschema

    from evalsuite.report.json import SCHEMA_PATH

    annotated[0].prompt_prefix = "Classify.\n"
    annotated[0].records[0].prompt = "Review: fine"
    doc = json.loads(write_reports(tmp_path, annotated, {"coverage": {"missing": []}})["json"].read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(doc)
    assert [i["status"] for i in doc["items"]][-1] == "not_recorded"


# ---------------------------------------------------------------- in a real browser

@pytest.fixture(scope="module")
def browser() -> Any:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with chromium() as launched:
        yield launched


def _open(browser: Any, path: Path, width: int, *, script: bool = True) -> Any:
    phone = width < 600  # a phone lays the page out at 980 px and zooms out unless the page has a viewport tag
    context = browser.new_context(viewport={"width": width, "height": 900}, is_mobile=phone, has_touch=phone,
                                  java_script_enabled=script)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    if script:
        page.wait_for_selector("html[data-ready]")
    page.errors = errors
    return page


def _assert_visible_within(page: Any, locator: Any, width: int) -> None:
    locator.scroll_into_view_if_needed()
    assert locator.is_visible()
    box = locator.bounding_box()
    assert box is not None and box["width"] > 0 and box["x"] >= -1 and box["x"] + box["width"] <= width + 1, box


@pytest.mark.parametrize("width", WIDTHS)
def test_a_failing_item_reads_in_a_real_browser(browser: Any, tmp_path: Path, failing: list[ItemResult],
                                                 width: int) -> None:
    path = write_reports(tmp_path, failing, {})["html"]
    page = _open(browser, path, width)
    layout = page.evaluate(OVERFLOW_JS)
    assert layout["width"] == width and layout["scrollWidth"] <= width and layout["overflowing"] == [], layout

    section = page.locator("#item-0")
    _assert_visible_within(page, section.get_by_text(WORST_ANSWER).first, width)
    flips = section.locator("table.flips tbody tr")
    assert flips.count() == 5
    for i in range(5):
        _assert_visible_within(page, flips.nth(i).get_by_text(f"negative {i}", exact=True).first, width)
    plots = section.locator("svg.plot")
    assert plots.count() == 4  # accuracy and similarity CIs, the confusion matrix, the similarity distribution
    for i in range(plots.count()):
        plot = plots.nth(i)
        plot.scroll_into_view_if_needed()
        box = plot.bounding_box()
        assert plot.is_visible() and box is not None and box["height"] > 80, box
        if "wide" not in (plot.get_attribute("class") or ""):  # a wide matrix scrolls inside its own box
            assert box["x"] + box["width"] <= width + 1, box

    # The example browser: the flipped examples, one of them opened with the diff of the two answers.
    explorer = section.locator("details.examples .explorer")
    explorer.locator("select").select_option("flipped")
    rows = explorer.locator("tbody tr")
    assert rows.count() == 5 and explorer.get_by_text("5 of 200 examples").is_visible()
    rows.nth(4).get_by_role("button", name="show").click()
    detail = explorer.locator("tr.detail")
    _assert_visible_within(page, detail.locator("del", has_text="positive"), width)
    _assert_visible_within(page, detail.locator("ins", has_text="negative 4"), width)
    layout = page.evaluate(OVERFLOW_JS)
    assert layout["overflowing"] == [], layout
    assert page.errors == []


def test_the_example_browser_pages_sorts_and_searches(browser: Any, tmp_path: Path, failing: list[ItemResult]) -> None:
    path = write_reports(tmp_path, failing, {})["html"]
    page = _open(browser, path, 1400)
    explorer = page.locator("#item-0 details.examples .explorer")
    assert explorer.locator("tbody tr").count() == 25 and explorer.get_by_text("rows 1–25 of 200 · page 1 of 8").is_visible()
    explorer.get_by_role("button", name="next ›").click()
    assert explorer.locator("tbody tr code").first.inner_text() == "ex25"
    explorer.get_by_role("button", name="similarity").click()  # ascending: the lowest value first
    lowest = min(r.scores["similarity"] for r in failing[2].records)
    assert float(explorer.locator("tbody tr").first.locator("td.num").nth(1).inner_text()) == pytest.approx(lowest, abs=1e-3)
    explorer.locator("input[type=search]").fill("review <b>123</b>")
    page.wait_for_function("document.querySelector('#item-0 .explorer .controls .muted').textContent === '1 of 200 examples'")
    assert explorer.locator("tbody tr code").inner_text() == "ex123"
    # the filters of the overview
    page.get_by_role("button", name="regressed (1)").click()
    assert page.locator("#item-0").is_visible() and page.locator("#item-3").is_hidden()
    assert page.locator("table.overview tbody tr:visible").count() == 1
    page.get_by_role("button", name="all (4)").click()
    assert page.locator("#item-3").is_visible()
    assert page.errors == []


def test_with_javascript_off_the_verdict_is_all_there(browser: Any, tmp_path: Path, failing: list[ItemResult]) -> None:
    path = write_reports(tmp_path, failing, {})["html"]
    page = _open(browser, path, 390, script=False)
    assert page.locator("table.overview tbody tr").count() == 4 and page.locator("#filters").is_hidden()
    assert page.get_by_text("Failures and items not run").is_visible()
    _assert_visible_within(page, page.locator("#item-0").get_by_text(WORST_ANSWER).first, 390)
    assert page.locator("#item-0 .explorer").get_by_text("needs JavaScript").is_visible()
    assert page.locator("#item-0 svg.plot").first.is_visible()


def test_an_item_with_long_unbroken_text_does_not_widen_the_page(browser: Any, tmp_path: Path) -> None:
    item = make_item(n=60, accuracy=0.5, answer_text="x" * 3000)  # failing: worst examples and browser shown
    item.message = "y" * 3000
    item.records = [replace(r, input_excerpt="z" * 500, expected="w" * 400) for r in item.records]
    path = write_reports(tmp_path, [item], {})["html"]
    for width in WIDTHS:
        page = _open(browser, path, width)
        page.locator(".explorer tbody button").first.click()  # an example opened: its prompt and whole answer
        layout = page.evaluate(OVERFLOW_JS)
        assert layout["width"] == width and layout["scrollWidth"] <= width, (width, layout)
        assert layout["overflowing"] == [], (width, layout)
