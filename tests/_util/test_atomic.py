"""Atomic writes: a refused write names the path, the errno reason and the fix, and leaves the old file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from evalsuite._util.atomic import write_atomic
from evalsuite.errors import EvalsuiteError, WriteError


def test_a_path_under_a_file_is_a_clear_error_even_for_root(tmp_path: Path) -> None:
    (tmp_path / "reports").write_text("a file")
    with pytest.raises(WriteError, match=r"reports/report.json: cannot write the report: .*\[(ENOTDIR|EEXIST)\]; "
                                         "a parent of this path is a file, not a folder"):
        write_atomic(tmp_path / "reports" / "report.json", "{}", what="report")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_clear_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(WriteError, match=r"cannot write the file: .*\[EACCES\]; make the folder writable"):
            write_atomic(tmp_path / "x.json", "{}")
    finally:
        tmp_path.chmod(0o700)


def test_a_full_disk_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(WriteError) as error:
        write_atomic(path, "new")
    assert str(error.value) == f"{path}: cannot write the file: No space left on device [ENOSPC]; free disk space"
    assert isinstance(error.value, OSError) and isinstance(error.value, EvalsuiteError)  # old handlers still catch it
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["baseline.json"]
