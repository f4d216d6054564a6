"""One item end to end without pytest: the runner's own promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite import runner
from evalsuite.cases import load_suite
from evalsuite.errors import EvalsuiteError, SettingsError
from evalsuite.model import EngineSettings
from evalsuite.records import item_identity
from evalsuite.verdict import load_baseline, write_baseline
from tests._support.chat_server import ChatServer, closed_port_url, echo_responder
from tests._support.scored import score_repeats_case

CASE = """
cases:
  - id: echo
    model: {name: test-model, temperature: 0}
    dataset:
      id: id
      examples: [%s]
    prompt: {user: "{{ text }}"}
    metrics: {exact_match: {min: 0}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    rows = ", ".join(f"{{id: e{i}, text: 'row {i}', expected: 'row {i}'}}" for i in range(12))
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "echo.yaml").write_text(CASE % rows)
    return tmp_path


def run(project: Path, mode: str, **engine_settings: object) -> runner.ItemResult:
    [case_run] = load_suite(project / "cases" / "echo.yaml", project)
    settings = runner.RunSettings(rootdir=project, record_mode=mode, engine=EngineSettings(**engine_settings))
    return runner.run_item(case_run, settings)


def answers(result: runner.ItemResult) -> dict[str, str | None]:
    return {r.example_id: r.answer for r in result.records}


def test_an_item_whose_endpoint_answered_nothing_is_an_error_whatever_its_thresholds(project: Path, monkeypatch) -> None:
    """``exact_match: {min: 0}`` cannot be missed, yet a dead endpoint measured nothing: never a pass."""
    url = closed_port_url()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    with pytest.raises(EvalsuiteError) as raised:
        run(project, "rewrite", max_retries=0)
    message = str(raised.value)
    assert message.startswith("echo: none of its 12 call(s) got an answer (12 connection), so there is nothing to score")
    assert url in message


def test_rewrite_keeps_old_recordings_of_examples_that_failed_transiently(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
    with ChatServer(echo_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        first = run(project, "once")
    assert answers(first) == {f"e{i}": f"row {i}" for i in range(12)}

    # Re-record against a changed model behind a quota wall: about half the calls get 429 and are not retried.
    with ChatServer(lambda body: echo_responder(body).upper(), rate_limit_fraction=0.5, seed=3) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        second = run(project, "rewrite", max_retries=0, adaptive=False)
    failed = {r.example_id for r in second.records if r.error_kind == "rate_limited"}
    assert 0 < len(failed) < 12

    monkeypatch.delenv("OPENAI_BASE_URL")
    replayed = run(project, "none")  # nothing lost: every example still replays
    assert answers(replayed) == {f"e{i}": (f"row {i}" if f"e{i}" in failed else f"ROW {i}") for i in range(12)}


def test_new_episodes_resumes_with_only_the_missing_examples(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
    # First recording hits a quota wall: about half the calls fail and are not recorded.
    with ChatServer(echo_responder, rate_limit_fraction=0.5, seed=5) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        first = run(project, "once", max_retries=0, adaptive=False)
    failed = {r.example_id for r in first.records if r.error}
    assert 0 < len(failed) < 12 and first.errors == len(failed)

    with ChatServer(echo_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        resumed = run(project, "new_episodes")
        sent = {body["messages"][-1]["content"] for body in server.requests}
    assert sent == {f"row {i[1:]}" for i in failed}  # only what was missing went out
    assert resumed.errors == 0

    monkeypatch.delenv("OPENAI_BASE_URL")
    assert answers(run(project, "none")) == {f"e{i}": f"row {i}" for i in range(12)}


def test_settings_from_option_values_as_an_ini_file_gives_them(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.evalsuite.prices.my-model]\ninput = 0.5\noutput = 1.5\n')
    settings = runner.RunSettings.from_options({
        "rootdir": tmp_path, "record_mode": "new_episodes", "cassette_dir": "tapes", "concurrency": "4", "rpm": "60",
        "tpm": None, "limit": "", "model": "azure_openai:gpt-4o", "api": "chat", "alpha": "0.01", "baseline": None,
    })
    assert (settings.record_mode, settings.cassette_dir, settings.alpha) == ("new_episodes", Path("tapes"), 0.01)
    assert (settings.engine.concurrency, settings.engine.requests_per_minute, settings.engine.tokens_per_minute) == (4, 60.0, None)
    assert settings.limit is None and settings.model_override == {"provider": "azure_openai", "name": "gpt-4o", "api": "chat"}
    assert settings.prices == {"my-model": {"input": 0.5, "output": 1.5}}
    defaults = runner.RunSettings.from_options({"rootdir": tmp_path})
    assert defaults == runner.RunSettings(rootdir=tmp_path, prices=defaults.prices)
    assert (defaults.report_dir, defaults.baseline_path) == (Path("reports"), None)


def test_settings_carry_the_report_dir_and_the_baseline_path(tmp_path: Path) -> None:
    settings = runner.RunSettings.from_options({"rootdir": tmp_path, "report_dir": "out/evals",
                                                "baseline": "base/line.json", "update_baseline": True})
    assert (settings.report_dir, settings.baseline_path, settings.baseline) == (Path("out/evals"), Path("base/line.json"), None)


@pytest.mark.parametrize(("options", "message"), [
    ({"record_mode": "replay"}, "record mode 'replay' (--record-mode, eval_record_mode) is not valid: choose one of none, once, new_episodes, all, rewrite"),
    ({"update_baseline": True}, "--eval-update-baseline writes to --eval-baseline PATH"),
    ({"baseline": "missing.json"}, "--eval-baseline missing.json: no such file; write one with --eval-update-baseline"),
    ({"model": "opnai:gpt-4o"}, "--eval-model opnai:gpt-4o: unknown provider 'opnai'; did you mean 'openai'? valid: azure_openai, databricks, openai"),
    ({"concurrency": "four"}, "concurrency = 'four': expected a number (int), e.g. 4"),
    ({"record_mod": "once"}, "unknown run option(s) record_mod; valid: alpha, api, baseline,"),
    ({"limit": 0}, "--eval-limit 0 (limit): expected at least 1 example per dataset; drop the option to run every example"),
    ({"limit": "-3"}, "--eval-limit -3 (limit): expected at least 1 example per dataset"),
])
def test_a_bad_option_names_itself_and_the_fix(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        runner.RunSettings.from_options({"rootdir": tmp_path, **options})
    assert message in str(raised.value)


def scored(project: Path, wrong: dict[tuple[str, int], str], *, baseline: object = None) -> runner.ItemResult:
    """Four examples, three samples each, right except for ``wrong``."""
    return score_repeats_case(project, wrong, rows=4, repeats=3, baseline=baseline)


def test_failure_message_shows_the_prompt_and_each_wrong_example_once(project: Path) -> None:
    result = scored(project, {("e1", 0): "nope", ("e1", 1): "nope", ("e2", 2): "nope"})
    assert {r.input_excerpt for r in result.records if r.example_id == "e1"} == {"Text: row 1"}  # not the id "e1"
    lines = result.message.splitlines()
    worst = [line for line in lines if line.startswith("    - ")]
    assert worst == ["    - e1 (2 of 3 samples wrong): input 'Text: row 1'",
                     "    - e2 (1 of 3 samples wrong): input 'Text: row 2'"]


def test_examples_that_flip_against_the_baseline_are_listed_with_both_answers(project: Path, tmp_path: Path) -> None:
    before = scored(project, {("e3", 0): "nope"})
    baseline = load_baseline(write_baseline(tmp_path / "baseline.json", [before]))
    after = scored(project, {("e1", 1): "nope", ("e1", 2): "nope"}, baseline=baseline)  # misses min 0.9
    assert [(f["example_id"], f["before"], f["after"], f["baseline_answer"], f["answer"]) for f in after.flipped] == [
        ("e1", 1, 0, "row 1", "nope"), ("e3", 0, 1, "nope", "row 3")]  # once per example, the drop first
    assert "flipped against the baseline: e1 (exact_match 1 -> 0), e3 (exact_match 0 -> 1)" in after.message


def test_input_excerpts_cut_the_instructions_every_prompt_shares() -> None:
    shots = "Classify each movie review as positive or negative. Review: Great fun. Sentiment: positive Review:"
    assert runner.excerpts([f"{shots}  A warm\n film. Sentiment:", f"{shots} Dull. Sentiment:"]) == [
        "…Review: A warm film. Sentiment:", "…Review: Dull. Sentiment:"]
    assert runner.excerpts(["Text: row 1", "Text: row 2"]) == ["Text: row 1", "Text: row 2"]  # short: kept whole
    assert runner.excerpts(["x" * 300]) == ["x" * 199 + "…"]


def test_the_rendered_prompt_is_stored_once_per_item_and_what_differs_per_example(tmp_path: Path, monkeypatch) -> None:
    rows = "{id: e0, text: 'short one'}, {id: e1, text: '%s'}" % ("word " * 400)
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "echo.yaml").write_text(f"""
cases:
  - id: echo
    model: {{name: test-model, temperature: 0}}
    dataset: {{id: id, expected: null, examples: [{rows}]}}
    prompt:
      system: Repeat the text.
      few_shot: [{{role: user, content: "Text: hi"}}, {{role: assistant, content: hi}}]
      user: "Text: {{{{ text }}}}"
    metrics: {{completion_tokens: {{}}}}
""")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
    with ChatServer(echo_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        [case_run] = load_suite(tmp_path / "cases" / "echo.yaml", tmp_path)
        result = runner.run_item(case_run, runner.RunSettings(rootdir=tmp_path, record_mode="once"))
    assert result.prompt_prefix == "[system]\nRepeat the text.\n\n[user]\nText: hi\n\n[assistant]\nhi\n\n[user]\n"
    short, long = (r.prompt or "" for r in result.records)
    assert short == "Text: short one"
    assert len(long) < runner.PROMPT_TAIL_CHARS + 60 and long.endswith("… [1,006 more characters in the cassette]")
    assert runner.split_prompts(["same\nprompt"] * 3) == ("same\nprompt", ["", "", ""])  # nothing differs


@pytest.mark.parametrize("latency_spec, flipped", [("{}", 0), ("{max_increase: 0.1}", 8)])
def test_only_metrics_that_gate_list_flipped_examples(tmp_path: Path, latency_spec: str, flipped: int) -> None:
    """A slower machine changes every example's latency: that is no flip unless the case gates latency."""
    from evalsuite import dataset, prompts
    from evalsuite.metrics import get_metric
    from evalsuite.records import Answer
    from evalsuite.verdict import load_baseline, write_baseline

    rows = ", ".join(f"{{id: e{i}, text: 'row {i}', expected: 'row {i}'}}" for i in range(8))
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "echo.yaml").write_text(
        CASE.replace("{exact_match: {min: 0}}", f"{{exact_match: {{min: 0}}, latency_p50: {latency_spec}}}") % rows)
    [case_run] = load_suite(tmp_path / "cases" / "echo.yaml", tmp_path)
    examples = dataset.load_examples(case_run.case.dataset, case_run.base_dir)
    calls = prompts.build_calls(case_run.case, examples)
    metrics = {name: get_metric(name, spec) for name, spec in case_run.case.metrics.items()}

    def scored_at(latency: float, baseline: object = None) -> runner.ItemResult:
        answers = [Answer(c.example_id, c.sample, text=f"row {c.example_id[1:]}", latency_s=latency + i / 1000)
                   for i, c in enumerate(calls)]
        settings = runner.RunSettings(rootdir=tmp_path, baseline=baseline)  # type: ignore[arg-type]
        return runner.score(case_run, examples, answers, metrics, settings)

    baseline = load_baseline(write_baseline(tmp_path / "baseline.json", [scored_at(0.045)]))
    slow = scored_at(0.43, baseline)
    assert len(slow.flipped) == flipped and all(f["metric"] == "latency_p50" for f in slow.flipped)


def test_a_renamed_case_is_compared_with_the_baseline_entry_of_its_old_name(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
    with ChatServer(echo_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        first = run(project, "once")
        baseline = load_baseline(write_baseline(project / "baseline.json", [first]))
        case_path = project / "cases" / "echo.yaml"
        case_path.write_text(case_path.read_text().replace("- id: echo", "- id: echo_renamed"))
        [case_run] = load_suite(case_path, project)
        baseline.define({item_identity(case_run.suite, case_run.item_id): "cases/echo.yaml"}, project)
    with ChatServer(lambda body: echo_responder(body).upper()) as server:  # the model changed: every answer wrong
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        settings = runner.RunSettings(rootdir=project, record_mode="all", baseline=baseline)
        renamed = runner.run_item(case_run, settings)
    [exact_match] = renamed.metrics
    assert exact_match.verdict == "regression" and not renamed.passed
    assert f"compared with baseline entry {first.identity} (renamed?)" in exact_match.reason
    assert renamed.meta["renamed_from"] == first.identity


def test_a_hand_edited_baseline_value_is_an_error_naming_the_file(project: Path, tmp_path: Path) -> None:
    from evalsuite.verdict import BaselineError, load_baseline, write_baseline

    baseline = load_baseline(write_baseline(tmp_path / "baseline.json", [scored(project, {})]))
    [entry] = baseline.items.values()
    stored = entry.metrics["exact_match"].per_example
    stored.update(dict.fromkeys(stored, "oops"))  # what a bad merge or a hand edit leaves
    with pytest.raises(BaselineError) as raised:
        scored(project, {}, baseline=baseline)
    assert str(raised.value).startswith(f"{tmp_path / 'baseline.json'}: repeats::echo: exact_match: its stored "
                                        "per-example values cannot be compared")
    assert "Fix: re-write the entry with --eval-update-baseline" in str(raised.value)
