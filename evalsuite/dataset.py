"""Stage 2: a ``DatasetSpec`` -> the ``Example`` rows of one run.

Why ``datasets``: one loader for local JSONL/JSON/CSV/parquet files and Hub datasets, backed by Arrow
tables, so a 25k-row file stays a memory-mapped table and only the selected rows become Python objects.
CSV columns are read as strings (no "007" -> 7 or "NA" -> null guessing). Sampling (shuffle, stratify,
limit) is deterministic for a given seed, so the same rows (and cassettes) come back on every run.
A JSON Lines file of plain rows (text, numbers, booleans) is read without it, giving the same rows and types
(``_plain_json_lines``: 0.15 s instead of 1 s for 25,000 reviews, and no Arrow cache written).

``dataset.table`` rows come from the active SparkSession (a Unity Catalog table on Databricks), through Arrow.

``preview`` gives collection the first rows without ``datasets`` (a second to import, a full read of a
25k-row file): the file's own first lines, mapped exactly as ``load_examples`` maps rows, so a missing
file, column or label fails ``pytest --collect-only`` rather than the run.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import itertools
import json
import math
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from evalsuite.cases.schema import DatasetSpec
from evalsuite.errors import DatasetError, DatasetUnavailable
from evalsuite.records import Example

BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
PREVIEW_ROWS = 3


def load_examples(spec: DatasetSpec, base_dir: Path, limit: int | None = None) -> list[Example]:
    """Load, sample and map the rows of ``spec``; ``limit`` (e.g. ``--eval-limit``) caps ``spec.limit``."""
    limits = [n for n in (spec.limit, limit) if n is not None]
    effective = min(limits) if limits else None
    table: Any = spec.examples if spec.examples is not None else _load_table(spec, Path(base_dir))
    if isinstance(table, list):  # inline rows, or a JSON Lines file read as datasets reads it
        columns = list(dict.fromkeys(k for row in table for k in row))
        label_feature = None
    else:
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


def preview(spec: DatasetSpec, base_dir: Path, rows: int = PREVIEW_ROWS) -> list[Example] | None:
    """The first ``rows`` examples of the source, read cheaply, raising the ``DatasetError`` a run would raise
    for a missing file, a missing column or an unmapped label; None for a Hub dataset (not checkable offline), for
    a Spark table (its columns are checked, no session is a ``DatasetError``) and for a JSON file in a shape only
    ``datasets`` knows how to read.

    The rows are the file's first ones, not the sampled ones: they check the case's shape, not its numbers."""
    if spec.examples is not None:
        return load_examples(spec, base_dir)[:rows]  # inline rows are few: the run's own path, every check
    if spec.table is not None:
        _check_columns(spec, list(_spark_frame(spec).columns))  # the table's schema: no Spark job
        return None  # its rows cost a Spark job: templates are checked when the item runs
    if spec.path is None:
        return None
    path = _local_file(spec, Path(base_dir))
    try:
        columns, head, class_labels = _read_head(path, rows)
        try:
            _check_columns(spec, columns)
        except DatasetError:
            if path.suffix.lower() not in (".jsonl", ".json"):
                raise
            columns = _json_columns(path)  # a JSON row may add a column below the head: read them all
            _check_columns(spec, columns)
    except DatasetError:
        raise
    except _NoPreview:
        return None
    except Exception as exc:  # a file that cannot be read at all; the run would fail on it the same way
        raise DatasetError(f"dataset.path {spec.path!r}: cannot read {path.name}: {_reason(exc)}",
                           key=("dataset", "path")) from None
    label_names = spec.label_names
    if label_names is None and spec.expected is not None:  # a ClassLabel column, as load_examples reads it
        label_names = class_labels.get(spec.columns.get(spec.expected, spec.expected))
    return [_example(spec, index, {name: row.get(name) for name in columns} | row, label_names)
            for index, row in enumerate(head)]


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
    """A ``datasets`` table, or the rows of a JSON Lines file that :func:`_plain_json_lines` reads as it would."""
    if spec.path is not None:
        path = _local_file(spec, base_dir)
        if path.suffix.lower() == ".jsonl":
            rows = _plain_json_lines(path)
            if rows is not None:
                return rows
    import datasets

    datasets.disable_progress_bars()  # evalsuite prints its own progress line
    if spec.table is not None:
        return _spark_table(spec)
    if spec.path is not None:
        builder = BUILDERS[path.suffix.lower()]
        options: dict[str, Any] = {}
        if builder == "csv":
            options = {"features": _string_features(path), "keep_default_na": False}
        try:
            return datasets.load_dataset(builder, data_files=str(path), split="train", **options)
        except Exception as exc:  # datasets wraps parse errors in several exception types
            raise DatasetError(f"dataset.path {spec.path!r}: cannot read {path.name}: {_reason(exc)}",
                               key=("dataset", "path")) from exc

    local = base_dir / spec.hf if spec.hf else None
    source = str(local.resolve()) if local is not None and local.is_dir() else spec.hf
    try:
        return datasets.load_dataset(source, spec.config, split=spec.split, revision=spec.revision)
    except Exception as exc:  # offline, not cached, gated, renamed, unknown split/config: all mean "cannot run here"
        where = ", ".join(f"{k}={v!r}" for k, v in (("config", spec.config), ("split", spec.split),
                                                      ("revision", spec.revision)) if v is not None)
        raise DatasetUnavailable(f"dataset.hf {spec.hf!r} ({where}) is not available here: {_reason(exc)}; "
                                 "check the name, or run once online to fill the Hugging Face cache") from exc


_PLAIN_VALUES = (str, int, float, bool)
_INT64 = range(-(2**63), 2**63)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_DATE_LIKE = re.compile(r"\d{4}-\d\d-\d\d")  # Arrow reads such text as a timestamp, datasets gives a datetime


def _plain_json_lines(path: Path) -> list[dict[str, Any]] | None:
    """The rows of a JSON Lines file exactly as ``datasets`` gives them, or None for a file only it should read.

    Why: loading the 25,000-review IMDB file took a second (importing ``datasets`` and pyarrow, building an Arrow
    cache on disk) for rows that are plain text and numbers. Read here only when every row is an object with the
    same keys, each column holding one kind of value (text that does not start like a date, 64-bit integers,
    finite floats or booleans; nulls anywhere): then Arrow infers exactly those types and ``datasets`` returns the same values, in its column order
    (the first row's). Blank lines are skipped and a leading BOM dropped, as Arrow does. Anything else (nested values,
    a column mixing kinds, a repeated key, a surrogate escape, text that is not UTF-8 or JSON) goes to ``datasets``,
    which reads it or reports it as before.
    """
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    if _SURROGATE_ESCAPE.search(data):
        return None
    decoder = json.JSONDecoder(object_pairs_hook=_unique_keys)
    rows: list[dict[str, Any]] = []
    try:
        for line in data.splitlines():
            if line.strip():
                rows.append(decoder.decode(line.decode("utf-8")))
    except (ValueError, _RepeatedKey):  # not JSON, not UTF-8, a repeated key: datasets says what is wrong
        return None
    if not rows or not all(type(row) is dict for row in rows):
        return None
    columns = list(rows[0])
    kinds: dict[str, type] = {}
    for index, row in enumerate(rows):
        if len(row) != len(columns) or not all(name in row for name in columns):
            return None
        if list(row) != columns:
            rows[index] = {name: row[name] for name in columns}
        for name, value in row.items():
            kind = type(value)
            if value is None:
                continue
            if (kind not in _PLAIN_VALUES or kinds.setdefault(name, kind) is not kind
                    or kind is int and value not in _INT64 or kind is float and not math.isfinite(value)
                    or kind is str and _DATE_LIKE.match(value)):
                return None
    return rows


class _RepeatedKey(Exception):
    """A JSON object with a key twice (Arrow refuses it; a dict would keep the last)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    row = dict(pairs)
    if len(row) != len(pairs):
        raise _RepeatedKey
    return row
def _spark_frame(spec: DatasetSpec) -> Any:
    """``dataset.table`` as a DataFrame of the active SparkSession (a Unity Catalog table on Databricks)."""
    from evalsuite.distributed import SparkUnavailable, active_session

    try:
        spark = active_session(f"dataset.table {spec.table!r}", "; or read the rows from a file (dataset.path)")
        frame = spark.table(spec.table)
        frame.columns  # noqa: B018  # Spark Connect resolves a table only when its schema is asked for
        return frame
    except SparkUnavailable as exc:
        raise DatasetError(str(exc), key=("dataset", "table")) from None
    except Exception as exc:  # pyspark's AnalysisException: no such table or view, no access
        raise DatasetError(f"dataset.table {spec.table!r}: cannot read it: {_reason(exc)}",
                           key=("dataset", "table")) from None


def _spark_table(spec: DatasetSpec) -> Any:
    """The table's rows through Arrow; ordered by ``dataset.id`` when set, since a table has no order of its own
    and sampling (``limit``, ``shuffle``, ``stratify``) must pick the same rows on every run."""
    import datasets

    frame = _spark_frame(spec)
    id_column = spec.columns.get(spec.id, spec.id) if spec.id is not None else None
    if id_column in frame.columns:
        frame = frame.orderBy(id_column)
    try:
        if hasattr(frame, "toArrow"):  # Spark 4
            return datasets.Dataset(frame.toArrow())
        return datasets.Dataset.from_pandas(frame.toPandas(), preserve_index=False)  # Spark 3.5 (Databricks LTS)
    except Exception as exc:
        raise DatasetError(f"dataset.table {spec.table!r}: cannot read it: {_reason(exc)}",
                           key=("dataset", "table")) from None


def _local_file(spec: DatasetSpec, base_dir: Path) -> Path:
    path = (base_dir / str(spec.path)).resolve()
    if path.suffix.lower() not in BUILDERS:
        raise DatasetError(f"dataset.path {spec.path!r}: unsupported file type {path.suffix!r}; "
                           f"use one of {', '.join(BUILDERS)}", key=("dataset", "path"))
    if not path.is_file():
        raise DatasetError(f"dataset.path {spec.path!r}: no such file {path} "
                           "(paths are relative to the case file's directory)", key=("dataset", "path"))
    return path


def _read_head(path: Path, rows: int) -> tuple[list[str], list[dict[str, Any]], dict[str, list[str]]]:
    """(columns, the first ``rows`` rows, column -> ClassLabel names stored in a parquet file) of a local file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a BOM is not part of the first name
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header:
                raise DatasetError(f"{path.name}: the CSV file is empty; its first line must name the columns",
                                   key=("dataset", "path"))
            head = [dict(zip(header, cells)) for cells in itertools.islice(reader, rows)]
        return header, head, {}
    if suffix == ".parquet":
        return _parquet_head(path, rows)
    head = _json_rows(path, rows)
    return list(dict.fromkeys(k for row in head for k in row)), head, {}


class _NoPreview(Exception):
    """A file in a shape ``datasets`` may still read (a JSON document of columns, an array of strings): only the
    run can tell, so collection does not guess."""


def _json_rows(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """Rows of a JSON Lines file, or of a .json file holding one array of objects; the first ``limit`` (all when
    None)."""
    with path.open("rb") as handle:
        start = handle.read(64).removeprefix(codecs.BOM_UTF8).lstrip()
        handle.seek(0)
        if start.startswith(b"["):
            rows = _json_document(handle.read().removeprefix(codecs.BOM_UTF8))
        else:
            rows = []
            for number, line in enumerate(handle):
                if line.strip():
                    rows.append(_json_document(line.removeprefix(codecs.BOM_UTF8) if number == 0 else line))
                    if limit is not None and len(rows) >= limit:
                        break
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise _NoPreview
    return rows if limit is None else rows[:limit]


def _json_document(text: bytes) -> Any:
    """One JSON document, parsed as leniently as the Arrow reader that ``datasets`` uses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return json.loads(text)  # NaN and Infinity, which orjson refuses and the Arrow reader accepts
        except ValueError:
            raise _NoPreview from None  # e.g. a pretty-printed document: datasets falls back to pandas


def _json_columns(path: Path) -> list[str]:
    return list(dict.fromkeys(k for row in _json_rows(path, None) for k in row))


def _parquet_head(path: Path, rows: int) -> tuple[list[str], list[dict[str, Any]], dict[str, list[str]]]:
    import pyarrow.parquet as pq  # installed with datasets

    file = pq.ParquetFile(path)
    schema = file.schema_arrow
    head = next(file.iter_batches(batch_size=rows), None)
    return list(schema.names), head.to_pylist()[:rows] if head is not None else [], _class_labels(schema)


def _class_labels(schema: Any) -> dict[str, list[str]]:
    """The names of each ClassLabel column, as ``datasets`` stores its features in a parquet file's metadata."""
    try:
        features = json.loads((schema.metadata or {})[b"huggingface"])["info"]["features"]
    except (KeyError, TypeError, ValueError):  # not written by datasets, or metadata of another shape
        return {}
    if not isinstance(features, dict):
        return {}
    return {column: list(feature["names"]) for column, feature in features.items()
            if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" and feature.get("names")}


def _string_features(path: Path) -> Any:
    """Every CSV column as a string: the header names them, the file's author decides what they mean."""
    import datasets

    with path.open(newline="", encoding="utf-8-sig") as handle:  # a BOM is not part of the first name
        header = next(csv.reader(handle), None)
    if not header:
        raise DatasetError(f"{path.name}: the CSV file is empty; its first line must name the columns",
                           key=("dataset", "path"))
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
            raise DatasetError(f"dataset.columns.{new}: no column {source!r}; available: {available}",
                               key=("dataset", "columns", new))
    known |= set(spec.columns)
    if spec.id is not None and spec.id not in known:
        raise DatasetError(f"dataset.id: no column {spec.id!r}; available: {available}", key=("dataset", "id"))
    if spec.expected is not None and spec.expected not in known:
        raise DatasetError(f"dataset.expected: no column {spec.expected!r}; available: {available}; set "
                           "dataset.expected to the reference column, or to null for a reference-free case",
                           key=("dataset", "expected"))
    if spec.stratify is not None and spec.stratify not in known:
        raise DatasetError(f"dataset.stratify: no column {spec.stratify!r}; available: {available}",
                           key=("dataset", "stratify"))


def _example(spec: DatasetSpec, index: int, row: dict[str, Any], label_names: Any) -> Example:
    fields = dict(row)
    for new, source in spec.columns.items():
        fields[new] = row.get(source)
    if spec.id is not None and fields.get(spec.id) is None:
        raise DatasetError(f"dataset.id: row {index} has no value in column {spec.id!r}; give every row an id "
                           "(ids pair results with the baseline)", key=("dataset", "id"))
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
                       f"not map (known: {known}); add it to label_names", key=("dataset", "label_names"))


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
                               "pair results with the baseline, so they must be unique", key=("dataset", "id"))
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
