"""``"file.py:function"`` -> the function: the ``python:`` shortcut of case files (parsers, metrics).

Why a file path and not a module name: a one-off function lives beside the case file that uses it,
which is not on ``sys.path``. Each file is imported once per process (cached by its resolved path) under
a private module name, so two case folders may both have a ``local.py``. Problems come back as one
``ValueError`` sentence with the fix, never as the user module's traceback.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from evalsuite.errors import display_path, suggest


def split_ref(ref: str) -> tuple[str, str]:
    """``"local.py:score"`` -> ``("local.py", "score")``; ValueError when it is not of that shape."""
    file, sep, name = ref.rpartition(":")
    if not sep or not file.endswith(".py") or not name.isidentifier():
        raise ValueError(f"{ref!r} must be '<file>.py:<function>', e.g. 'local_functions.py:my_function' "
                         "(the file relative to the case file's folder)")
    return file, name


def resolve_ref(ref: str, base_dir: Path) -> str:
    """The ref with its file made absolute against ``base_dir`` (the case file's folder)."""
    file, name = split_ref(ref)
    return f"{(Path(base_dir) / file).resolve()}:{name}"


def load_function(ref: str, base_dir: Path, *, rootdir: Path | None = None) -> Callable[..., Any]:
    """The function ``ref`` names, its file relative to ``base_dir``; ``rootdir`` shortens paths in messages."""
    file, name = split_ref(ref)
    path = (Path(base_dir) / file).resolve()
    shown = display_path(path, rootdir)
    if not path.is_file():
        raise ValueError(f"{shown} does not exist (the path is relative to the case file's folder); "
                         "create it or fix the path")
    module = _import(path, shown)
    obj = getattr(module, name, None)
    if obj is None:
        defined = [n for n, v in vars(module).items()
                   if (inspect.isfunction(v) or inspect.isclass(v)) and v.__module__ == module.__name__]
        raise ValueError(f"{shown} has no function {name!r}; {suggest(name, defined, 'functions defined there')}")
    if not callable(obj):
        raise ValueError(f"{shown}:{name} is not a function (its type is {type(obj).__name__}); name a function")
    return obj


@functools.cache
def _import_cached(path: Path) -> ModuleType:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    module_name = f"_evalsuite_python_ref_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _import(path: Path, shown: str) -> ModuleType:
    try:
        return _import_cached(path)
    except SyntaxError as exc:
        raise ValueError(f"{shown}:{exc.lineno}: cannot import it: SyntaxError: {exc.msg}; fix the module") from None
    except Exception as exc:  # the user's module failed while importing: say where, not how deep
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        where = f"{shown}:{frames[-1].lineno}" if frames else shown
        raise ValueError(f"{where}: cannot import it: {type(exc).__name__}: {exc}; fix the module") from None
