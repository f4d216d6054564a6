"""Stage 2: a ``DatasetSpec`` -> the ``Example`` rows of one run.

Why ``datasets``: one loader for local JSONL/JSON/CSV/parquet files and Hub datasets, backed by Arrow
tables, so a 25k-row file stays a memory-mapped table and only the selected rows become Python objects.
CSV columns are read as strings (no "007" -> 7 or "NA" -> null guessing). Sampling (shuffle, stratify,
limit) is deterministic for a given seed, so the same rows (and cassettes) come back on every run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from evalsuite.cases.schema import DatasetSpec
from evalsuite.errors import DatasetError, DatasetUnavailable
from evalsuite.records import Example

BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def load_examples(spec: DatasetSpec, base_dir: Path, limit: int | None = None) -> list[Example]:
    """Load, sample and map the rows of ``spec``; ``limit`` (e.g. ``--eval-limit``) caps ``spec.limit``."""
    limits = [n for n in (spec.limit, limit) if n is not None]
    effective = min(limits) if limits else None
    if spec.examples is not None:
        table: Any = spec.examples
        columns = list(dict.fromkeys(k for row in spec.examples for k in row))
        label_feature = None
    else:
        table = _load_table(spec, Path(base_dir))
        columns = list(table.column_names)
        label_feature = table.features.get(spec.columns.get(spec.expected, spec.expected)) if spec.expected else None
    _check_columns(spec, columns)
    selected = _select(spec, table, len(table), effective)
    if isinstance(table, list):
        rows = [table[i] for i in selected]
    else:
        rows = table.select(selected).to_list() if selected else []
    label_names = spec.label_names
    if label_names is None and label_feature is not None and hasattr(label_feature, "names"):
        label_names = list(label_feature.names)  # a ClassLabel column (e.g. imdb's label): use its names
    examples = [_example(spec, index, row, label_names) for index, row in zip(selected, rows)]
    _check_unique_ids(spec, examples)
    return examples


def fingerprint(examples: Sequence[Example]) -> str:
    """sha256 (16 hex chars) of ids, fields and expected values in order: changes when any row changes."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(orjson.dumps([example.id, example.fields, example.expected], default=str,
                                   option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------------------ sources


def _load_table(spec: DatasetSpec, base_dir: Path) -> Any:
    import datasets

    datasets.disable_progress_bars()  # evalsuite prints its own progress line
    if spec.path is not None:
        path = (base_dir / spec.path).resolve()
        builder = BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise DatasetError(f"dataset.path {spec.path!r}: unsupported file type {path.suffix!r}; "
                               f"use one of {', '.join(BUILDERS)}")
        if not path.is_file():
            raise DatasetError(f"dataset.path {spec.path!r}: no such file {path} "
                               "(paths are relative to the case file's directory)")
        options: dict[str, Any] = {}
        if builder == "csv":
            options = {"features": _string_features(path), "keep_default_na": False}
        try:
            return datasets.load_dataset(builder, data_files=str(path), split="train", **options)
        except Exception as exc:  # datasets wraps parse errors in several exception types
            raise DatasetError(f"dataset.path {spec.path!r}: cannot read {path.name}: {_reason(exc)}") from exc

    local = base_dir / spec.hf if spec.hf else None
    source = str(local.resolve()) if local is not None and local.is_dir() else spec.hf
    try:
        return datasets.load_dataset(source, spec.config, split=spec.split, revision=spec.revision)
    except Exception as exc:  # offline, not cached, gated, renamed, unknown split/config: all mean "cannot run here"
        where = ", ".join(f"{k}={v!r}" for k, v in (("config", spec.config), ("split", spec.split),
                                                      ("revision", spec.revision)) if v is not None)
        raise DatasetUnavailable(f"dataset.hf {spec.hf!r} ({where}) is not available here: {_reason(exc)}; "
                                 "check the name, or run once online to fill the Hugging Face cache") from exc


def _string_features(path: Path) -> Any:
    """Every CSV column as a string: the header names them, the file's author decides what they mean."""
    import datasets

    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise DatasetError(f"{path.name}: the CSV file is empty; its first line must name the columns")
    return datasets.Features({name: datasets.Value("string") for name in header})


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ------------------------------------------------------------------------------------------ columns


def _check_columns(spec: DatasetSpec, columns: list[str]) -> None:
    available = ", ".join(columns) or "(none)"
    known = set(columns)
    for new, source in spec.columns.items():
        if source not in known:
            raise DatasetError(f"dataset.columns.{new}: no column {source!r}; available: {available}")
    known |= set(spec.columns)
    if spec.id is not None and spec.id not in known:
        raise DatasetError(f"dataset.id: no column {spec.id!r}; available: {available}")
    if spec.expected is not None and spec.expected not in known:
        raise DatasetError(f"dataset.expected: no column {spec.expected!r}; available: {available}; set "
                           "dataset.expected to the reference column, or to null for a reference-free case")
    if spec.stratify is not None and spec.stratify not in known:
        raise DatasetError(f"dataset.stratify: no column {spec.stratify!r}; available: {available}")


def _example(spec: DatasetSpec, index: int, row: dict[str, Any], label_names: Any) -> Example:
    fields = dict(row)
    for new, source in spec.columns.items():
        fields[new] = row.get(source)
    example_id = str(fields[spec.id]) if spec.id is not None else str(index)
    expected = None
    if spec.expected is not None:
        expected = fields.pop(spec.expected, None)
        if label_names is not None:
            expected = _label_name(expected, label_names, example_id)
    return Example(id=example_id, fields=fields, expected=expected)


def _label_name(value: Any, names: list[str] | dict[Any, str], example_id: str) -> Any:
    """Stored label (0, "0", 1 ...) -> its name; YAML keys and CSV cells may be int or str."""
    if value is None or isinstance(value, (list, dict)):
        return value
    if isinstance(names, dict):
        for key in (value, str(value), _as_int(value)):
            if key is not None and key in names:
                return names[key]
        known = ", ".join(map(str, names))
    else:
        position = _as_int(value)
        if position is not None and 0 <= position < len(names):
            return names[position]
        if value in names:  # already a name
            return value
        known = f"0..{len(names) - 1}"
    raise DatasetError(f"dataset.label_names: example {example_id!r} has label {value!r}, which label_names does "
                       f"not map (known: {known}); add it to label_names")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _check_unique_ids(spec: DatasetSpec, examples: list[Example]) -> None:
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise DatasetError(f"dataset.id: the id {example.id!r} occurs twice in column {spec.id!r}; example ids "
                               "pair results with the baseline, so they must be unique")
        seen.add(example.id)


# ----------------------------------------------------------------------------------------- sampling


def _select(spec: DatasetSpec, table: Any, n: int, limit: int | None) -> list[int]:
    """Row indices to use, in output order.

    shuffle: a seeded permutation. limit: the first ``limit`` rows of that order. stratify (with a
    limit): an equal share per value of the column (a smaller group is taken whole and the rest split
    among the others), rows drawn with the seed unless shuffled, output in dataset (or shuffled) order.
    """
    rng = random.Random(spec.seed)
    order = list(range(n))
    if spec.shuffle:
        rng.shuffle(order)
    if limit is None or limit >= n:
        return order
    if spec.stratify is None:
        return order[:limit]
    column = spec.columns.get(spec.stratify, spec.stratify)
    if isinstance(table, list):
        values = [row.get(column) for row in table]
    else:  # one Arrow column to Python, not the whole table
        values = table.data.column(column).to_pylist()
    groups: dict[str, list[int]] = defaultdict(list)
    for index in order:
        groups[_group_key(values[index])].append(index)
    chosen: set[int] = set()
    remaining = limit
    by_size = sorted(groups, key=lambda k: (len(groups[k]), k))
    for position, key in enumerate(by_size):
        members = groups[key]
        quota = min(len(members), remaining // (len(by_size) - position))
        chosen.update(members[:quota] if spec.shuffle else rng.sample(members, quota))
        remaining -= quota
    return [index for index in order if index in chosen]


def _group_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
