"""The table printed at session end and by ``evalsuite compare``: fits the terminal, colours verdicts."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from evalsuite.records import ItemResult
from evalsuite.report import render, write_reports
from tests._support.builders import make_item
from tests._support.chat_server import ChatServer
from tests._support.project import CANARY, make_project, report_json, run

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_terminal_table_puts_regressions_first(sweep: list[ItemResult]) -> None:
    text = render(sweep, width=120)
    lines = text.splitlines()
    assert lines[0].startswith("evalsuite: 3 items: 1 passed, 2 failed (1 regression)")
    rows = [line for line in lines if line.startswith("sentiment[")]
    assert rows[0].startswith("sentiment[t1.0]") and rows[0].endswith("REGRESSION")
    assert rows[1].startswith("sentiment[t0.5]") and rows[1].endswith("FAIL")
    assert re.search(r"accuracy\s+0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]\s+>= 0\.500\s+-0\.\d{3} p<0\.001", rows[0])
    assert "sentiment[t0.5]: 4 unparsed, 1 errors (1 api)" in text
    assert "why:" in text and "below min 0.800" in text


@pytest.mark.parametrize("width", [80, 120])
def test_no_line_is_longer_than_the_terminal(sweep: list[ItemResult], width: int) -> None:
    long_id = make_item(0.2, accuracy=0.5, variant="a-rather-long-prompt-variant-name-t0.2-top_p0.9")
    text = render([*sweep, long_id], width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    for verdict in ("REGRESSION", "FAIL", "pass"):  # every row still says how it ended
        assert re.search(rf"  {verdict}$", text, re.MULTILINE)


def test_verdicts_in_colour_as_pytest_color_says(sweep: list[ItemResult], pytester: pytest.Pytester) -> None:
    writer = pytester.parseconfigure("--color=yes", "-p", "no:benchmark").get_terminal_writer()
    coloured = render(sweep, width=80, markup=writer.markup)
    assert writer.markup("REGRESSION", red=True, bold=True) in coloured
    assert writer.markup("FAIL", red=True) in coloured and writer.markup("pass", green=True) in coloured
    assert max(len(ANSI.sub("", line)) for line in coloured.splitlines()) <= 80  # colour takes no columns
    plain = pytester.parseconfigure("--color=no", "-p", "no:benchmark").get_terminal_writer()
    assert ANSI.search(render(sweep, width=80, markup=plain.markup)) is None
    assert ANSI.search(render(sweep, width=80)) is None  # outside pytest: plain unless asked


def test_pytest_run_shows_each_reason_once_fitted_and_coloured_as_asked(pytester: pytest.Pytester) -> None:
    project = make_project(pytester)
    one_item = ("-k", "plain and t0 and not t0.7")
    with ChatServer(lambda body: "positive") as server:  # half the reviews are negative: accuracy 0.5 < 0.75
        live = run(project, "cases", *one_item, "--record-mode=once",
                   env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY, "CI": "true"})
    assert live.returncode == 1, live.stdout + live.stderr
    [accuracy] = [m for m in report_json(project)["items"][0]["metrics"] if m["name"] == "accuracy"]
    words = " ".join(live.stdout.split())  # the same text whether or not a line was wrapped
    # In pytest's failure section only, also where CI makes pytest print whole summary lines.
    assert words.count(" ".join(accuracy["reason"].split())) == 1, live.stdout

    coloured = run(project, "cases", *one_item, "--color=yes", env={"COLUMNS": "80"})
    table = coloured.stdout.split("evalsuite score report")[1].split("reports: ")[0]
    assert "\x1b[31mFAIL\x1b[0m" in table
    assert max(len(ANSI.sub("", line)) for line in table.splitlines()) <= 80
    no_color = run(project, "cases", *one_item, env={"NO_COLOR": "1", "FORCE_COLOR": "1"})
    assert "FAIL" in no_color.stdout and ANSI.search(no_color.stdout) is None


def test_repeats_show_per_example_agreement(tmp_path: Path) -> None:
    item = make_item(0.7, n=6)
    # Three samples of each example: examples 0 and 1 disagree with themselves once.
    records = []
    for r in item.records:
        for sample in range(3):
            flip = sample == 2 and r.example_id in ("ex0", "ex1")
            records.append(dataclasses.replace(r, sample=sample, prediction="other" if flip else r.prediction))
    item.records = records
    item.agreement = (4 * 1.0 + 2 * (2 / 3)) / 6
    text = render([item], width=120)
    assert "sentiment[t0.7]: 3 samples per example, agreement 0.889; 2 of 6 examples not unanimous" in text
    paths = write_reports(tmp_path, [item], {"record_mode": "none"})
    assert "2 of 6 examples not unanimous" in paths["md"].read_text()


def test_terminal_lists_items_not_run_quarantines_flakiness_and_the_first_flips(annotated: list[ItemResult]) -> None:
    text = render(annotated, width=160)
    assert re.search(r"sentiment\[t0\.9\]\s+-\s+-\s+-\s+-\s+-\s+NOT RECORDED", text)
    assert "sentiment[t0.5] (quarantined)" in text
    assert "not run:\n  sentiment[t0.9]: not recorded: 200 call(s) not recorded in cassettes/s.json" in text
    assert "sentiment[t1.0]: 5 example(s) flipped" in text
    assert "ex2 accuracy 1 -> 0: 'positive' -> 'negative 2'" in text and "ex3 accuracy" not in text
    assert "verdict flips on a re-run with probability 0.310" in text


def test_two_suites_with_one_case_id_are_told_apart_in_every_text_report(tmp_path: Path) -> None:
    same_id = [dataclasses.replace(make_item(0.0, accuracy=0.9, seed=1), suite="reviews"),
               dataclasses.replace(make_item(0.0, accuracy=0.6, seed=2), suite="tweets")]
    text = render(same_id, width=120)
    assert "reviews::sentiment[t0.0]" in text and "tweets::sentiment[t0.0]" in text
    written = write_reports(tmp_path, same_id, {})
    for fmt in ("md", "html"):
        assert "tweets::sentiment[t0.0]" in written[fmt].read_text()
    assert [i["item_id"] for i in json.loads(written["json"].read_text())["items"]] == ["sentiment[t0.0]"] * 2
    assert "::" not in render([same_id[0]], width=120)  # one suite: items keep their short names
