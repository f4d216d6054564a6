"""Run a Databricks notebook's cells off Databricks, as a job would run them, with ``dbutils`` stubbed.

``dbutils`` and ``displayHTML`` exist only on Databricks, so a stub stands in for them: widgets answer with the
given job parameters, the notebook context names the notebook's workspace path, secrets are recorded (and
answered with a placeholder), ``displayHTML`` keeps what it was given. Everything else is the notebook's own code,
executed cell by cell (``# COMMAND ----------`` separates cells; ``# MAGIC`` lines are comments to Python, as in
the source format) in one namespace, in this process. Run as a script in a fresh process, from any working
directory::

    python -m tests._support.notebook NOTEBOOK NOTEBOOK_PATH PARAMS_JSON OUT_JSON [VOLUME]

With ``VOLUME``, the run happens inside ``tests._support.volume.refusing(VOLUME)``: appends and renames there fail
as on a Unity Catalog Volume, and the file operations seen there are reported.
"""

from __future__ import annotations

import json
import sys
import traceback
from contextlib import nullcontext
from pathlib import Path
from typing import Any

CELL_SEPARATOR = "# COMMAND ----------"


def cells(notebook: Path) -> list[str]:
    return notebook.read_text().split(CELL_SEPARATOR)


class _Value:
    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value


class _Context:
    """``getContext()``: the notebook's workspace path (without ``/Workspace``, as Databricks gives it)."""

    def __init__(self, notebook_path: str) -> None:
        self._path = notebook_path

    def notebookPath(self) -> _Value:  # noqa: N802 - the Databricks (Java) names
        return _Value(self._path)


class _JavaDbutils:
    """``dbutils.notebook.entry_point.getDbutils()``, and its ``notebook()``: both lead to the context."""

    def __init__(self, context: _Context) -> None:
        self._context = context

    def getDbutils(self) -> _JavaDbutils:  # noqa: N802
        return self

    def notebook(self) -> _JavaDbutils:
        return self

    def getContext(self) -> _Context:  # noqa: N802
        return self._context


class _Notebook:
    def __init__(self, context: _Context) -> None:
        self.entry_point = _JavaDbutils(context)


class _Widgets:
    def __init__(self, params: dict[str, str]) -> None:
        self.params = params
        self.defaults: dict[str, str] = {}

    def text(self, name: str, default: str, label: str | None = None) -> None:
        self.defaults[name] = default

    def get(self, name: str) -> str:
        return self.params.get(name, self.defaults[name])


class _Secrets:
    def __init__(self) -> None:
        self.read: list[tuple[str, str]] = []

    def get(self, scope: str, key: str) -> str:
        self.read.append((scope, key))
        return f"secret-{key}"


class _Library:
    def __init__(self) -> None:
        self.restarted = False

    def restartPython(self) -> None:  # noqa: N802
        self.restarted = True


class Dbutils:
    """The parts of ``dbutils`` the notebook uses, recording what it asked for."""

    def __init__(self, notebook_path: str, params: dict[str, str]) -> None:
        self.widgets, self.secrets, self.library = _Widgets(params), _Secrets(), _Library()
        self.notebook = _Notebook(_Context(notebook_path))


def run(notebook: Path, notebook_path: str, params: dict[str, str]) -> dict[str, Any]:
    """Execute every cell; stop at the first exception, as a job does. Returns what happened."""
    dbutils = Dbutils(notebook_path, params)
    shown: list[str] = []
    namespace: dict[str, Any] = {"dbutils": dbutils, "displayHTML": shown.append, "__name__": "__main__"}
    raised = None
    for index, source in enumerate(cells(notebook)):
        try:
            exec(compile(source, f"{notebook}#cell{index}", "exec"), namespace)  # noqa: S102 - the notebook under test
        except Exception as exc:  # noqa: BLE001 - what the job would report
            raised = {"cell": index, "type": type(exc).__name__, "message": str(exc),
                      "traceback": traceback.format_exc()}
            break
    return {"raised": raised, "secrets_read": dbutils.secrets.read, "restarted": dbutils.library.restarted,
            "displayed": shown, "report_dir": namespace.get("REPORT_DIR"), "exit_code": namespace.get("exit_code")}


def main(argv: list[str]) -> None:
    notebook, notebook_path, params, out = Path(argv[0]), argv[1], json.loads(argv[2]), Path(argv[3])
    from tests._support.volume import refusing

    with refusing(Path(argv[4])) if len(argv) > 4 else nullcontext() as ops:
        outcome = run(notebook, notebook_path, params)
    if ops is not None:
        outcome["volume"] = {"appends": ops.appends, "renames": ops.renames, "written": ops.written}
    out.write_text(json.dumps(outcome))


if __name__ == "__main__":
    main(sys.argv[1:])
