"""Every user-facing error: one hierarchy under ``EvalsuiteError``.

The message of each is complete (what is wrong, where, the fix), so the plugin and the CLI print it
without a traceback by matching the one base class.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class EvalsuiteError(Exception):
    """A user-facing error: the message names what is wrong, where, and how to fix it."""


def display_path(path: Path | str, rootdir: Path | None) -> str:
    """``path`` relative to ``rootdir`` when it lies inside it (what a user sees in messages)."""
    if rootdir is not None:
        try:
            return Path(path).resolve().relative_to(Path(rootdir).resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


def suggest(word: Any, choices: Sequence[str], label: str, *, none: str = "none") -> str:
    """``"did you mean 'x'? <label>: a, b, x"``: the one wording of every unknown-name message (the hint
    left out when nothing is close; ``none`` stands in for an empty list)."""
    close = difflib.get_close_matches(str(word), choices, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}{label}: {', '.join(choices) or none}"


class CaseFileError(EvalsuiteError):
    """Bad input in a case file (or a defaults layer): ``<file>:<line>: <key>: <problem>; <fix>``."""

    def __init__(self, path: Path | str, line: int, message: str, *, rootdir: Path | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        self.rootdir = rootdir
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{display_path(self.path, self.rootdir)}:{self.line}: {self.message}"


class UnknownName(EvalsuiteError, ValueError):
    """A case names a metric, parser or provider that is not registered."""

    def __init__(self, kind: str, name: str, valid: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = valid
        super().__init__(f"unknown {kind} {name!r}; {suggest(name, valid, 'valid')}")


class DatasetError(EvalsuiteError):
    """The dataset cannot be read or lacks what the case needs; ``key`` is the ``dataset.*`` key the case loader
    points at when it finds the problem at collection."""

    def __init__(self, message: str, *, key: tuple[str, ...] = ("dataset",)) -> None:
        self.key = key
        super().__init__(message)


class DatasetUnavailable(EvalsuiteError):
    """The dataset cannot be had here (a Hub id offline): the item is skipped, not failed."""


class PromptError(EvalsuiteError):
    """A template cannot be rendered for an example."""


class MissingCredentials(EvalsuiteError):
    """A live run has no key; the message names the environment variable to set."""


class CassetteError(EvalsuiteError):
    """A cassette file exists but cannot be used; the message names the file and the fix."""


class QuarantineError(CaseFileError):
    """quarantine.yaml cannot be used (malformed, unknown key, an expired entry): ``<file>:<line>: <problem>; <fix>``."""


class NotRecorded(EvalsuiteError):
    """Replay found no recording for some calls; the message says which and how to record them."""


class Unavailable(EvalsuiteError):
    """The case cannot run here (e.g. a Hub dataset offline and nothing recorded): a skip, not a failure."""


class MetricParamError(EvalsuiteError, ValueError):
    """A metric parameter is unknown, missing or has a value the metric does not accept."""


class ParseSpecError(EvalsuiteError, ValueError):
    """A ``parse:`` spec that cannot work; ``key`` is the ``parse.*`` key the loader points at."""

    def __init__(self, key: tuple[str, ...], message: str) -> None:
        self.key = key
        super().__init__(message)


class MetricError(EvalsuiteError, ValueError):
    """Scoring cannot proceed with the answers given (e.g. perplexity without logprobs)."""


class BaselineError(EvalsuiteError):
    """A baseline (or report) file that cannot be used; the message names the file and the fix."""

    def __init__(self, path: Path | str, message: str, fix: str) -> None:
        self.path, self.message, self.fix = Path(path), message, fix
        super().__init__(f"{path}: {message}. Fix: {fix}")


class SettingsError(EvalsuiteError):
    """A run option (command line, ini key, or ``RunSettings.from_options`` key) is invalid; the message names it and the fix."""


class ServeLocalError(EvalsuiteError):
    """The local llama.cpp server cannot be started; the message says what to install."""


class WriteError(EvalsuiteError, OSError):
    """A file cannot be written (read-only or full disk): names the path, the errno reason and the fix.
    Also an ``OSError``, so callers that handled the plain error still do."""


class EvalsuiteWarning(UserWarning):
    """Something that may be legitimate but changes the numbers (a regex timeout, ROUGE dropping text):
    shown in pytest's warnings summary."""


class CaseFileWarning(EvalsuiteWarning):
    """A case setting that is usually a mistake but can be meant (``repeats`` at temperature 0), reported at its
    file and line; silence it with ``filterwarnings = ignore::evalsuite.errors.CaseFileWarning``.

    ``location`` (``cases/x.yaml:12``) names the place again where ``-W error`` turns the warning into an error."""

    def __init__(self, message: str, location: str = "") -> None:
        super().__init__(message)
        self.location = location
