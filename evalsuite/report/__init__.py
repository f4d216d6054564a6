"""Stage 8: reports from a run's ``list[ItemResult]``.

``terminal.render`` (the table printed at session end), ``files.write_reports`` (report.json,
report.md, report.html, and the GitHub step summary); ``common`` holds what the formats share.
"""

from __future__ import annotations

from evalsuite.report import files, terminal
from evalsuite.report.files import write_reports
from evalsuite.report.terminal import render

__all__ = ["files", "render", "terminal", "write_reports"]
