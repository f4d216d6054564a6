"""Stage 7: the committed baseline that later runs are compared against.

A baseline stores, per item, every metric's aggregate *and* its per-example values keyed by
``"<example_id>#<sample>"``: the paired tests in ``verdict`` need the per-example values, and the
model/params/dataset fingerprint tell a reviewer what the baseline was measured on. Per example it also
keeps the prediction and a trimmed answer, so a report can show both answers of an example that flipped.

Items are keyed by their identity ``"<suite>::<item_id>"`` (layout 2): item ids alone collide across
suites. Files written before (layout 1, no ``layout`` key) are keyed by item id; such a *legacy* entry
serves the one item of the run with that id, is not used when several suites of the run have that id
(:meth:`Baseline.resolve`), and is re-keyed by identity on the next update. An item with no entry is
compared with the one entry its case files no longer define that has its dataset and prompts (a rename,
:meth:`Baseline.renamed_entry`), so renaming a case does not take it out of the gate. Writing merges into an
existing file (items not run this time are kept) and is atomic (temp file + rename), so an
interrupted run never leaves half a baseline. ``load_baseline`` reads baselines only; ``load_run``
(for ``evalsuite compare``) also reads a ``report.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalsuite._util.atomic import write_atomic
from evalsuite._util.jsonable import SCHEMA_VERSION, jsonable
from evalsuite._util.secrets import Scrubber
from evalsuite.errors import BaselineError
from evalsuite.records import ItemResult, item_identity

KIND = "evalsuite-baseline"
LAYOUT = 2  # 1: items keyed by item id; 2: keyed by "<suite>::<item_id>"
ANSWER_CHARS = 300  # of each answer kept per example: enough to show a flip, small enough to commit
FLIPPED_SHOWN = 20
RENAMED_FROM = "renamed_from"  # ItemResult.meta key: the identity of the entry a renamed item was compared with
_LINE_SUFFIX = re.compile(r":\d+$")


def case_file(source: str) -> str:
    """``cases/sentiment.yaml:12`` -> ``cases/sentiment.yaml``."""
    return _LINE_SUFFIX.sub("", source)


def prompt_fingerprint(prompt_hashes: Iterable[str]) -> str:
    """The set of an item's prompts in 16 hex digits: unchanged by a rename, so renames can be detected."""
    distinct = sorted({h for h in prompt_hashes if h})
    return hashlib.sha256("\n".join(distinct).encode()).hexdigest()[:16] if distinct else ""


def _trim(text: str | None) -> str | None:
    return text if text is None or len(text) <= ANSWER_CHARS else text[: ANSWER_CHARS - 1] + "…"


@dataclass
class BaselineMetric:
    value: float | None
    per_example: dict[str, Any]
    higher_is_better: bool = True
    interval: str = ""
    kind: str = ""
    min: float | None = None
    max: float | None = None
    definition: str = ""


@dataclass
class BaselineItem:
    item_id: str
    metrics: dict[str, BaselineMetric]
    model: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    dataset_fingerprint: str = ""
    n_examples: int = 0
    unparsed: int = 0
    errors: int = 0
    suite: str = ""  # "" in a legacy entry
    source: str = ""  # "cases/sentiment.yaml:12": scopes coverage to the case files that ran
    prompt_fingerprint: str = ""
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {"prediction", "answer"}

    @property
    def identity(self) -> str:
        return item_identity(self.suite, self.item_id)


@dataclass
class Baseline:
    path: Path
    created_at: str
    items: dict[str, BaselineItem]  # by identity (a legacy entry: by item id)
    source: str = "baseline"  # "baseline" | "report" (only through load_run)
    ambiguous: set[str] = field(default_factory=set)  # item ids of legacy entries that several suites claim
    gone: list[BaselineItem] | None = None  # entries the collected case files no longer define (None: not told)

    def ambiguous_among(self, identities: Iterable[str]) -> set[str]:
        """Item ids of legacy entries that several suites among ``identities`` have."""
        suites_of: dict[str, set[str]] = {}
        for ident in identities:
            suite, _, item_id = ident.rpartition("::")
            suites_of.setdefault(item_id, set()).add(suite)
        return {item_id for item_id, suites in suites_of.items() if len(suites) > 1 and self.legacy(item_id)}

    def resolve(self, identities: Iterable[str]) -> None:
        """Tell the baseline which items this session has (call it once they are collected), so a legacy
        entry whose item id several suites share serves none of them: it holds only one suite's results."""
        self.ambiguous = self.ambiguous_among(identities)

    def define(self, defined: Mapping[str, str], rootdir: Path | None = None) -> None:
        """Tell the baseline every item the collected case files define (identity -> case file), before
        ``-k``/``-m`` deselect any, so an item with no entry can be matched with a renamed one."""
        self.gone = self.unclaimed(defined, rootdir)

    def unclaimed(self, defined: Mapping[str, str], rootdir: Path | None = None) -> list[BaselineItem]:
        """Entries no case file defines any more: those of the ``defined`` case files (a case file left out of
        the run says nothing), of case files deleted from ``rootdir``, and legacy ones whose item id is not
        defined; not a legacy entry several suites claim (it is reported as ambiguous)."""
        files = set(defined.values())
        exists = set(defined) | {ident.rpartition("::")[2] for ident in defined}  # legacy entries: by item id
        ambiguous = self.ambiguous_among(defined)

        def in_scope(entry: BaselineItem) -> bool:
            if not entry.source:
                return True
            path = case_file(entry.source)
            return path in files or (rootdir is not None and not (rootdir / path).exists())

        return [e for key, e in sorted(self.items.items())
                if key not in exists and e.item_id not in ambiguous and in_scope(e)]

    def renamed_entry(self, dataset_fingerprint: str, prompt_hashes: Iterable[str]) -> BaselineItem | None:
        """For an item with no entry: the one entry no case file defines any more that has the same dataset and
        prompts (a rename changes neither); None when none or several do, or before :meth:`define`."""
        prompts = prompt_fingerprint(prompt_hashes)
        if self.gone is None or not dataset_fingerprint or not prompts:
            return None
        same = [e for e in self.gone if (e.dataset_fingerprint, e.prompt_fingerprint) == (dataset_fingerprint, prompts)]
        return same[0] if len(same) == 1 else None

    def legacy(self, ident: str) -> BaselineItem | None:
        """The legacy entry (keyed by item id, no suite) an identity or item id falls back to."""
        entry = self.items.get(ident.rpartition("::")[2])
        return entry if entry is not None and not entry.suite else None

    def entry(self, ident: str) -> BaselineItem | None:
        """The entry for an identity: its own, else the legacy entry of its item id when that is unambiguous."""
        found = self.items.get(ident)
        if found is not None:
            return found
        return None if ident.rpartition("::")[2] in self.ambiguous else self.legacy(ident)

    def item(self, ident: str) -> dict[str, dict[str, Any]] | None:
        """Per-example values by metric name for one item, or None when the baseline lacks the item."""
        entry = self.entry(ident)
        if entry is None:
            return None
        return {name: metric.per_example for name, metric in entry.metrics.items()}


def _item_from_result(item: ItemResult) -> BaselineItem:
    """What a baseline keeps of an item: the same whether it comes from this run or from a report.json."""
    metrics: dict[str, BaselineMetric] = {}
    for m in item.metrics:
        per_example = {str(r.key): r.scores[m.name] for r in item.records if m.name in r.scores}
        metrics[m.name] = BaselineMetric(
            value=m.value, per_example=per_example, higher_is_better=m.higher_is_better,
            interval=m.interval, kind=m.kind, min=m.min, max=m.max, definition=m.definition,
        )
    return BaselineItem(
        item_id=item.item_id, metrics=metrics, model=item.model, params=item.params,
        dataset_fingerprint=item.dataset_fingerprint, n_examples=item.n_examples,
        unparsed=item.unparsed, errors=item.errors, suite=item.suite, source=item.source,
        prompt_fingerprint=prompt_fingerprint(r.prompt_hash for r in item.records),
        examples={str(r.key): {"prediction": r.prediction, "answer": _trim(r.error or r.answer)} for r in item.records},
    )


def write_baseline(path: Path | str, items: list[ItemResult], *, merge: bool = True,
                   redact: Sequence[str] = ()) -> Path:
    """Write (or update) the baseline at ``path`` with these items' per-example values.

    ``merge=True`` keeps the file's other items, so refreshing one case does not drop the rest; an
    item without metrics (not run, errored, skipped) keeps its old entry. Legacy entries the items
    claim are re-keyed by identity (migrated). The file is committed, so it is scrubbed like a report
    (environment secrets and ``redact``, the ``eval_redact`` lines) in case an answer echoed one.
    """
    path = Path(path)
    kept: dict[str, BaselineItem] = {}
    if merge and path.exists():
        existing = load_baseline(path)
        existing.resolve(item.identity for item in items)
        kept = dict(existing.items)
        for item in items:
            legacy = existing.entry(item.identity)
            if legacy is not None and not legacy.suite:
                kept.pop(legacy.item_id, None)
                kept[item.identity] = BaselineItem(**{**vars(legacy), "suite": item.suite, "source": item.source})
        claimed_by_all = {i for i in existing.ambiguous if all(it.metrics for it in items if it.item_id == i)}
        for item_id in claimed_by_all:  # each suite's item gets its own entry below: the shared one is obsolete
            kept.pop(item_id, None)
        existing.define({item.identity: case_file(item.source) for item in items})
        for item in items:  # a renamed item's entry moves to its new identity (written below)
            renamed = existing.renamed_entry(item.dataset_fingerprint, (r.prompt_hash for r in item.records))
            if item.metrics and existing.entry(item.identity) is None and renamed is not None:
                kept.pop(renamed.identity, None)
    for item in items:
        if item.metrics:
            kept[item.identity] = _item_from_result(item)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "layout": LAYOUT,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "items": {ident: asdict(entry) for ident, entry in sorted(kept.items())},
    }
    text = json.dumps(jsonable(doc), indent=1, ensure_ascii=False) + "\n"
    write_atomic(path, Scrubber(redact=redact).text(text))
    return path


def flipped_examples(item: ItemResult, entry: BaselineItem | None) -> list[dict[str, Any]]:
    """Examples whose value changed against the baseline, for the metrics compared with it, worst first.

    A 0/1 metric flips pass -> fail or fail -> pass; another numeric one lists any change, the largest
    drop (in the metric's direction) first. With repeats, an example is listed once per metric."""
    if entry is None:
        return []
    flips: list[tuple[float, dict[str, Any]]] = []
    for m in item.metrics:
        stored = entry.metrics.get(m.name)
        if stored is None or not m.n_paired:
            continue
        seen: set[str] = set()
        for r in item.records:
            before, after = stored.per_example.get(str(r.key)), r.scores.get(m.name)
            if (r.example_id in seen or not isinstance(before, (int, float)) or not isinstance(after, (int, float))
                    or abs(after - before) < 1e-9):  # bools count: a 0/1 metric may score True/False
                continue
            seen.add(r.example_id)
            old = entry.examples.get(str(r.key), {})
            drop = (before - after) if m.higher_is_better else (after - before)
            flips.append((drop, {"example_id": r.example_id, "metric": m.name, "before": before, "after": after,
                                 "baseline_answer": old.get("answer"), "answer": _trim(r.error or r.answer)}))
    flips.sort(key=lambda pair: -pair[0])
    return [flip for _, flip in flips[:FLIPPED_SHOWN]]


def _fail(path: Path, message: str) -> BaselineError:
    return BaselineError(
        path, message,
        "regenerate it (run the suite with --eval-update-baseline) or restore it from version control; "
        "a baseline is written by evalsuite, not by hand",
    )


def _metric(path: Path, where: str, raw: Any) -> BaselineMetric:
    if not isinstance(raw, dict) or not isinstance(raw.get("per_example"), dict):
        raise _fail(path, f"{where}: expected an object with 'per_example' (key -> value)")
    known = {k: raw[k] for k in ("value", "higher_is_better", "interval", "kind", "min", "max", "definition") if k in raw}
    return BaselineMetric(per_example=raw["per_example"], **{"value": None, **known})


def _from_baseline_doc(path: Path, doc: dict[str, Any]) -> Baseline:
    items = doc.get("items")
    if not isinstance(items, dict):
        raise _fail(path, "'items' must be an object mapping item identity -> item")
    layout = doc.get("layout", 1)
    if layout not in (1, LAYOUT):
        raise _fail(path, f"layout is {layout!r}; this evalsuite reads layouts 1 and {LAYOUT} (upgrade evalsuite)")
    out: dict[str, BaselineItem] = {}
    for key, raw in items.items():
        if not isinstance(raw, dict) or not isinstance(raw.get("metrics"), dict):
            raise _fail(path, f"items.{key}: expected an object with 'metrics'")
        metrics = {name: _metric(path, f"items.{key}.metrics.{name}", m) for name, m in raw["metrics"].items()}
        examples = raw.get("examples")
        out[key] = BaselineItem(
            item_id=str(raw.get("item_id") or key.rpartition("::")[2]), metrics=metrics,
            model=raw.get("model") or {}, params=raw.get("params") or {},
            dataset_fingerprint=raw.get("dataset_fingerprint") or "", n_examples=int(raw.get("n_examples") or 0),
            unparsed=int(raw.get("unparsed") or 0), errors=int(raw.get("errors") or 0),
            suite=str(raw.get("suite") or ""), source=str(raw.get("source") or ""),
            prompt_fingerprint=str(raw.get("prompt_fingerprint") or ""),
            examples=examples if isinstance(examples, dict) else {},
        )
    return Baseline(path=path, created_at=str(doc.get("created_at", "")), items=out, source="baseline")


def _from_report_doc(path: Path, doc: dict[str, Any]) -> Baseline:
    out: dict[str, BaselineItem] = {}
    for i, raw in enumerate(doc["items"]):
        try:
            item = ItemResult.from_dict(raw)
        except (AttributeError, KeyError, TypeError) as exc:
            problem = str(exc).split("__init__() ")[-1]  # "missing 1 required positional argument: 'nodeid'"
            raise BaselineError(path, f"items[{i}]: missing or malformed field ({problem})",
                                "use a report.json written by evalsuite (schema_version 1)") from None
        if item.metrics:  # an item that did not run has nothing to compare with
            out[item.identity] = _item_from_result(item)
    return Baseline(path=path, created_at=str(doc.get("created_at", "")), items=out, source="report")


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(path, "file not found", "check the path, or create a baseline by running the suite "
                            "with --eval-update-baseline") from None
    except OSError as exc:
        raise BaselineError(path, f"cannot read: {exc.strerror}", "check the path and its permissions") from None
    except UnicodeDecodeError as exc:
        raise BaselineError(path, f"not UTF-8 text (byte {exc.start}): not a baseline file",
                            "name the baseline JSON that --eval-update-baseline wrote, or restore it") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(doc, dict):
        raise _fail(path, "expected a JSON object at the top level")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise _fail(path, f"schema_version is {version!r}; this evalsuite reads version {SCHEMA_VERSION}")
    return doc


def _is_report(doc: dict[str, Any]) -> bool:
    return isinstance(doc.get("items"), list)


def load_baseline(path: Path | str) -> Baseline:
    """Read a baseline file; raise ``BaselineError`` naming the file and the fix (a report.json is refused:
    it holds one run's results, possibly of a subset, and is overwritten by the next run)."""
    path = Path(path)
    doc = _read(path)
    if _is_report(doc) or ("run" in doc and "summary" in doc):
        raise BaselineError(path, "this is a report (report.json), not a baseline",
                            "write a baseline with --eval-update-baseline (it goes to --eval-baseline PATH) and "
                            "compare with that; to compare two reports, use `python -m evalsuite compare OLD NEW`")
    kind = doc.get("kind")
    if kind is not None and kind != KIND:
        raise _fail(path, f"kind is {kind!r}, not {KIND!r}")
    return _from_baseline_doc(path, doc)


def load_run(path: Path | str) -> Baseline:
    """A stored run for ``evalsuite compare``: a baseline file or a ``report.json``."""
    path = Path(path)
    doc = _read(path)
    return _from_report_doc(path, doc) if _is_report(doc) else load_baseline(path)
