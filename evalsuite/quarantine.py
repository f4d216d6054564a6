"""quarantine.yaml: known-flaky items that still run, but whose failure is an expected failure (pytest xfail).

Why a committed file and an expiry date: a quarantine is a decision someone owns, reviewed like code, and it
must not outlive its reason. An expired entry stops the run at session start, so a forgotten quarantine
cannot hide a real regression for ever.

The file is a YAML list::

    - item: reviews::sentiment[terse-t0.7]   # an identity (suite::item_id), a pytest node id, or a glob (* and ?)
      reason: flips between runs at temperature 0.7 (issue #12)
      owner: alice
      expires: 2027-01-31                    # the last day the entry holds
"""

from __future__ import annotations

import datetime
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from evalsuite.cases._source import read_yaml
from evalsuite.errors import QuarantineError

_EXAMPLE = "- {item: 'suite::case[variant]', reason: why, owner: who, expires: YYYY-MM-DD}"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    item: str
    reason: str
    owner: str
    expires: datetime.date


@dataclass(frozen=True)
class QuarantineEntry:
    """One entry and where it is written (``source`` = ``file:line``, for messages)."""

    item: str
    reason: str
    owner: str
    expires: datetime.date
    source: str

    def matches(self, names: tuple[str, ...]) -> bool:
        """Whether the entry names one of ``names`` (an item's identity and node id); only ``*`` and ``?`` are
        wildcards, so the brackets of ``case[variant]`` are literal."""
        pattern = re.sub(r"([\[\]])", r"[\1]", self.item)
        return any(name == self.item or fnmatch.fnmatchcase(name, pattern) for name in names)

    def to_dict(self) -> dict[str, Any]:
        """What a report shows (``ItemResult.quarantine``)."""
        return {"item": self.item, "reason": self.reason, "owner": self.owner, "expires": self.expires.isoformat()}

    def describe(self) -> str:
        return f"quarantined: {self.reason} (owner {self.owner}, until {self.expires.isoformat()}; {self.source})"


def load_quarantine(path: Path, rootdir: Path, *, today: datetime.date | None = None) -> list[QuarantineEntry]:
    """Every entry of ``path``, validated; an unknown key, a missing one or an expired entry is a
    ``QuarantineError`` naming the file and line and the fix (invalid YAML: the YAML reader's ``CaseFileError``)."""
    data, lines = read_yaml(path, rootdir)
    if data is None:
        return []
    if not isinstance(data, list):
        raise QuarantineError(path, 1, f"the file must be a list of entries, e.g. {_EXAMPLE}", rootdir=rootdir)
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    entries = []
    for index, raw in enumerate(data):
        line = lines.get((index,), 1)
        try:
            entry = _Entry.model_validate(raw)
        except ValidationError as exc:
            raise _invalid(path, rootdir, index, raw, exc, lines) from None
        if entry.expires < today:
            raise QuarantineError(
                path, lines.get((index, "expires"), line),
                f"the quarantine of {entry.item!r} (owner {entry.owner}) expired on {entry.expires.isoformat()}; "
                "fix the item and remove the entry, or extend 'expires' if it must stay quarantined",
                rootdir=rootdir)
        entries.append(QuarantineEntry(entry.item, entry.reason, entry.owner, entry.expires, f"{path.name}:{line}"))
    return entries


def _invalid(path: Path, rootdir: Path, index: int, raw: Any, exc: ValidationError,
             lines: dict[tuple[Any, ...], int]) -> QuarantineError:
    error = exc.errors(include_url=False)[0]
    key = error["loc"][0] if error["loc"] else None
    line = lines.get((index, key), lines.get((index,), 1))
    if not isinstance(raw, dict):
        problem = f"each entry must be a mapping, e.g. {_EXAMPLE}"
    elif error["type"] == "extra_forbidden":
        problem = f"unknown key {key!r}; an entry has exactly item, reason, owner and expires"
    elif error["type"] == "missing":
        problem = f"missing {key!r}; an entry has item, reason, owner and expires (YYYY-MM-DD)"
    else:
        problem = f"{key}: {error['msg']}" + ("; write the date as YYYY-MM-DD" if key == "expires" else "")
    return QuarantineError(path, line, f"entry {index + 1}: {problem}", rootdir=rootdir)


def find_entry(entries: list[QuarantineEntry], names: tuple[str, ...]) -> QuarantineEntry | None:
    """The first entry that names the item (by identity, node id or glob), if any."""
    return next((entry for entry in entries if entry.matches(names)), None)
