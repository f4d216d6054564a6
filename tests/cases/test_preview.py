"""Loading a case renders its templates on the dataset's first rows: a missing file, column or template
variable fails at load (so at ``pytest --collect-only``) with the line of the key that is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._support.case_files import error, load, write

CASE = """\
cases:
  - id: reviews
    model: {name: m, temperature: 0}
    dataset:
      path: data/reviews.jsonl
      id: rid
      expected: label
      columns: {text: review}
    prompt:
      system: Classify.
      user: |
        Review:
        {{ text }}
        Sentiment:
    variants:
      prompts:
        plain: {}
        terse: {user: "{{ text }}?"}
    parse: {kind: label, labels: {positive: [positive], negative: [negative]}}
    metrics: [accuracy]
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    rows = [{"rid": f"r{i}", "review": "fine", "label": "positive"} for i in range(3)]
    rows.append({"rid": "r3", "review": "never read at load", "label": "positve"})  # the fourth row: a run finds it
    write(tmp_path, "".join(json.dumps(row) + "\n" for row in rows), "cases/data/reviews.jsonl")
    return tmp_path


def test_a_healthy_case_loads_and_only_its_first_rows_are_read(root: Path) -> None:
    assert [run.item_id for run in load(root, CASE)] == ["reviews[plain]", "reviews[terse]"]


@pytest.mark.parametrize("old,new,expected", [
    ("path: data/reviews.jsonl", "path: data/review.jsonl",
     "cases/x.yaml:5: dataset.path 'data/review.jsonl': no such file"),
    ("columns: {text: review}", "columns: {text: body}",
     "cases/x.yaml:8: dataset.columns.text: no column 'body'; available: rid, review, label"),
    ("      expected: label\n", "",
     "cases/x.yaml:4: dataset.expected: no column 'expected'; available: rid, review, label"),
    ("        {{ text }}\n", "        {{ txt }}\n",
     "cases/x.yaml:13: prompt.user (example 'r0'): undefined variable 'txt'; available fields: example_id, expected, "
     "review, rid, text"),
    ("        {{ text }}\n", "        {{ 1 // 0 }}\n",
     ("cases/x.yaml:13: prompt.user (example 'r0'): the template failed on line 2: ZeroDivisionError: integer "
      "division or modulo by zero")),
    ("terse: {user: \"{{ text }}?\"}", "terse: {user: \"{{ text }?\"}",
     "cases/x.yaml:18: variants.prompts.terse.user: template syntax error on line 1: unexpected '}'"),
    ("system: Classify.", "system: \"{% if %}\"",
     "cases/x.yaml:10: prompt.system: template syntax error on line 1"),
    ("labels: {positive: [positive], negative: [negative]}", "labels: {pos: [positive], neg: [negative]}",
     "cases/x.yaml:7: dataset.expected: example 'r0' expects 'positive', which is not one of parse.labels (pos, neg)"),
], ids=["missing-file", "missing-column", "missing-expected", "undefined-variable", "template-exception",
        "variant-syntax", "system-syntax", "label-not-produced"])
def test_a_broken_dataset_or_template_fails_at_the_line_of_its_key(root: Path, old: str, new: str,
                                                                   expected: str) -> None:
    assert old in CASE
    message = error(root, CASE.replace(old, new))
    assert message.startswith(expected), message


def test_a_hub_dataset_is_not_fetched_at_load(tmp_path: Path) -> None:
    text = CASE.replace("      path: data/reviews.jsonl\n", "      hf: no-such-user/no-such-dataset\n")
    assert len(load(tmp_path, text.replace("{{ text }}", "{{ anything }}"))) == 2
