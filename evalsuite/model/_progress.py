"""A live progress line per running case: is it moving, is it throttled, what will it cost, when will it end.

A 25k-example case runs for minutes; the line answers those questions without flooding logs. Where it
goes is a :class:`Sink`: pytest's terminal during a run (past output capture, as pytest's own live logs
are, so it shows without ``-s``), stderr outside pytest. On a terminal the line is redrawn in place, at
most five times a second; anywhere else (CI logs, notebooks, pipes) a plain line is printed at each tenth
of the run (at most one per 5 s) or after 30 s without one, and once at the end. pytest-xdist workers
stay silent: their terminal is not the user's. Counters are kept either way so the runner can read totals.

Under the session scheduler the counts are kept on the engine's thread (no sink there) and the line is
drawn by the thread that waits for the item (:meth:`Progress.show`, :meth:`Progress.close`), so only
pytest's own thread ever writes to its terminal.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any, Protocol, TextIO

from evalsuite.model._pricing import Prices, estimate_cost
from evalsuite.records import Answer


class Sink(Protocol):
    """Where progress lines go; ``in_place``: one line redrawn (a terminal), else plain lines."""

    in_place: bool

    def width(self) -> int: ...

    def redraw(self, text: str) -> None: ...

    def print(self, text: str) -> None: ...

    def close(self) -> None:
        """The case is done: end the redrawn line, give the terminal back."""


class StreamSink:
    """A text stream such as stderr: redrawn with ``\\r`` when it is a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        try:
            self.in_place = stream.isatty()
        except (AttributeError, ValueError):  # closed or not a real file
            self.in_place = False
        self._drawn = 0

    def width(self) -> int:
        return shutil.get_terminal_size().columns

    def redraw(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(text)

    def print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.print("")
            self._drawn = 0


class TerminalSink:
    """pytest's terminal writer, written to with capture suspended (as pytest's live logging does).

    Progress lines go above pytest's current line (``cases/x.yaml ..``), which is written again below
    them, so pytest carries on as if nothing had happened: on a terminal the line first draws over it.
    """

    def __init__(self, writer: Any, capture: Any, *, in_place: bool) -> None:
        self.writer = writer
        self.capture = capture
        self.in_place = in_place
        self._pytest_line: str | None = None  # pytest's unfinished line, once progress has begun

    def _uncaptured(self) -> Any:
        return self.capture.global_and_fixture_disabled() if self.capture is not None else nullcontext()

    def _begin(self) -> None:
        if self._pytest_line is None:
            self._pytest_line = getattr(self.writer, "_current_line", "")  # the text pytest wrote, no markup
            if self._pytest_line and not self.in_place:
                self.writer.line()

    def width(self) -> int:
        return int(self.writer.fullwidth)

    def redraw(self, text: str) -> None:
        with self._uncaptured():
            self._begin()
            self.writer.write("\r" + text.ljust(self.width() - 1), flush=True)

    def print(self, text: str) -> None:
        with self._uncaptured():
            self._begin()
            self.writer.line(text)
            self.writer.flush()

    def close(self) -> None:
        if self._pytest_line is None:
            return
        with self._uncaptured():
            self.writer.write(("\n" if self.in_place else "") + self._pytest_line, flush=True)
        self._pytest_line = None


def terminal_sink(config: Any) -> Sink | None:
    """The sink for a pytest run: its terminal; None (silent) in an xdist worker or without a terminal."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if hasattr(config, "workerinput") or reporter is None:
        return None
    isatty = reporter.isatty  # a method from pytest 8.4.1 on, a bool before
    return TerminalSink(config.get_terminal_writer(), config.pluginmanager.get_plugin("capturemanager"),
                        in_place=bool(isatty() if callable(isatty) else isatty))


_sink: ContextVar[Sink | None] = ContextVar("evalsuite_progress_sink")


@contextmanager
def progress_to(sink: Sink | None) -> Iterator[None]:
    """Send the progress of the case run inside the block to ``sink`` (None: silent)."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def current_sink() -> Sink | None:
    """The sink set by :func:`progress_to` (pytest's terminal during a pytest run), else stderr."""
    try:
        return _sink.get()
    except LookupError:
        return StreamSink(sys.stderr)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts answers of one case and shows ``label  done/total  calls/s  ETA  retries  tokens  ~$cost``."""

    MIN_REDRAW_S = 0.2  # in place: at most five redraws a second
    MIN_LINE_S = 5.0  # plain lines: at most one per tenth of the run, and not more often than this
    MAX_SILENCE_S = 30.0  # plain lines: one after this long without, whatever the progress

    def __init__(
        self,
        label: str,
        total: int,
        *,
        model: str | None = None,
        prices: Prices | None = None,
        sink: Sink | None = None,
    ) -> None:
        """``sink`` None: count only (callers that read the totals themselves)."""
        self.label = label
        self.total = total
        self.model = model
        self.prices = prices
        self.sink = sink
        self.done = 0
        self.errors = 0
        self.retries = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.concurrency: int | None = None
        self._start = time.monotonic()
        self._end: float | None = None  # when the last answer came: a line drawn later still says how long it took
        self._last_shown = self._start
        self._last_tenth = 0
        self._closed = False

    @property
    def cost_usd(self) -> float | None:
        if self.model is None:
            return None
        return estimate_cost(self.model, self.prompt_tokens, self.completion_tokens, self.prices)

    def add(self, answer: Answer) -> None:
        self.done += 1
        self.retries += answer.retries
        self.errors += answer.error is not None
        self.prompt_tokens += answer.prompt_tokens or 0
        self.completion_tokens += answer.completion_tokens or 0
        if self.done >= self.total:
            self._end = time.monotonic()
        if self.sink is not None:
            self.show(self.sink)

    def set_concurrency(self, limit: int) -> None:
        self.concurrency = limit
        if self.sink is not None:
            self.show(self.sink)

    def line(self, *, final: bool = False, width: int | None = None) -> str:
        """The line; within ``width``, the least telling parts (concurrency, tokens, rate) are left off first."""
        elapsed = max((self._end or time.monotonic()) - self._start, 1e-9)
        rate = self.done / elapsed
        cost = self.cost_usd
        # (rank, text): the higher the rank, the sooner the part is left off
        parts: list[tuple[int, str]] = [(0, f"{self.label}  {self.done}/{self.total}"), (4, f"{rate:.1f} calls/s")]
        if final:
            parts.append((1, f"in {_duration(elapsed)}"))
        elif self.done:
            parts.append((1, f"ETA {_duration((self.total - self.done) / rate)}"))
        if self.concurrency is not None:
            parts.append((6, f"concurrency {self.concurrency}"))
        if self.retries:
            parts.append((3, f"{self.retries} retries"))
        if self.errors:
            parts.append((2, f"{self.errors} errors"))
        parts.append((5, f"{self.prompt_tokens + self.completion_tokens:,} tokens"))
        if cost is not None:
            parts.append((2, f"~${cost:.4f}"))
        text = "  ".join(t for _, t in parts)
        while width is not None and len(text) > width and len(parts) > 1:
            parts.remove(max(parts, key=lambda part: part[0]))
            text = "  ".join(t for _, t in parts)
        return text if width is None or len(text) <= width else text[: width - 1] + "~"

    def show(self, sink: Sink) -> None:
        """Draw the line on ``sink`` if it is due (a thread that waits for the case calls this while it waits)."""
        if self.done >= self.total:  # the final state is drawn by close()
            return
        now = time.monotonic()
        since = now - self._last_shown
        if sink.in_place:
            if since < self.MIN_REDRAW_S:
                return
            self._redraw(sink)
        else:
            tenth = self.done * 10 // self.total
            if not (tenth > self._last_tenth and since >= self.MIN_LINE_S) and since < self.MAX_SILENCE_S:
                return
            self._last_tenth = tenth
            sink.print(self.line())
        self._last_shown = now

    def _redraw(self, sink: Sink, *, final: bool = False) -> None:
        sink.redraw(self.line(final=final, width=sink.width() - 1))  # a wrapped line cannot be redrawn in place

    def close(self, sink: Sink | None = None) -> None:
        """Show the final state once on ``sink`` (default: the one given at creation), ending a redrawn line;
        later calls show nothing."""
        sink = sink or self.sink
        self.sink = None
        if sink is None or not self.total or self._closed:
            return
        self._closed = True
        if sink.in_place:
            self._redraw(sink, final=True)
        else:
            sink.print(self.line(final=True))
        sink.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
