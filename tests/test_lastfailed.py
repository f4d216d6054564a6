"""pytest's cache options on case items, variants included: ``--lf`` reruns only the failed variant, ``--ff`` runs it
first, ``--sw`` stops at it and resumes from it. Run with the cacheprovider (``project.run`` disables it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import CANARY, make_project, report_json, run

FAILING = "sentiment[terse-t0]"  # a variant item, by its cassette's absence: not recorded


@pytest.fixture(scope="module")
def recorded() -> dict[str, bytes]:
    """The four cassettes, recorded by the first test that needs them and copied into every later project."""
    return {}


@pytest.fixture
def project(pytester: pytest.Pytester, recorded: dict[str, bytes]) -> pytest.Pytester:
    make_project(pytester)
    folder = pytester.path / "cassettes" / "reviews"
    if not recorded:
        with ChatServer(sentiment_responder) as server:
            result = run(pytester, "cases", "--record-mode=once",
                         env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
        assert result.returncode == 0, result.stdout + result.stderr
        recorded.update((path.name, path.read_bytes()) for path in folder.glob("*.json"))
        shutil.rmtree(pytester.path / "reports")
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in recorded.items():
        (folder / name).write_bytes(data)
    return pytester


def _pytest(project: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest as a user runs it, cache included; no credentials, so nothing can go live."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_")) and k != "CI"}
    return subprocess.run([sys.executable, "-m", "pytest", "cases", "-v", *args], cwd=project.path, env=env,
                          capture_output=True, text=True, timeout=300)


def _ran(result: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    """(item, outcome) in the order pytest ran them."""
    return re.findall(r"cases/reviews\.yaml::(\S+) (PASSED|FAILED|SKIPPED)", result.stdout)


def _cassette(project: pytest.Pytester, item: str) -> Path:
    return project.path / "cassettes" / "reviews" / f"{item}.json"


def test_lf_reruns_only_the_failed_variant(project: pytest.Pytester) -> None:
    _cassette(project, FAILING).unlink()
    first = _pytest(project)
    assert first.returncode == 1 and (FAILING, "FAILED") in _ran(first), first.stdout
    again = _pytest(project, "--lf")
    assert _ran(again) == [(FAILING, "FAILED")], again.stdout
    assert "rerun previous 1 failure" in again.stdout
    assert [item["item_id"] for item in report_json(project)["items"]] == [FAILING]


def test_ff_runs_the_failed_variant_first_then_the_rest(project: pytest.Pytester) -> None:
    _cassette(project, FAILING).unlink()
    _pytest(project)
    again = _pytest(project, "--ff")
    ran = _ran(again)
    assert ran[0] == (FAILING, "FAILED") and len(ran) == 4, again.stdout
    assert len(report_json(project)["items"]) == 4


def test_sw_stops_at_the_failed_variant_and_resumes_from_it(project: pytest.Pytester) -> None:
    saved = _cassette(project, FAILING).read_bytes()
    _cassette(project, FAILING).unlink()
    first = _pytest(project, "--sw")
    assert _ran(first) == [("sentiment[plain-t0]", "PASSED"), ("sentiment[plain-t0.7]", "PASSED"),
                           (FAILING, "FAILED")], first.stdout
    _cassette(project, FAILING).write_bytes(saved)  # fixed: re-recorded
    resumed = _pytest(project, "--sw")
    assert _ran(resumed) == [(FAILING, "PASSED"), ("sentiment[terse-t0.7]", "PASSED")], resumed.stdout
    assert "skipping 2 already passed items" in resumed.stdout
