"""``evalsuite view``: the report served on 127.0.0.1, fetched as a browser would (urllib), without a browser."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from evalsuite import cli
from evalsuite.report import write_reports
from evalsuite.report._view import serve
from tests._support.builders import make_item

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    write_reports(tmp_path / "reports", [make_item()], {})
    return tmp_path / "reports"


def test_the_served_page_is_the_report_on_the_loopback_interface(reports: Path) -> None:
    server, url = serve(reports)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.server_address[0] == "127.0.0.1" and url.startswith("http://127.0.0.1:")
        assert url.endswith("/report.html")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == (reports / "report.html").read_bytes()
        with urllib.request.urlopen(url.replace("report.html", "report.json"), timeout=10) as response:
            assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_a_folder_without_a_report_is_one_line_naming_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["view", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path}/report.html: no such report" in err and "pytest cases" in err


def test_the_command_prints_the_url_serves_it_and_opens_it_in_the_browser(reports: Path, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.py"  # a stand-in for the browser: webbrowser runs $BROWSER with the URL
    browser.write_text(f"import os, sys\nopen({str(opened)!r} + '.part', 'w').write(sys.argv[1])\n"
                       f"os.replace({str(opened)!r} + '.part', {str(opened)!r})\n")
    env = {"PATH": "/usr/bin:/bin", "BROWSER": f"{sys.executable} {browser} %s", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "evalsuite", "view", str(reports / "report.html"), "--open"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:") and line.rstrip().endswith("/report.html (Ctrl-C to stop)")
        url = line.split()[1]
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"evalsuite report" in response.read()
        deadline = time.monotonic() + 20
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert opened.read_text() == url
    finally:
        process.terminate()
        process.wait(timeout=10)
