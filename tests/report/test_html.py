"""report.html: escaped text, plots, and the page rendered by a real headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite.records import ItemResult
from evalsuite.report import write_reports
from tests._support.builders import make_item


def test_html_escapes_text(tmp_path: Path) -> None:
    item = make_item(answer_text="<script>alert(1)</script>")
    html = write_reports(tmp_path, [item], {})["html"].read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "review &lt;b&gt;" in html
    assert html.count('<img class="plot"') == 3  # metrics, confusion matrix, similarity histogram


def test_html_has_sweep_plot(tmp_path: Path, sweep: list[ItemResult]) -> None:
    html = write_reports(tmp_path, sweep, {})["html"].read_text()
    assert "Parameter sweeps" in html and "metrics vs temperature" in html
    assert html.count('<img class="plot"') == 1 + 3 * len(sweep)


def test_importing_the_reports_does_not_import_matplotlib() -> None:
    code = "import sys, evalsuite.report; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.querySelectorAll('img.plot')];
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-decoded', imgs.filter(i => i.complete && i.naturalWidth > 0).length);
});
</script></body>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium); "
                                              ".ci/run installs it")
def test_html_plots_decode_in_a_real_browser(tmp_path: Path, sweep: list[ItemResult]) -> None:
    html_path = write_reports(tmp_path, sweep, {})["html"]
    probe = tmp_path / "probe.html"  # the report itself carries no script; the probe copy adds one
    probe.write_text(html_path.read_text().replace("</body>", _PROBE))
    dom = _chromium(tmp_path, "--dump-dom", probe.as_uri()).stdout
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    decoded = int(re.search(r'data-decoded="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    assert images == 10 and decoded == images

    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", html_path.as_uri())
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] >= 1000 and pixels.std() > 0.05  # not a blank page
    blue = (pixels[..., 2] > 0.6) & (pixels[..., 0] < 0.4)  # the plots' bars are the only strong blue
    assert blue.mean() > 0.001


def test_html_shows_outcomes_p_methods_flips_with_both_answers_quarantine_and_coverage(
        tmp_path: Path, annotated: list[ItemResult]) -> None:
    coverage = {"lines": ["coverage: 1 baseline item did not run: sentiment::old"]}
    html = write_reports(tmp_path, annotated, {"coverage": coverage})["html"].read_text()
    assert '<td class="not_recorded">not recorded</td>' in html and "200 call(s) not recorded" in html
    assert "<th>p (drop)</th><th>MDE</th>" in html and "<td>p&lt;0.001 exact</td><td class=num>0.083</td>" in html
    assert "5 example(s) flipped against the baseline" in html
    assert "<td>positive</td><td>negative 4</td>" in html
    assert "flips at t0.5; owner alice, until 2027-01-31" in html and "probability 0.310" in html
    assert "<h2>Baseline coverage</h2><ul><li>coverage: 1 baseline item did not run: sentiment::old</li>" in html


def test_report_json_with_every_new_field_matches_its_schema(tmp_path: Path, annotated: list[ItemResult]) -> None:
    import json

    import jsonschema

    from evalsuite.report.json import SCHEMA_PATH

    doc = json.loads(write_reports(tmp_path, annotated, {"coverage": {"missing": []}})["json"].read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(doc)
    assert [i["status"] for i in doc["items"]][-1] == "not_recorded"
