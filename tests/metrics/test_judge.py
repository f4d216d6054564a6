"""The ``judge:`` metric against the 127.0.0.1 server: its own cassette, replay, matching, redaction, logprob
weighting, both orders of a pairwise comparison, unparsed judgements, the pinned-model warning, --eval-rejudge."""

from __future__ import annotations

import json
import math
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from evalsuite import runner
from evalsuite.cases import load_suite
from evalsuite.errors import CaseFileError, CaseFileWarning, NotRecorded
from evalsuite.model import EngineSettings
from evalsuite.records import ItemResult
from tests._support.chat_server import ChatServer, echo_responder
from tests._support.metric_calls import (
    JUDGE_MODEL,
    first_wins_responder,
    judge_project,
    judge_responder,
    verdict_alternatives,
)
from tests._support.project import make_project, run as run_pytest

KEY = "sk-judge-secret-0123456789"
PASS_FAIL = f"{{model: {{name: {JUDGE_MODEL}, temperature: 0}}}}"
SCALE = f"{{model: {{name: {JUDGE_MODEL}, temperature: 0}}, scale: [1, 5]}}"


def run(root: Path, mode: str = "none", **options: Any) -> ItemResult:
    [case_run] = load_suite(root / "cases" / "graded.yaml", root)
    settings = runner.RunSettings.from_options({"rootdir": root, "record_mode": mode, **options})
    return runner.run_item(case_run, settings)


def values(result: ItemResult, metric: str = "quality") -> dict[str, Any]:
    return {r.example_id: r.scores[metric] for r in result.records}


def record(root: Path, monkeypatch: pytest.MonkeyPatch, mode: str = "once", responder: Any = judge_responder, *,
           options: dict[str, Any] | None = None, **server: Any) -> tuple[ItemResult, ChatServer]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ChatServer(responder, **server) as chat:
        monkeypatch.setenv("OPENAI_BASE_URL", chat.base_url)
        result = run(root, mode, **(options or {}))
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    return result, chat


def cassettes(root: Path) -> Path:
    return root / "cassettes" / "graded"


def test_judge_calls_are_recorded_in_their_own_cassette_and_replay_offline(tmp_path: Path, monkeypatch) -> None:
    judge_project(tmp_path, PASS_FAIL)
    live, server = record(tmp_path, monkeypatch)
    # q1 repeats its reference word for word (PASS); q2 has 2 of its 6 words, q3 none (FAIL)
    assert values(live) == {"q1": 1, "q2": 0, "q3": 0}
    [metric] = live.metrics
    assert metric.kind == "proportion" and metric.value == pytest.approx(1 / 3) and metric.interval == "wilson"
    judged = [body for body in server.requests if body["model"] == JUDGE_MODEL]
    assert len(judged) == 3 and len(server.requests) == 6
    prompt = judged[1]["messages"][0]["content"]
    assert "Reference answer:\nthe dog ran far away today" in prompt and "Answer to grade:\na dog ran" in prompt
    assert prompt.index("reasoning") < prompt.index('"VERDICT: "')  # reasoning first, the verdict last
    assert sorted(p.name for p in cassettes(tmp_path).iterdir()) == ["answers.json", "answers@quality.json"]
    item_models = {i["request"]["body_json"]["model"] for i in
                   json.loads((cassettes(tmp_path) / "answers.json").read_text())["interactions"]}
    judge_models = {i["request"]["body_json"]["model"] for i in
                    json.loads((cassettes(tmp_path) / "answers@quality.json").read_text())["interactions"]}
    assert (item_models, judge_models) == ({"test-model"}, {JUDGE_MODEL})
    note = live.meta["model_calls"]["quality"]
    assert note["model"] == {"provider": "openai", "name": JUDGE_MODEL, "api": "chat"}
    assert note["cassette"] == "cassettes/graded/answers@quality.json" and len(note["prompt_hash"]) == 12
    assert (note["calls"], note["unparsed"], note["errors"]) == (3, 0, 0)

    replayed = run(tmp_path)  # no server, no key, no base URL
    assert values(replayed) == values(live) and replayed.metrics[0].value == metric.value
    assert replayed.meta["model_calls"] == live.meta["model_calls"]


def test_changing_the_judge_model_re_records_only_the_judge_cassette(tmp_path: Path, monkeypatch) -> None:
    path = judge_project(tmp_path, SCALE)
    record(tmp_path, monkeypatch)
    item_cassette = (cassettes(tmp_path) / "answers.json").read_bytes()
    path.write_text(path.read_text().replace(JUDGE_MODEL, "judge-model-2025-06-01"))

    with pytest.raises(NotRecorded) as missed:
        run(tmp_path)
    message = str(missed.value)
    assert message.startswith("answers: quality: 3 judge call(s) not recorded in cassettes/graded/answers@quality.json")
    assert "model judge-model-2025-01-01 -> judge-model-2025-06-01" in message
    assert "pytest 'cases/graded.yaml:3' --eval-rejudge" in message

    rejudged, server = record(tmp_path, monkeypatch, mode="rewrite", options={"rejudge": True})
    assert {body["model"] for body in server.requests} == {"judge-model-2025-06-01"}  # the model under test: none
    assert len(server.requests) == 3 and rejudged.record_mode == "none"
    assert (cassettes(tmp_path) / "answers.json").read_bytes() == item_cassette
    judge_file = json.loads((cassettes(tmp_path) / "answers@quality.json").read_text())
    assert {i["request"]["body_json"]["model"] for i in judge_file["interactions"]} == {"judge-model-2025-06-01"}
    assert values(run(tmp_path)) == values(rejudged) == {"q1": 5, "q2": 2, "q3": 1}

    # a changed rubric is a changed prompt: new_episodes sends the judge calls again, never the model under test
    path.write_text(path.read_text().replace("scale: [1, 5]", "scale: [1, 5], rubric: Only facts count."))
    _, server = record(tmp_path, monkeypatch, mode="new_episodes")
    assert {body["model"] for body in server.requests} == {"judge-model-2025-06-01"} and len(server.requests) == 3
    assert (cassettes(tmp_path) / "answers.json").read_bytes() == item_cassette


def test_the_judge_key_never_reaches_a_cassette_even_when_the_judge_echoes_it(tmp_path: Path, monkeypatch) -> None:
    """An Azure judge with its own key beside an OpenAI model under test: neither key is stored, in any form."""
    judge_key = "azure-judge-key-abcdef0123456789"

    def leaky(body: dict[str, Any]) -> str:
        return f"My key is {judge_key}. " + judge_responder(body)

    with ChatServer(leaky) as server:
        judge = (f"{{model: {{provider: azure_openai, name: {JUDGE_MODEL}, base_url: '{server.azure_endpoint}', "
                 "api_version: '2024-10-21', temperature: 0}}")
        judge_project(tmp_path, judge)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", judge_key)
        live = run(tmp_path, "once")
    assert server.paths.count(f"/openai/deployments/{JUDGE_MODEL}/chat/completions") == 3
    assert any(headers.get("api-key") == judge_key for headers in server.headers)
    # the answers under test leaked the key too: the judge got them redacted, as replay will rebuild them
    judged = [body for body in server.requests if body["model"] == JUDGE_MODEL]
    assert all(judge_key not in json.dumps(body) and "[REDACTED:AZURE_OPENAI_API_KEY]" in json.dumps(body)
               for body in judged)
    text = (cassettes(tmp_path) / "answers@quality.json").read_text()
    assert judge_key not in text and KEY not in text
    assert "My key is [REDACTED:AZURE_OPENAI_API_KEY]." in text and '"api-key": [\n            "[REDACTED]"' in text
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    assert values(run(tmp_path)) == values(live) == {"q1": 1, "q2": 0, "q3": 0}


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_logprobs_weight_each_verdict_by_the_scale_tokens_probabilities(tmp_path: Path, monkeypatch, api: str) -> None:
    judge = f"{{model: {{name: {JUDGE_MODEL}, api: {api}, temperature: 0, logprobs: true, top_logprobs: 5}}, scale: [1, 5]}}"
    judge_project(tmp_path, judge)
    live, server = record(tmp_path, monkeypatch, alternatives=verdict_alternatives)
    # verdicts 5, 2, 1 with 20% one point lower, 50% as said, 30% one higher; points off the scale do not count
    expected = {"q1": (4 * 0.2 + 5 * 0.5) / 0.7, "q2": 1 * 0.2 + 2 * 0.5 + 3 * 0.3, "q3": (1 * 0.5 + 2 * 0.3) / 0.8}
    assert values(live) == pytest.approx(expected)
    assert live.metrics[0].value == pytest.approx(sum(expected.values()) / 3)
    judged = [body for body in server.requests if body["model"] == JUDGE_MODEL]
    assert all(body["logprobs"] == (True if api == "chat" else 5) for body in judged)
    note = live.meta["model_calls"]["quality"]
    assert note["logprob_weighted"] == 3 and note["verdicts"] == {"q1#0": 5, "q2#0": 2, "q3#0": 1}
    assert values(run(tmp_path)) == pytest.approx(expected)  # replayed from the recorded alternatives


@pytest.mark.parametrize("logprobs", ["", ", logprobs: true", ", logprobs: true, top_logprobs: 1"])
def test_without_alternatives_asked_for_the_parsed_verdict_is_the_score(tmp_path: Path, monkeypatch,
                                                                        logprobs: str) -> None:
    """Only the sampled token's logprob (or none): nothing to weigh, and no token strings kept in memory."""
    judge_project(tmp_path, f"{{model: {{name: {JUDGE_MODEL}, temperature: 0{logprobs}}}, scale: [1, 5]}}")
    live, _ = record(tmp_path, monkeypatch, alternatives=verdict_alternatives)
    assert values(live) == {"q1": 5, "q2": 2, "q3": 1} and live.meta["model_calls"]["quality"]["logprob_weighted"] == 0
    assert live.metrics[0].kind == "mean" and live.metrics[0].interval == "bootstrap"


def pairwise(order_bias: str = "agree") -> str:
    return f"{{model: {{name: {JUDGE_MODEL}, temperature: 0}}, compare: expected, order_bias: {order_bias}}}"


def test_pairwise_judges_both_orders_and_counts_a_win_only_when_they_agree(tmp_path: Path, monkeypatch) -> None:
    judge_project(tmp_path, pairwise())
    consistent, server = record(tmp_path, monkeypatch)
    first_shown: dict[str, list[str]] = {}  # per judged answer, what each request showed as answer A, in order
    for body, headers in zip(server.requests, server.headers):
        if body["model"] == JUDGE_MODEL:
            shown = body["messages"][0]["content"].split("Answer A:\n")[1].split("\n")[0]
            first_shown.setdefault(headers["x-evalsuite-example"].split("#")[0], []).append(shown)
    assert first_shown == {"q1": ["the cat sat on the mat"] * 2,
                           "q2": ["a dog ran", "the dog ran far away today"],  # A/B, then B/A
                           "q3": ["birds fly south", "whales swim deep in the cold ocean"]}
    # the longer answer wins in both orders: q1 ties (same words), q2 and q3 lose to the longer reference
    assert values(consistent) == {"q1": 0.5, "q2": 0.0, "q3": 0.0}
    note = consistent.meta["model_calls"]["quality"]
    assert (note["orders_agree"], note["first_position_wins"]) == (1.0, 0.5)
    assert "the two orders agreed on 3 of 3 pairs" in consistent.metrics[0].reason

    # a judge that always picks the first answer: every win is a loss in the other order, so none counts
    judge_project(tmp_path, pairwise())
    for file in cassettes(tmp_path).iterdir():
        file.unlink()
    biased, _ = record(tmp_path, monkeypatch, responder=first_wins_responder)
    assert values(biased) == {"q1": 0.5, "q2": 0.5, "q3": 0.5}
    note = biased.meta["model_calls"]["quality"]
    assert (note["orders_agree"], note["first_position_wins"]) == (0.0, 1.0)
    assert "the two orders agreed on 0 of 3 pairs" in biased.metrics[0].reason


def test_pairwise_average_takes_the_mean_of_both_orders(tmp_path: Path, monkeypatch) -> None:
    def first_or_tie(body: dict[str, Any]) -> str:
        """Picks A unless B is longer, then calls it a tie: biased, and not symmetrically."""
        if body["model"] != JUDGE_MODEL:
            return echo_responder(body)
        prompt = body["messages"][0]["content"]
        a = prompt.split("Answer A:\n")[1].split("\n")[0].split()
        b = prompt.split("Answer B:\n")[1].split("\n")[0].split()
        return "Reasoning. VERDICT: " + ("A" if len(a) >= len(b) else "TIE")

    judge_project(tmp_path, pairwise("average"))
    averaged, _ = record(tmp_path, monkeypatch, responder=first_or_tie)
    assert values(averaged) == {"q1": 0.5, "q2": 0.25, "q3": 0.25}  # q2: tie (0.5) in A/B, loss (0) in B/A
    judge_project(tmp_path, pairwise("agree"))
    assert values(run(tmp_path)) == {"q1": 0.5, "q2": 0.5, "q3": 0.5}  # the same recordings: disagreement is a tie


def test_the_final_verdict_is_read_and_a_judgement_without_one_is_unparsed(tmp_path: Path, monkeypatch) -> None:
    answers = {"the cat sat on the mat": "At first glance VERDICT: FAIL, but on reflection it matches. VERDICT: PASS",
               "a dog ran": "It is partly right, so I would say PASS.",
               "birds fly south": "Unrelated. VERDICT: 7"}

    def reconsidering(body: dict[str, Any]) -> str:
        if body["model"] != JUDGE_MODEL:
            return echo_responder(body)
        graded = body["messages"][0]["content"].split("Answer to grade:\n")[1].split("\n")[0]
        return answers[graded]

    judge_project(tmp_path, PASS_FAIL)
    live, _ = record(tmp_path, monkeypatch, responder=reconsidering)
    assert values(live) == {"q1": 1, "q2": None, "q3": None}  # "VERDICT: 7" is no PASS/FAIL: unparsed, not 0
    [metric] = live.metrics
    assert metric.value == 1.0 and metric.n == 1
    assert metric.reason.endswith("2 of 3 judgements unparsed (no valid final VERDICT line, or cut off at max_tokens; not scored)")
    assert live.meta["model_calls"]["quality"]["unparsed_examples"] == ["q2#0", "q3#0"]


def test_an_answer_the_model_under_test_never_gave_is_the_worst_outcome_and_not_sent(tmp_path: Path, monkeypatch) -> None:
    judge_project(tmp_path, SCALE)
    [case_run] = load_suite(tmp_path / "cases" / "graded.yaml", tmp_path)
    settings = runner.RunSettings(rootdir=tmp_path, record_mode="once", engine=EngineSettings(max_retries=0))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ChatServer(judge_responder, rate_limit_first=1) as server:  # the first request gets a 429, not retried
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        live = runner.run_item(case_run, settings)
    [failed] = [r.example_id for r in live.records if r.error]
    assert values(live)[failed] == 1  # the bottom of the scale
    assert [body["model"] for body in server.requests].count(JUDGE_MODEL) == 2


def write(root: Path, judge_yaml: str) -> Path:
    path = root / "cases" / "graded.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent("""\
        suite: graded
        cases:
          - id: answers
            model: {name: test-model}
            dataset: {examples: [{text: hi, expected: hello}]}
            prompt: {user: "{{ text }}"}
            metrics:
              quality:
                judge:
        """) + textwrap.indent(textwrap.dedent(judge_yaml), " " * 10))
    return path


@pytest.mark.parametrize(("model", "warned"), [
    ("name: gpt-4o", True),
    ("name: gpt-4.1", True),
    ("{provider: azure_openai, name: my-judge}", True),
    ("name: gpt-4o-2024-08-06", False),
    ("name: claude-3-5-sonnet-20241022", False),
    ("name: gemini-1.5-pro-002", False),
    ("name: gpt-4-0613", False),
    ("{name: gpt-4o, base_url: 'http://127.0.0.1:8080/v1'}", False),
])
def test_a_hosted_judge_without_a_pinned_version_is_warned_about_at_its_line(tmp_path: Path, model: str,
                                                                             warned: bool) -> None:
    spec = f"model:\n  {model}\n" if model.startswith("name") else f"model: {model}\n"
    path = write(tmp_path, spec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_suite(path, tmp_path)
    found = [w for w in caught if issubclass(w.category, CaseFileWarning)]
    assert bool(found) == warned
    if warned:
        [warning] = found
        assert (warning.filename, warning.lineno) == ("cases/graded.yaml", 11 if model.startswith("name") else 10)
        assert str(warning.message).startswith("metrics.quality.judge.model.name: judge model ")
        assert "has no date or version suffix" in str(warning.message) and "gpt-4o-2024-08-06" in str(warning.message)


@pytest.mark.parametrize(("judge_yaml", "message"), [
    ("model: {name: j-2025-01-01}\nscale: [5, 1]\n", "judge.scale: Value error, give [low, high] with low < high"),
    ("model: {name: j-2025-01-01}\nrubrik: x\n", "judge.rubrik: Extra inputs are not permitted"),
    ("model: {name: j-2025-01-01}\ncompare: expected\nscale: [1, 5]\n", "pairwise judging (compare) gives A, B or TIE"),
    ("model: {name: j-2025-01-01}\ntemplate: '{{ answer '\n", "judge.template: template syntax error on line 1"),
    ("model: {name: j-2025-01-01, temprature: 0}\n", "judge.model.temprature: Extra inputs are not permitted"),
])
def test_a_judge_that_cannot_work_fails_at_load_time_at_the_metric_line(tmp_path: Path, judge_yaml: str,
                                                                       message: str) -> None:
    path = write(tmp_path, judge_yaml)
    with pytest.raises(CaseFileError) as raised:
        load_suite(path, tmp_path)
    assert str(raised.value).startswith("cases/graded.yaml:8: metrics.quality: ") and message in str(raised.value)


def test_a_judge_with_thresholds_off_its_scale_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "model: {name: j-2025-01-01}\nscale: [1, 5]\n")
    path.write_text(path.read_text() + "          min: 7\n".replace("          ", "        "))
    with pytest.raises(CaseFileError, match=r"metrics.quality.min: 7 is outside 1..5"):
        load_suite(path, tmp_path)


def test_eval_rejudge_from_the_command_line_sends_nothing_to_the_model_under_test(pytester: pytest.Pytester) -> None:
    """The option through pytest: the case file's judge re-runs, the model under test's cassette only replays."""
    make_project(pytester)
    judge_project(pytester.path, SCALE)
    with ChatServer(judge_responder) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY}
        first = run_pytest(pytester, "cases/graded.yaml", "--record-mode=once", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        recorded = len(server.requests)
        again = run_pytest(pytester, "cases/graded.yaml", "--eval-rejudge", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
    assert recorded == 6 and {b["model"] for b in server.requests[recorded:]} == {JUDGE_MODEL}
    assert len(server.requests) == recorded + 3
    report = json.loads((pytester.path / "reports" / "report.json").read_text())
    [item] = [i for i in report["items"] if i["suite"] == "graded"]
    assert item["meta"]["model_calls"]["quality"]["model"]["name"] == JUDGE_MODEL
    assert math.isclose(item["metrics"][0]["value"], 8 / 3)


def test_a_judgement_cut_off_at_its_token_limit_is_unparsed_whatever_verdict_it_was_reasoning_about() -> None:
    from evalsuite.metrics._judge_prompt import final_verdict
    from evalsuite.records import Answer

    cut = Answer("q1", 0, text="I'd say verdict: FAIL at first, but\nVERDICT:", finish_reason="length")
    assert final_verdict(cut) is None
    done = Answer("q1", 0, text="I'd say verdict: FAIL at first, but it matches.\nVERDICT: PASS", finish_reason="stop")
    verdict = final_verdict(done)
    assert verdict is not None and verdict.value == "PASS"
