"""Build the ``Scored`` answers metrics take, without a model call."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from evalsuite.records import Answer, Example, ItemResult, Scored


def scored(prediction: Any, expected: Any, *, parsed: bool = True, text: str | None = None, example_id: str = "e",
           **answer: Any) -> Scored:
    """One parsed answer; ``text`` (the raw answer) defaults to the prediction when it is a string."""
    text = text if text is not None else (prediction if isinstance(prediction, str) else None)
    return Scored(
        example=Example(id=example_id, fields={}, expected=expected),
        answer=Answer(example_id, 0, text=text, **answer),
        prompt_hash="h",
        prediction=prediction if parsed else None,
        parsed=parsed,
    )


def value_of(name: str, items: list[Scored], **params: Any) -> float:
    """The aggregate of registered metric ``name`` with ``params`` over ``items``."""
    from evalsuite.cases.schema import MetricSpec
    from evalsuite.metrics import get_metric

    metric = get_metric(name, MetricSpec(params=params))
    return metric.aggregate(metric.score(items))


REPEATS_CASE = """
cases:
  - id: echo
    model: {name: test-model, temperature: 0.7}
    repeats: %d
    dataset:
      id: id
      examples: [%s]
    prompt: {system: "Repeat the text.", user: "Text: {{ text }}"}
    metrics: {exact_match: {min: 0.9}}
"""


def score_repeats_case(root: Path, wrong: Collection[tuple[str, int]] | dict[tuple[str, int], str], *,
                       rows: int, repeats: int, baseline: Any = None) -> ItemResult:
    """A ``repeats`` case (example ``e<i>`` expects ``row <i>``) scored on answers given here, no model call:
    every sample right except those in ``wrong`` (a set, or a dict giving the wrong answer's text)."""
    from evalsuite import dataset, prompts, runner
    from evalsuite.cases import load_suite
    from evalsuite.metrics import get_metric

    rows_text = ", ".join(f"{{id: e{i}, text: 'row {i}', expected: 'row {i}'}}" for i in range(rows))
    path = root / "cases" / "repeats.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(REPEATS_CASE % (repeats, rows_text))
    [case_run] = load_suite(path, root)
    examples = dataset.load_examples(case_run.case.dataset, case_run.base_dir)
    calls = prompts.build_calls(case_run.case, examples)
    texts = wrong if isinstance(wrong, dict) else dict.fromkeys(wrong, "nope")
    answers = [Answer(c.example_id, c.sample, text=texts.get((c.example_id, c.sample), f"row {c.example_id[1:]}"))
               for c in calls]
    metrics = {name: get_metric(name, spec) for name, spec in case_run.case.metrics.items()}
    settings = runner.RunSettings(rootdir=root, baseline=baseline)
    return runner.score(case_run, examples, answers, metrics, settings, prompt_hashes=[c.prompt_hash for c in calls],
                        inputs=[runner.prompt_text(c) for c in calls])
