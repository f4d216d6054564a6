"""The SparkSession a case runs on: the active one (a Databricks notebook's ``spark``, or one a script built).

evalsuite never builds a session: on a cluster the platform made it, in a script its owner chose the master
and the configuration. Without one, the error says what is missing (pyspark, or a session) and how to get it.
"""

from __future__ import annotations

from typing import Any

from evalsuite.errors import EvalsuiteError


class SparkUnavailable(EvalsuiteError):
    """pyspark is not installed, or no SparkSession is active; the message names what needs it and the fix."""


def active_session(purpose: str, otherwise: str = "") -> Any:
    """The active (else the default) SparkSession. The error starts with ``purpose`` (``engine: spark``) and ends
    with ``otherwise``, the way around Spark (``or run with --eval-engine local``)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(f"{purpose} needs pyspark, which is not installed here: "
                               f"pip install 'evalsuite[spark]' (a Databricks cluster has it){otherwise}") from None
    try:
        session = SparkSession.active() if hasattr(SparkSession, "active") else SparkSession.getActiveSession()
        if session is None:  # before Spark 3.5: no error, no session
            raise LookupError
        return session
    except Exception:  # pyspark's NO_ACTIVE_OR_DEFAULT_SESSION
        raise SparkUnavailable(f"{purpose} runs on the active SparkSession, and none is active in this process: "
                               "start one before the run (SparkSession.builder.getOrCreate(); a Databricks notebook "
                               f"has one){otherwise}") from None
