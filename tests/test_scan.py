"""``evalsuite scan``: secret-looking text in cassettes and reports is found, named by kind, never printed."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from evalsuite.scan import main
from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import CANARY, make_project, run

ROOT = Path(__file__).resolve().parents[1]
ONE_ITEM = ("-k", "plain and t0 and not t0.7")
# Key shapes built at run time, so this file itself holds none (other scanners read it too).
SHAPES = {
    "OpenAI-style API key": "sk-" + "proj-" + "Ab3" * 10,
    "Azure API key": '"api-key": ["' + "0f" * 16 + '"]',
    "bearer token": "Bearer " + "tok." * 6,
    "AWS access key id": "AKIA" + "Q7" * 8,
    "GitHub token": "ghp" + "_" + "x9" * 18,
    "JSON Web Token": ".".join(["eyJ" + "hbGciOiJIUzI1NiJ9", "eyJ" + "zdWIiOiIxMjM0NTY3ODkwIn0", "abcdefghijkl"]),
}


def test_known_key_shapes_are_listed_by_file_line_and_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cassettes").mkdir()
    lines = ["{", *(f'  "k{i}": "{value}",' for i, value in enumerate(SHAPES.values())), '  "ok": "[REDACTED]"', "}"]
    (tmp_path / "cassettes" / "item.json").write_text("\n".join(lines))
    assert main([], cwd=tmp_path, environ={}) == 1
    out, err = capsys.readouterr()
    for line, kind in enumerate(SHAPES, start=2):
        assert f"cassettes/item.json:{line}: {kind}" in out, out
    assert not any(value in out + err for value in SHAPES.values())
    assert "1 of 1 files" in err and "rotated" in err


def test_environment_secrets_are_found_in_every_encoding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "pw/'q-8a7d6c"
    escaped = "".join(f"\\u{ord(c):04x}" for c in secret)
    basic = base64.b64encode(f"me:{secret}".encode()).decode()
    mixed = "pw\\/'\\u0071-8a7d6c"  # some characters escaped, some not: found by decoding the JSON string
    references = "pw/&#39;&#x71;-8a7d&#54;c"  # an HTML page's character references, decimal and hex
    report = tmp_path / "reports" / "report.md"
    report.parent.mkdir()
    report.write_text("\n".join(["clean", f'"{escaped}"', quote(secret, safe=""), f"Basic {basic}", f'"{mixed}"',
                                 f"<p>{references}</p>"]))
    assert main([], cwd=tmp_path, environ={"DB_PASSWORD": secret}) == 1
    out = capsys.readouterr().out
    assert "reports/report.md:2: the value of $DB_PASSWORD (JSON \\u-escaped)" in out
    assert "reports/report.md:3: the value of $DB_PASSWORD (URL-encoded)" in out
    assert "reports/report.md:4: the value of $DB_PASSWORD (base64)" in out
    assert "reports/report.md:5: the value of $DB_PASSWORD (as is), in an escaped JSON string" in out
    assert "reports/report.md:6: the value of $DB_PASSWORD (as is), written with HTML character references" in out
    assert "8a7d6c" not in out


def test_the_projects_eval_redact_list_is_looked_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\neval_cassette_dir = recorded\neval_redact =\n"
                                         "    acct-literal-77\n    re:cust-[0-9]{6}\n")
    (tmp_path / "recorded").mkdir()
    (tmp_path / "recorded" / "a.json").write_text("acct-literal-77\ncust-123456\ncust-12\n")
    (tmp_path / "sub").mkdir()
    assert main([], cwd=tmp_path / "sub", environ={}) == 1  # the config is found above the working directory
    out = capsys.readouterr().out
    assert "a.json:1: an eval_redact value (as is)" in out
    assert "a.json:2: a match of the eval_redact pattern 'cust-[0-9]{6}'" in out
    assert ":3:" not in out
    (tmp_path / "pytest.ini").write_text("[pytest]\neval_redact = re:(unclosed\n")
    assert main([], cwd=tmp_path, environ={}) == 2
    assert "not a valid regular expression" in capsys.readouterr().err


def test_clean_files_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.json").write_text('{"headers": {"authorization": ["[REDACTED]"]}, "text": "Bearer [REDACTED]"}')
    assert main(["a.json"], cwd=tmp_path, environ={}) == 0
    assert capsys.readouterr().out == "evalsuite scan: no secrets found in 1 files\n"
    assert main(["missing.json"], cwd=tmp_path, environ={}) == 2
    assert "missing.json: no such file or directory" in capsys.readouterr().err


def test_the_committed_cassettes_and_reports_are_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([], cwd=ROOT) == 0, capsys.readouterr().out
    assert capsys.readouterr().out.startswith("evalsuite scan: no secrets found in ")


def test_a_recorded_project_holds_no_secret_anywhere(pytester: pytest.Pytester) -> None:
    """A dataset row holding an environment secret and a value of the user's list, recorded through pytest,
    then replayed offline: neither reaches a cassette or a report, and `python -m evalsuite scan` agrees."""
    project = make_project(pytester)
    project.makeini("[pytest]\neval_redact =\n    internal-host-4711\n")
    rows = project.path / "cases" / "data" / "reviews.jsonl"
    lines = rows.read_text().splitlines()
    lines[0] = json.dumps({"id": "r1", "text": f"great, I love it {CANARY} internal-host-4711", "label": 1})
    rows.write_text("\n".join(lines) + "\n")
    with ChatServer(sentiment_responder) as server:
        live = run(project, "cases", *ONE_ITEM, "--record-mode=once",
                   env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
        assert live.returncode == 0, live.stdout + live.stderr
    assert any(CANARY in json.dumps(body) for body in server.requests)  # it was sent: the row holds it
    replay = run(project, "cases", *ONE_ITEM, env={"OPENAI_API_KEY": CANARY})  # no server: replay only, same environment
    assert replay.returncode == 0, replay.stdout + replay.stderr
    written = [p for d in ("cassettes", "reports") for p in (project.path / d).rglob("*") if p.is_file()]
    assert len(written) == 4  # 1 cassette, 3 reports
    for path in written:
        text = path.read_text()
        assert CANARY not in text and "internal-host-4711" not in text, path
    assert "[REDACTED:OPENAI_API_KEY]" in (project.path / "reports" / "report.json").read_text()
    scan = subprocess.run([sys.executable, "-m", "evalsuite", "scan"], cwd=project.path, capture_output=True,
                          text=True, timeout=60, check=False, env={"OPENAI_API_KEY": CANARY, "PATH": "/usr/bin:/bin"})
    assert (scan.returncode, scan.stdout) == (0, "evalsuite scan: no secrets found in 4 files\n"), scan.stderr
