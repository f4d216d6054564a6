"""The ``engine:`` key and ``--eval-engine``, the budgets a Spark task gets, and the errors without pyspark or without
a SparkSession (no Spark is started here)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from evalsuite import runner
from evalsuite.cases import load_suite
from evalsuite.cases.schema import EngineSpec
from evalsuite.distributed import task_settings
from evalsuite.errors import CaseFileError, SettingsError
from evalsuite.model import EngineSettings

REPO = Path(__file__).resolve().parents[2]
CASE = """\
cases:
  - id: echo
    model: {{name: test-model}}
    dataset:
      {source}
      expected: null
    prompt: {{user: "{{{{ text }}}}"}}
    metrics: {{completion_tokens: {{}}}}
    {engine}
"""


def write_case(root: Path, *, source: str = "examples: [{text: a}, {text: b}]", engine: str = "") -> Path:
    (root / "cases").mkdir(parents=True, exist_ok=True)
    path = root / "cases" / "echo.yaml"
    path.write_text(CASE.format(source=source, engine=engine))
    return path


def test_engine_spark_is_short_for_its_mapping_and_local_is_the_default(tmp_path: Path) -> None:
    [plain] = load_suite(write_case(tmp_path / "a"), tmp_path / "a")
    [short] = load_suite(write_case(tmp_path / "b", engine="engine: spark"), tmp_path / "b")
    [full] = load_suite(write_case(tmp_path / "c", engine="engine: {kind: spark, partitions: 8, env: [INHOUSE_KEY]}"),
                        tmp_path / "c")
    assert plain.case.engine == EngineSpec(kind="local")
    assert short.case.engine == EngineSpec(kind="spark")
    assert full.case.engine == EngineSpec(kind="spark", partitions=8, env=["INHOUSE_KEY"])


@pytest.mark.parametrize(("engine", "message"), [
    ("engine: ray", "cases/echo.yaml:9: engine: input should be 'local' or 'spark' (got 'ray')"),
    ("engine: {kind: spark, partitions: 0}", "cases/echo.yaml:9: engine.partitions: input should be greater than 0"),
    ("engine: {kind: spark, executors: 4}", "cases/echo.yaml:9: engine.executors: unknown key 'executors'; valid "
                                            "keys: concurrency, env, kind, partitions, shard_dir"),
])
def test_a_bad_engine_fails_at_its_line(tmp_path: Path, engine: str, message: str) -> None:
    with pytest.raises(CaseFileError) as raised:
        load_suite(write_case(tmp_path, engine=engine), tmp_path)
    assert str(raised.value).startswith(message)


def test_eval_engine_takes_local_or_spark() -> None:
    assert runner.RunSettings.from_options({"rootdir": ".", "engine": "spark"}).engine_kind == "spark"
    assert runner.RunSettings.from_options({"rootdir": "."}).engine_kind is None
    with pytest.raises(SettingsError, match="--eval-engine ray"):
        runner.RunSettings.from_options({"rootdir": ".", "engine": "ray"})


def test_a_tasks_budget_is_the_cases_divided_by_the_tasks_running_at_once() -> None:
    case = EngineSettings(concurrency=16, requests_per_minute=600, tokens_per_minute=90_000)
    share = task_settings(case, EngineSpec(kind="spark"), running=4)
    assert (share.concurrency, share.requests_per_minute, share.tokens_per_minute) == (4, 150, 22_500)
    assert task_settings(EngineSettings(concurrency=2), EngineSpec(kind="spark"), running=8).concurrency == 1
    per_task = task_settings(case, EngineSpec(kind="spark", concurrency=32), running=4)
    assert per_task.concurrency == 32 and per_task.requests_per_minute == 150  # the rpm stays global
    assert task_settings(EngineSettings(), EngineSpec(kind="spark"), running=2).requests_per_minute is None


def test_without_pyspark_a_table_case_fails_collection_at_its_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as where it is not installed
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(CaseFileError) as raised:
        load_suite(write_case(tmp_path, source="table: main.eval.reviews"), tmp_path)
    assert str(raised.value).startswith("cases/echo.yaml:5: dataset.table 'main.eval.reviews' needs pyspark, which is "
                                        "not installed here: pip install 'evalsuite[spark]'")


def test_without_a_spark_session_a_table_case_and_a_spark_recording_say_so(tmp_path: Path) -> None:
    """In a fresh process (this one may hold the Spark tests' session): pyspark is there, no session is."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
    table = write_case(tmp_path / "table", source="table: main.eval.reviews")
    spark = write_case(tmp_path / "spark", engine="engine: spark")
    script = textwrap.dedent(f"""
        import json
        from pathlib import Path
        from evalsuite import runner
        from evalsuite.cases import load_suite
        from evalsuite.errors import EvalsuiteError
        messages = []
        try:
            load_suite(Path({str(table)!r}), Path({str(tmp_path / "table")!r}))
        except EvalsuiteError as exc:
            messages.append(str(exc))
        root = Path({str(tmp_path / "spark")!r})
        [run] = load_suite(Path({str(spark)!r}), root)
        try:
            runner.run_item(run, runner.RunSettings(rootdir=root, record_mode="once"))
        except EvalsuiteError as exc:
            messages.append(str(exc))
        print(json.dumps(messages))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-test-key-0000", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    table_error, engine_error = json.loads(done.stdout)
    assert table_error.startswith("cases/echo.yaml:5: dataset.table 'main.eval.reviews' runs on the active "
                                  "SparkSession, and none is active in this process: start one before the run")
    assert engine_error.startswith("engine: spark runs on the active SparkSession, and none is active in this "
                                   "process")
    assert "--eval-engine local" in engine_error
    assert not (tmp_path / "spark" / "cassettes").exists() or not list((tmp_path / "spark" / "cassettes").rglob("*.json"))
