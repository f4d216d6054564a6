"""Using a cassette: opened for the session scheduler, or the context manager around a test's calls, and what
the engine and runner see of it.

Two ways in. :func:`open_cassette` (the session scheduler's): nothing is patched, so any number can be open
at once; answers are played straight from the index (:meth:`CassetteHandle.play`) and each successful live
response is handed over by the engine (:meth:`CassetteHandle.record`, exactly what vcrpy's httpx stub stores:
the request as sent, the response's status, headers and body), through the same redaction and journal. Saved
with :meth:`CassetteHandle.save`. :func:`use_cassette` (hand-written tests' fixtures): vcrpy patches the httpx
transports for the block, so every call the test makes is recorded or replayed.

Not recorded: in ``none`` (and ``once`` on an existing file) a request without a recording raises
vcrpy's ``CannotOverwriteExistingCassetteException`` inside the transport, before any connection is
opened. openai 3.57 lets it propagate unwrapped (it wraps only httpx2 request errors; measured), while
other SDK versions or wrappers may raise ``APIConnectionError`` with it as ``__cause__``.
:func:`is_not_recorded` and :func:`not_recorded_reason` look through the whole
``__cause__``/``__context__`` chain. :meth:`CassetteHandle.explain_misses` then says why each example
missed (new row, fewer repeats, changed prompt or parameters, or recorded for another endpoint, with the
flags that recorded it, so the fix never mixes two endpoints in one cassette).
"""

from __future__ import annotations

import collections
import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.record_mode import RecordMode
from vcr.request import Request

from evalsuite._util.atomic import write_failure

from evalsuite._util.record_modes import MODES
from evalsuite.cassettes._cassette import EvalCassette
from evalsuite.cassettes._keys import api_of, endpoint_tail
from evalsuite.cassettes._options import CassetteOptions
from evalsuite.records import Call, SampleKey, canonical_body


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

    @property
    def write_protected(self) -> bool:
        """Nothing may be recorded: mode none, or once over a cassette that exists; a miss is "not recorded"."""
        return bool(self._cassette.write_protected)

    @property
    def replays(self) -> bool:
        """Recordings are played (every mode but all and rewrite, which send every call)."""
        return self._cassette.record_mode != RecordMode.ALL

    def record(self, response: Any) -> None:
        """Record one live exchange: an httpx ``Response`` whose body was read, with its ``request``.

        The body is the decoded one, so ``content-encoding`` is left out, as vcrpy's decoding would."""
        request = response.request
        headers: dict[str, list[str]] = {}
        for name, value in response.headers.multi_items():
            if name.lower() != "content-encoding":
                headers.setdefault(name, []).append(value)
        self._cassette.append(
            Request(request.method, str(request.url), request.content, dict(request.headers.items())),
            {"status": {"code": response.status_code, "message": response.reason_phrase}, "headers": headers,
             "body": {"string": response.content}},
        )

    def save(self) -> None:
        """Write the cassette (atomically) if anything was recorded, and drop its journal. The handle is done then:
        its recording is released (only the counts stay), so an item's 25k interactions do not outlive it."""
        self._cassette._save()
        self._cassette.release()

    def save_interrupted(self) -> None:
        """After an interruption: merge what the journal holds into the file, as the next load would; then released
        as :meth:`save` is."""
        try:
            self._cassette.save_interrupted()
        finally:
            self._cassette.release()

    @property
    def redact(self) -> tuple[str, ...]:
        """The ``eval_redact`` lines this cassette redacts besides the built-in rule (they hold secrets)."""
        return tuple(self._cassette.options.redact)

    def adopt(self, interactions: Iterable[tuple[Any, dict[str, Any]]]) -> None:
        """Record interactions recorded elsewhere (Spark tasks' shards), as this cassette records its own."""
        for request, response in interactions:
            self._cassette.adopt(request, response)

    def keep_previous(self, example_ids: set[str]) -> None:
        """rewrite: keep these examples' earlier recordings (their calls failed transiently this time)."""
        self._cassette.keep_examples |= example_ids

    def stale(self, calls: Sequence[Call]) -> list[str]:
        """One line per example whose call has no recording, plus a line if the dataset changed."""
        return self.explain_misses(calls).lines

    def explain_misses(self, calls: Sequence[Call], *, provider: str = "", endpoint: str = "") -> Misses:
        """Why calls have no recording: one line per example, and the flags that recorded them elsewhere.

        Calls carry no endpoint: pass the current ``provider`` and ``endpoint`` (the provider's URL path
        tail) so a recording for another deployment, provider or API is told apart from a changed prompt;
        repeats are counted, so a sample beyond those recorded is reported too.
        """
        lines = []
        recorded_fp = self._cassette.recorded_metadata.get("dataset_fingerprint")
        current_fp = self._cassette.new_metadata.get("dataset_fingerprint")
        if recorded_fp and current_fp and recorded_fp != current_fp:
            lines.append(f"dataset changed: recorded fingerprint {recorded_fp}, now {current_fp}")
        infos = self._cassette.infos
        available = collections.Counter((info.api, info.body_hash) for info in infos)
        first_recording: dict[str, int] = {}
        for index, info in enumerate(infos):
            if info.tag:
                first_recording.setdefault(SampleKey.parse(info.tag).example_id, index)
        reported: set[str] = set()
        flags: list[str] = []
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
            elif call.example_id in first_recording:
                request = self._cassette.data[first_recording[call.example_id]][0]
                line, recorded_flags = _compare(call, request, provider, endpoint)
                lines.append(f"example {call.example_id}: {line}")
                if recorded_flags and recorded_flags not in flags:
                    flags.append(recorded_flags)
            else:
                lines.append(f"example {call.example_id}: not in the cassette (new row)")
        return Misses(lines, flags)


@dataclass
class Misses:
    """``recorded_with``: the ``--eval-model``/``--eval-api`` flags the missing examples were recorded with,
    when that was another endpoint (then ``new_episodes`` would mix two endpoints in one cassette)."""

    lines: list[str]
    recorded_with: list[str] = field(default_factory=list)


_PROMPT_FIELDS = ("messages", "prompt", "input", "instructions")
SHOWN_VALUE_CHARS = 40  # a changed parameter's values are shown up to this length (a tool list is named only)


def _setup(endpoint: str, body: dict[str, Any], provider: str) -> dict[str, str]:
    """provider / model / api of a request; the provider is known only as far as the URL tells it (Azure's
    deployments/<name>/ path), so a non-Azure path counts as the current provider unless that is Azure."""
    deployment = endpoint.split("/")[1] if endpoint.startswith("deployments/") else ""
    if deployment or endpoint == "openai/responses":
        guessed = "azure_openai"
    else:
        guessed = "openai" if provider == "azure_openai" else provider
    return {"provider": guessed, "model": deployment or str(body.get("model", "")), "api": api_of(endpoint)}


def _compare(call: Call, request: Any, provider: str, endpoint: str) -> tuple[str, str]:
    """(what differs between the recording of this example and the call, the flags that recorded it)."""
    recorded_endpoint = endpoint_tail(urlparse(request.uri).path)
    try:
        recorded_body = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError:
        recorded_body = {}
    recorded_body = orjson.loads(canonical_body(recorded_body)) if isinstance(recorded_body, dict) else {}
    current_body = orjson.loads(canonical_body(call.body))  # what matching compares: ignored fields dropped
    current_endpoint = endpoint or {"chat": "chat/completions", "responses": "responses"}.get(call.api, "completions")
    before = _setup(recorded_endpoint, recorded_body, provider)
    after = _setup(current_endpoint, current_body, provider)
    if not provider:
        before["provider"] = after["provider"] = ""  # unknown here: not compared
    moved = [f"{name} {before[name]} -> {after[name]}" for name in ("provider", "model", "api") if before[name] != after[name]]
    if moved:
        model_flag = f"{before['provider']}:{before['model']}" if before["provider"] != after["provider"] else before["model"]
        parts = [f"--eval-model {model_flag}"] if before["provider"] != after["provider"] or before["model"] != after["model"] else []
        if before["api"] != after["api"]:
            parts.append(f"--eval-api {before['api']}")
        return f"recorded for another endpoint ({', '.join(moved)})", " ".join(parts)
    params = [_change(name, _value(recorded_body, name), _value(current_body, name))
              for name in sorted(set(recorded_body) | set(current_body))
              if name not in (*_PROMPT_FIELDS, "model") and recorded_body.get(name) != current_body.get(name)]
    prompt = any(recorded_body.get(name) != current_body.get(name) for name in _PROMPT_FIELDS)
    if params:
        return f"{'prompt and ' if prompt else ''}parameters changed since recording ({', '.join(params)})", ""
    return ("prompt changed since recording" if prompt else "prompt or parameters changed since recording"), ""


def _value(body: dict[str, Any], name: str) -> str:
    return "unset" if name not in body else orjson.dumps(body[name]).decode()


def _change(name: str, before: str, after: str) -> str:
    """``temperature 0 -> 0.7``; a long value (a tool list, a JSON Schema) by its name alone."""
    return f"{name} {before} -> {after}" if max(len(before), len(after)) <= SHOWN_VALUE_CHARS else name


def open_cassette(
    path: Path, mode: str, *, metadata: dict[str, Any], options: CassetteOptions | None = None
) -> CassetteHandle:
    """The cassette at ``path`` loaded for explicit playback and recording (nothing patched); ``save()`` it.

    Raises :class:`CassetteError` for a corrupt file, ``WriteError`` for a folder that cannot take it.
    """
    if mode not in MODES:
        raise ValueError(f"record mode {mode!r} is not valid; valid: {', '.join(MODES)}")
    path = Path(path)
    if mode != "none":
        _check_writable(path.parent)
    cassette = EvalCassette.load(path=str(path), evalsuite_mode=mode, new_metadata=dict(metadata),
                                 options=options or CassetteOptions())
    return CassetteHandle(cassette, path, mode)


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
        _check_writable(path.parent)
    context = EvalCassette.use(
        path=str(path), evalsuite_mode=mode, new_metadata=dict(metadata), options=options or CassetteOptions(),
        record_on_exception=False,
    )
    cassette: EvalCassette | None = None
    try:
        with context as cassette:
            try:
                yield CassetteHandle(cassette, path, mode)
            except BaseException:
                cassette.save_interrupted()
                raise
    finally:
        if cassette is not None:
            cassette.release()


def _check_writable(folder: Path) -> None:
    """Before anything is sent: a folder that cannot take the cassette (read-only, a file in the way)
    would otherwise waste every answer recorded. Creating it here also spares concurrent workers a
    FileExistsError."""
    probe = folder / f".evalsuite-write-check.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise write_failure(folder, exc, "cassette folder (nothing was sent)") from None
