"""Crash safety: every recorded interaction is also appended, flushed, to ``<cassette>.journal.jsonl``.

A journal left by a killed process is merged into the cassette on the next load and removed once the
merge is saved, so an interrupted recording keeps what it recorded and never leaves an unloadable
file. The first line is a header (record mode and metadata); a torn last line is skipped.

A cassette on a file system that refuses appends (a Databricks Volume:
:func:`~evalsuite._util.atomic.whole_file_writes`) keeps its journal on local disk instead, under the temp
folder, named after the cassette's folder: a run killed on that machine is still recovered by the next run
there (not by one on another machine).
"""

from __future__ import annotations

import collections
import hashlib
import os
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

import orjson

from evalsuite._util.atomic import whole_file_writes, write_failure
from evalsuite.cassettes._format import AtomicPersister, JsonSerializer, decode_interaction, load
from evalsuite.cassettes._keys import KeyMaker
from evalsuite.errors import WriteError

JOURNAL_SUFFIX = ".journal.jsonl"


def journal_path(path: Path) -> Path:
    """Beside the cassette; on local disk when the cassette's file system refuses appends."""
    if whole_file_writes(path):
        folder = hashlib.sha256(os.path.abspath(path.parent).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / "evalsuite-journals" / folder / (path.name + JOURNAL_SUFFIX)
    return path.with_name(path.name + JOURNAL_SUFFIX)


class Journal:
    """The append-only twin of a cassette being recorded; opened on the first interaction."""

    def __init__(self, cassette_path: Path) -> None:
        self.path = journal_path(cassette_path)
        self._file: IO[bytes] | None = None
        self.failure: WriteError | None = None

    def append(self, interaction: dict[str, Any], header: Callable[[], dict[str, Any]]) -> None:
        """Never raises: a refused write (full disk) stops journaling and is kept in ``failure``.

        The answer in hand is still used and saved with the cassette at the end; if that save fails
        too, it raises, and the lines journaled before the disk filled are recovered on the next load."""
        if self.failure is not None:
            return
        line = orjson.dumps(interaction) + b"\n"
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "ab")  # noqa: SIM115 - kept open while recording, closed in close()
                self._file.write(orjson.dumps({"journal": 1, **header()}) + b"\n")
            self._file.write(line)
            self._file.flush()
        except OSError as exc:
            self.failure = write_failure(self.path, exc, "cassette journal")
            self.close()

    def close(self) -> None:
        if self._file is not None:
            with suppress(OSError):  # a flush refused by a full disk: the failure is already known
                self._file.close()
            self._file = None

    def remove(self) -> None:
        """Once the cassette holding everything journaled has been saved."""
        self.close()
        with suppress(FileNotFoundError):
            self.path.unlink()


def _read(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header: dict[str, Any] = {}
    interactions = []
    for line in journal_path(path).read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
        except ValueError:  # the line being written when the process was killed
            continue
        if "journal" in entry:
            header = entry
        else:
            interactions.append(entry)
    return header, interactions


def recover_journal(path: Path, keys: KeyMaker) -> int:
    """Merge a journal left by a killed recording into the cassette; returns how many were recovered.

    Journals from ``once``/``new_episodes`` add their interactions; from ``all``/``rewrite`` each one
    replaces the oldest recording with the same key (one for one, so repeats keep their count).
    """
    if not journal_path(path).exists():
        return 0
    header, recovered = _read(path)
    requests, responses, metadata = load(path)
    pairs = list(zip(requests, responses))
    new_pairs = [decode_interaction(i) for i in recovered]
    if header.get("mode") in ("all", "rewrite"):
        replaced = collections.Counter(keys.of_request(r).key for r, _ in new_pairs)
        kept = []
        for request, response in pairs:
            key = keys.of_request(request).key
            if replaced[key]:
                replaced[key] -= 1
            else:
                kept.append((request, response))
        pairs = kept
    pairs += new_pairs
    cassette_dict = {
        "requests": [r for r, _ in pairs],
        "responses": [r for _, r in pairs],
        "metadata": header.get("metadata") or metadata,
    }
    AtomicPersister.save_cassette(path, cassette_dict, JsonSerializer)
    journal_path(path).unlink()
    return len(new_pairs)
