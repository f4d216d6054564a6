"""The table printed at session end and by ``evalsuite compare``."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from evalsuite.records import ItemResult
from evalsuite.report import render, write_reports
from tests._support.builders import make_item


def test_terminal_table_fits_and_puts_regressions_first(sweep: list[ItemResult]) -> None:
    text = render(sweep)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert lines[0].startswith("evalsuite: 3 items: 1 passed, 2 failed (1 regression)")
    rows = [line for line in lines if line.startswith("sentiment[")]
    assert rows[0].startswith("sentiment[t1.0]") and rows[0].endswith("REGRESSION")
    assert rows[1].startswith("sentiment[t0.5]") and rows[1].endswith("FAIL")
    assert re.search(r"accuracy\s+0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]\s+>= 0\.500\s+-0\.\d{3} p<0\.001", rows[0])
    assert "sentiment[t0.5]: 4 unparsed, 1 errors (1 api)" in text
    assert "why:" in text and "below min 0.800" in text


def test_repeats_show_per_example_agreement(tmp_path: Path) -> None:
    item = make_item(0.7, n=6)
    # Three samples of each example: examples 0 and 1 disagree with themselves once.
    records = []
    for r in item.records:
        for sample in range(3):
            flip = sample == 2 and r.example_id in ("ex0", "ex1")
            records.append(dataclasses.replace(r, sample=sample, prediction="other" if flip else r.prediction))
    item.records = records
    item.agreement = (4 * 1.0 + 2 * (2 / 3)) / 6
    text = render([item])
    assert "sentiment[t0.7]: 3 samples per example, agreement 0.889; 2 of 6 examples not unanimous" in text
    paths = write_reports(tmp_path, [item], {"record_mode": "none"})
    assert "2 of 6 examples not unanimous" in paths["md"].read_text()
