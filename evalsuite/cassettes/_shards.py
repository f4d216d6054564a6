"""Cassette shards: what each Spark task records, read back by later attempts and merged by the driver.

A run of ``engine: spark`` gets a folder of its own, ``<shard dir>/<run>/``, and each task records into
``part-<partition>.<task attempt id>.json``: a cassette file in the usual format (``_format``), written by the
task's own cassette, so atomically and with its journal while it records. The task attempt id is unique in
the Spark application, so a retried or speculative copy of a task never writes over another's file.

Why a retry starts from what earlier attempts recorded (:func:`seed_from_earlier_attempts`): Spark re-runs a
failed or lost task from scratch, and every request the first attempt already paid for would be sent again.
The earlier attempts' files and journals (a killed worker leaves only its journal) are read without being
changed, one recording kept per request and sample (the latest attempt's), and written as the new attempt's
starting cassette: it replays those and sends only the rest.

The driver merges exactly one shard per partition: the attempt whose answers Spark returned (:func:`read_shard`),
so the cassette holds what the answers say, with no duplicate from the attempts that lost.
"""

from __future__ import annotations

import re
import shutil
from contextlib import suppress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from vcr.request import Request

from evalsuite._util.atomic import write_atomic
from evalsuite.cassettes._format import JsonSerializer, decode_interaction, load
from evalsuite.cassettes._journal import JOURNAL_SUFFIX, journal_path
from evalsuite.cassettes._keys import BUILT_IN_KEYS

Interaction = tuple[Request, dict[str, Any]]
_SHARD = re.compile(r"^part-(\d+)\.(\d+)\.json$")


def shard_path(run_dir: Path, partition: int, attempt: int) -> Path:
    """The cassette one task attempt records into."""
    return Path(run_dir) / f"part-{partition:05d}.{attempt}.json"


def read_shard(path: Path) -> list[Interaction]:
    """Every interaction a task attempt recorded: its saved file and what its journal holds beyond it, once each."""
    return list(_unique(_recorded(path)).values())


def seed_from_earlier_attempts(path: Path, metadata: dict[str, Any]) -> int:
    """Start ``path`` (a new attempt's shard) with what the other attempts of its partition recorded; returns how
    many interactions.

    Each request and sample (match key and ``x-evalsuite-example`` tag) is kept once, from the latest attempt
    that recorded it. The other files are only read: a speculative copy may still be writing them.
    """
    found = _SHARD.match(path.name)
    if found is None:
        raise ValueError(f"{path}: not a shard file name (part-<partition>.<attempt>.json)")
    unique = _unique([pair for shard in _attempts(path.parent, int(found[1])) if shard != path
                      for pair in _recorded(shard)])
    if unique:
        cassette = {"requests": [r for r, _ in unique.values()], "responses": [r for _, r in unique.values()],
                    "metadata": metadata}
        write_atomic(path, JsonSerializer.serialize(cassette), what="cassette shard")
    return len(unique)


def all_recorded(run_dir: Path) -> list[Interaction]:
    """What every attempt of every partition recorded, once per request and sample (after a failed job)."""
    partitions = sorted({int(found[1]) for name in _names(run_dir) if (found := _SHARD.match(name))})
    return [pair for partition in partitions
            for pair in _unique([p for shard in _attempts(run_dir, partition) for p in _recorded(shard)]).values()]


def _names(run_dir: Path, pattern: str = "part-*") -> set[str]:
    """Shard file names in the folder, those known only by their journal (a killed task's) included."""
    return {candidate.name.removesuffix(JOURNAL_SUFFIX) for candidate in Path(run_dir).glob(pattern)}


def _attempts(run_dir: Path, partition: int) -> list[Path]:
    """The shards of one partition, oldest attempt first."""
    found = [(int(match[2]), name) for name in _names(run_dir, f"part-{partition:05d}.*")
             if (match := _SHARD.match(name)) is not None]
    return [Path(run_dir) / name for _, name in sorted(found)]


def in_order(pairs: list[Interaction], tags: Sequence[str]) -> list[Interaction]:
    """Recordings sorted by their example tag's position in ``tags`` (the calls' order): a stable, readable file."""
    position = {tag: index for index, tag in enumerate(tags)}
    return sorted(pairs, key=lambda pair: position.get(BUILT_IN_KEYS.of_request(pair[0]).tag, len(position)))


def remove_run(run_dir: Path) -> None:
    """Once the driver's cassette holds everything merged (its journal does, before it is saved)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    with suppress(OSError):
        run_dir.parent.rmdir()  # the shard folder itself, when no other run is using it


def _recorded(path: Path) -> list[Interaction]:
    """The file's interactions, then its journal's (a killed task leaves only a journal)."""
    requests, responses, _ = load(path) if path.exists() else ([], [], {})
    pairs = list(zip(requests, responses))
    journal = journal_path(path)
    if journal.exists():
        for line in journal.read_bytes().splitlines():
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:  # the line being written when the worker was killed
                continue
            if "journal" not in entry:
                pairs.append(decode_interaction(entry))
    return pairs


def _unique(pairs: list[Interaction]) -> dict[tuple[str, str] | int, Interaction]:
    """One interaction per (match key, sample tag), the last one read winning; untagged ones are all kept."""
    unique: dict[tuple[str, str] | int, Interaction] = {}
    for index, (request, response) in enumerate(pairs):
        info = BUILT_IN_KEYS.of_request(request)
        unique[(info.key, info.tag) if info.tag else index] = (request, response)
    return unique
