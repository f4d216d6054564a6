"""What every report shows the same way: each item's outcome, the counts pytest gives, text cut to a bounded size."""

from __future__ import annotations

from dataclasses import replace

from evalsuite.records import ItemResult
from evalsuite.report._common import (
    MAX_TEXT_CHARS,
    clipped,
    item_status,
    not_run_text,
    summary,
    summary_line,
)
from tests._support.builders import make_item


def not_run(outcome: str, message: str, item_id: str = "sentiment[x]") -> ItemResult:
    return replace(make_item(n=4), item_id=item_id, records=[], metrics=[], n_examples=0, outcome=outcome,
                   message=message, passed=outcome == "skipped")


def test_every_outcome_is_counted_and_the_failing_ones_add_up_to_pytests_failed() -> None:
    items = [make_item(accuracy=0.95, seed=1), make_item(accuracy=0.5, seed=2),
             not_run("not_recorded", "sentiment[x]: 8 call(s) not recorded in cassettes/x.json"),
             not_run("error", "cases/s.yaml:3: prompt.user: undefined"), not_run("skipped", "Hub dataset offline"),
             replace(make_item(accuracy=0.5, seed=3), outcome="xfailed", quarantine={"reason": "flaky"})]
    s = summary(items)
    assert s["outcomes"] == {"passed": 1, "failed": 1, "not_recorded": 1, "error": 1, "skipped": 1, "xfailed": 1,
                             "xpassed": 0}
    assert (s["passed"], s["failed"]) == (1, 3)  # pytest: "3 failed, 1 passed, 1 skipped, 1 xfailed"
    assert summary_line(items).startswith(
        "evalsuite: 6 items: 1 passed, 1 failed, 1 not recorded, 1 error, 1 skipped, 1 xfailed (quarantined) |")
    assert [item_status(i) for i in items[2:]] == ["not_recorded", "error", "skipped", "xfailed"]
    assert not_run_text(items[2]) == "sentiment[x]: not recorded: 8 call(s) not recorded in cassettes/x.json"
    assert not_run_text(items[0]) is None


def test_a_result_from_an_older_report_without_an_outcome_counts_by_its_verdict() -> None:
    failed = make_item(accuracy=0.5, seed=2)
    assert failed.outcome == "passed" and not failed.passed  # what from_dict gives for a report written before outcomes
    assert summary([failed])["outcomes"]["failed"] == 1


def test_long_answers_inputs_and_messages_are_cut_with_a_marker_and_short_ones_kept() -> None:
    item = make_item(n=4)
    item.records[0].answer = "x" * 3_000_000
    item.records[1].input_excerpt = "y" * (MAX_TEXT_CHARS + 1)
    item.message = "z" * 10_000
    cut = clipped(item)
    answer = cut.records[0].answer or ""
    assert len(answer) < MAX_TEXT_CHARS + 100
    assert answer.endswith("[2,996,000 of 3,000,000 characters cut; the full text is in the cassette]")
    assert "1 of 4,001 characters cut" in cut.records[1].input_excerpt
    assert cut.records[2] == item.records[2] and len(cut.message) < 5_000
    assert len(item.records[0].answer or "") == 3_000_000  # the result itself is left whole
