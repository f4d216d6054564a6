"""Stage 8: reports from a run's ``list[ItemResult]``.

``render`` is the table printed at session end and by ``evalsuite compare``; ``write_reports`` writes one
file per format (``json``, ``markdown``, ``html`` modules) and the GitHub step summary.
"""

from __future__ import annotations

from evalsuite.report._write import WRITERS, write_reports
from evalsuite.report.terminal import render

__all__ = ["WRITERS", "render", "write_reports"]
