"""The registry: names, did-you-mean errors, parameter checks, decorator variants and function metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite.cases.schema import MetricSpec
from evalsuite.errors import EvalsuiteError, MetricError, MetricParamError, UnknownName
from evalsuite.metrics import REQUIRED, Metric, get_metric, metric, names
from evalsuite.records import Scored
from tests._support.project import run
from tests._support.scored import scored


def test_names_and_metric_attributes():
    assert names() == sorted(names(), key=str.lower)
    assert set(names()) == {
        "accuracy", "precision", "recall", "f1", "exact_match", "contains", "regex_match", "sacrebleu", "bleu", "chrf",
        "rouge1", "rouge2", "rougeL", "rougeLsum", "perplexity", "latency_p50", "latency_p95", "prompt_tokens",
        "completion_tokens", "tool_called", "tool_args_match", "no_tool_call", "json_schema", "semantic_similarity",
    }  # fmt: skip
    params = {"regex_match": {"pattern": "x"}, "json_schema": {"schema": {"type": "object"}},
              "semantic_similarity": {"model": {"name": "embedder"}}}
    for name in names():
        metric = get_metric(name, MetricSpec(params=params.get(name, {})))
        assert metric.name == name and metric.kind in ("proportion", "mean", "corpus") and metric.definition


def test_unknown_metric_lists_valid_names_and_suggests_one():
    with pytest.raises(UnknownName) as info:
        get_metric("acuracy", MetricSpec())
    message = str(info.value)
    assert message.startswith("unknown metric 'acuracy'; did you mean 'accuracy'? valid: accuracy, bleu, chrf,")
    assert str(UnknownName("metric", "zzzzzz", ["accuracy", "f1"])) == "unknown metric 'zzzzzz'; valid: accuracy, f1"


def test_parameter_errors_name_the_fix():
    with pytest.raises(MetricParamError, match=r"f1: unknown parameter 'averge'; did you mean 'average'\? valid: average, pos_label$"):
        get_metric("f1", MetricSpec(params={"averge": "macro"}))
    with pytest.raises(MetricParamError, match="average must be one of macro, micro, binary, weighted; got 'mean'"):
        get_metric("f1", MetricSpec(params={"average": "mean"}))
    with pytest.raises(MetricParamError, match="binary needs pos_label"):
        get_metric("f1", MetricSpec(params={"average": "binary"}))
    with pytest.raises(MetricParamError, match="'pattern' is required"):
        get_metric("regex_match", MetricSpec())
    with pytest.raises(MetricParamError, match="not a valid regular expression"):
        get_metric("regex_match", MetricSpec(params={"pattern": "("}))
    with pytest.raises(MetricParamError, match="use_stemmer must be true or false"):
        get_metric("rouge1", MetricSpec(params={"use_stemmer": "yes"}))
    with pytest.raises(MetricParamError, match="accuracy: unknown parameter 'average'; valid: none"):
        get_metric("accuracy", MetricSpec(params={"average": "macro"}))


def test_short_form_keys_are_parameters():
    metric = get_metric("f1", MetricSpec.model_validate({"average": "micro", "min": 0.8}))
    assert metric.params == {"average": "micro", "pos_label": None}
    assert "micro-averaged" in metric.definition


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Metrics registered by a test are forgotten after it."""
    from evalsuite.metrics import _registry

    monkeypatch.setattr(_registry._METRICS, "_entries", dict(_registry._METRICS._entries))


def test_decorator_arguments_make_variants_of_one_class():
    rouge2, f1 = get_metric("rouge2"), get_metric("f1")
    assert (rouge2.name, rouge2.rouge_type, f1.name, f1.index) == ("rouge2", "rouge2", "f1", 2)
    assert type(get_metric("rouge1")).__mro__[1] is type(rouge2).__mro__[1]  # both variants of one Rouge class


def test_a_class_registers_with_its_defaults_checked(registry):
    @metric("longer_than")
    class LongerThan(Metric):
        kind = "proportion"
        defaults = {"words": REQUIRED, "strict": True}

        def describe(self) -> str:
            return f"share of answers longer than {self.params['words']} words"

        def score(self, scored):
            return [int(len((s.answer.text or "").split()) > self.params["words"]) for s in scored]

    built = get_metric("longer_than", MetricSpec.model_validate({"words": 2}))
    assert isinstance(built, LongerThan) and built.score([scored("a b c", None), scored("a", None)]) == [1, 0]
    assert "longer_than" in names()
    with pytest.raises(MetricParamError, match=r"longer_than: unknown parameter 'word'; did you mean 'words'\? valid: words, strict$"):
        get_metric("longer_than", MetricSpec.model_validate({"word": 2}))
    with pytest.raises(MetricParamError, match="parameter 'words' is required"):
        get_metric("longer_than")


def test_a_function_is_a_per_example_metric(registry):
    @metric("starts_with")
    def starts_with(answer: Scored, *, prefix: str = "A", ignore_case: bool = False) -> bool | None:
        """Share of answers starting with the prefix."""
        if answer.answer.text is None:
            return None
        text = answer.answer.text.casefold() if ignore_case else answer.answer.text
        return text.startswith(prefix.casefold() if ignore_case else prefix)

    items = [scored("Apple", None), scored("apple", None), scored(None, None, parsed=False, error="x")]
    built = get_metric("starts_with")
    values = built.score(items)
    assert values == [1, 0, None] and built.kind == "proportion"
    assert built.aggregate(values) == 0.5
    assert built.definition == "Share of answers starting with the prefix. (prefix='A', ignore_case=False)"
    lenient = get_metric("starts_with", MetricSpec(params={"ignore_case": True}))
    assert lenient.aggregate(lenient.score(items)) == 1.0
    assert starts_with(items[0]) is True  # the decorator returns the function itself
    with pytest.raises(MetricParamError, match=r"unknown parameter 'prefx'; did you mean 'prefix'\? valid: prefix, ignore_case$"):
        get_metric("starts_with", MetricSpec(params={"prefx": "B"}))
    with pytest.raises(MetricParamError, match="ignore_case must be true or false"):
        get_metric("starts_with", MetricSpec(params={"ignore_case": "yes"}))


def test_a_function_returning_numbers_is_a_mean_unless_declared(registry):
    metric("length")(lambda answer: len(answer.answer.text or ""))
    metric("hit", kind="proportion", higher_is_better=False)(lambda answer: int(bool(answer.answer.text)))
    items = [scored("ab", None), scored("abcd", None)]
    length, hit = get_metric("length"), get_metric("hit")
    assert length.aggregate(length.score(items)) == 3.0 and length.kind == "mean"
    hit.score(items)
    assert hit.kind == "proportion" and not hit.higher_is_better
    with pytest.raises(MetricError, match=r"returned 'x' for example 'e'; return a number, a bool, or None"):
        metric("texty")(lambda answer: "x")
        get_metric("texty").score(items)


def test_one_name_twice_is_an_error(registry):
    def first(answer: Scored) -> float:
        return 1.0

    def second(answer: Scored) -> float:
        return 2.0

    metric("twice")(first)
    with pytest.raises(EvalsuiteError, match="metric 'twice' is registered twice"):
        metric("twice")(second)
    with pytest.raises(EvalsuiteError, match="has no attribute 'rouge_tpye'"):
        metric("rouge9", rouge_tpye="rouge1")(type(get_metric("rouge1")).__mro__[1])



SAYS = """
import evalsuite


@evalsuite.metric("says")
def says(scored) -> bool:
    return scored.prediction == {label!r}
"""


def define(path: Path, label: str) -> None:
    """Run a conftest-like file as pytest's default import mode does: module ``conftest``, whatever its folder."""
    code = compile(SAYS.format(label=label), str(path), "exec")
    exec(code, {"__name__": "conftest"})


def test_sibling_conftests_defining_one_name_are_an_error_and_a_reimport_is_not(registry, tmp_path: Path):
    define(tmp_path / "a" / "conftest.py", "positive")
    define(tmp_path / "a" / "conftest.py", "positive")  # the same file imported again: the same definition
    with pytest.raises(EvalsuiteError) as info:
        define(tmp_path / "b" / "conftest.py", "negative")
    assert str(info.value) == (
        f"metric 'says' is registered twice (conftest.says in {tmp_path / 'a' / 'conftest.py'} and conftest.says "
        f"in {tmp_path / 'b' / 'conftest.py'}); rename one"
    )
    assert get_metric("says").score([scored("positive", None)]) == [True]  # the first definition stays


SAYS_CLASS = """
import evalsuite


@evalsuite.metric("says")
class Says(evalsuite.Metric):
    kind = "proportion"

    def score(self, scored):
        return [s.prediction == {label!r} for s in scored]
"""


def test_sibling_conftest_classes_of_one_name_fail_collection(pytester: pytest.Pytester):
    for folder in ("a", "b"):
        (pytester.path / folder).mkdir()
        (pytester.path / folder / "conftest.py").write_text(SAYS_CLASS.format(label=folder))
        (pytester.path / folder / f"test_{folder}.py").write_text("def test_nothing():\n    pass\n")
    result = run(pytester, "--collect-only", "-q")
    assert result.returncode != 0
    assert (f"metric 'says' is registered twice (conftest.Says in {pytester.path / 'a' / 'conftest.py'} and "
            f"conftest.Says in {pytester.path / 'b' / 'conftest.py'}); rename one") in result.stdout, result.stdout

ENTRY_POINT_MODULE = '''
import evalsuite.metrics


def shouting(answer, *, mark="!"):
    """Share of answers ending in the mark."""
    return (answer.answer.text or "").endswith(mark)
'''


def installed_metric_package(folder: Path) -> None:
    """What ``pip install`` of a package declaring ``[project.entry-points."evalsuite.metrics"]`` leaves behind."""
    (folder / "shout_metrics.py").write_text(ENTRY_POINT_MODULE)
    info = folder / "shout_metrics-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-metrics\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[evalsuite.metrics]\nshouting = shout_metrics:shouting\n")


def test_get_metric_finds_an_entry_point_metric(tmp_path: Path):
    installed_metric_package(tmp_path)
    script = (
        "from evalsuite.metrics import get_metric, names\n"
        "from tests._support.scored import scored\n"
        "m = get_metric('shouting')\n"
        "print('shouting' in names(), m.score([scored('hey!', None), scored('hey', None)]), m.kind)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parents[2])])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "True [1, 0] proportion", done.stderr
