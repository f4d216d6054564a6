"""Stage 7: per-example values -> interval, thresholds, baseline comparison -> a verdict.

``judge`` is the verdict of one metric of one item; ``agreement`` measures how repeats agree;
``load_baseline``/``write_baseline`` read and write the committed baseline that ``judge`` compares against;
``coverage`` says which items that comparison reached (new, missing, renamed).
Public modules: ``compare_runs`` re-judges two stored runs (the CLI's ``compare``), ``format`` prints
numbers the way every reason and report does, ``stats`` holds the tests and intervals.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalsuite.verdict._agreement import Agreement, agreement
    from evalsuite.verdict._compare import Gate
    from evalsuite.verdict._coverage import Coverage, coverage
    from evalsuite.verdict._judge import judge
    from evalsuite.verdict.baseline import Baseline, BaselineError, flipped_examples, load_baseline, write_baseline

# Each name is imported on first use: collection needs ``verdict.baseline`` (which file defines a case), not the
# statistics (numpy) that judging loads.
_EXPORTS = {
    "Agreement": "_agreement", "agreement": "_agreement", "Gate": "_compare", "Coverage": "_coverage",
    "coverage": "_coverage", "judge": "_judge", "Baseline": "baseline", "BaselineError": "baseline",
    "flipped_examples": "baseline", "load_baseline": "baseline", "write_baseline": "baseline",
}

__all__ = ["Agreement", "Baseline", "BaselineError", "Coverage", "Gate", "agreement", "coverage", "flipped_examples",
           "judge", "load_baseline", "write_baseline"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'evalsuite.verdict' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"evalsuite.verdict.{_EXPORTS[name]}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value
