"""Writing the report files: one file per registered format, every one scrubbed of secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.report import WRITERS, write_reports
from tests._support.builders import make_item


def test_secrets_from_the_environment_are_scrubbed_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = 'sk-test-"quoted"<secret>-1234567890'
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("MY_TOKEN", "short")  # under 8 characters: left alone
    item = make_item(answer_text=f"the key is {secret} ok short")
    item.message = f"failed with {secret}"
    paths = write_reports(tmp_path, [item], {"note": secret})
    for path in [*paths.values(), tmp_path / "summary.md"]:
        text = path.read_text()
        assert "sk-test" not in text, path.name
        assert "1234567890" not in text, path.name
    # The one secret rule (evalsuite/_util/secrets.py): the placeholder names the variable that held the value.
    assert "[REDACTED:OPENAI_API_KEY]" in paths["json"].read_text()
    assert "[REDACTED:OPENAI_API_KEY]" in paths["html"].read_text()
    assert "short" in paths["json"].read_text()


def test_a_secret_in_an_answer_or_a_prompt_never_reaches_report_html(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """report.html embeds each item's examples as JSON inside a <script> element (every '<' written \\u003c):
    that form is scrubbed too, and so are the static tables and the page's text."""
    import json
    import re

    secret = "sk-live-<tag>&'quoted\"/slash-9f8e7d6c5b"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    item = make_item(accuracy=0.5, answer_text=f"leaked {secret} here")  # failing: its worst answers are in tables
    item.prompt_prefix = f"System: the key is {secret}\n"
    for record in item.records:
        record.prompt = f"Review with {secret}"
    html = write_reports(tmp_path, [item], {})["html"].read_text()
    assert "9f8e7d6c5b" not in html and "sk-live" not in html
    blocks = re.findall(r'<script type="application/json" id="data-\d+">(.*?)</script>', html, re.S)
    data = json.loads(blocks[0])
    decoded = json.dumps(data, ensure_ascii=False)
    assert secret not in decoded and "9f8e7d6c5b" not in decoded
    assert data["prefix"] == "System: the key is [REDACTED:OPENAI_API_KEY]\n"
    assert {row[3] for row in data["rows"]} >= {"leaked [REDACTED:OPENAI_API_KEY] here"}
    assert {row[1] for row in data["rows"]} == {"Review with [REDACTED:OPENAI_API_KEY]"}


def test_secret_names_follow_the_one_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "AAAAAAAAAAAA")
    monkeypatch.setenv("EVALSUITE_NOTE", "BBBBBBBBBBBB")  # not a credential name: kept
    item = make_item()
    item.message = "x AAAAAAAAAAAA y BBBBBBBBBBBB"
    text = write_reports(tmp_path, [item], {})["json"].read_text()
    assert "x [REDACTED:DB_PASSWORD] y BBBBBBBBBBBB" in text


def test_one_file_per_registered_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(WRITERS, "txt", lambda items, run: f"{len(items)} items, record mode {run['record_mode']}\n")
    paths = write_reports(tmp_path, [make_item()], {"record_mode": "once"})
    assert set(paths) == {"json", "md", "html", "txt"}
    assert (tmp_path / "report.txt").read_text() == "1 items, record mode once\n"


def test_a_20_mb_answer_does_not_make_a_20_mb_report(tmp_path: Path) -> None:
    item = make_item(n=20, answer_text="positive " * 2_300_000)  # ~20 MB per answer in the record
    for record in item.records:  # parse: {kind: raw}: the prediction is the whole answer, and a label score keeps it
        record.prediction = record.answer
        record.scores["f1"] = [record.answer, "positive"]
    paths = write_reports(tmp_path, [item], {})
    for path in paths.values():
        assert path.stat().st_size < 500_000, path.name
    assert "characters cut; the full text is in the cassette" in paths["json"].read_text()


def test_a_secret_cut_by_a_text_limit_or_split_by_a_word_diff_never_reaches_a_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each value is scrubbed before it is cut to the report's limit or diffed against the baseline's answer: a cut
    inside a secret, or <del>/<ins> through one, leaves pieces a scrub of the written page cannot recognise."""
    secret = "sk-proj-abcdef0123456789ZYXWVU"
    monkeypatch.setenv("MY_API_KEY", secret)
    item = make_item(accuracy=0.5, answer_text="x" * 270 + " " + secret)  # the HTML tables cut answers at 300
    item.flipped = [{"example_id": item.records[0].example_id, "metric": "accuracy", "before": 1, "after": 0,
                     "baseline_answer": "your key is sk-proj-[REDACTED:MY_API_KEY]", "answer": f"your key is {secret}"}]
    for path in write_reports(tmp_path, [item], {}).values():
        text = path.read_text()
        assert "abcdef0123" not in text and "0123456789ZYX" not in text, path.name


def test_an_eval_redact_pattern_scrubs_values_and_leaves_the_documents_readable(tmp_path: Path) -> None:
    import json

    item = make_item(answer_text="login with password=hunter2 today")
    paths = write_reports(tmp_path, [item], {}, redact=[r"re:password=\S+"])
    document = json.loads(paths["json"].read_text())  # a pattern run over the whole text swallowed its syntax
    assert "password=hunter2" not in paths["json"].read_text()
    assert "login with [REDACTED:eval_redact] today" in {r["answer"] for r in document["items"][0]["records"]}
    html = paths["html"].read_text()
    assert "hunter2" not in html and html.rstrip().endswith("</html>") and "<script>" in html


def test_a_step_summary_that_cannot_be_written_is_a_clear_error_after_every_report_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalsuite.errors import WriteError

    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "no-such-folder" / "summary.md"))
    with pytest.raises(WriteError, match="cannot write the GitHub step summary"):
        write_reports(tmp_path / "reports", [make_item()], {})
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["report.html", "report.json", "report.md"]
