"""Stage 1: a YAML case file -> one ``CaseRun`` per case x variant (schema in ``schema``)."""

from evalsuite.cases._load import CaseFileError, CaseRun, load_suite, tool_settings

__all__ = ["CaseFileError", "CaseRun", "load_suite", "tool_settings"]
