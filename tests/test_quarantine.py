"""quarantine.yaml: entries are validated with their line, match items by identity, node id or glob, and expire loudly.
(A quarantined item's failure reported as xfailed in every report: tests/test_plugin.py.)"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from evalsuite.errors import CaseFileError, QuarantineError
from evalsuite.quarantine import find_entry, load_quarantine
from tests._support.project import make_project, run

TODAY = datetime.date(2026, 12, 2)
ENTRIES = """\
- item: reviews::sentiment[terse-t0.7]
  reason: flips at temperature 0.7
  owner: alice
  expires: 2026-12-02
- item: "cases/other.yaml::summary[*]"
  reason: judge model drifts
  owner: bob
  expires: 2027-01-31
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "quarantine.yaml"
    path.write_text(text)
    return path


def test_entries_match_by_identity_node_id_or_glob_with_literal_brackets(tmp_path: Path) -> None:
    entries = load_quarantine(_write(tmp_path, ENTRIES), tmp_path, today=TODAY)  # expiring today still holds
    terse = find_entry(entries, ("reviews::sentiment[terse-t0.7]", "cases/reviews.yaml::sentiment[terse-t0.7]"))
    assert terse is not None and terse.owner == "alice" and terse.source == "quarantine.yaml:1"
    assert terse.to_dict() == {"item": "reviews::sentiment[terse-t0.7]", "reason": "flips at temperature 0.7",
                               "owner": "alice", "expires": "2026-12-02"}
    assert find_entry(entries, ("other::summary[t0]", "cases/other.yaml::summary[t0]")) is entries[1]
    # "[terse-t0.7]" is not a character class: "sentiment[t]" is not quarantined by the first entry.
    assert find_entry(entries, ("reviews::sentimentt", "reviews::sentiment[t]")) is None


def test_an_expired_entry_names_the_line_the_item_the_date_and_the_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, ENTRIES)
    with pytest.raises(QuarantineError) as caught:
        load_quarantine(path, tmp_path, today=TODAY + datetime.timedelta(days=1))
    message = str(caught.value)
    assert message.startswith("quarantine.yaml:4: ")
    assert "reviews::sentiment[terse-t0.7]" in message and "expired on 2026-12-02" in message
    assert "remove the entry" in message and "extend 'expires'" in message


@pytest.mark.parametrize(("text", "expected"), [
    ("- item: a\n  reason: r\n  owner: o\n  expires: 2027-01-01\n  ownr: typo\n",
     "quarantine.yaml:5: entry 1: unknown key 'ownr'"),
    ("- item: a\n  reason: r\n  expires: 2027-01-01\n", "quarantine.yaml:1: entry 1: missing 'owner'"),
    ("- item: a\n  reason: r\n  owner: o\n  expires: next week\n", "quarantine.yaml:4: entry 1: expires:"),
    ("- item: a\n  reason: r\n  owner: o\n  expires: 2027-13-01\n", "quarantine.yaml:4: invalid YAML: the tag !!timestamp does not fit the value '2027-13-01'"),
    ("item: a\n", "quarantine.yaml:1: the file must be a list of entries"),
    ("- [a, b\n", "quarantine.yaml:"),
])
def test_a_malformed_file_is_one_error_naming_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(CaseFileError) as caught:  # QuarantineError is one; invalid YAML is the YAML reader's
        load_quarantine(_write(tmp_path, text), tmp_path, today=TODAY)
    assert str(caught.value).startswith(expected), str(caught.value)


def test_an_expired_quarantine_stops_the_run_before_any_item_runs(pytester: pytest.Pytester) -> None:
    project = make_project(pytester)
    # Only bob's entry has expired, whatever today's date is (alice's is dated for the unit tests' TODAY).
    entries = ENTRIES.replace("2026-12-02", "2999-12-31").replace("2027-01-31", "2020-01-31")
    (project.path / "quarantine.yaml").write_text(entries)
    result = run(project, "cases", "-n", "2")  # under xdist too: checked on the controller at session start
    assert result.returncode == 4  # pytest's usage error
    assert "quarantine.yaml:8: the quarantine of 'cases/other.yaml::summary[*]' (owner bob) expired on 2020-01-31" \
        in result.stderr
    assert "Traceback" not in result.stdout + result.stderr and "passed" not in result.stdout
