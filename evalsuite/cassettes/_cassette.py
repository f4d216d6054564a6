"""Stage 4: record and replay model calls with vcrpy cassettes, one JSON file per pytest item.

vcrpy does the recording and playback (its httpx/httpx2 transport patches are unchanged); this module
supplies what an LLM suite needs on top, through vcrpy's own extension points (a ``Cassette``
subclass used via ``EvalCassette.use(...)``, a persister and a serializer):

Matching (what determines the answer, nothing else)
    method + endpoint + canonical JSON body. The endpoint is the path tail: ``chat/completions`` or
    ``completions`` (any ``/v1`` style prefix dropped), or ``deployments/<name>/chat/completions`` for
    Azure (the deployment picks the model, so it is kept). Scheme, host and port are ignored, so a
    cassette recorded against one endpoint replays against another; the ``api-version`` query
    parameter (and the key parameters below) are ignored, other query parameters count. The body is
    parsed, integral top-level numbers become ints (``temperature`` ``1.0 == 1``), and these top-level fields are dropped because
    they do not change the answer: ``user``, ``metadata``, ``stream_options``, ``store``,
    ``service_tier``, and ``n`` when it is 1. Keys are sorted (orjson ``OPT_SORT_KEYS``) and hashed.

Replay is O(1) per request
    Stock vcrpy scans every interaction twice per request and runs every matcher (quadratic; 1,000
    body-matched interactions took 232 s). ``EvalCassette`` indexes interactions by match key
    (key -> deque of unplayed indices), so ``can_play_response_for``, ``play_response``,
    ``__contains__`` and ``append`` are dictionary operations. Identical requests (N samples of one
    example) are all recorded and each recording is played once, in recorded order; a request whose
    ``x-evalsuite-example`` tag matches a recording with the same key gets that recording first, so
    sample k replays sample k's answer even when the samples completed out of order.

Recording
    Throttling and server errors (429, 408, 409, 5xx) are never recorded, so replay never waits on a
    recorded ``Retry-After``; other 4xx answers are recorded. Compressed bodies are decoded first.
    The engine's ``x-evalsuite-sent-at: <time.time()>`` request header gives the latency, stored as the
    response header ``x-evalsuite-latency-ms`` so replay reports the recorded latency.

Redaction (at record time, request and response, header names case-insensitive)
    Headers ``authorization, api-key, x-api-key, openai-organization, openai-project, cookie,
    set-cookie`` and the query parameters ``api-key, api_key, key`` are replaced by ``REDACTED``. Any
    other header value, query value or response body containing the value of an environment variable
    whose name contains KEY, TOKEN, SECRET or PASSWORD (value of 8+ characters) has that value replaced
    by ``<NAME>``. Volatile request headers are dropped: ``x-stainless-*``, ``user-agent``,
    ``x-evalsuite-sent-at``, ``host``, ``content-length``, ``connection``, ``accept-encoding``; and the
    response headers ``date`` and ``content-length`` (bodies are re-serialised). The request header
    ``x-evalsuite-example: <example_id>#<sample>`` is kept: it explains stale cassettes.

File layout and crash safety
    ``{"version": 1, "metadata": {...}, "interactions": [{"request": {...}, "response": {...}}]}``,
    indented, keys sorted; a JSON request body is stored parsed under ``body_json`` and a JSON response
    body under ``body.json`` (plain text under ``body`` / ``body.string``, binary as base64), so diffs
    are readable. Metadata: ``dataset_fingerprint``, ``item_id``, ``evalsuite_version``,
    ``recorded_at``. Files are loaded with orjson, written atomically (temp file with the pid in its
    name, fsync, ``os.replace``). Each interaction recorded is also appended, flushed, to
    ``<cassette>.journal.jsonl``; a journal left by a killed process is merged into the cassette on the
    next load and removed once the merge is saved, so an interrupted recording keeps what it recorded
    and never leaves an unloadable file. A cassette that cannot be parsed raises
    :class:`CassetteError` naming the file: it is never silently re-recorded.

Modes: ``none`` (replay only), ``once`` (record only when the file does not exist), ``new_episodes``
(replay, record what is missing), ``all`` (send everything, recordings replace the ones with the same
key, unused ones are kept), ``rewrite`` (send everything; the saved file holds only this run's
interactions; the old file stays intact until the run completes).

Not recorded: in ``none`` (and ``once`` on an existing file) a request without a recording raises
vcrpy's ``CannotOverwriteExistingCassetteException`` inside the transport, before any connection is
opened. openai 3.57 lets it propagate unwrapped (it wraps only httpx2 request errors; measured), while
other SDK versions or wrappers may raise ``APIConnectionError`` with it as ``__cause__``. Use
:func:`is_not_recorded`, which looks through the whole ``__cause__``/``__context__`` chain.
"""

from __future__ import annotations

import base64
import collections
import gc
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import orjson
from vcr.cassette import Cassette
from vcr.errors import CannotOverwriteExistingCassetteException, UnhandledHTTPRequestError
from vcr.filters import decode_response
from vcr.persisters.filesystem import CassetteNotFoundError
from vcr.record_mode import RecordMode
from vcr.request import HeadersDict, Request

import evalsuite
from evalsuite._util.atomic import write_atomic
from evalsuite.errors import CassetteError
from evalsuite.records import Call, body_hash

MODES = ("none", "once", "new_episodes", "all", "rewrite")
_RECORD_MODE = {
    "none": RecordMode.NONE,
    "once": RecordMode.ONCE,
    "new_episodes": RecordMode.NEW_EPISODES,
    "all": RecordMode.ALL,
    "rewrite": RecordMode.ALL,
}

IGNORED_QUERY = frozenset({"api-version", "api-key", "api_key", "key"})
SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "openai-organization", "openai-project", "cookie", "set-cookie"}
)
SECRET_QUERY = frozenset({"api-key", "api_key", "key"})
DROPPED_REQUEST_HEADERS = frozenset(
    {"user-agent", "x-evalsuite-sent-at", "host", "content-length", "connection", "accept-encoding"}
)
DROPPED_RESPONSE_HEADERS = frozenset({"date", "content-length"})
NOT_RECORDED_STATUSES = frozenset({408, 409, 429})
PLACEHOLDER = "REDACTED"
EXAMPLE_HEADER = "x-evalsuite-example"
SENT_AT_HEADER = "x-evalsuite-sent-at"
LATENCY_HEADER = "x-evalsuite-latency-ms"
JOURNAL_SUFFIX = ".journal.jsonl"
_SECRET_NAME = re.compile("KEY|TOKEN|SECRET|PASSWORD")
_DEPLOYMENT = re.compile(r"/deployments/([^/]+)/(.+)$")


def is_not_recorded(exc: BaseException | None) -> bool:
    """True if ``exc`` or anything in its ``__cause__``/``__context__`` chain is vcrpy's "not in cassette"."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, CannotOverwriteExistingCassetteException):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


# -- match keys ----------------------------------------------------------------------------------


def _endpoint(path: str) -> str:
    deployment = _DEPLOYMENT.search(path)
    if deployment:
        return f"deployments/{deployment[1]}/{deployment[2]}"
    for tail in ("chat/completions", "completions"):
        if path.endswith("/" + tail) or path == tail:
            return tail
    return path.rsplit("/v1/", 1)[-1].lstrip("/")


def _api(endpoint: str) -> str:
    return "chat" if endpoint.endswith("chat/completions") else "completions" if endpoint.endswith("completions") else endpoint


class _Info(NamedTuple):
    """What an interaction's request is, for matching (key) and for explaining misses (the rest)."""

    key: str
    api: str  # "chat" | "completions" | other endpoint
    body_hash: str
    tag: str  # x-evalsuite-example value, "" if absent


def _info(method: str, uri: str, body: Any, headers: Any) -> _Info:
    """``body``: bytes/str as sent, or an already parsed JSON value."""
    parsed = urlparse(uri)
    endpoint = _endpoint(parsed.path)
    query = sorted((k, v) for k, v in parse_qsl(parsed.query, keep_blank_values=True) if k.lower() not in IGNORED_QUERY)
    if isinstance(body, (bytes, str)):
        with suppress(ValueError):
            body = orjson.loads(body)
    if isinstance(body, dict):
        digest = body_hash(body)
    elif isinstance(body, (bytes, str)) or body is None:  # not JSON: the exact bytes
        digest = hashlib.sha256(body.encode() if isinstance(body, str) else body or b"").hexdigest()
    else:  # a JSON array or scalar
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    query_part = urlencode(query) if query else "-"
    tag = headers.get(EXAMPLE_HEADER, "") if headers is not None else ""
    if isinstance(tag, list):
        tag = tag[0] if tag else ""
    return _Info(f"{method.upper()} {endpoint} {query_part} {digest}", _api(endpoint), digest, tag)


def _request_info(request: Request) -> _Info:
    info = getattr(request, "_evalsuite_info", None)
    if info is None:
        info = _info(request.method, request.uri, request.body, request.headers)
        request._evalsuite_info = info  # the transport asks can_play_response_for, then play_response
    return info


# -- redaction ------------------------------------------------------------------------------------


def _env_secrets() -> list[tuple[str, str]]:
    found = [(v, f"<{k}>") for k, v in os.environ.items() if _SECRET_NAME.search(k.upper()) and len(v) >= 8]
    return sorted(found, key=lambda pair: -len(pair[0]))


class _Redactor:
    def __init__(self) -> None:
        self.secrets = _env_secrets()

    def text(self, value: str) -> str:
        for secret, placeholder in self.secrets:
            if secret in value:
                value = value.replace(secret, placeholder)
        return value

    def request(self, request: Request) -> Request:
        """A redacted copy (the caller's request is left alone: it may still be sent or matched)."""
        headers = HeadersDict()
        for name, value in request.headers.items():
            lower = name.lower()
            if lower in DROPPED_REQUEST_HEADERS or lower.startswith("x-stainless-"):
                continue
            headers[lower] = PLACEHOLDER if lower in SECRET_HEADERS else self.text(str(value))
        uri = request.uri
        parsed = urlparse(uri)
        if parsed.query:
            pairs = parse_qsl(parsed.query, keep_blank_values=True)
            clean = [(k, PLACEHOLDER if k.lower() in SECRET_QUERY else self.text(v)) for k, v in pairs]
            if clean != pairs:
                uri = urlunparse(parsed._replace(query=urlencode(clean)))
        copy = Request(request.method, uri, request.body, headers)
        copy._evalsuite_info = _request_info(request)
        return copy

    def response(self, response: dict[str, Any]) -> dict[str, Any] | None:
        if response["status"]["code"] in NOT_RECORDED_STATUSES or response["status"]["code"] >= 500:
            return None
        response = decode_response(response)
        headers = {}
        for name, values in response["headers"].items():
            lower = name.lower()
            if lower in DROPPED_RESPONSE_HEADERS:
                continue
            headers[lower] = [PLACEHOLDER if lower in SECRET_HEADERS else self.text(str(v)) for v in values]
        body = response["body"]["string"]
        if self.secrets and body:
            for secret, placeholder in self.secrets:
                body = body.replace(secret.encode(), placeholder.encode()) if isinstance(body, bytes) else body.replace(secret, placeholder)
        return {**response, "headers": headers, "body": {"string": body}}


# -- serializer and persister ------------------------------------------------------------------------


def _encode_body(body: Any) -> tuple[str, Any]:
    """(layout key, value): parsed JSON when the body is a JSON object/array, else text, else base64."""
    if body is None:
        return "string", None
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return "base64", base64.b64encode(body).decode("ascii")
    else:
        text = body
    stripped = text.lstrip()[:1]
    if stripped in ("{", "["):
        with suppress(ValueError):
            return "json", orjson.loads(text)
    return "string", text


def _decode_body(layout: dict[str, Any]) -> bytes | None:
    if "json" in layout:
        return orjson.dumps(layout["json"])
    if "base64" in layout:
        return base64.b64decode(layout["base64"])
    text = layout.get("string")
    return text.encode("utf-8") if isinstance(text, str) else text


def encode_interaction(request: Request, response: dict[str, Any]) -> dict[str, Any]:
    kind, value = _encode_body(request.body)
    req: dict[str, Any] = {
        "method": request.method,
        "uri": request.uri,
        "headers": {k: [v] for k, v in request.headers.items()},
        {"json": "body_json", "string": "body", "base64": "body_base64"}[kind]: value,
    }
    kind, value = _encode_body(response["body"]["string"])
    resp = {"status": response["status"], "headers": response["headers"], "body": {kind: value}}
    return {"request": req, "response": resp}


def decode_interaction(interaction: dict[str, Any]) -> tuple[Request, dict[str, Any]]:
    req = interaction["request"]
    if "body_json" in req:
        parsed = req["body_json"]
        body = orjson.dumps(parsed)
    else:
        body = _decode_body({"base64": req["body_base64"]} if "body_base64" in req else {"string": req.get("body")})
        parsed = body
    request = Request(req["method"], req["uri"], body, req["headers"])
    request._evalsuite_info = _info(req["method"], req["uri"], parsed, req["headers"])
    resp = interaction["response"]
    response = {"status": resp["status"], "headers": resp["headers"], "body": {"string": _decode_body(resp["body"])}}
    return request, response


class JsonSerializer:
    """vcrpy serializer: readable, diff-friendly JSON (2-space indent, sorted keys), parsed with orjson."""

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> bytes:
        interactions = [
            encode_interaction(request, response)
            for request, response in zip(cassette_dict["requests"], cassette_dict["responses"], strict=True)
        ]
        data = {"version": 1, "metadata": cassette_dict.get("metadata") or {}, "interactions": interactions}
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"

    @staticmethod
    def deserialize(data: bytes) -> tuple[list[Request], list[dict[str, Any]], dict[str, Any]]:
        parsed = orjson.loads(data)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("interactions"), list):
            raise ValueError("not an evalsuite cassette (no 'interactions' list)")
        pairs = [decode_interaction(i) for i in parsed["interactions"]]
        return [r for r, _ in pairs], [r for _, r in pairs], parsed.get("metadata") or {}


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Loading creates ~10 objects per interaction and frees none: collections would only re-scan them.

    ``gc.freeze()`` afterwards keeps later collections from re-scanning them too; they hold no reference
    cycles, so reference counting still frees them with the cassette.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def _corrupt(path: Path, why: object) -> CassetteError:
    return CassetteError(
        f"{path}: cassette cannot be loaded ({why}). It is not re-recorded silently: restore it "
        f"(git checkout -- '{path}') or re-record it with --record-mode=rewrite."
    )


class AtomicPersister:
    """vcrpy persister: atomic writes; loading a corrupt file is an error, not an empty cassette."""

    @staticmethod
    def load_cassette(cassette_path: str | Path, serializer: Any) -> tuple[list[Request], list[dict[str, Any]], dict[str, Any]]:
        path = Path(cassette_path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CassetteNotFoundError() from None
        try:
            return serializer.deserialize(data)
        except Exception as exc:  # any parse or layout problem: name the file, never treat as empty
            raise _corrupt(path, exc) from None

    @staticmethod
    def save_cassette(cassette_path: str | Path, cassette_dict: dict[str, Any], serializer: Any) -> None:
        write_atomic(Path(cassette_path), serializer.serialize(cassette_dict))


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + JOURNAL_SUFFIX)


def _read_journal(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header: dict[str, Any] = {}
    interactions = []
    for line in journal_path(path).read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
        except ValueError:  # the line being written when the process was killed
            continue
        if "journal" in entry:
            header = entry
        else:
            interactions.append(entry)
    return header, interactions


def recover_journal(path: Path) -> int:
    """Merge a journal left by a killed recording into the cassette; returns how many were recovered.

    Journals from ``once``/``new_episodes`` add their interactions; from ``all``/``rewrite`` each one
    replaces the oldest recording with the same key (one for one, so repeats keep their count).
    """
    if not journal_path(path).exists():
        return 0
    header, recovered = _read_journal(path)
    try:
        requests, responses, metadata = AtomicPersister.load_cassette(path, JsonSerializer)
    except CassetteNotFoundError:
        requests, responses, metadata = [], [], {}
    pairs = list(zip(requests, responses))
    new_pairs = [decode_interaction(i) for i in recovered]
    if header.get("mode") in ("all", "rewrite"):
        replaced = collections.Counter(_request_info(r).key for r, _ in new_pairs)
        kept = []
        for request, response in pairs:
            key = _request_info(request).key
            if replaced[key]:
                replaced[key] -= 1
            else:
                kept.append((request, response))
        pairs = kept
    pairs += new_pairs
    cassette_dict = {
        "requests": [r for r, _ in pairs],
        "responses": [r for _, r in pairs],
        "metadata": header.get("metadata") or metadata,
    }
    AtomicPersister.save_cassette(path, cassette_dict, JsonSerializer)
    journal_path(path).unlink()
    return len(new_pairs)


# -- the cassette ---------------------------------------------------------------------------------


class EvalCassette(Cassette):
    """vcrpy ``Cassette`` with an O(1) index by match key, a crash journal and evalsuite metadata."""

    def __init__(self, path: str, *, evalsuite_mode: str, new_metadata: dict[str, Any], **kwargs: Any) -> None:
        self._redactor = _Redactor()
        super().__init__(
            path,
            serializer=JsonSerializer,
            persister=AtomicPersister,
            record_mode=_RECORD_MODE[evalsuite_mode],
            match_on=(same_request,),
            before_record_request=self._redactor.request,
            before_record_response=self._redactor.response,
            allow_playback_repeats=False,
            **kwargs,
        )
        self.evalsuite_mode = evalsuite_mode
        self.new_metadata = new_metadata
        self.recorded_metadata: dict[str, Any] = {}
        self.infos: list[_Info] = []  # parallel to self.data
        self.recovered = 0
        self.n_recorded = 0
        self.n_played = 0
        self.saved_count: int | None = None
        self._unplayed: dict[str, collections.deque[int]] = {}
        self._unplayed_tagged: dict[tuple[str, str], collections.deque[int]] = {}
        self._available: collections.Counter[str] = collections.Counter()
        self._by_key: dict[str, list[int]] = {}  # every interaction, for "not in cassette" messages
        self._by_tag: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._journal: IO[bytes] | None = None
        self._previous: list[tuple[tuple[Request, dict[str, Any]], _Info]] = []  # rewrite: the file being replaced
        self.keep_examples: set[str] = set()  # rewrite: examples whose previous recordings survive the save

    # loading ----------------------------------------------------------------------------------

    def _load(self) -> None:
        with _gc_paused():
            self._load_indexed()

    def _load_indexed(self) -> None:
        self.recovered = recover_journal(Path(self._path))
        try:
            requests, responses, metadata = self._persister.load_cassette(self._path, serializer=self._serializer)
        except CassetteNotFoundError:
            return
        except CassetteError:
            if self.evalsuite_mode == "rewrite":  # re-recording is the fix for a corrupt file
                return
            raise
        if self.evalsuite_mode == "rewrite":  # re-record from scratch; kept aside, never played back
            self._previous = [((q, r), _request_info(q)) for q, r in zip(requests, responses, strict=True)]
            return
        for request, response in zip(requests, responses, strict=True):
            index = len(self.data)
            info = self._add(request, response)
            self._unplayed.setdefault(info.key, collections.deque()).append(index)
            if info.tag:
                self._unplayed_tagged.setdefault((info.key, info.tag), collections.deque()).append(index)
            self._available[info.key] += 1
        self._loaded_count = len(self.data)
        self._metadata = dict(metadata)
        self.recorded_metadata = dict(metadata)
        self.rewound = True
        self.dirty = False

    def _add(self, request: Request, response: dict[str, Any]) -> _Info:
        info = _request_info(request)
        self._by_key.setdefault(info.key, []).append(len(self.data))
        if info.tag:
            self._by_tag.setdefault(info.tag, []).append(len(self.data))
        self.data.append((request, response))
        self.infos.append(info)
        return info

    # playback ---------------------------------------------------------------------------------

    def __contains__(self, request: Request) -> bool:
        return self._available[_request_info(request).key] > 0

    def can_play_response_for(self, request: Request) -> bool:
        return self.record_mode != RecordMode.ALL and request in self

    def play_response(self, request: Request) -> dict[str, Any]:
        response = self.play(_request_info(request))
        if response is None:
            raise UnhandledHTTPRequestError(
                f"The cassette ({self._path!r}) doesn't contain the request ({request!r}) asked for"
            )
        return response

    def play(self, info: _Info) -> dict[str, Any] | None:
        """The next unplayed recording for this match key (the tagged sample first), marked as played."""
        with self._lock:
            index = self._next_unplayed(self._unplayed_tagged.get((info.key, info.tag))) if info.tag else None
            if index is None:
                index = self._next_unplayed(self._unplayed.get(info.key))
            if index is None:
                return None
            self.play_counts[index] += 1
            self._available[info.key] -= 1
            self.n_played += 1
            return self.data[index][1]

    def _next_unplayed(self, indices: collections.deque[int] | None) -> int | None:
        while indices:
            index = indices.popleft()
            if not self.play_counts[index]:
                return index
        return None

    def find_requests_with_most_matches(self, request: Request) -> list[tuple[Request, list[str], list[tuple[str, str]]]]:
        """For vcrpy's "not in cassette" message: recordings of the same key (all played) or example."""
        info = _request_info(request)
        same_key = [self.data[i][0] for i in self._by_key.get(info.key, [])[:3]]
        if same_key:
            return [(r, ["same_request"], []) for r in same_key]
        same_example = [self.data[i][0] for i in self._by_tag.get(info.tag, [])[:3]] if info.tag else []
        return [(r, ["method", "path"], [("body", "prompt or parameters changed since recording")]) for r in same_example]

    # recording --------------------------------------------------------------------------------

    def append(self, request: Request, response: dict[str, Any]) -> None:
        sent_at = request.headers.get(SENT_AT_HEADER)
        received = time.time()
        stored_request = self._before_record_request(request)
        response = {**response, "headers": {k: list(v) for k, v in response["headers"].items()}}
        stored_response = self._before_record_response(response)
        if stored_request is None or stored_response is None:
            return
        if sent_at is not None:
            with suppress(ValueError):
                latency_ms = (received - float(sent_at)) * 1000
                stored_response["headers"][LATENCY_HEADER] = [f"{latency_ms:.1f}"]
        line = orjson.dumps(encode_interaction(stored_request, stored_response)) + b"\n"
        with self._lock:
            self._add(stored_request, stored_response)
            self.n_recorded += 1
            self.dirty = True
            self._journal_write(line)

    def _journal_write(self, line: bytes) -> None:
        if self._journal is None:
            path = journal_path(Path(self._path))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._journal = open(path, "ab")  # noqa: SIM115 - kept open while recording, closed in close_journal
            header = {"journal": 1, "mode": self.evalsuite_mode, "metadata": self._metadata_to_save()}
            self._journal.write(orjson.dumps(header) + b"\n")
        self._journal.write(line)
        self._journal.flush()

    def close_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _metadata_to_save(self) -> dict[str, Any]:
        return {
            **self.recorded_metadata,
            **self.new_metadata,
            "evalsuite_version": evalsuite.__version__,
            "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    # saving -----------------------------------------------------------------------------------

    def _save(self, force: bool = False) -> None:
        if not (force or self.dirty):
            self.close_journal()
            return
        loaded = list(zip(self.data[: self._loaded_count], self.infos[: self._loaded_count]))
        recorded = list(zip(self.data[self._loaded_count :], self.infos[self._loaded_count :]))
        if self.record_mode == RecordMode.ALL:  # recordings replace old ones with the same key
            rerecorded = {info.key for _, info in recorded}
            if self.evalsuite_mode == "rewrite":
                kept = [p for p in self._previous if p[1].tag.rpartition("#")[0] in self.keep_examples]
            else:
                kept = [p for p in loaded if p[1].key not in rerecorded]
            interactions = [pair for pair, _ in kept + recorded]
        else:
            interactions = self.data
        self._metadata = self._metadata_to_save()
        self._persist({"requests": [r for r, _ in interactions], "responses": [r for _, r in interactions]})
        self.saved_count = len(interactions)
        self.dirty = False
        self.close_journal()
        with suppress(FileNotFoundError):
            journal_path(Path(self._path)).unlink()

    def save_interrupted(self) -> None:
        """After an exception: merge what was journaled into the file, as a crash would on next load."""
        self.close_journal()
        if self.dirty:
            recover_journal(Path(self._path))
            self.dirty = False


def same_request(r1: Request, r2: Request) -> None:
    """vcrpy matcher (used only by vcrpy's own linear helpers): equal match keys."""
    if _request_info(r1).key != _request_info(r2).key:
        raise AssertionError("method, endpoint or canonical body differ")


# -- public API -----------------------------------------------------------------------------------


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

        ``endpoint`` is what the SDK would call: ``chat/completions``, ``completions`` or
        ``deployments/<name>/chat/completions``; the key is the one the transport path computes.
        """
        digest = call.prompt_hash
        info = _Info(f"POST {endpoint} - {digest}", call.api, digest, f"{call.example_id}#{call.sample}")
        return self._cassette.play(info)

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
        available = collections.Counter((info.api, info.body_hash) for info in self._cassette.infos)
        recorded_examples = {info.tag.rpartition("#")[0] for info in self._cassette.infos if info.tag}
        reported: set[str] = set()
        for call in calls:
            wanted = (call.api, call.prompt_hash)
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
def use_cassette(path: Path, mode: str, *, metadata: dict[str, Any]) -> Iterator[CassetteHandle]:
    """Record/replay every HTTP call made by httpx/httpx2 (the openai SDK) inside the block.

    ``metadata`` (``dataset_fingerprint``, ``item_id``) is stored when the cassette is written and
    compared by :meth:`CassetteHandle.stale`. Raises :class:`CassetteError` for a corrupt file.
    """
    if mode not in MODES:
        raise ValueError(f"record mode {mode!r} is not valid; valid: {', '.join(MODES)}")
    path = Path(path)
    if mode != "none":
        path.parent.mkdir(parents=True, exist_ok=True)  # concurrent workers: never a FileExistsError
    context = EvalCassette.use(
        path=str(path), evalsuite_mode=mode, new_metadata=dict(metadata), record_on_exception=False
    )
    with context as cassette:
        try:
            yield CassetteHandle(cassette, path, mode)
        except BaseException:
            cassette.save_interrupted()
            raise


__all__ = [
    "MODES",
    "CassetteError",
    "CassetteHandle",
    "EvalCassette",
    "is_not_recorded",
    "recover_journal",
    "use_cassette",
]
