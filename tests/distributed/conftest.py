"""One local SparkSession for the whole test session (starting one costs about 15 s and a JVM).

The Spark tests are marked ``spark`` (``-m "not spark"`` leaves them out) and, under ``-n N``, run on one xdist
worker (``tests/conftest.py``); they skip, saying why, where pyspark or a Java 17+ runtime is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SPARK_MARKS = [pytest.mark.spark]


def _java_problem() -> str | None:
    """Why Spark 4 cannot start here (no Java, or one older than 17); None when it can."""
    java = shutil.which("java") or (Path(os.environ["JAVA_HOME"]) / "bin" / "java"
                                    if os.environ.get("JAVA_HOME") else None)
    if java is None:
        return "no Java runtime (Spark 4 needs Java 17+; .ci/run installs Debian's default-jre-headless)"
    try:
        banner = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.SubprocessError) as exc:
        return f"java -version failed: {exc}"
    found = re.search(r'version "(\d+)', banner)
    if found is None or int(found[1]) < 17:
        return f"Spark 4 needs Java 17+, found: {banner.splitlines()[0] if banner else 'nothing'}"
    return None


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
    problem = _java_problem()
    if problem:
        pytest.skip(problem)
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers run this venv's Python, not python3 from PATH
    session = (SparkSession.builder.master("local[2,2]")  # two task slots; a failed task is retried once
               .appName("evalsuite-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
