"""Scale-out: a case's live model calls spread over a cluster, recorded into the same cassettes (``engine: spark``).

``answer_calls_spark`` has the shape of the model stage's door (``evalsuite.model.answer_calls``) and gives the
same answers; replay never needs Spark. ``active_session`` is the one way evalsuite finds a SparkSession (the
``engine: spark`` calls and ``dataset.table`` rows). pyspark is imported only when one of them needs it.
"""

from evalsuite.distributed._session import SparkUnavailable, active_session
from evalsuite.distributed._spark import answer_calls_spark, collect_rows, task_settings, task_slots

__all__ = ["SparkUnavailable", "active_session", "answer_calls_spark", "collect_rows", "task_settings", "task_slots"]
