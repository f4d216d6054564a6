"""Atomic writes: a refused write names the path, the errno reason and the fix, and leaves the old file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from evalsuite._util.atomic import WHOLE_FILE_ENV, whole_file_writes, write_atomic
from evalsuite.errors import EvalsuiteError, WriteError
from tests._support.volume import refusing


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


# -- Databricks Volumes: no append, no rename --------------------------------------------------------


def test_whole_file_paths_are_volumes_dbfs_and_the_listed_prefixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WHOLE_FILE_ENV, raising=False)
    assert whole_file_writes("/Volumes/main/evals/reports/report.json")
    assert whole_file_writes(Path("/dbfs/tmp/cassettes/x.json"))
    assert not whole_file_writes("/Volumesque/x.json") and not whole_file_writes(tmp_path / "x.json")
    monkeypatch.setenv(WHOLE_FILE_ENV, os.pathsep.join([str(tmp_path / "fuse"), "/mnt/other"]))
    assert whole_file_writes(tmp_path / "fuse" / "a" / "x.json") and whole_file_writes("/mnt/other/x.json")
    assert not whole_file_writes(tmp_path / "fused" / "x.json") and not whole_file_writes(tmp_path / "x.json")
    monkeypatch.setenv(WHOLE_FILE_ENV, "1")
    assert whole_file_writes(tmp_path / "x.json")


def test_a_volume_refuses_the_rename_of_an_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulation bites: without the whole-file mode, the write fails as it would on /Volumes."""
    monkeypatch.delenv(WHOLE_FILE_ENV, raising=False)
    volume = tmp_path / "volume"
    with refusing(volume) as ops, pytest.raises(WriteError, match=r"cannot write the report: .*\[ENOSYS\]"):
        write_atomic(volume / "reports" / "report.json", "{}", what="report")
    assert ops.renames and not (volume / "reports" / "report.json").exists()


def test_a_volume_gets_the_same_bytes_written_whole_with_no_append_or_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume, local = tmp_path / "volume", tmp_path / "local"
    monkeypatch.setenv(WHOLE_FILE_ENV, str(volume))
    data = "".join(f'{{"row": {i}, "text": "é✓ {i}"}}\n' for i in range(20_000))
    (volume / "reports").mkdir(parents=True)
    (volume / "reports" / "report.json").write_text("an older, longer report " * 100_000)  # overwritten, not kept
    with refusing(volume) as ops:
        write_atomic(volume / "reports" / "report.json", data, what="report")
        write_atomic(volume / "new" / "baseline.json", data.encode())
    write_atomic(local / "report.json", data)
    assert not ops.appends and not ops.renames
    assert ops.written == [str(volume / "reports" / "report.json"), str(volume / "new" / "baseline.json")]  # once each
    assert (volume / "reports" / "report.json").read_bytes() == (local / "report.json").read_bytes()
    assert (volume / "new" / "baseline.json").read_bytes() == (local / "report.json").read_bytes()
    assert sorted(p.name for p in (volume / "reports").iterdir()) == ["report.json"]  # no temp file left behind


def test_a_refused_whole_file_write_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WHOLE_FILE_ENV, "1")
    (tmp_path / "reports").write_text("a file")
    with pytest.raises(WriteError, match=r"reports/report.json: cannot write the report: .*\[(ENOTDIR|EEXIST)\]; "
                                         "a parent of this path is a file"):
        write_atomic(tmp_path / "reports" / "report.json", "{}", what="report")
