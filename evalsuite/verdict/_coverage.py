"""Which items the baseline gate actually covered this session.

A gate is silent about what it does not compare: a new item passes on thresholds alone, and renaming a
case or deleting its file would quietly remove it from the gate. ``coverage`` names them: items with no
baseline entry (new), baseline entries that did not run (missing), and renames: items the runner compared
with the entry of their old name (``Baseline.renamed_entry``, recorded in ``meta["renamed_from"]``).

"Missing" means gone from the case files, not merely left out of this run: an entry counts only when its
case file was collected and no longer defines it (``defined``: every item the collected files define,
before ``-k``/``-m``/``--lf``/``-x`` chose what ran) or its case file is gone from ``rootdir``, so running a
subset reports nothing missing. Legacy entries (written before identities, no case file known) count when
no collected file defines their item id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.errors import display_path
from evalsuite.records import ItemResult
from evalsuite.verdict.baseline import RENAMED_FROM, Baseline, case_file

__all__ = ["Coverage", "coverage"]

_SHOWN = 10


@dataclass
class Coverage:
    new: list[str] = field(default_factory=list)  # identities scored with no baseline entry
    missing: list[str] = field(default_factory=list)  # baseline identities in scope that did not run
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old identity, new identity)
    ambiguous: list[str] = field(default_factory=list)  # legacy entries (item id) that several suites claim
    baseline: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "new": self.new, "missing": self.missing,
                "renamed": [{"from": old, "to": new} for old, new in self.renamed], "ambiguous": self.ambiguous}

    def lines(self) -> list[str]:
        """What a reviewer must know about the gate's reach; empty when every item was compared."""
        out: list[str] = []
        if self.new:
            out.append(f"coverage: {_count(self.new, 'item')} not in the baseline {self.baseline} (thresholds only, "
                       f"no regression check): {_names(self.new)}; add them with --eval-update-baseline")
        for old, new in self.renamed:
            out.append(f"coverage: {new} looks like {old} renamed (same dataset and prompts): compared with its "
                       "entry; --eval-update-baseline moves the entry")
        if self.missing:
            out.append(f"coverage: {_count(self.missing, 'baseline item')} did not run (renamed or removed?): "
                       f"{_names(self.missing)}; if removed, delete the entry from {self.baseline}")
        for item_id in self.ambiguous:
            out.append(f"coverage: the baseline entry {item_id!r} predates suite names and several suites have that "
                       "item: not compared; --eval-update-baseline writes one entry per suite")
        return out


def _count(names: Sequence[str], noun: str) -> str:
    return f"{len(names)} {noun}{'' if len(names) == 1 else 's'}"


def _names(names: Sequence[str]) -> str:
    return ", ".join(names[:_SHOWN]) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def coverage(items: Sequence[ItemResult], baseline: Baseline | None, *,
             defined: Mapping[str, str] | None = None, rootdir: Path | None = None) -> Coverage:
    """The session's ``items`` (every selected item, run or not) against ``baseline``; empty without one.

    ``defined`` maps the identity of every item the collected case files define to its case file
    (default: the items given); entries whose case file is gone from ``rootdir`` are missing too.
    """
    if baseline is None:
        return Coverage()
    run = {item.identity: item for item in items}
    if defined is None:
        defined = {ident: case_file(item.source) for ident, item in run.items()}
    ambiguous = baseline.ambiguous_among(defined)
    matched: set[str] = set()
    new: list[str] = []
    renamed: list[tuple[str, str]] = []
    for ident, item in run.items():
        entry = baseline.items.get(ident) or (baseline.legacy(ident) if item.item_id not in ambiguous else None)
        old = item.meta.get(RENAMED_FROM)
        if entry is not None:
            matched.add(entry.identity)
        elif old in baseline.items:
            matched.add(old)
            renamed.append((old, ident))
        elif item.metrics:  # an item that did not run was not gated at all; its outcome says so
            new.append(ident)
    missing = [e.identity for e in baseline.unclaimed(defined, rootdir) if e.identity not in matched]
    return Coverage(new=new, missing=missing, renamed=sorted(renamed), ambiguous=sorted(ambiguous),
                    baseline=display_path(baseline.path, Path.cwd()))

