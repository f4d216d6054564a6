"""Reports as a reviewer meets them: the terminal table, report.json against its schema, report.md and the
GitHub step summary, report.html rendered by a real headless browser, and the secret scrub."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from evalsuite.cases.schema import MetricSpec
from evalsuite.records import ExampleRecord, ItemResult
from evalsuite.report.files import SCHEMA_PATH, scrub, write_reports
from evalsuite.report.terminal import render
from evalsuite.verdict._judge import judge


@dataclass
class Metric:
    name: str
    kind: str = "proportion"
    higher_is_better: bool = True
    definition: str = ""

    def aggregate(self, values: Sequence[Any]) -> float:
        return float(np.mean(values))


def make_item(
    temperature: float = 0.0, accuracy: float = 0.9, n: int = 200, seed: int = 0,
    baseline: dict[str, dict[str, Any]] | None = None, answer_text: str = "ok", min_accuracy: float = 0.8,
    variant: str | None = None,
) -> ItemResult:
    """A sentiment item built directly from records, judged by the real verdict code."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        expected = "positive" if i % 2 else "negative"
        correct = bool(rng.random() < accuracy)
        parsed = i % 50 != 7
        prediction = (expected if correct else ("negative" if expected == "positive" else "positive")) if parsed else None
        records.append(ExampleRecord(
            example_id=f"ex{i}", sample=0, prompt_hash="abc123", input_excerpt=f"review <b>{i}</b> & more",
            expected=expected, answer=answer_text if parsed else "I cannot tell", prediction=prediction,
            parsed=parsed, scores={"accuracy": int(correct and parsed), "similarity": float(rng.random())},
            prompt_tokens=50, completion_tokens=1, latency_s=0.2,
            error="HTTP 500" if i == 3 else None, error_kind="api" if i == 3 else None,
        ))
    variant = f"t{temperature}" if variant is None else variant
    item = ItemResult(
        nodeid=f"cases/sentiment.yaml::sentiment[{variant}]", suite="sentiment", case="sentiment", variant=variant,
        item_id=f"sentiment[{variant}]", source="cases/sentiment.yaml:3",
        model={"name": "gpt-4o-mini", "provider": "openai"}, params={"temperature": temperature},
        record_mode="none", cassette="cassettes/sentiment.json", dataset_fingerprint="0123456789abcdef",
        n_examples=n, records=records, metrics=[], errors=1, unparsed=sum(not r.parsed for r in records),
        tokens={"prompt": 50 * n, "completion": n}, cost_usd=0.001 * n, wall_s=1.5,
    )
    return rejudge(item, baseline, min_accuracy)


def rejudge(item: ItemResult, baseline: dict[str, dict[str, Any]] | None = None, min_accuracy: float = 0.8) -> ItemResult:
    """(Re)compute the item's metrics from its records' scores with the real verdict code."""
    keys = [f"{r.example_id}#{r.sample}" for r in item.records]
    item.metrics = [
        judge(Metric("accuracy"), MetricSpec(min=min_accuracy), [r.scores["accuracy"] for r in item.records], keys,
              baseline.get("accuracy") if baseline is not None else None),
        judge(Metric("similarity", kind="mean"), MetricSpec(), [r.scores["similarity"] for r in item.records], keys,
              baseline.get("similarity") if baseline is not None else None),
    ]
    item.passed = not any(m.failed for m in item.metrics)
    return item


def baseline_of(item: ItemResult) -> dict[str, dict[str, Any]]:
    return {m.name: {f"{r.example_id}#{r.sample}": r.scores[m.name] for r in item.records} for m in item.metrics}


@pytest.fixture
def sweep() -> list[ItemResult]:
    """A temperature sweep; the t1.0 item regressed against its baseline, t0.5 misses the threshold."""
    good = make_item(1.0, accuracy=0.95, seed=1)
    regressed = make_item(1.0, accuracy=0.95, seed=1)
    for r in regressed.records[:40]:
        r.scores["accuracy"] = 0
    rejudge(regressed, baseline_of(good), min_accuracy=0.5)
    return [make_item(0.0, accuracy=0.92, seed=2), make_item(0.5, accuracy=0.7, seed=3), regressed]


def test_terminal_table_fits_and_puts_regressions_first(sweep: list[ItemResult]) -> None:
    text = render(sweep)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert lines[0].startswith("evalsuite: 3 items: 1 passed, 2 failed (1 regression)")
    rows = [line for line in lines if line.startswith("sentiment[")]
    assert rows[0].startswith("sentiment[t1.0]") and rows[0].endswith("REGRESSION")
    assert rows[1].startswith("sentiment[t0.5]") and rows[1].endswith("FAIL")
    assert re.search(r"accuracy\s+0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]\s+>= 0\.500\s+-0\.\d{3} p<0\.001", rows[0])
    assert "sentiment[t0.5]: 4 unparsed, 1 errors (1 api)" in text
    assert "why:" in text and "below min 0.800" in text


def test_report_json_matches_its_schema(tmp_path: Path, sweep: list[ItemResult]) -> None:
    paths = write_reports(tmp_path, sweep, {"record_mode": "none", "command": "pytest cases"})
    assert set(paths) == {"json", "md", "html"} and all(p.exists() for p in paths.values())
    doc = json.loads(paths["json"].read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(doc)
    assert doc["schema_version"] == 1
    run = doc["run"]
    assert run["record_mode"] == "none" and run["command"] == "pytest cases"
    assert set(run["packages"]) >= {"evalsuite", "openai", "vcrpy", "python"} and run["packages"]["openai"]
    assert run["cost_usd"] == pytest.approx(0.6) and run["tokens"] == {"prompt": 30000, "completion": 600}
    assert doc["summary"]["regressions"] == 1 and doc["summary"]["examples"] == 600
    item = next(i for i in doc["items"] if i["item_id"] == "sentiment[t1.0]")
    assert item["status"] == "regression" and len(item["records"]) == 200
    assert item["metrics"][0]["test"] == "mcnemar-exact" and item["metrics"][0]["n_paired"] == 200


def test_schema_rejects_a_report_missing_records(tmp_path: Path, sweep: list[ItemResult]) -> None:
    doc = json.loads(write_reports(tmp_path, sweep[:1], {})["json"].read_text())
    del doc["items"][0]["records"]
    with pytest.raises(jsonschema.ValidationError, match="records"):
        jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))


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
    assert "[REDACTED]" in paths["json"].read_text() and "[REDACTED]" in paths["html"].read_text()
    assert "short" in paths["json"].read_text()
    assert scrub("x AAAAAAAAAAAA y", {"DB_PASSWORD": "AAAAAAAAAAAA", "PATH": "x y"}) == "x [REDACTED] y"


def test_html_escapes_text(tmp_path: Path) -> None:
    item = make_item(answer_text="<script>alert(1)</script>")
    html = write_reports(tmp_path, [item], {})["html"].read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "review &lt;b&gt;" in html
    assert html.count('<img class="plot"') == 3  # metrics, confusion matrix, similarity histogram


def test_html_has_sweep_plot_and_renders_fast(tmp_path: Path, sweep: list[ItemResult]) -> None:
    import time

    start = time.perf_counter()
    html = write_reports(tmp_path, sweep, {})["html"].read_text()
    assert time.perf_counter() - start < 3 * len(sweep)
    assert "Parameter sweeps" in html and "metrics vs temperature" in html
    assert html.count('<img class="plot"') == 1 + 3 * len(sweep)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.querySelectorAll('img.plot')];
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-decoded', imgs.filter(i => i.complete && i.naturalWidth > 0).length);
});
</script></body>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium); "
                                              ".ci/run installs it")
def test_html_plots_decode_in_a_real_browser(tmp_path: Path, sweep: list[ItemResult]) -> None:
    html_path = write_reports(tmp_path, sweep, {})["html"]
    probe = tmp_path / "probe.html"  # the report itself carries no script; the probe copy adds one
    probe.write_text(html_path.read_text().replace("</body>", _PROBE))
    dom = _chromium(tmp_path, "--dump-dom", probe.as_uri()).stdout
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    decoded = int(re.search(r'data-decoded="(\d+)"', dom).group(1))
    assert images == 10 and decoded == images

    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", html_path.as_uri())
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] >= 1000 and pixels.std() > 0.05  # not a blank page
    blue = (pixels[..., 2] > 0.6) & (pixels[..., 0] < 0.4)  # the plots' bars are the only strong blue
    assert blue.mean() > 0.001


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
    text = render([item])
    assert "sentiment[t0.7]: 3 samples per example, agreement 0.889; 2 of 6 examples not unanimous" in text
    paths = write_reports(tmp_path, [item], {"record_mode": "none"})
    assert "2 of 6 examples not unanimous" in paths["md"].read_text()
