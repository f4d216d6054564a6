"""Folders that refuse what a Databricks Volume refuses, for this process: appending to a file and renaming one.

A Unity Catalog Volume (and DBFS) is a FUSE mount that rejects appends ("Illegal seek") and renames ("Function
not implemented"). This machine has no such mount, and FUSE needs a kernel module and privileges CI does not
have, so the refusal is made with Python's audit hooks (PEP 578): every ``open()`` / ``os.open()`` raises an
``open`` event with its mode and flags, and every ``os.rename`` / ``os.replace`` (``Path.rename``,
``Path.replace``, ``shutil.move``) an ``os.rename`` event, before the operation happens. A hook that raises
aborts the operation with that exception, so the code under test meets a real ``OSError`` from the same call
it would make on a Volume, and every file operation on the folders is recorded for the test to inspect.

An audit hook cannot be removed, so one hook is installed on first use and is idle (one attribute check)
outside a ``refusing(...)`` block.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FileOps:
    """What was done to files under the watched folders: ``(event, path, detail)`` tuples, in order."""

    folders: tuple[str, ...]
    seen: list[tuple[str, str, str]] = field(default_factory=list)

    def covers(self, path: str) -> bool:
        return any(path == folder or path.startswith(folder + os.sep) for folder in self.folders)

    @property
    def appends(self) -> list[str]:
        return [path for event, path, _ in self.seen if event == "append"]

    @property
    def renames(self) -> list[str]:
        return [path for event, path, _ in self.seen if event == "rename"]

    @property
    def written(self) -> list[str]:
        return [path for event, path, _ in self.seen if event == "write"]


_watch: FileOps | None = None
_lock = threading.Lock()
_installed = False


def _path(value: Any) -> str | None:
    if isinstance(value, int):  # a file descriptor: not a path
        return None
    try:
        raw = os.fsdecode(os.fspath(value))
    except TypeError:
        return None
    return os.path.abspath(raw)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    watch = _watch
    if watch is None or event not in ("open", "os.rename"):
        return
    if event == "open":
        path, mode, flags = _path(args[0]), args[1], args[2]
        if path is None or not watch.covers(path):
            return
        appending = bool(flags & os.O_APPEND) or (isinstance(mode, str) and "a" in mode)
        writing = appending or bool(flags & (os.O_WRONLY | os.O_RDWR)) or (isinstance(mode, str) and "w" in mode)
        if appending:
            watch.seen.append(("append", path, str(mode)))
            raise OSError(errno.ESPIPE, os.strerror(errno.ESPIPE), path)  # what FUSE answers to an append
        if writing:
            watch.seen.append(("write", path, str(mode)))
        return
    source, target = _path(args[0]), _path(args[1])
    touched = [p for p in (source, target) if p is not None and watch.covers(p)]
    if touched:
        watch.seen.append(("rename", touched[-1], f"{source} -> {target}"))
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS), target)


@contextmanager
def refusing(*folders: Path) -> Iterator[FileOps]:
    """Within the block, appends and renames under ``folders`` fail as on a Volume; yields the record of file ops."""
    global _watch, _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True
        if _watch is not None:
            raise RuntimeError("refusing() blocks do not nest")
        ops = FileOps(tuple(os.path.abspath(f) for f in folders))
        _watch = ops
    try:
        yield ops
    finally:
        _watch = None
