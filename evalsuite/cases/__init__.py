"""Stage 1: a YAML case file -> one ``CaseRun`` per case x variant (schema in ``schema``).

Reading with lines (``_source``), layers (``_layers``), pydantic errors as ``file:line`` messages
(``_explain``), variants (``_variants``) and the orchestration with the parser and metric checks (``_load``).
"""

from evalsuite.cases._layers import tool_settings
from evalsuite.cases._load import CaseRun, load_suite
from evalsuite.errors import CaseFileError

__all__ = ["CaseFileError", "CaseRun", "load_suite", "tool_settings"]
