"""The one place a user-supplied regular expression (``parse.pattern``, ``regex_match``) is compiled and run.

Why the ``regex`` package with a time limit rather than ``re``: a pattern like ``(a|aa)+$`` backtracks
exponentially, so one 40-character answer would hang scoring forever. Why not a linear-time engine
(google-re2): case files use Python ``re`` syntax, lookarounds and backreferences included, which re2
rejects; ``regex`` accepts the same syntax (VERSION0 is ``re``-compatible) and stops a search after
``MATCH_TIMEOUT_S``. A search that times out counts as no match for that answer (the caller says so);
after ``MAX_TIMEOUTS`` timed-out answers the pattern is given up on with an error, so a pattern that is
slow on every answer costs seconds, not hours.
"""

from __future__ import annotations

import threading
from typing import Any

import regex

from evalsuite.errors import EvalsuiteError

MATCH_TIMEOUT_S = 1.0
MAX_TIMEOUTS = 3
_FIX = "rewrite it without nested repetition, e.g. (a+)+ or (a|aa)+ -> a+"


class RegexTimeout(EvalsuiteError):
    """One search ran past ``MATCH_TIMEOUT_S``: the answer counts as not matched."""


class UserPattern:
    """A compiled user pattern that knows where it came from (``where``: the case key, e.g. ``parse.pattern``)."""

    def __init__(self, pattern: str, where: str, *, ignore_case: bool = False) -> None:
        if not isinstance(pattern, str):
            raise ValueError(f"{where}: the pattern must be text, got {type(pattern).__name__} {pattern!r}")
        try:
            self.compiled: Any = regex.compile(pattern, regex.IGNORECASE if ignore_case else 0)
        except regex.error as error:
            raise ValueError(f"{where} {pattern!r} is not a valid regular expression: {error}; fix the pattern "
                             "(Python re syntax; escape literal characters such as ( [ . * with a backslash)") from None
        self.pattern = pattern
        self.where = where
        self.groups: int = self.compiled.groups
        self.groupindex: dict[str, int] = dict(self.compiled.groupindex)
        self.timeouts = 0
        self._lock = threading.Lock()

    def search(self, text: str) -> Any:
        """``regex.Match`` or ``None``; raises :class:`RegexTimeout` for this answer, or ``EvalsuiteError``
        once the pattern has timed out on ``MAX_TIMEOUTS`` answers."""
        if self.timeouts >= MAX_TIMEOUTS:
            raise self._given_up()
        try:
            return self.compiled.search(text, timeout=MATCH_TIMEOUT_S)
        except TimeoutError:
            with self._lock:
                self.timeouts += 1
            if self.timeouts >= MAX_TIMEOUTS:
                raise self._given_up() from None
            raise RegexTimeout(
                f"{self.where} {self.pattern!r} took over {MATCH_TIMEOUT_S:g} s on an answer of {len(text)} characters "
                f"(catastrophic backtracking); that answer counts as not matched. Fix: {_FIX}"
            ) from None

    def _given_up(self) -> EvalsuiteError:
        return EvalsuiteError(
            f"{self.where} {self.pattern!r} timed out (over {MATCH_TIMEOUT_S:g} s) on {self.timeouts} answers: "
            f"stopped rather than hang the run (catastrophic backtracking). Fix: {_FIX}"
        )


_cache: dict[tuple[str, str, bool], UserPattern] = {}
_cache_lock = threading.Lock()


def user_pattern(pattern: str, where: str, *, ignore_case: bool = False) -> UserPattern:
    """The compiled pattern, cached (parsing looks it up once per answer); raises ``ValueError`` naming ``where``."""
    key = (pattern, where, ignore_case)
    found = _cache.get(key)
    if found is None:
        found = UserPattern(pattern, where, ignore_case=ignore_case)
        with _cache_lock:
            if len(_cache) >= 256:
                _cache.clear()
            found = _cache.setdefault(key, found)
    return found
