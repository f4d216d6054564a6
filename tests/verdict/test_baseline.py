"""The committed baseline: round trip, merge, identities across suites, legacy files, flipped examples, and
errors that name the file and fix (a report.json is not a baseline)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from evalsuite.records import ItemResult
from evalsuite.report import write_reports
from evalsuite.verdict import BaselineError, flipped_examples, load_baseline, write_baseline
from evalsuite.verdict.baseline import ANSWER_CHARS, FLIPPED_SHOWN, load_run
from tests._support.builders import make_item, rejudge


def in_suite(item: ItemResult, suite: str) -> ItemResult:
    return replace(item, suite=suite, source=f"cases/{suite}.yaml:3", nodeid=f"cases/{suite}.yaml::{item.item_id}")


def test_baseline_round_trip_and_merge(tmp_path: Path) -> None:
    path = tmp_path / "evals" / "baseline.json"
    a, b = make_item(0.0, seed=1), make_item(0.5, seed=2)
    write_baseline(path, [a, b])
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == 1 and doc["layout"] == 2
    assert set(doc["items"]) == {"sentiment::sentiment[t0.0]", "sentiment::sentiment[t0.5]"}
    entry = doc["items"]["sentiment::sentiment[t0.0]"]
    assert entry["model"]["name"] == "gpt-4o-mini" and entry["params"] == {"temperature": 0.0}
    assert entry["dataset_fingerprint"] == "0123456789abcdef" and entry["suite"] == "sentiment"
    assert entry["metrics"]["accuracy"]["value"] == a.metrics[0].value

    refreshed = make_item(0.0, accuracy=0.5, seed=9)
    write_baseline(path, [refreshed])  # merge: t0.5 is kept, t0.0 replaced
    baseline = load_baseline(path)
    assert set(baseline.items) == {"sentiment::sentiment[t0.0]", "sentiment::sentiment[t0.5]"}
    values = baseline.item(refreshed.identity)
    assert values is not None
    assert values["accuracy"] == {f"{r.example_id}#0": r.scores["accuracy"] for r in refreshed.records}
    assert baseline.item("sentiment::unknown") is None
    assert [p.name for p in path.parent.iterdir()] == ["baseline.json"]  # no temp files left behind


def test_two_suites_with_the_same_case_id_keep_separate_entries(tmp_path: Path) -> None:
    # Issue 16: "baseline written (4 items)" but the file held 3, and the next unchanged run "improved".
    good, poor = in_suite(make_item(0.0, accuracy=0.95, seed=1), "reviews"), in_suite(make_item(0.0, accuracy=0.6,
                                                                                                 seed=2), "tweets")
    baseline = load_baseline(write_baseline(tmp_path / "baseline.json", [good, poor]))
    assert set(baseline.items) == {"reviews::sentiment[t0.0]", "tweets::sentiment[t0.0]"}
    rerun = rejudge(replace(poor, metrics=[]), baseline.item(poor.identity), min_accuracy=0.0)
    assert [(m.verdict, m.delta) for m in rerun.metrics] == [("unchanged", 0.0), ("unchanged", 0.0)]


def legacy_file(path: Path, items: list[ItemResult]) -> Path:
    """A baseline as evalsuite wrote it before identities: keyed by item id, entries without a suite."""
    doc = json.loads(write_baseline(path, items).read_text())
    doc.pop("layout")
    doc["items"] = {entry["item_id"]: {k: v for k, v in entry.items() if k not in ("suite", "source")}
                    for entry in doc["items"].values()}
    path.write_text(json.dumps(doc))
    return path


def test_a_legacy_file_serves_the_unique_item_and_is_migrated_on_update(tmp_path: Path) -> None:
    item = make_item(0.0, seed=1)
    path = legacy_file(tmp_path / "baseline.json", [item, make_item(0.5, seed=2)])
    baseline = load_baseline(path)
    assert set(baseline.items) == {"sentiment[t0.0]", "sentiment[t0.5]"}
    assert baseline.item(item.identity) == baseline.item("sentiment[t0.0]") is not None

    write_baseline(path, [item])
    doc = json.loads(path.read_text())
    # the item that ran is re-keyed by identity; the other entry, unclaimed, stays as it was
    assert set(doc["items"]) == {"sentiment::sentiment[t0.0]", "sentiment[t0.5]"} and doc["layout"] == 2
    not_run = replace(make_item(0.5, seed=3), metrics=[], records=[])
    write_baseline(path, [not_run])  # an item without metrics keeps its entry, now under its identity
    doc = json.loads(path.read_text())
    assert set(doc["items"]) == {"sentiment::sentiment[t0.0]", "sentiment::sentiment[t0.5]"}
    assert doc["items"]["sentiment::sentiment[t0.5]"]["metrics"]["accuracy"]["per_example"]


def test_a_legacy_entry_two_suites_share_serves_neither_and_is_split_on_update(tmp_path: Path) -> None:
    path = legacy_file(tmp_path / "baseline.json", [make_item(0.0, seed=1)])
    a, b = in_suite(make_item(0.0, seed=4), "reviews"), in_suite(make_item(0.0, seed=5), "tweets")
    baseline = load_baseline(path)
    baseline.resolve([a.identity, b.identity])
    assert baseline.item(a.identity) is None and baseline.item(b.identity) is None
    write_baseline(path, [a, b])
    assert set(json.loads(path.read_text())["items"]) == {a.identity, b.identity}


def test_a_report_is_refused_as_a_baseline_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    report = write_reports(tmp_path / "reports", [make_item(0.0, seed=1)], {})["json"]
    with pytest.raises(BaselineError) as info:
        load_baseline(report)
    message = str(info.value)
    assert str(report) in message and "this is a report" in message and "--eval-update-baseline" in message
    wrong_kind = tmp_path / "other.json"
    wrong_kind.write_text('{"schema_version": 1, "kind": "something-else", "items": {}}')
    with pytest.raises(BaselineError, match="kind is 'something-else'"):
        load_baseline(wrong_kind)


@pytest.mark.parametrize("content,message", [
    ("[]", "expected a JSON object"),
    ('{"schema_version": 7, "items": {}}', "schema_version is 7"),
    ('{"schema_version": 1, "items": {"a": {"metrics": {"acc": {"value": 1}}}}}', "items.a.metrics.acc"),
    ('{"schema_version": 1, "layout": 9, "items": {}}', "layout is 9"),
    ("\udcff\x00", "not UTF-8 text (byte 0)"),
])
def test_malformed_baseline_names_file_and_fix(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    assert str(path) in str(info.value) and message in str(info.value) and "Fix:" in str(info.value)


def test_a_malformed_report_names_the_item(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text('{"schema_version": 1, "items": [{"item_id": "a"}]}')
    with pytest.raises(BaselineError, match=r"items\[0\]"):
        load_run(path)


def test_report_json_and_baseline_file_read_back_the_same_for_compare(tmp_path: Path) -> None:
    items = [make_item(0.0, seed=1), make_item(0.5, seed=2)]
    from_report = load_run(write_reports(tmp_path, items, {})["json"])
    from_baseline = load_run(write_baseline(tmp_path / "baseline.json", items))
    assert (from_report.source, from_baseline.source) == ("report", "baseline")
    assert from_report.items == from_baseline.items


def test_flipped_examples_list_both_answers_worst_first(tmp_path: Path) -> None:
    old = make_item(0.0, seed=1, answer_text="positive " * 100)
    entry = load_baseline(write_baseline(tmp_path / "baseline.json", [old])).entry(old.identity)
    assert entry is not None and len(entry.examples["ex0#0"]["answer"]) == ANSWER_CHARS
    new = make_item(0.0, seed=1, answer_text="negative")
    flip = next(r for r in new.records if r.scores["accuracy"] == 1)
    flip.scores["accuracy"], flip.answer = 0, "wrong now"
    rejudge(new, {m: dict(v.per_example) for m, v in entry.metrics.items()})
    flipped = flipped_examples(new, entry)
    assert flipped == [{"example_id": flip.example_id, "metric": "accuracy", "before": 1, "after": 0,
                        "baseline_answer": entry.examples[str(flip.key)]["answer"], "answer": "wrong now"}]

    other = make_item(0.0, seed=2)  # many examples differ: the list is capped, a full drop first
    rejudge(other, {m: dict(v.per_example) for m, v in entry.metrics.items()})
    flipped = flipped_examples(other, entry)
    assert len(flipped) == FLIPPED_SHOWN and (flipped[0]["before"], flipped[0]["after"]) == (1, 0)
    assert flipped_examples(other, None) == []


def test_a_secret_echoed_in_an_answer_is_not_committed_with_the_baseline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-Zq8vW3xT9mK2pL7nR4sB6yC1")
    item = make_item(0.0, seed=1, answer_text="my key is sk-proj-Zq8vW3xT9mK2pL7nR4sB6yC1")
    text = write_baseline(tmp_path / "baseline.json", [item]).read_text()
    assert "Zq8vW3xT9mK2pL7nR4sB6yC1" not in text and "my key is" in text


def test_an_item_without_entry_finds_the_one_entry_its_case_files_no_longer_define(tmp_path: Path) -> None:
    old, kept, deleted = (in_suite(make_item(0.0, variant=v), "reviews") for v in ("old", "kept", "del"))
    deleted = replace(in_suite(deleted, "tweets"), dataset_fingerprint="fedcba9876543210")
    baseline = load_baseline(write_baseline(tmp_path / "baseline.json", [old, kept, deleted]))
    hashes = [r.prompt_hash for r in old.records]
    assert baseline.renamed_entry(old.dataset_fingerprint, hashes) is None  # not told what the case files define
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "reviews.yaml").write_text("")  # tweets.yaml was deleted
    defined = {"reviews::sentiment[new]": "cases/reviews.yaml", kept.identity: "cases/reviews.yaml"}
    baseline.define(defined, tmp_path)
    found = baseline.renamed_entry(old.dataset_fingerprint, hashes)
    assert found is not None and found.identity == old.identity  # kept still defined; tweets' dataset differs
    assert baseline.renamed_entry(deleted.dataset_fingerprint, hashes).identity == deleted.identity  # file deleted
    assert baseline.renamed_entry(old.dataset_fingerprint, ["another prompt"]) is None
    baseline.define({**defined, old.identity: "cases/reviews.yaml"}, tmp_path)  # "old" is still defined: no rename
    assert baseline.renamed_entry(old.dataset_fingerprint, hashes) is None
    baseline.items[deleted.identity].dataset_fingerprint = old.dataset_fingerprint
    baseline.define(defined, tmp_path)
    assert baseline.renamed_entry(old.dataset_fingerprint, hashes) is None  # two candidates: neither is chosen
