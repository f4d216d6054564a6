"""Which items the baseline gate actually covered this session.

A gate is silent about what it does not compare: a new item passes on thresholds alone, and renaming a
case quietly removes it from the gate. ``coverage`` names both: items with no baseline entry (new),
baseline entries that did not run (missing), and renames, detected when a missing entry and a new item
have the same dataset and prompt fingerprints (a rename changes neither).

"Missing" means gone from the case files, not merely left out of this run: an entry counts only when its
case file was collected and no longer defines it (``defined``: every item the collected files define,
before ``-k``/``-m``/``--lf``/``-x`` chose what ran), so running a subset reports nothing missing. Legacy
entries (written before identities, no case file known) count when no collected file defines their item id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.errors import display_path
from evalsuite.records import ItemResult
from evalsuite.verdict.baseline import Baseline, BaselineItem, prompt_fingerprint

_LINE_SUFFIX = re.compile(r":\d+$")
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
            out.append(f"coverage: {new} looks like {old} renamed (same dataset and prompts); "
                       "--eval-update-baseline moves its entry")
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


def case_file(source: str) -> str:
    """``cases/sentiment.yaml:12`` -> ``cases/sentiment.yaml``."""
    return _LINE_SUFFIX.sub("", source)


def coverage(items: Sequence[ItemResult], baseline: Baseline | None, *,
             defined: Mapping[str, str] | None = None) -> Coverage:
    """The session's ``items`` (every selected item, run or not) against ``baseline``; empty without one.

    ``defined`` maps the identity of every item the collected case files define to its case file
    (default: the items given).
    """
    if baseline is None:
        return Coverage()
    run = {item.identity: item for item in items}
    if defined is None:
        defined = {ident: case_file(item.source) for ident, item in run.items()}
    ambiguous = baseline.ambiguous_among(defined)
    matched: set[str] = set()
    new: list[str] = []
    for ident, item in run.items():
        entry = baseline.items.get(ident) or (baseline.legacy(ident) if item.item_id not in ambiguous else None)
        if entry is not None:
            matched.add(entry.identity)
        elif item.metrics:  # an item that did not run was not gated at all; its outcome says so
            new.append(ident)
    files = set(defined.values())
    exists = set(defined) | {ident.rpartition("::")[2] for ident in defined}  # legacy entries are keyed by item id
    gone = [e for key, e in sorted(baseline.items.items())
            if key not in matched and key not in exists and e.item_id not in ambiguous
            and (not e.source or case_file(e.source) in files)]
    renamed = _renames(gone, [run[ident] for ident in new])
    old_renamed, new_renamed = {old for old, _ in renamed}, {new for _, new in renamed}
    return Coverage(new=[i for i in new if i not in new_renamed],
                    missing=[e.identity for e in gone if e.identity not in old_renamed], renamed=renamed,
                    ambiguous=sorted(ambiguous), baseline=display_path(baseline.path, Path.cwd()))


def _renames(unmatched: list[BaselineItem], new_items: list[ItemResult]) -> list[tuple[str, str]]:
    """Pairs with the same dataset and prompt fingerprints, when the pairing is one-to-one."""
    def key(dataset: str, prompts: str) -> tuple[str, str] | None:
        return (dataset, prompts) if dataset and prompts else None

    olds: dict[tuple[str, str], list[str]] = {}
    for entry in unmatched:
        k = key(entry.dataset_fingerprint, entry.prompt_fingerprint)
        if k:
            olds.setdefault(k, []).append(entry.identity)
    news: dict[tuple[str, str], list[str]] = {}
    for item in new_items:
        k = key(item.dataset_fingerprint, prompt_fingerprint(r.prompt_hash for r in item.records))
        if k:
            news.setdefault(k, []).append(item.identity)
    return sorted((olds[k][0], news[k][0]) for k in olds.keys() & news.keys()
                  if len(olds[k]) == 1 and len(news[k]) == 1)
