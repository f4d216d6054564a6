"""Using a cassette: the context manager around a case's calls, and what the engine and runner see of it.

Not recorded: in ``none`` (and ``once`` on an existing file) a request without a recording raises
vcrpy's ``CannotOverwriteExistingCassetteException`` inside the transport, before any connection is
opened. openai 3.57 lets it propagate unwrapped (it wraps only httpx2 request errors; measured), while
other SDK versions or wrappers may raise ``APIConnectionError`` with it as ``__cause__``.
:func:`is_not_recorded` and :func:`not_recorded_reason` look through the whole
``__cause__``/``__context__`` chain.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vcr.errors import CannotOverwriteExistingCassetteException

from evalsuite._util.record_modes import MODES
from evalsuite.cassettes._cassette import EvalCassette
from evalsuite.cassettes._options import CassetteOptions
from evalsuite.records import Call, SampleKey


def _not_recorded_cause(exc: BaseException | None) -> BaseException | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, CannotOverwriteExistingCassetteException):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def is_not_recorded(exc: BaseException | None) -> bool:
    """True if ``exc`` or anything in its ``__cause__``/``__context__`` chain is vcrpy's "not in cassette"."""
    return _not_recorded_cause(exc) is not None


def not_recorded_reason(exc: BaseException) -> str:
    """The first line of vcrpy's "not in cassette" message (of ``exc`` itself if it is something else)."""
    text = str(_not_recorded_cause(exc) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class CassetteHandle:
    """What the runner sees of a cassette in use: counts, recorded metadata, and stale() explanations."""

    def __init__(self, cassette: EvalCassette, path: Path, mode: str) -> None:
        self._cassette = cassette
        self.path = path
        self.mode = mode

    @property
    def n_interactions(self) -> int:
        saved = self._cassette.saved_count
        return saved if saved is not None else len(self._cassette.data)

    @property
    def n_played(self) -> int:
        return self._cassette.n_played

    @property
    def n_recorded(self) -> int:
        return self._cassette.n_recorded

    @property
    def n_recovered(self) -> int:
        """Interactions merged from a journal left by a killed recording when this cassette was opened."""
        return self._cassette.recovered

    @property
    def recorded_metadata(self) -> dict[str, Any]:
        return dict(self._cassette.recorded_metadata)

    def play(self, call: Call, endpoint: str) -> dict[str, Any] | None:
        """Replay ``call`` straight from the index, without the HTTP stack (the fast path of mode none).

        ``endpoint`` is any URL path the SDK calls (``chat/completions``, ``/v1/chat/completions``,
        ``deployments/<name>/chat/completions``, ...): the key is the one the transport path computes.
        """
        return self._cassette.play(self._cassette.keys.of_call(call, endpoint))

    def keep_previous(self, example_ids: set[str]) -> None:
        """rewrite: keep these examples' earlier recordings (their calls failed transiently this time)."""
        self._cassette.keep_examples |= example_ids

    def stale(self, calls: Sequence[Call]) -> list[str]:
        """One line per example whose call has no recording, plus a line if the dataset changed.

        Calls carry no endpoint, so this compares the API kind and canonical body (the deployment is
        not checked); repeats are counted, so a sample beyond those recorded is reported too.
        """
        lines = []
        recorded_fp = self._cassette.recorded_metadata.get("dataset_fingerprint")
        current_fp = self._cassette.new_metadata.get("dataset_fingerprint")
        if recorded_fp and current_fp and recorded_fp != current_fp:
            lines.append(f"dataset changed: recorded fingerprint {recorded_fp}, now {current_fp}")
        infos = self._cassette.infos
        available = collections.Counter((info.api, info.body_hash) for info in infos)
        recorded_examples = {SampleKey.parse(info.tag).example_id for info in infos if info.tag}
        reported: set[str] = set()
        for call in calls:
            wanted = (call.api, self._cassette.keys.call_digest(call))
            if available[wanted] > 0:
                available[wanted] -= 1
                continue
            if call.example_id in reported:
                continue
            reported.add(call.example_id)
            if wanted in available:
                lines.append(f"example {call.example_id}: sample {call.sample} not in the cassette (fewer repeats recorded)")
            elif call.example_id in recorded_examples:
                lines.append(f"example {call.example_id}: prompt or parameters changed since recording")
            else:
                lines.append(f"example {call.example_id}: not in the cassette (new row)")
        return lines


@contextmanager
def use_cassette(
    path: Path, mode: str, *, metadata: dict[str, Any], options: CassetteOptions | None = None
) -> Iterator[CassetteHandle]:
    """Record/replay every HTTP call made by httpx/httpx2 (the openai SDK) inside the block.

    ``metadata`` (``dataset_fingerprint``, ``item_id``) is stored when the cassette is written and
    compared by :meth:`CassetteHandle.stale`; ``options`` adds user redaction, filters and matching.
    Raises :class:`CassetteError` for a corrupt file.
    """
    if mode not in MODES:
        raise ValueError(f"record mode {mode!r} is not valid; valid: {', '.join(MODES)}")
    path = Path(path)
    if mode != "none":
        path.parent.mkdir(parents=True, exist_ok=True)  # concurrent workers: never a FileExistsError
    context = EvalCassette.use(
        path=str(path), evalsuite_mode=mode, new_metadata=dict(metadata), options=options or CassetteOptions(),
        record_on_exception=False,
    )
    with context as cassette:
        try:
            yield CassetteHandle(cassette, path, mode)
        except BaseException:
            cassette.save_interrupted()
            raise
