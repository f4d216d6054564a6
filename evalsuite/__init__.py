"""evalsuite: YAML case files become recorded, statistically gated pytest regression tests for LLMs.

The public API, for conftest.py files, notebooks and packages that extend a suite::

    import evalsuite

    @evalsuite.metric("mine")        # also evalsuite.parser("name"), evalsuite.provider("name")
    def mine(scored): ...

Each name is imported on first use (module ``__getattr__``): ``import evalsuite`` (a script reading
``__version__``, a package declaring an entry point) does not pull in the SDK, vcrpy or the metrics.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalsuite.cases import load_suite
    from evalsuite.errors import EvalsuiteError
    from evalsuite.metrics import Metric, MetricInfo, metric
    from evalsuite.model import Provider, provider
    from evalsuite.parsing import parser
    from evalsuite.runner import RunSettings, run_item

try:
    __version__ = version("evalsuite")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

# public name -> the module that defines it
_EXPORTS = {
    "metric": "evalsuite.metrics",
    "Metric": "evalsuite.metrics",
    "MetricInfo": "evalsuite.metrics",
    "parser": "evalsuite.parsing",
    "provider": "evalsuite.model",
    "Provider": "evalsuite.model",
    "load_suite": "evalsuite.cases",
    "run_item": "evalsuite.runner",
    "RunSettings": "evalsuite.runner",
    "EvalsuiteError": "evalsuite.errors",
}

__all__ = ["EvalsuiteError", "Metric", "MetricInfo", "Provider", "RunSettings", "__version__", "load_suite", "metric", "parser",
           "provider", "run_item"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'evalsuite' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
