"""``dataset: {table: ...}``: a table or view of the active SparkSession (a Unity Catalog table on Databricks) is a
case's dataset, read like a file; a missing table or column fails collection at its line."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from evalsuite import runner
from evalsuite.cases import load_suite
from evalsuite.errors import CaseFileError
from tests._support.chat_server import ChatServer, sentiment_responder
from tests.distributed.conftest import SPARK_MARKS

pytestmark = SPARK_MARKS

CASE = """\
cases:
  - id: reviews
    model: {{name: test-model, temperature: 0}}
    dataset:
      {source}
      id: id
      expected: {expected}
      limit: 12
      shuffle: true
      seed: 3
    prompt: {{user: "Review: {{{{ text }}}}"}}
    parse: {{kind: label, labels: {{positive: [positive], negative: [negative]}}}}
    metrics: {{accuracy: {{min: 0}}}}
"""
ROWS = [{"id": f"t{i:03d}", "text": random.Random(i).choice(["good film", "bad film", "great", "boring"]),
         "label": random.Random(-i).choice(["positive", "negative"])} for i in range(40)]


def write_case(root: Path, source: str, expected: str = "label") -> Path:
    (root / "cases").mkdir(parents=True, exist_ok=True)
    path = root / "cases" / "reviews.yaml"
    path.write_text(CASE.format(source=source, expected=expected))
    return path


@pytest.fixture
def view(spark: Any) -> str:
    shuffled = random.Random(1).sample(ROWS, len(ROWS))  # a table has no order: the rows are read by dataset.id
    spark.createDataFrame(shuffled, "id string, text string, label string").createOrReplaceTempView("eval_reviews")
    return "eval_reviews"


def test_a_spark_table_is_read_like_the_same_rows_in_a_file(view: str, tmp_path: Path, monkeypatch) -> None:
    table_root, file_root = tmp_path / "table", tmp_path / "file"
    table_case = write_case(table_root, f"table: {view}")
    file_case = write_case(file_root, "path: reviews.jsonl")
    (file_root / "cases" / "reviews.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
    results = []
    with ChatServer(sentiment_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        for root, case in ((table_root, table_case), (file_root, file_case)):
            [run] = load_suite(case, root)
            results.append(runner.run_item(run, runner.RunSettings(rootdir=root, record_mode="once")))
    from_table, from_file = results
    assert from_table.n_examples == 12
    assert from_table.dataset_fingerprint == from_file.dataset_fingerprint  # the same rows, sampled the same way
    assert [(r.example_id, r.expected, r.answer) for r in from_table.records] == \
        [(r.example_id, r.expected, r.answer) for r in from_file.records]


def test_a_missing_table_or_column_fails_collection_at_its_line(view: str, tmp_path: Path) -> None:
    with pytest.raises(CaseFileError) as missing_table:
        load_suite(write_case(tmp_path, "table: no_such_table"), tmp_path)
    assert str(missing_table.value).startswith("cases/reviews.yaml:5: dataset.table 'no_such_table': "
                                               "cannot read it: AnalysisException: [TABLE_OR_VIEW_NOT_FOUND]")
    with pytest.raises(CaseFileError) as missing_column:
        load_suite(write_case(tmp_path, f"table: {view}", expected="lable"), tmp_path)
    assert str(missing_column.value).startswith("cases/reviews.yaml:7: dataset.expected: no column 'lable'; "
                                                "available: id, text, label")
