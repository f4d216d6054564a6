"""Debian's headless Chromium driven by Playwright: report.html as a reader's browser lays it out.

Playwright's own browser downloads are not used (they need the network): it starts the system's Chromium,
each launch with a fresh temporary profile. Tests skip, saying why, where Chromium or Playwright is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
WIDTHS = (1400, 390)  # a laptop, a phone


def skip_reason() -> str | None:
    if CHROMIUM is None:
        return "chromium is not installed (apt-get install -y chromium); .ci/run installs it"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright ``Browser``), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


# Elements wider than the viewport, outside the boxes that scroll on their own (``.scroll``): what a reader would
# have to scroll the whole page sideways to see.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.parentElement && el.parentElement.closest('.scroll');
    if (box) continue;
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > width + 1 || r.left < -1)) {
      out.push(el.tagName.toLowerCase() + '.' + (el.getAttribute('class') || '') + ' right=' + Math.round(r.right));
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, width: width, overflowing: out.slice(0, 10)};
}"""
