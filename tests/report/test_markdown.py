"""report.md, as a PR comment and the GitHub step summary show it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from evalsuite.records import ItemResult
from evalsuite.report import write_reports


def test_markdown_lists_regressions_first_and_appends_to_step_summary(
    tmp_path: Path, sweep: list[ItemResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("previous step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    markdown = write_reports(tmp_path / "a", sweep, {})["md"].read_text()
    write_reports(tmp_path / "b", sweep, {})
    text = summary.read_text()
    assert text.startswith("previous step\n")
    assert text.count("### evalsuite: 3 items") == 2
    assert markdown in text
    table = [line for line in markdown.splitlines() if line.startswith("| :")]
    assert "sentiment[t1.0]" in table[0] and "**regression**" in table[0]
    assert "sentiment[t0.5]" in table[1] and "**fail**" in table[1]
    assert "Regressions and failures" in markdown and "4 unparsed, 1 errors" in markdown


def test_no_step_summary_without_the_variable(tmp_path: Path, sweep: list[ItemResult],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    paths = write_reports(tmp_path, sweep, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json", "report.md"]
    assert paths["md"].read_text().startswith("### evalsuite")


def test_markdown_shows_outcomes_p_methods_mde_flips_flakiness_quarantine_and_coverage(
        tmp_path: Path, annotated: list[ItemResult]) -> None:
    coverage = {"missing": ["sentiment::old"], "lines": ["coverage: 1 baseline item did not run: sentiment::old"]}
    markdown = write_reports(tmp_path, annotated, {"coverage": coverage})["md"].read_text()
    assert markdown.startswith("### evalsuite: 4 items: 1 passed, 1 failed (1 regression), 1 not recorded, "
                               "1 xfailed (quarantined)")
    assert "| p (drop) | MDE |" in markdown and "| p&lt;0.001 exact | 0.083 |" in markdown
    assert "**not recorded**" in markdown and "sentiment[t0.9]: not recorded: 200 call(s) not recorded" in markdown
    assert "sentiment[t0.5] (quarantined)" in markdown and "flips at t0.5; owner alice, until 2027-01-31" in markdown
    assert "verdict flips on a re-run with probability 0.310; examples that vary most ex1, ex7" in markdown
    assert "(5)" in markdown and "ex4 accuracy 1 -&gt; 0: 'positive' -&gt; 'negative 4'" in markdown
    assert "coverage: 1 baseline item did not run: sentiment::old" in markdown


def test_failing_items_come_first_passing_ones_are_folded_and_items_not_run_say_why(
        tmp_path: Path, annotated: list[ItemResult]) -> None:
    skipped = replace(annotated[0], item_id="sentiment[hub]", records=[], metrics=[], n_examples=0, outcome="skipped",
                      message="Hub dataset 'imdb' and no cassette", passed=True, unparsed=0, errors=0)
    markdown = write_reports(tmp_path, [*annotated, skipped], {})["md"].read_text()
    folded = markdown[markdown.index("<details><summary>2 passing items (1 quarantined)</summary>"):
                      markdown.index("</details>")]
    shown = markdown.replace(folded, "")
    assert "sentiment[t1.0]" in shown and "**regression**" in shown  # failing: in the open table
    assert "| :x: | sentiment[t0.9] | 200 | | | | | | | **not recorded** |" in shown
    assert "| :white_check_mark: | sentiment[t0.0] |" in folded and "| sentiment[t0.0] |" not in shown  # folded
    assert "sentiment[t0.5] (quarantined)" in folded
    assert shown.index("sentiment[t1.0]") < shown.index("**Not run**")
    assert "- sentiment[t0.9]: not recorded: 200 call(s) not recorded in cassettes/s.json" in shown
    assert "- sentiment[hub]: skipped: Hub dataset 'imdb' and no cassette" in shown
    assert "\n\n| | item |" in folded  # a blank line after <summary>: GitHub renders the table inside
