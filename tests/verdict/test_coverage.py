"""Baseline coverage: what the gate did not compare (new items, missing ones, renames) is said, not silent."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from evalsuite.records import ItemResult
from evalsuite.verdict import Coverage, coverage, load_baseline, write_baseline
from tests._support.builders import make_item


def item(suite: str, variant: str, *, seed: int = 1, prompt: str = "") -> ItemResult:
    built = make_item(0.0, seed=seed, variant=variant)
    for r in built.records:
        r.prompt_hash = prompt or f"{suite}-{variant}"  # the fingerprints a rename keeps
    return replace(built, suite=suite, source=f"cases/{suite}.yaml:3")


def test_new_missing_and_renamed_items_are_named(tmp_path: Path) -> None:
    kept, renamed_away, removed = item("reviews", "a"), item("reviews", "b"), item("reviews", "c")
    other_file = item("tweets", "a")
    baseline = load_baseline(write_baseline(tmp_path / "baseline.json", [kept, renamed_away, removed, other_file]))
    renamed = replace(item("reviews", "b"), item_id="sentiment[b2]",  # compared with b's entry by the runner
                      meta={"renamed_from": renamed_away.identity})
    brand_new = item("reviews", "d")
    result = coverage([kept, renamed, brand_new], baseline)

    assert result.new == ["reviews::sentiment[d]"]
    assert result.renamed == [("reviews::sentiment[b]", "reviews::sentiment[b2]")]
    assert result.missing == ["reviews::sentiment[c]"]  # tweets.yaml did not run: its item is not missing
    assert result.to_dict()["renamed"] == [{"from": "reviews::sentiment[b]", "to": "reviews::sentiment[b2]"}]
    text = "\n".join(result.lines())
    assert "reviews::sentiment[d]" in text and "thresholds only" in text
    assert "reviews::sentiment[b2] looks like reviews::sentiment[b] renamed" in text and "compared with" in text
    assert "1 baseline item did not run" in text and str(baseline.path) in text


def test_items_the_case_files_still_define_are_not_missing_whatever_ran(tmp_path: Path) -> None:
    a, b = item("reviews", "a"), item("reviews", "b")
    baseline = load_baseline(write_baseline(tmp_path / "baseline.json", [a, b]))
    not_recorded = replace(b, metrics=[], records=[])  # selected but could not run: still "run" for coverage
    assert coverage([a, not_recorded], baseline).lines() == []
    both_defined = {a.identity: "cases/reviews.yaml", b.identity: "cases/reviews.yaml"}
    assert coverage([a], baseline, defined=both_defined).missing == []  # b left out by -k, --lf, -x or --sw
    assert coverage([a], baseline, defined={a.identity: "cases/reviews.yaml"}).missing == [b.identity]  # b is gone
    assert coverage([a], baseline).missing == [b.identity]
    assert coverage([a], None) == Coverage()


def test_a_legacy_entry_two_suites_claim_is_reported_not_matched(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text('{"schema_version": 1, "items": {"sentiment[a]": {"item_id": "sentiment[a]", "metrics": {}}}}')
    baseline = load_baseline(path)
    one, two = item("reviews", "a"), item("tweets", "a")
    assert coverage([one], baseline).lines() == []  # unique: the legacy entry is this item's
    result = coverage([one, two], baseline)
    assert result.ambiguous == ["sentiment[a]"] and result.new == [one.identity, two.identity]
    assert coverage([replace(item("imdb", "hub"), metrics=[])], baseline).new == []  # not run: not gated, not "new"
    assert "predates suite names" in result.lines()[-1]


def test_entries_of_a_deleted_case_file_are_missing(tmp_path: Path) -> None:
    kept, deleted = item("reviews", "a"), item("tweets", "a")
    baseline = load_baseline(write_baseline(tmp_path / "baseline.json", [kept, deleted]))
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "reviews.yaml").write_text("")  # cases/tweets.yaml is gone
    assert coverage([kept], baseline).missing == []  # without a rootdir: tweets.yaml may just not have run
    assert coverage([kept], baseline, rootdir=tmp_path).missing == [deleted.identity]


def test_updating_the_baseline_moves_a_renamed_items_entry(tmp_path: Path) -> None:
    path = write_baseline(tmp_path / "baseline.json", [item("reviews", "a"), item("reviews", "b")])
    renamed = replace(item("reviews", "b"), item_id="sentiment[b2]")  # same dataset and prompts, new id
    write_baseline(path, [item("reviews", "a"), renamed])
    assert sorted(load_baseline(path).items) == ["reviews::sentiment[a]", "reviews::sentiment[b2]"]
