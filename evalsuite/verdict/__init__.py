"""Stage 7: per-example values -> interval, thresholds, baseline comparison -> a verdict.

``judge`` is the verdict of one metric of one item; ``agreement`` measures how repeats agree;
``load_baseline``/``write_baseline`` read and write the committed baseline that ``judge`` compares against;
``coverage`` says which items that comparison reached (new, missing, renamed).
Public modules: ``compare_runs`` re-judges two stored runs (the CLI's ``compare``), ``format`` prints
numbers the way every reason and report does, ``stats`` holds the tests and intervals.
"""

from evalsuite.verdict._agreement import Agreement, agreement
from evalsuite.verdict._compare import Gate
from evalsuite.verdict._coverage import Coverage, coverage
from evalsuite.verdict._judge import judge
from evalsuite.verdict.baseline import (Baseline, BaselineError, flipped_examples, load_baseline,
                                       write_baseline)

__all__ = ["Agreement", "Baseline", "BaselineError", "Coverage", "Gate", "agreement", "coverage", "flipped_examples",
           "judge", "load_baseline", "write_baseline"]
