"""Crash-safe file writes, shared by cassettes, reports and baselines: a reader never sees half a file.

A write that the file system refuses (read-only or full disk, a parent that is a file) raises
:class:`~evalsuite.errors.WriteError` naming the path, the errno reason and the fix, and leaves the
previous file as it was.

Databricks' FUSE mounts (Unity Catalog Volumes under ``/Volumes/``, DBFS under ``/dbfs/``) refuse appends
and renames, the two things a crash-safe write is made of. Under such a path (:func:`whole_file_writes`) a
file is written whole, in one sequential write of a file opened once, and never renamed; the journal of a
cassette being recorded stays on local disk (:mod:`evalsuite.cassettes._journal`). The atomicity is then
the mount's: Databricks uploads the file when it is closed.
"""

from __future__ import annotations

import errno
import os
import secrets
from contextlib import suppress
from pathlib import Path

from evalsuite.errors import WriteError

WHOLE_FILE_PREFIXES = ("/Volumes", "/dbfs")  # Databricks FUSE mounts: no append, no rename
WHOLE_FILE_ENV = "EVALSUITE_WHOLE_FILE_WRITES"  # "1": everywhere; else more path prefixes, os.pathsep-separated

_FIXES = {
    errno.ENOSPC: "free disk space",
    errno.EDQUOT: "free space within your disk quota",
    errno.EROFS: "the file system is read-only: write somewhere else",
    errno.EACCES: "make the folder writable, or write somewhere else",
    errno.EPERM: "make the folder writable, or write somewhere else",
    errno.ENOTDIR: "a parent of this path is a file, not a folder: remove it or choose another folder",
    errno.EEXIST: "a parent of this path is a file, not a folder: remove it or choose another folder",
}


def write_failure(path: Path, exc: OSError, what: str = "file") -> WriteError:
    """The one wording of "cannot write": path, strerror [ERRNO], the fix."""
    if isinstance(exc, WriteError):
        return exc
    code = errno.errorcode.get(exc.errno or 0, "")
    reason = f"{exc.strerror or exc}{f' [{code}]' if code else ''}"
    fix = _FIXES.get(exc.errno or 0, "check the path and its permissions")
    return WriteError(f"{path}: cannot write the {what}: {reason}; {fix}")


def whole_file_writes(path: Path | str) -> bool:
    """True where files must be written whole, with no append and no rename: under ``/Volumes`` or ``/dbfs``,
    under a prefix listed in ``$EVALSUITE_WHOLE_FILE_WRITES`` (``os.pathsep``-separated), or anywhere when it is 1."""
    setting = os.environ.get(WHOLE_FILE_ENV, "")
    if setting.strip() == "1":
        return True
    absolute = os.path.abspath(path)
    prefixes = [*WHOLE_FILE_PREFIXES, *(os.path.abspath(p) for p in setting.split(os.pathsep) if p.strip())]
    return any(absolute == prefix or absolute.startswith(prefix.rstrip(os.sep) + os.sep) for prefix in prefixes)


def write_atomic(path: Path, data: bytes | str, *, what: str = "file") -> None:
    """Temp file (pid + random in its name, so xdist workers never share one) + fsync + os.replace; under
    :func:`whole_file_writes` paths, one sequential write of the whole file instead."""
    path = Path(path)
    if whole_file_writes(path):
        _write_whole(path, data.encode("utf-8") if isinstance(data, str) else data, what)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies, like a plain open()
    except OSError as exc:
        raise write_failure(path, exc, what) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise write_failure(path, exc, what) from None
        raise


def _write_whole(path: Path, data: bytes, what: str) -> None:
    """Create or truncate, write everything, close: the only write a Volume accepts (the upload happens on close)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise write_failure(path, exc, what) from None
