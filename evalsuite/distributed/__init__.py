"""Scale-out: a case's live model calls spread over a cluster, recorded into the same cassettes (``engine: spark``).

``send_on_spark`` sends an item's live calls from Spark tasks and merges what they recorded into its cassette;
replay never needs Spark. ``active_session`` is the one way evalsuite finds a SparkSession (the
``engine: spark`` calls and ``dataset.table`` rows). pyspark is imported only when one of them needs it.
"""

from evalsuite.distributed._session import SparkUnavailable, active_session
from evalsuite.distributed._spark import cancel_jobs, send_on_spark, task_settings

__all__ = ["SparkUnavailable", "active_session", "cancel_jobs", "send_on_spark", "task_settings"]
